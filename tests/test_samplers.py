"""Latent samplers (kerasae.samplers): fitted moments, seeds, storage, runs and the CLI."""

import json
import os
import shutil

import numpy as np
import pytest

import kerasae
from kerasae import samplers
from kerasae.cli import main
from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.export.manifest import write_graph
from kerasae.runs.samplers import check_for_model, load_sampler
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def tiny_ae(digits):
    """A small ae trained briefly on the digits: (model, images, codes)."""
    import keras

    keras.utils.set_random_seed(0)
    x = digits[0]
    model = kerasae.create_model("ae", input_shape=(8, 8, 1), latent_dim=4, hidden_units=(32,))
    model.compile()
    model.fit(x, epochs=3, batch_size=64, verbose=0)
    return model, x, model.encode(x).astype("float64")


@pytest.fixture(scope="module")
def gmm(tiny_ae):
    model, x, _ = tiny_ae
    return samplers.create_sampler("gmm", n_components=3).fit(model, x, seed=0)


@pytest.fixture(scope="module")
def saved_ae(tiny_ae, tmp_path_factory):
    """A finished run folder of the tiny ae as `kerasae train` leaves it (no sampler)."""
    from kerasae.data.sources import load_dataset

    folder = tmp_path_factory.mktemp("samplers") / "ae-run"
    tiny_ae[0].save(str(folder / "model.keras"))
    config = {
        "model": "ae",
        "dataset": "digits",
        "seed": 0,
        "status": "finished",
        "scaling": load_dataset("digits").scaling,
        "input_shape": [8, 8, 1],
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def ae_run(saved_ae, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(saved_ae, run)
    return run


def test_gaussian_draws_have_the_codes_moments(tiny_ae):
    model, x, codes = tiny_ae
    sampler = samplers.create_sampler("gaussian").fit(model, x)
    z = sampler.sample_latent(40000, seed=1)
    assert z.shape == (40000, 4) and z.dtype == np.float32
    scale = codes.std(axis=0).max()
    assert np.allclose(z.mean(axis=0), codes.mean(axis=0), atol=0.03 * scale)
    assert np.allclose(np.cov(z, rowvar=False), np.cov(codes, rowvar=False), atol=0.05 * scale**2)


def test_gmm_draws_have_the_fitted_moments(gmm, tiny_ae):
    from sklearn.mixture import GaussianMixture

    _, _, codes = tiny_ae
    reference = GaussianMixture(3, covariance_type="full", random_state=0, max_iter=200)
    reference.fit(codes)
    # scale_tril is the Cholesky factor of each covariance (not of the precision)
    covs = gmm.scale_tril @ np.transpose(gmm.scale_tril, (0, 2, 1))
    assert np.allclose(covs, reference.covariances_, rtol=1e-6, atol=1e-9)
    assert np.allclose(gmm.weights, reference.weights_) and gmm.weights.sum() == pytest.approx(1.0)
    mean = gmm.weights @ gmm.means
    second = np.einsum(
        "k,kij->ij", gmm.weights, covs + np.einsum("ki,kj->kij", gmm.means, gmm.means)
    )
    cov = second - np.outer(mean, mean)
    z = gmm.sample_latent(60000, seed=2).astype("float64")
    scale = np.sqrt(np.diag(cov)).max()
    assert np.allclose(z.mean(axis=0), mean, atol=0.03 * scale)
    assert np.allclose(np.cov(z, rowvar=False), cov, atol=0.05 * scale**2)
    # the mixture's moments are the codes' (EM keeps the first two moments at convergence)
    assert np.allclose(mean, codes.mean(axis=0), atol=0.03 * scale)


def test_gmm_draw_follows_the_shared_algorithm(gmm):
    """The numbers kerasae-runtime reproduces: default_rng(seed), u then eps, float64."""
    rng = np.random.default_rng(5)
    u = rng.random(7)
    k = np.minimum(np.searchsorted(np.cumsum(gmm.weights), u, side="right"), 2)
    eps = rng.standard_normal((7, 4))
    z = gmm.means[k] + np.einsum("nij,nj->ni", gmm.scale_tril[k], eps)
    assert np.array_equal(gmm.sample_latent(7, seed=5), z.astype("float32"))


@pytest.mark.parametrize("name", ["gaussian", "gmm"])
def test_seeds_and_a_save_load_round_trip(name, tiny_ae, tmp_path):
    model, x, _ = tiny_ae
    sampler = samplers.create_sampler(name, **({"n_components": 3} if name == "gmm" else {}))
    sampler.fit(model, x, seed=0)
    a, b, c = (sampler.sample_latent(32, seed=s) for s in (7, 7, 8))
    assert np.array_equal(a, b) and not np.allclose(a, c)
    sampler.save(tmp_path / name)
    assert sorted(os.listdir(tmp_path / name)) == ["arrays.npz", "sampler.json"]
    loaded = samplers.LatentSampler.load(tmp_path / name)
    assert type(loaded) is type(sampler) and loaded.n_codes == len(x)
    assert np.array_equal(loaded.sample_latent(32, seed=7), a)
    images = loaded.generate(model, 5, seed=7)
    assert images.shape == (5, 8, 8, 1)
    assert np.allclose(images, model.decode(loaded.sample_latent(5, seed=7)), atol=1e-6)


@pytest.mark.slow  # 50 epochs of a small VAE
def test_two_stage_fits_its_loss_falls_and_round_trips(tiny_ae, tmp_path):
    model, x, codes = tiny_ae
    sampler = samplers.create_sampler("two_stage", hidden_units=(32,), epochs=8)
    sampler.fit(model, x, seed=0)
    assert sampler.history[-1] < sampler.history[0]
    assert sampler.spread > 0.1  # not collapsed: the draws vary as the codes do
    z = sampler.sample_latent(2000, seed=3)
    assert z.shape == (2000, 4) and np.isfinite(z).all()
    # un-standardised: the draws live where the codes do
    assert np.all(np.abs(z.mean(axis=0) - codes.mean(axis=0)) < codes.std(axis=0))
    sampler.save(tmp_path / "ts")
    assert "model.weights.h5" in os.listdir(tmp_path / "ts")
    loaded = samplers.LatentSampler.load(tmp_path / "ts")
    assert np.array_equal(loaded.sample_latent(50, seed=3), z[:50])
    assert not np.allclose(loaded.sample_latent(50, seed=4), z[:50])


@pytest.mark.slow
def test_two_stage_warns_when_its_second_vae_collapses(tiny_ae, monkeypatch):
    # a collapsed second stage maps every u to one code: every image the same (measured:
    # an aae's prior-matched codes on Fashion-MNIST); the fit says so and names the fix
    from kerasae.samplers.two_stage import spread

    model, x, codes = tiny_ae
    assert spread(codes, codes.std(axis=0)) == pytest.approx(1.0)
    assert spread(np.repeat(codes[:1], 50, axis=0), codes.std(axis=0)) == 0.0
    sampler = samplers.create_sampler("two_stage", hidden_units=(8,), epochs=1)
    monkeypatch.setattr(
        sampler, "sample_latent", lambda n, seed=None: np.repeat(codes[:1], n, axis=0)
    )
    with pytest.warns(
        UserWarning,
        match=r"two_stage: the second VAE collapsed .* use "
        r"--sampler gmm or gaussian",
    ):
        sampler.fit(model, x, seed=0)
    assert sampler.extra_meta()["spread"] == 0.0


def test_unknown_names_and_options_are_refused():
    with pytest.raises(
        KerasaeError,
        match="unknown sampler 'nope'; use one of .*gaussian, gmm, .*prior, two_stage",
    ):
        samplers.create_sampler("nope")
    with pytest.raises(KerasaeError, match="unknown option.*n_comp.*n_components"):
        samplers.create_sampler("gmm", n_comp=3)


def test_prior_needs_a_generative_model(tiny_ae):
    with pytest.raises(NotGenerativeError, match="not generative.*--sampler gmm"):
        samplers.create_sampler("prior").fit(tiny_ae[0])
    with pytest.raises(NotGenerativeError):
        check_for_model("prior", tiny_ae[0])


def test_prior_draws_are_the_models_own():
    vae = kerasae.create_model("vae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(16,))
    prior = samplers.create_sampler("prior").fit(vae)
    expected = np.random.default_rng(4).standard_normal((6, vae.latent_dim))
    assert np.array_equal(prior.sample_latent(6, seed=4), expected.astype("float32"))
    assert np.allclose(prior.generate(vae, 6, seed=4), vae.sample(6, seed=4), atol=1e-6)
    # read in "64 samples from the model's N(0, I) prior": no brackets inside brackets
    assert prior.describe() == "model's N(0, I) prior"


def test_a_run_without_a_sampler_says_how_to_fit_one(ae_run, capsys):
    assert main(["sample", str(ae_run), "-n", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not generative" in err[0]
    assert f"kerasae fit-sampler {ae_run} --sampler gmm" in err[0]


def test_fit_sampler_then_sample(ae_run, tiny_ae, capsys):
    assert (
        main(["fit-sampler", str(ae_run), "--sampler", "gmm", "--param", "n_components=3", "-q"])
        == 0
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "gmm sampler (3 components" in out[0]
    config = json.loads((ae_run / "config.json").read_text())
    assert config["sampler"] == "gmm" and config["samplers"] == ["gmm"]
    assert main(["sample", str(ae_run), "-n", "9", "--out", str(ae_run / "g.npy"), "-q"]) == 0
    assert main(["sample", str(ae_run), "-n", "9", "--out", str(ae_run / "g.png"), "-q"]) == 0
    images = np.load(ae_run / "g.npy", allow_pickle=False)
    assert images.shape == (9, 8, 8, 1) and images.dtype == np.float32
    assert (ae_run / "g.png").stat().st_size > 0
    sampler = load_sampler(str(ae_run))
    assert np.allclose(images, sampler.generate(tiny_ae[0], 9, seed=0), atol=1e-6)
    assert main(["sample", str(ae_run), "--sampler", "nope"]) == 2
    assert "use one of" in capsys.readouterr().err
    assert main(["sample", str(ae_run), "--sampler", "gaussian"]) == 2
    assert "no gaussian sampler is fitted" in capsys.readouterr().err


def test_train_refuses_a_sampler_that_does_not_apply(tmp_path, capsys):
    for name, message in (("prior", "not generative"), ("zzz", "unknown sampler 'zzz'")):
        assert (
            main(
                [
                    "train",
                    "--model",
                    "ae",
                    "--epochs",
                    "1",
                    "--sampler",
                    name,
                    "--out",
                    str(tmp_path / name),
                ]
            )
            == 2
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]
        assert not (tmp_path / name / "model.keras").exists()


@pytest.mark.slow
def test_train_with_gmm_then_sample(tmp_path):
    """The issue's acceptance: a conv_ae trained with --sampler gmm samples."""
    run = tmp_path / "r"
    proc = run_cli(
        "train",
        "--model",
        "conv_ae",
        "--dataset",
        "digits",
        "--epochs",
        "3",
        "--sampler",
        "gmm",
        "--out",
        run,
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["sampler"] == "gmm" and config["samplers"] == ["gmm"]
    assert sorted(os.listdir(run / "samplers" / "gmm")) == ["arrays.npz", "sampler.json"]
    for out in ("g.png", "g.npy", "h.npy"):
        proc = run_cli(
            "sample",
            run,
            "-n",
            "16",
            "--out",
            tmp_path / out,
            "--seed",
            "1" if out == "h.npy" else "0",
        )
        assert proc.returncode == 0, proc.stderr
        assert "gmm sampler (10 components" in proc.stdout
    g, h = (np.load(tmp_path / f, allow_pickle=False) for f in ("g.npy", "h.npy"))
    assert g.shape == (16, 8, 8, 1) and 0 <= g.min() and g.max() <= 1
    assert not np.allclose(g, h)  # another seed, other samples


@pytest.mark.slow
def test_two_stage_onnx_matches(tiny_ae, tmp_path):
    import onnxruntime as ort

    model, x, _ = tiny_ae
    sampler = samplers.create_sampler("two_stage", hidden_units=(32,), epochs=2)
    sampler.fit(model, x, seed=0)
    spec = sampler.export_spec()
    write_graph(sampler.export_graph(), str(tmp_path))
    assert spec["kind"] == "two_stage" and spec["file"] == "sampler.onnx"
    session = ort.InferenceSession(str(tmp_path / "sampler.onnx"))
    assert [i.name for i in session.get_inputs()] == ["u"]
    u = np.random.default_rng(9).standard_normal((33, spec["second_latent_dim"]))
    z = session.run(["z"], {"u": u.astype("float32")})[0]
    assert np.allclose(z, sampler.sample_latent(33, seed=9), atol=1e-4)
