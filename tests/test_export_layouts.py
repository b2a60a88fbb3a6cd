"""Deployment layouts: a Triton model repository and TF Serving's versioned folders.

One tiny VAE is exported once (ONNX + SavedModel, verified); the layouts are built from
that folder, as `kerasae export --format triton/tfserving` does after its own export.
Each config.pbtxt is parsed with Triton's own `ModelConfig` protobuf and compared with
the ONNX graph it describes; the TF Serving decoder is loaded the way a server loads it.
"""

import json
import os
import shutil

import numpy as np
import pytest

import kerasae
from kerasae import export
from kerasae.errors import KerasaeError
from kerasae.export import tfserving, triton
from kerasae.models.registry import get_model_class

try:  # the dev extra has it; the checks that do not parse config.pbtxt run without it
    from tritonclient.grpc import model_config_pb2 as pb
except ImportError:
    pb = None
needs_tritonclient = pytest.mark.skipif(pb is None, reason="pip install -e .[triton]")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, digits):
    model = kerasae.create_model(
        "vae", input_shape=(8, 8, 1), **get_model_class("vae").tiny_config
    )
    out = tmp_path_factory.mktemp("layouts") / "export"
    manifest = export.export_model(model, out, real_x=digits[0][:7])
    return model, out, manifest


def _parse(path):
    from google.protobuf import text_format

    with open(path, encoding="utf-8") as f:
        return text_format.Parse(f.read(), pb.ModelConfig())


def _graph_io(path):
    """[(name, TYPE_*, dims)] of an ONNX file's inputs and outputs, batch dim included."""
    import onnx

    graph = onnx.load(str(path)).graph
    names = {
        onnx.TensorProto.FLOAT: "TYPE_FP32",
        onnx.TensorProto.INT64: "TYPE_INT64",
        onnx.TensorProto.INT32: "TYPE_INT32",
    }
    return [
        [
            (
                v.name,
                names[v.type.tensor_type.elem_type],
                [
                    d.dim_value if d.HasField("dim_value") else -1
                    for d in v.type.tensor_type.shape.dim
                ],
            )
            for v in values
        ]
        for values in (graph.input, graph.output)
    ]


def _config_io(config):
    return [
        [
            (
                t.name,
                pb.DataType.Name(t.data_type),
                [-1] + ([] if t.HasField("reshape") and not t.reshape.shape else list(t.dims)),
            )
            for t in tensors
        ]
        for tensors in (config.input, config.output)
    ]


@needs_tritonclient
def test_triton_repository_matches_the_onnx_graphs(exported, tmp_path):
    model, export, manifest = exported
    repo = tmp_path / "repo"
    models = triton.write_repository(export, repo, max_batch_size=64)
    onnx_parts = [p for p, s in manifest["parts"].items() if "onnx" in s["files"]]
    assert {"encoder", "decoder"} <= set(onnx_parts)  # and the scorer, where exported
    assert sorted(models) == sorted(os.listdir(repo)) == sorted(f"vae_{p}" for p in onnx_parts)
    for part in onnx_parts:
        folder = repo / f"vae_{part}"
        config = _parse(folder / "config.pbtxt")
        assert config.name == f"vae_{part}" and config.platform == "onnxruntime_onnx"
        assert config.max_batch_size == 64
        assert config.HasField("dynamic_batching")
        assert config.dynamic_batching.max_queue_delay_microseconds == 100
        assert _config_io(config) == _graph_io(folder / "1" / "model.onnx")
        assert [t.name for t in config.input] == [
            t["name"] for t in manifest["parts"][part]["inputs"]
        ]
        assert [t.name for t in config.output] == [
            t["name"] for t in manifest["parts"][part]["outputs"]
        ]
        assert (folder / "1" / "model.onnx").read_bytes() == (
            export / manifest["parts"][part]["files"]["onnx"]
        ).read_bytes()
        assert json.loads((folder / "kerasae_manifest.json").read_text()) == json.loads(
            (export / "manifest.json").read_text()
        )
    dec = _parse(repo / "vae_decoder" / "config.pbtxt")
    assert [(t.name, list(t.dims)) for t in dec.input] == [("z", [2])]
    assert [(t.name, list(t.dims)) for t in dec.output] == [("x_hat", [8, 8, 1])]


def _with_scalar_part(export, dst):
    """A copy of the export with one more ONNX part, x -> score of shape (batch,)."""
    import onnx
    from onnx import TensorProto, helper

    shutil.copytree(export, dst)
    graph = helper.make_graph(
        [helper.make_node("ReduceSumSquare", ["x"], ["score"], axes=[1, 2, 3], keepdims=0)],
        "critic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8, 8, 1])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        str(dst / "critic.onnx"),
    )
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["parts"]["critic"] = {"files": {"onnx": "critic.onnx"}}
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


@needs_tritonclient
def test_every_onnx_part_becomes_a_model_and_a_scalar_output_is_reshaped(exported, tmp_path):
    export = _with_scalar_part(exported[1], tmp_path / "export")
    models = triton.write_repository(export, tmp_path / "repo", name="digits.v2")
    assert "digits.v2_critic" in models and "digits.v2_decoder" in models
    config = _parse(tmp_path / "repo" / "digits.v2_critic" / "config.pbtxt")
    assert [(t.name, list(t.dims)) for t in config.input] == [("x", [8, 8, 1])]
    (score,) = config.output  # per-example scalar: dims [1] reshaped to [] (Triton's rule)
    assert score.name == "score" and list(score.dims) == [1]
    assert score.HasField("reshape") and list(score.reshape.shape) == []
    # no batching: full shapes, batch as -1, and no dynamic_batching block
    triton.write_repository(export, tmp_path / "repo", name="digits.v2", max_batch_size=0)
    config = _parse(tmp_path / "repo" / "digits.v2_critic" / "config.pbtxt")
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert [list(t.dims) for t in config.output] == [[-1]]


