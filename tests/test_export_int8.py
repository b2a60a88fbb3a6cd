"""`kerasae export --int8`: statically quantized files calibrated on training data, their
error on test data, the refusals (not accurate, not faster: each says which) and the
runtime's precision="int8".

The speed check is given fixed timings (a fake `quantize.timed` that still runs both
sessions): real timings on a shared CI machine would make these tests pass or fail by
chance. BENCHMARKS.md has the measured ones. Models are trained with fixed seeds, so the
errors are the same on every run; the bounds hold them with a margin of 2x or more.
"""

import argparse
import json
import os
import sys

import keras
import numpy as np
import pytest

import kerasae
from kerasae import export
from kerasae.errors import KerasaeError
from kerasae.export import quantize
from kerasae.models.registry import get_model_class

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(name):
    return kerasae.create_model(name, input_shape=(8, 8, 1), **get_model_class(name).tiny_config)


def fixed_timings(monkeypatch, fp32_ms, int8_ms):
    def timed(runners, x, repeats=quantize.REPEATS):
        assert len(x) == quantize.SPEED_BATCH
        for fn in runners.values():
            fn(x)
        return {"fp32": fp32_ms, "int8": int8_ms}

    monkeypatch.setattr(quantize, "timed", timed)


@pytest.fixture
def runtime():
    sys.path.insert(0, os.path.join(ROOT, "export"))
    import kerasae_runtime

    yield kerasae_runtime
    sys.path.remove(os.path.join(ROOT, "export"))


@pytest.fixture(scope="module")
def trained(digits):
    """A dense and a convolutional model trained briefly on digits, with fixed seeds."""
    models = {}
    for name in ("ae", "conv_ae"):
        keras.utils.set_random_seed(0)
        model = build(name)
        model.compile()
        model.fit(digits[0][:1024], epochs=5, batch_size=64, verbose=0)
        models[name] = model
    return models


@pytest.mark.parametrize("name", ["ae", pytest.param("conv_ae", marks=pytest.mark.slow)])
def test_int8_files_are_calibrated_measured_on_test_data_and_load(
    name, trained, digits, tmp_path, monkeypatch, runtime
):
    fixed_timings(monkeypatch, fp32_ms=2.0, int8_ms=1.0)
    model, (x_train, x_test) = trained[name], (digits[0][:1024], digits[0][1024:])
    out = tmp_path / "export"
    export.export_model(
        model, out, formats=("onnx",), int8=True, real_x=x_test[:7], int8_data=(x_train, x_test)
    )
    manifest = json.loads((out / "manifest.json").read_text())
    for part in ("encoder", "decoder", "scorer"):
        file = f"{part}.int8.onnx"
        assert manifest["parts"][part]["files"]["onnx_int8"] == file and file in manifest["files"]
        entry = manifest["verification"][file]
        assert entry["precision"] == "int8" and entry["split"] == "test"
        assert entry["examples"] == len(x_test) and entry["speed"]["int8_ms"] == 1.0
        for output in entry["outputs"].values():
            assert output["mean_abs_diff"] <= output["tolerance"] / 2, (part, output)
    import onnx

    ops = {n.op_type for n in onnx.load(str(out / "decoder.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # static QDQ, weights included
    # in [0, 1] data units, the decoder's mean error over the test split
    z = np.asarray(model.encode(x_test), dtype="float32")
    expected = np.asarray(model.decode(z))
    dec = runtime.Decoder.load(str(out), device="cpu", precision="int8")
    assert dec.precision == "int8"
    assert np.mean(np.abs(dec.decode(z) - expected)) <= quantize.TOLERANCE["decoder"][0] / 2
    ae = runtime.Autoencoder.load(str(out), device="cpu", precision="int8")
    assert ae.scorer.precision == "int8"  # verified at export, so it is used
    score = np.asarray(model.score(x_test))
    assert np.mean(np.abs(ae.score(x_test) - score)) <= 0.1 * np.std(score)
    with pytest.raises(runtime.manifest.ExportError, match="--fp16"):
        runtime.Decoder.load(str(out), device="cpu", precision="fp16")


def test_int8_without_data_to_calibrate_on_is_refused(tmp_path):
    with pytest.raises(KerasaeError, match="int8 needs data to calibrate on"):
        export.export_model(build("ae"), tmp_path / "e", formats=("onnx",), int8=True)
    assert not (tmp_path / "e").exists()


def test_a_part_no_faster_quantized_refuses_the_whole_export(digits, tmp_path, monkeypatch):
    # accurate enough: only the speed refuses it
    fixed_timings(monkeypatch, fp32_ms=1.0, int8_ms=1.5)
    out = tmp_path / "export"
    with pytest.raises(KerasaeError) as info:
        export.export_model(
            build("conv_ae"),
            out,
            formats=("onnx",),
            parts=("decoder",),
            int8=True,
            real_x=digits[0][:7],
            int8_data=(digits[0][:256], digits[0][1024:]),
        )
    message = str(info.value)
    assert message.startswith(
        "--int8: the decoder is not faster quantized: it runs slower (1.50 ms vs 1.00 ms"
    )
    assert "\n" not in message and "export without --int8" in message
    assert not out.exists() and os.listdir(tmp_path) == []


def test_a_part_beyond_tolerance_is_refused_saying_so(digits, tmp_path, monkeypatch):
    fixed_timings(monkeypatch, fp32_ms=2.0, int8_ms=1.0)
    monkeypatch.setitem(quantize.TOLERANCE, "decoder", (1e-9, "data units"))
    out = tmp_path / "export"
    with pytest.raises(KerasaeError) as info:
        export.export_model(
            build("ae"),
            out,
            formats=("onnx",),
            parts=("decoder",),
            int8=True,
            real_x=digits[0][:7],
            int8_data=(digits[0][:256], digits[0][1024:]),
        )
    message = str(info.value)
    assert message.startswith("--int8: the decoder is not accurate enough quantized: ")
    assert f"over {len(digits[0]) - 1024:,} test examples" in message
    assert "mean |int8 - float32|" in message
    assert message.endswith("export without --int8") and not out.exists()


def test_a_graph_without_weights_to_quantize_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((1, 1, 4, 4), dtype="float32"), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],  # a weight, but no MatMul/Gemm/Conv
        "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 4, 4])],
        [w],
    )
    src = str(tmp_path / "decoder.onnx")
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), src)
    with pytest.raises(KerasaeError, match="^--int8: the decoder has no MatMul, Gemm or Conv"):
        quantize.quantize(
            src, str(tmp_path / "decoder.int8.onnx"), "decoder", np.ones((4, 1, 4, 4))
        )
    assert os.listdir(tmp_path) == ["decoder.onnx"]


def test_int8_needs_onnx(tmp_path):
    with pytest.raises(KerasaeError, match="--int8 applies to ONNX files"):
        export.export_model(build("ae"), tmp_path / "e", formats=("savedmodel",), int8=True)


@pytest.mark.parametrize(
    "fmt, refused",
    [("onnx", False), ("all", False), ("savedmodel", True), ("triton", True), ("tfserving", True)],
)
def test_cli_int8_applies_to_onnx_formats(fmt, refused):
    from kerasae.cli import export as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["export", "RUN", "--format", fmt, "--int8", "--fp16"])
    if refused:
        with pytest.raises(KerasaeError, match=f"applies to --format onnx or all, not {fmt}"):
            cli._layout_settings(args)
    else:
        assert cli._layout_settings(args) is None and args.int8
