"""The same samples in deployment (issue 18): an export carries the latent sampler that
`kerasae sample` draws from, and kerasae-runtime draws exactly the same codes and images
for the same seed; a model with neither a prior nor a fitted sampler refuses alike on
both sides."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kerasae
from kerasae import export
from kerasae.errors import KerasaeError
from kerasae.models.registry import get_model_class
from kerasae.samplers.arrays import model_prior
from kerasae.samplers.base import create_sampler, no_sampler_message

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIME = os.path.join(ROOT, "export")


@pytest.fixture
def runtime():
    sys.path.insert(0, RUNTIME)
    import kerasae_runtime

    yield kerasae_runtime
    sys.path.remove(RUNTIME)


def build(name, **overrides):
    cls = get_model_class(name)
    return kerasae.create_model(name, input_shape=(8, 8, 1), **{**cls.tiny_config, **overrides})


def export_decoder(model, out, sampler=None, **options):
    """The decoder alone: all `generate` needs, and the quickest export."""
    return export.export_model(
        model, out, formats=("onnx",), parts=("decoder",), sampler=sampler, **options
    )


def assert_same_draws(runtime, out, sampler, model, n=16, seed=7):
    dec = runtime.Decoder.load(str(out), device="cpu")
    np.testing.assert_allclose(
        dec.sample_latent(n, seed), sampler.sample_latent(n, seed), atol=1e-5
    )
    np.testing.assert_allclose(
        dec.generate(n, seed=seed), sampler.generate(model, n, seed), atol=1e-4
    )
    assert not np.allclose(dec.generate(n, seed=seed), dec.generate(n, seed=seed + 1))


def test_gaussian_and_gmm_exports_draw_what_kerasae_draws(digits, tmp_path, runtime):
    model = build("ae")
    x = digits[0][:400]
    for name, options in (("gaussian", {}), ("gmm", {"n_components": 3})):
        sampler = create_sampler(name, **options).fit(model, x, seed=0)
        out = tmp_path / name
        manifest = export_decoder(model, out, sampler)
        prior = manifest["prior"]
        assert prior["kind"] == name and prior["sampler"] == name and prior["dim"] == 2
        assert "no_prior" not in manifest and "files" not in prior
        on_disk = json.loads((out / "manifest.json").read_text())["prior"]
        if name == "gmm":  # float64 arrays survive the JSON round trip exactly
            assert np.array_equal(on_disk["scale_tril"], sampler.scale_tril)
        assert_same_draws(runtime, out, sampler, model)


def test_a_model_prior_exports_as_the_prior_sampler(tmp_path, runtime):
    model = build("vae")
    manifest = export_decoder(model, tmp_path / "vae")
    assert manifest["prior"]["kind"] == "standard_normal"
    assert manifest["prior"]["sampler"] == "prior"
    assert_same_draws(runtime, tmp_path / "vae", create_sampler("prior").fit(model), model)


def test_no_prior_and_no_sampler_refuses_alike(tmp_path, runtime):
    model = build("conv_ae")
    manifest = export_decoder(model, tmp_path / "e", metadata={"run": {"name": "r"}})
    # `kerasae sample r` gives these very words (kerasae.runs.samplers.run_generator)
    assert manifest["prior"] is None
    assert manifest["no_prior"] == no_sampler_message(model, "r")
    assert "fit-sampler r --sampler gmm" in manifest["no_prior"]
    dec = runtime.Decoder.load(str(tmp_path / "e"))
    with pytest.raises(runtime.ExportError) as info:
        dec.generate(2, seed=0)
    assert str(info.value) == manifest["no_prior"]
    with pytest.raises(KerasaeError, match="fitted latent sampler"):
        export_decoder(model, tmp_path / "f", sampler="gmm")  # a name needs a run
    assert not (tmp_path / "f").exists()


def test_vamp_and_aae_priors_export_their_own_mixtures(runtime):
    """The runtime draws the model's own prior, not a moment-matched Gaussian: the same
    distribution as the model's `sample` (the draws themselves are the model's own)."""
    from kerasae_runtime import manifest as rmf

    vamp = build("vamp", num_pseudo_inputs=3)
    spec = model_prior(vamp)
    means, log_vars = (np.asarray(t, "float64") for t in vamp.prior_components())
    assert spec["kind"] == "gmm" and np.allclose(spec["weights"], 1 / 3)
    np.testing.assert_allclose(spec["means"], means)
    np.testing.assert_allclose(spec["scale_diag"], np.exp(0.5 * log_vars))
    z = rmf.sample_prior(spec, 30000, seed=0)
    np.testing.assert_allclose(z.mean(axis=0), means.mean(axis=0), atol=0.03)
    var = (np.exp(log_vars) + means**2).mean(axis=0) - means.mean(axis=0) ** 2
    np.testing.assert_allclose(z.var(axis=0), var, rtol=0.05, atol=1e-3)

    for prior in ("mixture", "uniform"):
        aae = build("aae", prior=prior, latent_dim=3)
        spec = model_prior(aae)
        assert spec["kind"] == {"mixture": "gmm", "uniform": "uniform"}[prior]
        ours, theirs = rmf.sample_prior(spec, 20000, seed=0), aae.sample_prior(20000, seed=0)
        np.testing.assert_allclose(ours.mean(axis=0), theirs.mean(axis=0), atol=0.06)
        np.testing.assert_allclose(ours.std(axis=0), theirs.std(axis=0), rtol=0.03)
    assert model_prior(build("aae"))["kind"] == "standard_normal"  # the Gaussian prior


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("vamp", {"num_pseudo_inputs": 3}),
        ("aae", {"prior": "mixture", "latent_dim": 3}),
        ("aae", {"prior": "uniform", "latent_dim": 3}),
    ],
)
def test_mixture_and_uniform_priors_sample_the_same_images_on_both_sides(
    tmp_path, runtime, name, kwargs
):
    """`kerasae sample`'s prior sampler draws the manifest's own prior in numpy, so even
    a mixture or a uniform prior gives the runtime's very images, not just their law."""
    model = build(name, **kwargs)
    export_decoder(model, tmp_path / name)
    assert_same_draws(runtime, tmp_path / name, create_sampler("prior").fit(model), model)


