"""Export conformance over the whole registry, plus the CLI, verification and manifest.

Every registered model (built-in, other engineers' families, plugins) is exported from its
tiny config to ONNX (fp32 and fp16) and SavedModel; the export's own verification must
pass and the artifacts must reproduce `encode`/`decode` through the names the manifest
promises, at a batch size the export never saw.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kerasae
from kerasae import export
from kerasae.errors import KerasaeError
from kerasae.export import manifest as mf
from kerasae.models.registry import get_model_class
from tests.helpers import registry_params, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS = kerasae.list_models()


def build(name):
    cls = get_model_class(name)
    return kerasae.create_model(name, input_shape=(8, 8, 1), **cls.tiny_config)


def _onnx_run(path, feed):
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return {o.name: v for o, v in zip(sess.get_outputs(), sess.run(None, feed))}


@pytest.mark.parametrize("name", registry_params(MODELS))
def test_every_model_exports_and_verifies(name, digits, tmp_path):
    x = digits[0][:64]
    model = build(name)
    if name == "pca":  # its weights come from fit, not from initialisation
        model.fit(x, verbose=0)
    out = tmp_path / "export"
    manifest = export.export_model(model, out, fp16=True, real_x=x[:7])
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["model"]["name"] == name and on_disk["format"] == mf.FORMAT
    assert set(on_disk["verification"]) == {
        "encoder.onnx",
        "encoder.fp16.onnx",
        "encoder_savedmodel",
        "decoder.onnx",
        "decoder.fp16.onnx",
        "decoder_savedmodel",
        "scorer.onnx",
        "scorer_savedmodel",
    }
    # the scorer is the model's own score (detect's), and float32 only
    score = _onnx_run(str(out / "scorer.onnx"), {"x": x[7:10]})["score"]
    np.testing.assert_allclose(score, model.score(x[7:10]), atol=1e-4, rtol=1e-5)
    for rel, entry in on_disk["files"].items():  # every checksum describes the file on disk
        assert mf.sha256(out / rel) == entry["sha256"], rel
    if model.generative:
        assert prior_is_usable(manifest["prior"], model.latent_dim)
    else:  # the model's own refusal travels, for kerasae-runtime to give
        assert manifest["prior"] is None and "is not generative" in manifest["no_prior"]

    enc, dec = manifest["parts"]["encoder"], manifest["parts"]["decoder"]
    assert enc["inputs"][0]["name"] == "x" and dec["inputs"][0]["name"] == "z"
    assert enc["inputs"][0]["shape"][0] is None  # dynamic batch
    batch = x[7:10]  # three unseen examples: another batch size than verification used
    z = _onnx_run(str(out / "encoder.onnx"), {"x": batch})
    assert list(z) == [o["name"] for o in enc["outputs"]]
    np.testing.assert_allclose(next(iter(z.values())), model.encode(batch), atol=1e-4)
    x_hat = _onnx_run(str(out / "decoder.onnx"), {"z": model.encode(batch)})["x_hat"]
    np.testing.assert_allclose(x_hat, model.decode(model.encode(batch)), atol=1e-4)
    half = _onnx_run(str(out / "decoder.fp16.onnx"), {"z": model.encode(batch)})["x_hat"]
    assert half.dtype == np.float32  # float16 weights, float32 interface
    np.testing.assert_allclose(half, x_hat, atol=2e-2)


def test_conv_decoder_onnx_is_rewritten_unless_asked_not_to(tmp_path):
    import onnx

    model = build("conv_ae")
    ops = {}
    for optimize in (True, False):
        out = tmp_path / str(optimize)
        manifest = export.export_model(
            model, out, formats=("onnx",), parts=("decoder",), optimize=optimize
        )
        assert manifest["onnx_optimized"] is optimize
        proto = onnx.load(str(out / "decoder.onnx"))
        ops[optimize] = [n.op_type for n in proto.graph.node]
        meta = {p.key: p.value for p in proto.metadata_props}
        assert meta.get("kerasae.phase_conv") == ("1" if optimize else None)
        z = np.random.default_rng(0).standard_normal((5, model.latent_dim)).astype("float32")
        np.testing.assert_allclose(
            _onnx_run(str(out / "decoder.onnx"), {"z": z})["x_hat"], model.decode(z), atol=1e-5
        )
    # the last upsampling layer (the one feeding the output Conv) became per-phase Convs
    assert ops[True].count("ConvTranspose") == ops[False].count("ConvTranspose") - 1
    assert "DepthToSpace" in ops[True] and "DepthToSpace" not in ops[False]


def test_spatial_code_dae_exports_and_matches_keras(digits, tmp_path):
    model = kerasae.create_model(
        "dae",
        input_shape=(8, 8, 1),
        latent_dim=16,
        architecture="conv",
        code="spatial",
        filters=(4, 8),
    )
    export.export_model(model, tmp_path, formats=("onnx",))
    x = digits[0][:5]
    z = _onnx_run(str(tmp_path / "encoder.onnx"), {"x": x})["z"]
    np.testing.assert_allclose(z, model.encode(x), atol=1e-5)
    x_hat = _onnx_run(str(tmp_path / "decoder.onnx"), {"z": z})["x_hat"]
    np.testing.assert_allclose(x_hat, model.decode(z), atol=1e-5)


def prior_is_usable(prior, latent_dim):
    if prior["kind"] == "standard_normal":
        return prior["dim"] == latent_dim
    if prior["kind"] == "uniform":  # an aae's uniform prior
        return prior["dim"] == latent_dim and prior["low"] < prior["high"]
    if prior["kind"] == "uniform_sphere":  # an svae's uniform prior on the sphere
        return prior["dim"] == latent_dim
    if prior["kind"] == "wrapped_normal":  # a poincare_vae's prior on the ball
        return prior["dim"] == latent_dim and prior["curvature"] > 0 and prior["scale"] > 0
    if prior["kind"] == "gmm":  # vamp's mixture (diagonal components), an aae's mixture
        scales = np.asarray(prior["scale_diag"])
        return np.asarray(prior["means"]).shape == scales.shape == (
            len(prior["weights"]),
            latent_dim,
        ) and np.all(scales > 0)
    tril = np.asarray(prior["scale_tril"])
    return tril.shape == (latent_dim, latent_dim) and np.all(np.diag(tril) > 0)


def test_multi_output_encoder_keeps_layer_names_and_order(digits, tmp_path):
    from kerasae import nets
    from kerasae.models.ae import AE

    class TwoHeads(AE):  # the shape of a VAE encoder, without registering a model
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.encoder = nets.build_encoder(
                self.data_shape,
                self.latent_dim,
                "mlp",
                hidden_units=(8,),
                output_names=("z_mean", "z_log_var"),
            )

        def encode(self, x, batch_size=256):
            return self.encoder(x)[0].numpy()

    model = TwoHeads(input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,))
    manifest = export.export_model(
        model, tmp_path / "e", formats=("onnx",), parts=("encoder",), real_x=digits[0][:7]
    )
    assert [o["name"] for o in manifest["parts"]["encoder"]["outputs"]] == ["z_mean", "z_log_var"]
    got = _onnx_run(str(tmp_path / "e" / "encoder.onnx"), {"x": digits[0][:5]})
    assert list(got) == ["z_mean", "z_log_var"]  # tf2onnx's alphabetical order undone
    mean, log_var = model.encoder(digits[0][:5])
    np.testing.assert_allclose(got["z_log_var"], log_var, atol=1e-5)
    assert not (tmp_path / "e" / "decoder.onnx").exists()


def test_mismatch_fails_and_leaves_nothing(digits, tmp_path, monkeypatch):
    from kerasae.export import onnx_export

    real_run = onnx_export.run

    def broken(sess, signature, x):
        return {k: v + 0.5 for k, v in real_run(sess, signature, x).items()}

    monkeypatch.setattr(onnx_export, "run", broken)
    model = build("ae")
    with pytest.raises(KerasaeError, match=r"differs by 0\.5"):
        export.export_model(model, tmp_path / "bad", formats=("onnx",), real_x=digits[0][:7])
    assert not (tmp_path / "bad").exists() and os.listdir(tmp_path) == []


def test_refuses_to_overwrite_a_folder_that_is_not_an_export(tmp_path):
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(KerasaeError, match="holds no kerasae export"):
        export.export_model(build("ae"), tmp_path, formats=("onnx",))
    assert (tmp_path / "keep.txt").read_text() == "user data"
    with pytest.raises(KerasaeError, match="--parts"):
        export.export_model(build("ae"), tmp_path / "x", parts=("encoder", "head"))


@pytest.mark.slow
def test_cli_exports_a_trained_run(tmp_path, capsys):
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.training import train

    run = str(tmp_path / "run")
    train(
        TrainConfig(
            model="ae",
            epochs=1,
            latent_dim=3,
            batch_size=256,
            out=run,
            params={"hidden_units": [16]},
        ),
        verbose=0,
    )
    # commands name the run `run` from its parent, as users do: the manifest's no_prior
    # names the run by its folder name only (no path of the training machine)
    result = run_cli("export", "run", "--format", "onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "encoder.onnx: verified" in result.stdout
    manifest = json.loads(open(os.path.join(run, "export", "manifest.json")).read())
    assert manifest["scaling"] == {"kind": "divide", "scale": 16.0}  # digits / 16
    assert manifest["prior"] is None and "'ae' is not generative" in manifest["no_prior"]
    # kerasae sample and kerasae-runtime generate refuse this run alike, in the same words
    sample = run_cli("sample", "run", "--out", str(tmp_path / "s.png"), cwd=tmp_path)
    runtime = subprocess.run(
        [
            sys.executable,
            "-m",
            "kerasae_runtime",
            "generate",
            os.path.join(run, "export"),
            "-n",
            "4",
            "--out",
            str(tmp_path / "g.png"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "export")},
        timeout=120,
    )
    assert sample.returncode == runtime.returncode == 2, runtime.stderr
    said = [r.stderr.strip().splitlines()[-1].split("error: ", 1)[1] for r in (sample, runtime)]
    assert said[0] == said[1] == manifest["no_prior"], said
    assert not os.path.exists(os.path.join(run, "export", "encoder_savedmodel"))

    # user errors: one line on stderr, exit 2 (in-process: no second TensorFlow start-up)
    from kerasae.cli import main

    assert main(["export", run, "--parts", "encoder,head"]) == 2
    assert main(["export", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--parts" in err[0] and "not a kerasae run folder" in err[1]