@needs_tritonclient
@pytest.mark.parametrize("max_batch_size", [256, 0])
def test_hand_written_config_is_the_same_message(exported, tmp_path, max_batch_size):
    from google.protobuf import text_format

    export = _with_scalar_part(exported[1], tmp_path / "export")
    for part in ("encoder", "decoder", "critic"):
        path = str(export / f"{part}.onnx")
        by_hand = triton._text_by_hand(part, path, max_batch_size, 100)
        assert text_format.Parse(by_hand, pb.ModelConfig()) == triton.model_config(
            part, path, max_batch_size, 100
        )


def test_tfserving_layout_serves_like_the_keras_decoder(exported, tmp_path):
    import tensorflow as tf

    model, export, _ = exported
    repo = tmp_path / "serving"
    models = tfserving.write_repository(export, repo, name="digits", version=3)
    assert {"digits_encoder", "digits_decoder"} <= set(models)
    for servable in models:
        assert sorted(os.listdir(repo / servable)) == ["3", "kerasae_manifest.json"]
        assert (repo / servable / "3" / "saved_model.pb").is_file()
        assert (repo / servable / "3" / "variables").is_dir()
    serve = tf.saved_model.load(str(repo / "digits_decoder" / "3")).signatures["serving_default"]
    z = np.random.default_rng(1).standard_normal((5, model.latent_dim)).astype("float32")
    x_hat = serve(z=tf.constant(z))["x_hat"].numpy()
    np.testing.assert_allclose(x_hat, np.asarray(model.decoder(z)), atol=1e-5)


def test_layouts_refuse_foreign_folders_and_replace_their_own(exported, tmp_path):
    export = exported[1]
    user = tmp_path / "user"
    user.mkdir()
    (user / "keep.txt").write_text("user data")
    for module in (triton, tfserving):
        with pytest.raises(KerasaeError, match=f"holds no {module.KIND} layout"):
            module.write_repository(export, user)
    assert os.listdir(user) == ["keep.txt"]
    repo = tmp_path / "repo"
    triton.write_repository(export, repo, name="a")
    with pytest.raises(KerasaeError, match="holds no tfserving layout"):
        tfserving.write_repository(export, repo)
    with pytest.raises(KerasaeError, match="holds no triton layout"):  # an export folder
        triton.write_repository(export, export)
    triton.write_repository(export, repo, name="b")  # its own kind: replaced as a whole
    assert all(m.startswith("b_") for m in os.listdir(repo))
    assert sorted(os.listdir(tmp_path)) == ["repo", "user"]  # no temporary folder left
    with pytest.raises(KerasaeError, match="holds no kerasae export"):
        triton.write_repository(user, tmp_path / "new")
    with pytest.raises(KerasaeError, match="--name"):
        triton.write_repository(export, tmp_path / "new", name="../up")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--format", "onnx", "--version", "0"], "--version must be at least 1"),
        (
            ["--format", "tfserving", "--max-batch-size", "8"],
            "--max-batch-size applies to --format triton",
        ),
        (["--format", "onnx", "--name", "x"], "--name applies to --format triton or tfserving"),
        (["--format", "triton", "--fp16"], "--fp16 applies to --format onnx or all"),
        (["--format", "triton", "--max-batch-size", "-1"], "--max-batch-size must be 0"),
        (["--format", "tfserving", "--version", "0"], "--version must be at least 1"),
    ],
)
def test_cli_refuses_flags_that_do_not_apply(flags, said, tmp_path, capsys):
    from kerasae.cli import main

    assert main(["export", str(tmp_path / "no-run"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err


@needs_tritonclient
@pytest.mark.slow
def test_cli_writes_both_layouts_from_a_trained_run(tmp_path, capsys):
    from kerasae.cli import main
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.training import train

    run = str(tmp_path / "run")
    train(
        TrainConfig(model="vae", epochs=1, latent_dim=2, params={"hidden_units": [16]}, out=run),
        verbose=0,
    )
    assert (
        main(
            [
                "export",
                run,
                "--format",
                "triton",
                "--out",
                str(tmp_path / "repo"),
                "--max-batch-size",
                "32",
                "-q",
            ]
        )
        == 0
    )
    config = _parse(tmp_path / "repo" / "vae_decoder" / "config.pbtxt")
    assert config.max_batch_size == 32 and [t.name for t in config.input] == ["z"]
    assert (
        main(["export", run, "--format", "tfserving", "--name", "digits", "--version", "2", "-q"])
        == 0
    )
    assert (tmp_path / "run" / "tfserving" / "digits_decoder" / "2" / "saved_model.pb").is_file()
    out = capsys.readouterr().out
    triton_line = next(line for line in out.splitlines() if "(triton: " in line)
    assert "vae_encoder" in triton_line and "vae_decoder" in triton_line
    # the temporary export is gone; the run folder holds only what was asked for
    assert not [e for e in os.listdir(run) if e.startswith(".")]
    # a layout is never written over a folder of another kind
    assert main(["export", run, "--format", "tfserving", "--out", str(tmp_path / "repo")]) == 2