def test_a_sampler_named_by_the_run_but_missing_is_an_error_not_a_fallback(tmp_path):
    import shutil

    from kerasae.io import write_json
    from kerasae.runs.samplers import resolve_sampler, save_run_sampler

    model = build("vae")
    run = tmp_path / "run"
    run.mkdir()
    write_json(str(run / "config.json"), {"model": "vae"})
    x = np.random.default_rng(0).random((40, 8, 8, 1)).astype("float32")
    save_run_sampler(str(run), create_sampler("gaussian").fit(model, x))
    config = json.loads((run / "config.json").read_text())
    assert resolve_sampler(str(run), config, model).name == "gaussian"
    shutil.rmtree(run / "samplers" / "gaussian")
    for required in (True, False):  # sample and export alike: never the prior instead
        with pytest.raises(KerasaeError, match="no gaussian sampler is fitted"):
            resolve_sampler(str(run), config, model, required=required)


# ------------------------------------------------------------------ learned samplers
@pytest.mark.slow
def test_two_stage_export_draws_what_kerasae_draws(digits, tmp_path, runtime):
    model = build("ae")
    sampler = create_sampler("two_stage", hidden_units=(16,), epochs=2).fit(
        model, digits[0][:300], seed=0
    )
    manifest = export_decoder(model, tmp_path / "e", sampler)
    assert manifest["prior"]["kind"] == "two_stage"
    assert "sampler.onnx" in manifest["files"]  # checksummed like every part
    assert_same_draws(runtime, tmp_path / "e", sampler, model)


@pytest.mark.slow
def test_pixelcnn_export_draws_what_kerasae_draws(digits, tmp_path, runtime):
    model = build("vq_vae")
    model.compile()
    model.fit(digits[0][:256], epochs=1, batch_size=64, verbose=0)
    cls = type(create_sampler("pixelcnn"))
    sampler = create_sampler("pixelcnn", **cls.tiny_config).fit(model, digits[0][:256], seed=0)
    manifest = export_decoder(model, tmp_path / "e", sampler)
    prior = manifest["prior"]
    assert prior["kind"] == "pixelcnn" and prior["grid"] == list(sampler.grid)
    assert "sampler.onnx" in manifest["files"]
    assert_same_draws(runtime, tmp_path / "e", sampler, model, n=12)


# ------------------------------------------------------------------ the CLIs
def _runtime_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "kerasae_runtime", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": RUNTIME},
    )


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    """A conv_ae run named `r` (commands run in its parent, as `kerasae ... r`)."""
    from kerasae.cli import main

    where = tmp_path_factory.mktemp("samplers")
    assert (
        main(
            [
                "train",
                "--model",
                "conv_ae",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "--latent-dim",
                "4",
                "--param",
                "filters=4,8",
                "--out",
                str(where / "r"),
                "--quiet",
            ]
        )
        == 0
    )
    return where


