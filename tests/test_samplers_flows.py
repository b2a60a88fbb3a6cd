"""The `maf` and `iaf` latent samplers (Papamakarios et al. 2017; Kingma et al. 2016): MADE
flows fitted to the codes. The density is right (a change of variables against the
autodiff Jacobian of the sampling map, and it integrates to 1), sampling inverts it, a
fitted flow beats a Gaussian and a 1-component GMM on two moons, it round-trips through a
run folder, and kerasae-runtime draws the same codes from its export."""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

import kerasae
from kerasae.errors import KerasaeError
from kerasae.samplers.base import LatentSampler, create_sampler
from kerasae.testing import check_sampler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOWS = ("maf", "iaf")


def random_flow(name, dim, seed=0, n_blocks=2, hidden_units=(16,), spread=0.4):
    """An unfitted flow with random weights (a non-trivial map in every block)."""
    sampler = create_sampler(name, n_blocks=n_blocks, hidden_units=hidden_units)
    sampler.latent_dim, sampler.n_codes, sampler.seed = dim, 0, seed
    sampler._build(dim)
    rng = np.random.default_rng(seed)
    for w in sampler.net.trainable_variables:
        w.assign(spread * rng.standard_normal(w.shape).astype("float32"))
    sampler.net.code_mean.assign(rng.normal(size=dim).astype("float32"))
    sampler.net.code_scale.assign(np.exp(0.3 * rng.normal(size=dim)).astype("float32"))
    return sampler


def moons(n, seed):
    rng = np.random.default_rng(seed)
    t, upper = rng.uniform(0, np.pi, n), rng.integers(0, 2, n)[:, None] == 0
    x = np.where(upper, np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    return x + 0.08 * rng.standard_normal((n, 2))


def fit_codes(name, codes, seed=0, **options):
    sampler = create_sampler(name, **options)
    sampler.latent_dim, sampler.n_codes, sampler.seed = codes.shape[1], len(codes), seed
    sampler.fit_codes(np.asarray(codes, "float64"), seed)
    return sampler


# ------------------------------------------------------------------ the density
@pytest.mark.parametrize("name", FLOWS)
def test_sampling_inverts_the_density_pass_and_the_log_det_is_the_jacobians(name):
    sampler = random_flow(name, dim=3)
    u = sampler.noise(32, seed=4)
    z = sampler.sample_latent(32, seed=4)
    net = sampler.net
    back, _ = net.to_noise((z - net.code_mean) / net.code_scale)
    np.testing.assert_allclose(back, u, atol=1e-4)  # the round trip
    # log p(z) = log N(u) - log |det dz/du|, dz/du by autodiff through the sampling map
    with tf.GradientTape() as tape:
        uu = tf.constant(u)
        tape.watch(uu)
        zz = net.generate(uu)
    jac = tape.batch_jacobian(zz, uu).numpy().astype("float64")
    log_normal = -0.5 * (u.astype("float64") ** 2).sum(1) - 1.5 * np.log(2 * np.pi)
    expected = log_normal - np.linalg.slogdet(jac)[1]
    np.testing.assert_allclose(sampler.log_prob(z), expected, atol=2e-3)
    assert np.ptp(np.linalg.slogdet(jac)[1]) > 0.1  # the map is far from linear


@pytest.mark.parametrize("name", FLOWS)
def test_the_density_integrates_to_one(name):
    sampler = random_flow(name, dim=2, seed=1, spread=0.3)
    z = sampler.sample_latent(4000, seed=0)
    lo, hi = z.min(0) - 3 * z.std(0), z.max(0) + 3 * z.std(0)
    axes = [np.linspace(lo[i], hi[i], 300) for i in range(2)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    cell = np.prod([a[1] - a[0] for a in axes])
    assert np.exp(sampler.log_prob(grid)).sum() * cell == pytest.approx(1.0, abs=0.02)


@pytest.mark.slow
def test_a_fitted_flow_beats_a_gaussian_and_one_component_on_two_moons():
    from scipy.stats import multivariate_normal

    train, test = moons(1000, 0), moons(1000, 1)
    gauss = multivariate_normal(train.mean(0), np.cov(train.T)).logpdf(test).mean()
    gmm1 = fit_codes("gmm", train, n_components=1)
    one = multivariate_normal(gmm1.means[0], gmm1.scale_tril[0] @ gmm1.scale_tril[0].T)
    assert one.logpdf(test).mean() == pytest.approx(gauss, abs=1e-3)  # the same model
    for name in FLOWS:
        flow = fit_codes(
            name, train, n_blocks=4, hidden_units=(32, 32), epochs=30, batch_size=100,
            learning_rate=3e-3,
        )  # fmt: skip
        assert flow.history[-1] < flow.history[0]
        held_out = flow.log_prob(test).mean()
        assert held_out > gauss + 0.2, (name, held_out, gauss)


# ------------------------------------------------------------------ the contract
@pytest.mark.parametrize("name", FLOWS)
def test_the_conformance_kit_passes(name):
    sampler = check_sampler(name)
    spec = sampler.export_spec()
    assert spec["kind"] == "network" and spec["noise_dim"] == spec["dim"] == 3
    assert spec["file"] == "sampler.onnx" and sampler.export_graph().file == "sampler.onnx"


def test_save_and_load_in_a_run_folder(tmp_path):
    from kerasae.runs.samplers import load_sampler, save_run_sampler

    (tmp_path / "config.json").write_text(json.dumps({"model": "ae", "status": "finished"}))
    sampler = random_flow("iaf", dim=3, seed=2)
    save_run_sampler(str(tmp_path), sampler)
    assert json.loads((tmp_path / "config.json").read_text())["sampler"] == "iaf"
    meta = json.loads((tmp_path / "samplers" / "iaf" / "sampler.json").read_text())
    assert meta["options"]["n_blocks"] == 2 and meta["latent_dim"] == 3
    loaded = load_sampler(str(tmp_path))
    assert isinstance(loaded, type(sampler))
    np.testing.assert_array_equal(loaded.sample_latent(8, 3), sampler.sample_latent(8, 3))
    codes = sampler.sample_latent(8, 5)
    np.testing.assert_allclose(loaded.log_prob(codes), sampler.log_prob(codes), atol=1e-6)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"n_blocks": 0}, "the maf sampler's n_blocks must be a positive integer, got 0"),
        ({"epochs": 2.5}, "the maf sampler's epochs must be a positive integer, got 2.5"),
        ({"hidden_units": "wide"}, "hidden_units must be a tuple of positive integers"),
        ({"hidden_units": (8, -1)}, "hidden_units must be a positive integer, got -1"),
        ({"learning_rate": 3}, "learning_rate must be a number in (0, 1), got 3"),
        ({"n_block": 3}, "unknown option(s) n_block for the maf sampler"),
    ],
)
def test_bad_options_are_one_line_errors(options, said):
    with pytest.raises(KerasaeError) as info:
        create_sampler("maf", **options)
    assert said in str(info.value) and "\n" not in str(info.value)


