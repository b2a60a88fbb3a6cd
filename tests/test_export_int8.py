"""`kerasae export --int8`: quantized files, their verification entry, the refusals and
the runtime's precision="int8".

The speed check is given fixed timings (a fake `quantize.timed` that still runs both
sessions): real timings on a shared CI machine would make these tests pass or fail by
chance. BENCHMARKS.md has the measured ones.
"""

import argparse
import json
import os
import sys

import numpy as np
import pytest

import kerasae
from kerasae import export
from kerasae.errors import KerasaeError
from kerasae.export import quantize, verify
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


def test_an_mlp_exports_int8_files_that_match_and_load(digits, tmp_path, monkeypatch, runtime):
    fixed_timings(monkeypatch, fp32_ms=2.0, int8_ms=1.0)
    x = digits[0][:64]
    model = build("ae")
    out = tmp_path / "export"
    export.export_model(model, out, formats=("onnx",), int8=True, real_x=x[:7])
    manifest = json.loads((out / "manifest.json").read_text())
    for part in ("encoder", "decoder", "scorer"):
        name = f"{part}.int8.onnx"
        assert manifest["parts"][part]["files"]["onnx_int8"] == name and name in manifest["files"]
        entry = manifest["verification"][name]
        assert entry["precision"] == "int8"
        assert entry["tolerance"] == verify.TOLERANCE["int8"] >= entry["max_abs_diff"]
        assert entry["speed"] == {"batch": 256, "fp32_ms": 2.0, "int8_ms": 1.0}
    import onnx
    import onnxruntime as ort

    ops = {n.op_type for n in onnx.load(str(out / "decoder.int8.onnx")).graph.node}
    assert "MatMulInteger" in ops and "MatMul" not in ops
    z = np.asarray(model.encode(x[7:40]), dtype="float32")
    sess = ort.InferenceSession(str(out / "decoder.int8.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(["x_hat"], {"z": z})[0]
    expected = np.asarray(model.decode(z))
    assert got.dtype == np.float32
    assert np.max(np.abs(got - expected)) <= verify.TOLERANCE["int8"]

    dec = runtime.Decoder.load(str(out), device="cpu", precision="int8")
    assert dec.precision == "int8"
    assert np.max(np.abs(dec.decode(z) - expected)) <= verify.TOLERANCE["int8"]
    ae = runtime.Autoencoder.load(str(out), device="cpu", precision="int8")
    assert ae.scorer.precision == "int8"  # verified at export, so it is used
    score = np.asarray(model.score(x[7:40]))
    bound = verify.TOLERANCE["int8"] * max(1.0, float(np.max(np.abs(score))))
    assert np.max(np.abs(ae.score(x[7:40]) - score)) <= bound
    with pytest.raises(runtime.manifest.ExportError, match="--fp16"):
        runtime.Decoder.load(str(out), device="cpu", precision="fp16")


def test_a_part_no_faster_quantized_refuses_the_whole_export(digits, tmp_path, monkeypatch):
    # conv_ae's parts hold one Dense layer each, so they do quantize: only the speed refuses
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
        )
    message = str(info.value)
    assert message.startswith("--int8: the decoder runs slower quantized (1.50 ms vs 1.00 ms")
    assert "\n" not in message and "export without --int8" in message
    assert not out.exists() and os.listdir(tmp_path) == []


def test_a_part_beyond_tolerance_is_refused(digits, tmp_path, monkeypatch):
    fixed_timings(monkeypatch, fp32_ms=2.0, int8_ms=1.0)
    monkeypatch.setitem(verify.TOLERANCE, "int8", 1e-9)
    out = tmp_path / "export"
    with pytest.raises(
        KerasaeError,
        match=r"^--int8: decoder\.int8\.onnx does not match "
        r"the Keras decoder.*export without --int8$",
    ):
        export.export_model(
            build("ae"),
            out,
            formats=("onnx",),
            parts=("decoder",),
            int8=True,
            real_x=digits[0][:7],
        )
    assert not out.exists()


def test_a_graph_without_dense_weights_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((1, 1, 3, 3), dtype="float32"), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 4, 4])],
        [w],
    )
    src = str(tmp_path / "decoder.onnx")
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), src)
    with pytest.raises(KerasaeError, match="^--int8: the decoder has no MatMul/Gemm weights"):
        quantize.quantize(src, str(tmp_path / "decoder.int8.onnx"), "decoder")
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