@pytest.mark.slow
def test_cli_sample_and_runtime_generate_refuse_alike_without_a_sampler(
    conv_run, capsys, monkeypatch
):
    from kerasae.cli import main

    monkeypatch.chdir(conv_run)
    assert main(["sample", "r", "--out", "s.npy"]) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1].split("error: ", 1)[1]
    assert main(["export", "r", "--format", "onnx", "--out", "plain"]) == 0
    manifest = json.loads((conv_run / "plain" / "manifest.json").read_text())
    assert manifest["prior"] is None and manifest["no_prior"] == said
    result = _runtime_cli("generate", "plain", "-n", "4", "--out", "g.npy", cwd=conv_run)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"kerasae-runtime: error: {said}"
    assert not (conv_run / "g.npy").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gaussian", "gmm"])
def test_cli_sample_and_runtime_generate_give_the_same_images(conv_run, name, capsys, monkeypatch):
    """The issue's acceptance: `kerasae sample RUN --sampler NAME --seed S --out a.npy`
    and `kerasae-runtime generate EXPORT --seed S --out b.npy` agree within 1e-4."""
    from kerasae.cli import main

    monkeypatch.chdir(conv_run)
    assert main(["fit-sampler", "r", "--sampler", name]) == 0
    assert (
        main(
            [
                "sample",
                "r",
                "--sampler",
                name,
                "--seed",
                "11",
                "-n",
                "24",
                "--out",
                f"{name}_a.npy",
            ]
        )
        == 0
    )
    assert (
        main(["export", "r", "--format", "onnx", "--sampler", name, "--out", f"export_{name}"])
        == 0
    )
    said = capsys.readouterr().out
    assert f"from the {name} sampler" in said  # kerasae sample
    assert f"kerasae-runtime generate draws from sampler {name} ({name})" in said  # export
    result = _runtime_cli(
        "generate",
        f"export_{name}",
        "--seed",
        "11",
        "-n",
        "24",
        "--out",
        f"{name}_b.npy",
        cwd=conv_run,
    )
    assert result.returncode == 0, result.stderr
    assert f"seed 11, sampler {name} ({name}): {name} sampler (" in result.stdout
    a, b = (np.load(conv_run / f"{name}_{s}.npy", allow_pickle=False) for s in "ab")
    assert a.shape == b.shape == (24, 8, 8, 1)
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_cli_default_is_the_runs_sampler_and_layouts_say_what_they_leave_out(
    conv_run, capsys, monkeypatch
):
    """Fitting makes a sampler the run's default: `kerasae sample` and `kerasae export`
    without --sampler both use it. A triton layout carries an array sampler in each
    model's kerasae_manifest.json, and warns that a learned one's sampler.onnx stays out."""
    from kerasae.cli import main

    monkeypatch.chdir(conv_run)
    assert (
        main(
            [
                "fit-sampler",
                "r",
                "--sampler",
                "two_stage",
                "--param",
                "hidden_units=(16,)",
                "--param",
                "epochs=2",
            ]
        )
        == 0
    )
    assert main(["sample", "r", "--seed", "2", "-n", "8", "--out", "ts_a.npy"]) == 0
    assert main(["export", "r", "--format", "onnx", "--out", "export_ts"]) == 0
    manifest = json.loads((conv_run / "export_ts" / "manifest.json").read_text())
    assert manifest["prior"]["sampler"] == "two_stage" and "sampler.onnx" in manifest["files"]
    result = _runtime_cli(
        "generate", "export_ts", "--seed", "2", "-n", "8", "--out", "ts_b.npy", cwd=conv_run
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load("ts_a.npy"), np.load("ts_b.npy"), atol=1e-4)

    with pytest.warns(UserWarning, match="sampler.onnx is not in it"):
        export.export_layout("r", "triton", out="triton_ts")
    copy = json.loads(
        (conv_run / "triton_ts" / "conv_ae_decoder" / "kerasae_manifest.json").read_text()
    )
    assert copy["prior"]["kind"] == "two_stage"
    layout = export.export_layout("r", "triton", out="triton_gmm", sampler="gmm")
    copy = json.loads(
        (conv_run / "triton_gmm" / "conv_ae_decoder" / "kerasae_manifest.json").read_text()
    )
    assert copy["prior"] == layout["prior"] and copy["prior"]["kind"] == "gmm"
