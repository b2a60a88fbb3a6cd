"""The noise-conditional score network and annealed Langevin (Song and Ermon, NeurIPS 2019)."""

import numpy as np
import pytest
import tensorflow as tf

import kerasae
from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.samplers import annealed_langevin, langevin

TINY = {"filters": (8, 16), "noise_levels": 4, "sigma_min": 0.05}


@pytest.fixture(scope="module")
def tiny():
    """An untrained tiny ncsn: the sampler's contract does not need a good score."""
    import keras

    keras.utils.set_random_seed(0)
    return kerasae.create_model("ncsn", input_shape=(8, 8, 1), **TINY)


def test_levels_are_geometric_and_the_code_is_the_skip_pyramid():
    model = kerasae.create_model("ncsn", input_shape=(28, 28, 1), latent_dim=16, filters=(4, 8, 8))
    np.testing.assert_allclose(model.sigmas, np.geomspace(1.0, 0.01, 10), rtol=1e-6)
    assert model.score_sigma == 0.01
    # the input, then 14x14x8 and 7x7x8: latent_dim follows, and the config records it
    assert model.latent_dim == 784 + 14 * 14 * 8 + 7 * 7 * 8
    assert model.get_config()["latent_dim"] == model.latent_dim
    with pytest.raises(KerasaeError, match="sigma_min < sigma_max"):
        kerasae.create_model("ncsn", input_shape=(8, 8, 1), sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(KerasaeError, match="noise_levels"):
        kerasae.create_model("ncsn", input_shape=(8, 8, 1), noise_levels=1)


def test_the_output_depends_on_the_noise_level(tiny, digits):
    x = tf.constant(digits[0][:16])
    low, high = tiny.predict_noise(x, 0.05), tiny.predict_noise(x, 1.0)
    assert np.abs(low - high).max() > 1e-3
    # reconstruct is the denoiser at sigma_min: x - sigma_min eps_hat(x, sigma_min)
    want = x - tiny.sigma_min * low
    np.testing.assert_allclose(tiny.reconstruct(x.numpy()), want, atol=1e-5)
    # s(x, sigma) = -eps_hat / sigma, and a dae-style single-sigma chain runs at sigma_min
    np.testing.assert_allclose(tiny.score_at(x, 1.0), -high, atol=1e-6)
    assert tiny.score_sigma == tiny.sigma_min


@pytest.mark.slow
def test_training_lowers_the_loss_and_the_moving_average_is_applied(digits):
    import keras

    x = digits[0]
    model = kerasae.create_model("ncsn", input_shape=(8, 8, 1), **{**TINY, "filters": (16, 32)})
    model.compile(keras.optimizers.Adam(2e-3))

    def loss():  # validation noise is fixed: the same figure for the same weights
        return model.evaluate(x[:512], batch_size=128, verbose=0, return_dict=True)["loss"]

    before = loss()
    assert loss() == before
    applied = []
    real_apply = model.apply_ema
    model.apply_ema = lambda: (
        applied.append([w.numpy() for w in model.network_weights()]) or real_apply()
    )
    model.fit(x, epochs=20, batch_size=64, verbose=0)
    after = loss()
    assert after < 0.5 * before, (before, after)
    steps = float(model.ema_steps.numpy())
    assert steps == 20 * np.ceil(len(x) / 64)
    # fit ended with the bias-corrected average in place of the last weights
    average = model.ema_weights[0].numpy() / (1 - model.ema**steps)
    np.testing.assert_allclose(model.network_weights()[0].numpy(), average, rtol=1e-5)
    assert np.abs(applied[0][0] - average).max() > 0
    # from uniform noise, the chain anneals down to the data's spread, and the final
    # denoising step lands (nearly) in the data range without any clipping
    raw, chain = annealed_langevin(
        model, 64, steps_per_level=30, epsilon=5e-4, seed=0, clip=None, return_chain=True
    )
    spread = chain.std(axis=(1, 2, 3, 4))
    assert spread[1] > spread[2] > spread[3] > spread[4], spread
    assert abs(raw.std() / x.std() - 1) < 0.25, (raw.std(), x.std())
    assert np.percentile(raw, 1) > -0.3 and np.percentile(raw, 99) < 1.4


class GaussianScore:
    """The exact score of N(mu, s0^2 I) blurred by N(0, sigma^2 I): Algorithm 1's target."""

    data_shape = (2, 2, 1)
    sigmas = np.geomspace(1.0, 0.05, 6).astype("float32")

    def __init__(self, mu=0.3, s0=0.1):
        self.mu, self.s0 = mu, s0

    def score_at(self, x, sigma):
        return -(x - self.mu) / (self.s0**2 + sigma**2)


def test_annealed_langevin_samples_a_known_density():
    target = GaussianScore()
    denoised, chain = annealed_langevin(
        target, 4000, steps_per_level=60, epsilon=5e-4, seed=0, clip=None, return_chain=True
    )
    assert chain.shape == (7, 4000, 2, 2, 1)
    x = chain[-1]  # the last level's state, before the final denoising step
    var_l = target.s0**2 + target.sigmas[-1] ** 2  # p_{sigma_L}
    assert abs(x.mean() - target.mu) < 0.01
    assert abs(x.std() / np.sqrt(var_l) - 1) < 0.05, x.std()
    # the first level ends near N(mu, s0^2 + sigma_1^2): the chain anneals down to the data
    assert abs(chain[1].std() / np.sqrt(target.s0**2 + 1.0) - 1) < 0.1
    # the final denoising step is Tweedie's mean: the deviation shrinks by s0^2 / var_l
    np.testing.assert_allclose(
        denoised, target.mu + (x - target.mu) * target.s0**2 / var_l, atol=1e-5
    )


def test_annealed_langevin_on_a_model(tiny):
    model = tiny
    kwargs = dict(steps_per_level=3, epsilon=1e-3)
    a, chain = annealed_langevin(model, 10, seed=5, return_chain=True, **kwargs)
    assert a.shape == (10, 8, 8, 1) and chain.shape == (5, 10, 8, 8, 1)
    assert a.min() >= 0 and a.max() <= 1  # the final denoise is clipped to the data range
    # a seed fixes the samples, whatever the number of chains run per forward pass
    np.testing.assert_allclose(
        annealed_langevin(model, 10, seed=5, batch_size=4, **kwargs), a, atol=1e-5
    )
    assert np.abs(annealed_langevin(model, 10, seed=6, **kwargs) - a).max() > 0.1
    # langevin(anneal=True) on a noise-conditional model is Algorithm 1
    np.testing.assert_allclose(
        langevin(model, 10, steps=3, step_size=1e-3, seed=5, anneal=True), a, atol=1e-5
    )


def test_annealed_langevin_refuses_single_sigma_models_and_bad_settings(tiny):
    model = tiny
    dae = kerasae.create_model("dae", input_shape=(8, 8, 1), latent_dim=4, hidden_units=(8,))
    with pytest.raises(NotGenerativeError, match="noise-conditional"):
        annealed_langevin(dae, 4)
    with pytest.raises(KerasaeError, match="steps_per_level"):
        annealed_langevin(model, 4, steps_per_level=0)
    with pytest.raises(KerasaeError, match="epsilon"):
        annealed_langevin(model, 4, epsilon=-1.0)
    with pytest.raises(NotGenerativeError, match="--langevin --anneal"):
        model.sample(4)


@pytest.mark.slow
def test_cli_trains_an_ncsn_and_samples_by_annealed_langevin(tmp_path, capsys):
    from kerasae.cli import main

    run = tmp_path / "ncsn"
    assert (
        main(
            [
                "train",
                "--model",
                "ncsn",
                "--dataset",
                "digits",
                "--epochs",
                "2",
                "--param",
                "filters=(8,16)",
                "--param",
                "noise_levels=4",
                "--param",
                "sigma_min=0.05",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    grid = tmp_path / "g.png"
    capsys.readouterr()
    assert (
        main(
            [
                "sample",
                str(run),
                "--langevin",
                "--anneal",
                "--steps",
                "4",
                "-n",
                "9",
                "--out",
                str(grid),
            ]
        )
        == 0
    )
    assert "annealed" in capsys.readouterr().out and grid.stat().st_size > 0