def test_codes_too_wide_to_unroll_are_refused():
    with pytest.raises(KerasaeError, match=r"at most 64: use --sampler gmm") as info:
        fit_codes("iaf", np.zeros((4, 65)))
    assert "\n" not in str(info.value)
    model = kerasae.create_model("ae", input_shape=(80,), latent_dim=65, hidden_units=(8,))
    with pytest.raises(KerasaeError, match="unrolls 65 sequential passes"):
        create_sampler("maf").check(model)


# ------------------------------------------------------------------ export and the CLI
@pytest.fixture
def runtime():
    sys.path.insert(0, os.path.join(ROOT, "export"))
    import kerasae_runtime

    yield kerasae_runtime
    sys.path.remove(os.path.join(ROOT, "export"))


@pytest.mark.slow
@pytest.mark.parametrize("name", FLOWS)
def test_the_export_draws_what_kerasae_draws(name, digits, tmp_path, runtime):
    from kerasae import export
    from kerasae.models.registry import get_model_class

    model = kerasae.create_model(
        "ae", input_shape=(8, 8, 1), **{**get_model_class("ae").tiny_config, "latent_dim": 4}
    )
    sampler = create_sampler(name, n_blocks=3, hidden_units=(16,), epochs=3)
    sampler.fit(model, digits[0][:400], seed=0)
    manifest = export.export_model(
        model, tmp_path / "e", formats=("onnx",), parts=("decoder",), sampler=sampler
    )
    assert manifest["prior"]["kind"] == "network" and "sampler.onnx" in manifest["files"]
    decoder = runtime.Decoder.load(str(tmp_path / "e"), device="cpu")
    for seed in (7, 8):
        np.testing.assert_allclose(
            decoder.sample_latent(50, seed), sampler.sample_latent(50, seed), atol=1e-4
        )
    np.testing.assert_allclose(
        decoder.generate(16, seed=7), sampler.generate(model, 16, seed=7), atol=1e-4
    )


@pytest.mark.slow
def test_fit_sampler_maf_and_train_with_iaf_from_the_cli(tmp_path, monkeypatch):
    from kerasae.cli import main

    monkeypatch.chdir(tmp_path)
    train = ["train", "--model", "ae", "--dataset", "digits", "--epochs", "1"]
    train += ["--latent-dim", "4", "--quiet"]
    assert main([*train, "--sampler", "iaf", "--out", "r"]) == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["sampler"] == "iaf" and config["samplers"] == ["iaf"]
    iaf = LatentSampler.load(str(tmp_path / "r" / "samplers" / "iaf"))
    assert np.isfinite(json.loads((tmp_path / "r/samplers/iaf/sampler.json").read_text())[
        "final_loss"
    ])  # fmt: skip
    fit = ["fit-sampler", "r", "--sampler", "maf", "--param", "epochs=3"]
    assert main([*fit, "--param", "n_blocks=2"]) == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["sampler"] == "maf" and config["samplers"] == ["iaf", "maf"]
    assert main(["sample", "r", "-n", "8", "--seed", "1", "--out", "maf.npy"]) == 0
    assert np.load("maf.npy").shape == (8, 8, 8, 1)
    assert main(["sample", "r", "--sampler", "iaf", "-n", "8", "--out", "iaf.npy"]) == 0
    assert iaf.sample_latent(8, 1).shape == (8, 4)
    assert main(["fit-sampler", "r", "--sampler", "maf", "--param", "n_blocks=0"]) == 2
