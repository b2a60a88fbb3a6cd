"""The DAE score estimate and Langevin sampling against closed forms (Alain and Bengio 2014)."""

import numpy as np
import pytest

import kerasae
from kerasae.errors import NotGenerativeError
from kerasae.samplers import langevin, score_estimate

CENTERS = np.array([[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]])


def fit_dae(x, sigma, epochs):
    import keras

    model = kerasae.create_model(
        "dae",
        input_shape=(2,),
        latent_dim=32,
        hidden_units=(128, 128),
        noise="gaussian",
        noise_level=sigma,
    )
    steps = epochs * int(np.ceil(len(x) / 128))
    model.compile(
        keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, steps)),
        steps_per_execution=32,
    )
    model.fit(x, epochs=epochs, batch_size=128, verbose=0)
    return model


@pytest.fixture(scope="module")
def mixture():
    """4000 training points of an equal mixture of four N(c, 0.05^2 I) in [0, 1]^2."""
    rng = np.random.default_rng(0)
    x = CENTERS[rng.integers(0, 4, 5000)] + 0.05 * rng.standard_normal((5000, 2))
    return x.astype("float32")


def test_score_correlates_with_the_true_gaussian_score():
    rng = np.random.default_rng(1)
    mu, cov = np.array([0.5, 0.5]), 0.01 * np.array([[1.0, 0.6], [0.6, 1.0]])
    x = rng.multivariate_normal(mu, cov, size=3000).astype("float32")
    model = fit_dae(x, sigma=0.1, epochs=15)
    axis = np.linspace(-1.5, 1.5, 15) * 0.1
    grid = (np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2) + mu).astype("float32")
    estimated = score_estimate(model, grid)
    true = -(grid - mu) @ np.linalg.inv(cov)  # grad log N(mu, cov)
    assert np.corrcoef(estimated.ravel(), true.ravel())[0, 1] > 0.9


@pytest.mark.slow
def test_langevin_from_uniform_noise_moves_chains_to_the_data(mixture):
    from kerasae.probability.divergences import mmd

    model = fit_dae(mixture[:4000], sigma=0.05, epochs=25)
    reference = mixture[4000:]
    start = np.random.default_rng(2).uniform(size=(1000, 2)).astype("float32")
    samples = langevin(model, 1000, steps=60, x0=start, seed=3)

    def standardized(a):  # the default MMD scales are meant for unit-variance data
        return (a - 0.5) / 0.25

    before = mmd(standardized(start), standardized(reference))
    after = mmd(standardized(samples), standardized(reference))
    assert after * 5 < before, (before, after)
    nearest = np.argmin(((samples[:, None] - CENTERS[None]) ** 2).sum(-1), axis=1)
    assert np.bincount(nearest, minlength=4).min() > 150  # every mode is reached
    # the noise-level schedule also reaches the data, and clipping keeps chains in range
    annealed, chain = langevin(
        model, 200, steps=30, x0=start[:200], seed=4, anneal=True, return_chain=True
    )
    assert chain.shape == (31, 200, 2) and chain.min() >= 0 and chain.max() <= 1
    assert mmd(standardized(annealed), standardized(reference)) * 3 < before


def test_models_without_a_score_are_refused():
    ae = kerasae.create_model("ae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,))
    masked = kerasae.create_model(
        "dae",
        input_shape=(8, 8, 1),
        latent_dim=2,
        hidden_units=(8,),
        noise="masking",
        noise_level=0.2,
    )
    for model in (ae, masked):
        with pytest.raises(NotGenerativeError, match="no score estimate"):
            langevin(model, 4, steps=2)
