"""The perceptual and adversarial decoders: vaegan (Larsen et al. 2016) and msssim_vae
(Snell et al. 2017), and the SSIM / MS-SSIM they rest on.

SSIM against TensorFlow's own (`tf.image.ssim` at one scale, `tf.image.ssim_multiscale`
on images large enough for its five scales); MS-SSIM(x, x) = 1 and falls with noise;
vaegan's per-network gradient split (the encoder gets no GAN gradient, the decoder none
from the prior, the decoder's reconstruction weighed by 1 - s) by comparing gradients on
one forward pass; its discriminator's loss against numpy. The slow tests fit each family
and train it with `kerasae train`.
"""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasae
from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.models.registry import get_model_class
from kerasae.probability.ssim import ms_ssim, scales_for, ssim

TINY = {"hidden_units": (16,), "latent_dim": 2}


def smooth_images(n, side, channels=1, seed=0):
    """Images in [0, 1] with local structure (blurred noise on a gradient)."""
    rng = np.random.default_rng(seed)
    x = (
        rng.random((n, side, side, channels)) * 0.5
        + np.linspace(0, 0.5, side)[None, :, None, None]
    )
    return tf.nn.avg_pool2d(x.astype("float32"), 3, 1, "SAME").numpy()


def noisy(x, std, seed=1):
    rng = np.random.default_rng(seed)
    return np.clip(x + rng.normal(0, std, x.shape), 0, 1).astype("float32")


# ------------------------------------------------------------------ SSIM and MS-SSIM
@pytest.mark.parametrize("window", [11, 7])
def test_ssim_equals_tensorflow_at_one_scale(window):
    x = smooth_images(3, 32, channels=2)
    y = noisy(x, 0.1)
    want = tf.image.ssim(x, y, 1.0, filter_size=window).numpy()
    np.testing.assert_allclose(np.asarray(ssim(x, y, window)), want, rtol=1e-4)


def test_ms_ssim_equals_tensorflow_where_it_has_five_scales():
    x = smooth_images(2, 176)  # 176 -> 11 after four halvings: five scales of 11x11
    y = noisy(x, 0.1)
    assert scales_for(x.shape[1:], 11) == 5
    want = tf.image.ssim_multiscale(x, y, 1.0).numpy()
    np.testing.assert_allclose(np.asarray(ms_ssim(x, y)), want, rtol=1e-4)


def test_ms_ssim_is_one_on_identical_images_and_falls_with_noise():
    x = smooth_images(4, 28)
    assert (scales_for(x.shape[1:], 11), scales_for(x.shape[1:], 3)) == (2, 4)
    for window in (3, 11):
        np.testing.assert_allclose(np.asarray(ms_ssim(x, x, window)), 1.0, atol=1e-6)
        values = [np.asarray(ms_ssim(x, noisy(x, s), window)) for s in (0.02, 0.1, 0.3)]
        assert np.all(values[0] > values[1]) and np.all(values[1] > values[2]), values
        assert np.all(values[2] > 0) and np.all(values[0] < 1)
    with pytest.raises(KerasaeError, match="at least 11 pixels a side"):
        ms_ssim(x[:, :8, :8], x[:, :8, :8], 11)


# ------------------------------------------------------------------ msssim_vae
def test_msssim_vae_loss_and_score_are_one_minus_ms_ssim_plus_beta_kl(digits):
    model = kerasae.create_model(
        "msssim_vae", input_shape=(8, 8, 1), beta=0.5, window_size=3, **TINY
    )
    x = digits[0][:16]
    mean, log_var = (np.asarray(t) for t in model.encoder(x))
    eps = np.random.default_rng(0).standard_normal((4, 2)).astype("float32")
    kl = 0.5 * np.sum(mean**2 + np.exp(log_var) - 1.0 - log_var, axis=1)
    per_draw = [
        1.0 - np.asarray(ms_ssim(x, model.decoder(mean + np.exp(0.5 * log_var) * e), 3))
        for e in eps
    ]
    want = np.mean(per_draw, axis=0) + 0.5 * kl
    # scorer.onnx's graph, eagerly (model.score compiles it; tests/test_export.py runs that)
    np.testing.assert_allclose(model.score_tensor(x), want, rtol=1e-4, atol=1e-5)
    losses = model.compute_losses(tf.constant(x), training=True)
    assert 0.0 < float(losses["reconstruction"]) < 1.0
    np.testing.assert_allclose(
        float(losses["loss"]),
        float(losses["reconstruction"]) + 0.5 * float(losses["kl"]),
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "params, match",
    [
        ({"window_size": 4}, "odd integer >= 3"),
        ({"window_size": 1}, "odd integer >= 3"),
        ({"window_size": 11}, "at least 11 pixels a side"),
        ({"input_shape": (64,)}, "needs images"),
    ],
)
def test_msssim_vae_bad_arguments_are_one_line_errors(params, match):
    kwargs = {"input_shape": (8, 8, 1), **TINY, **params}
    with pytest.raises(KerasaeError, match=match) as err:
        kerasae.create_model("msssim_vae", **kwargs)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ vaegan
def test_vaegan_gradient_split_between_encoder_decoder_and_discriminator(digits):
    s = 0.3
    model = kerasae.create_model(
        "vaegan",
        input_shape=(8, 8, 1),
        adversarial_loss_scale=s,
        disc_units=(16, 8),
        reconstruction_layer=1,
        **TINY,
    )
    x = tf.constant(digits[0][:32])
    enc, dec = model.encoder.trainable_variables, model.decoder.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        logs, images = model.autoencoder_terms(x, training=True)
        total = model.add_regularizer(logs, images)  # what the autoencoder's Adam minimises

    def grad(target, variables):  # None (no path) as zeros
        grads = tape.gradient(target, variables)
        return [
            np.zeros(v.shape) if g is None else np.asarray(g) for v, g in zip(variables, grads)
        ]

    # the encoder: beta * KL + L_llike, no GAN gradient
    for got, want in zip(grad(total, enc), grad(logs["loss"], enc)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert all(not np.any(g) for g in grad(logs["gen_loss"], enc))
    # the decoder: (1 - s) L_llike - s L_GAN, nothing from the prior
    assert all(not np.any(g) for g in grad(logs["kl"], dec))
    recon, gan = grad(logs["reconstruction"], dec), grad(logs["gen_loss"], dec)
    for got, r, g in zip(grad(total, dec), recon, gan):
        np.testing.assert_allclose(got, (1 - s) * r + s * g, rtol=1e-4, atol=1e-6)
    assert any(np.any(g) for g in gan)  # the GAN term does reach the decoder
    # the discriminator's own loss: BCE of real 1, reconstructed 0 and generated 0
    own, _ = model.discriminator_losses(images)
    logit = lambda t: np.asarray(model.discriminator(t)).ravel()  # noqa: E731
    bce = lambda z, label: np.mean(np.logaddexp(0, -z if label else z))  # noqa: E731
    want = bce(logit(x), 1) + bce(logit(images["x_tilde"]), 0) + bce(logit(images["x_prior"]), 0)
    np.testing.assert_allclose(float(own), want, rtol=1e-5)
    # L_llike is a unit-variance Gaussian NLL of Dis_1's 16 features: D/2 log 2 pi at x~ = x
    np.testing.assert_allclose(
        np.asarray(model.feature_nll(x, x)), 8 * math.log(2 * math.pi), rtol=1e-6
    )
    assert model.disc_features.output.shape[-1] == 16


@pytest.mark.parametrize(
    "params, match",
    [
        ({"adversarial_loss_scale": 1.5}, "adversarial_loss_scale"),
        ({"reconstruction_layer": 2}, "reconstruction_layer must be -1 or 1..1"),
        ({"n_critic": 0}, "n_critic"),
    ],
)
def test_vaegan_bad_arguments_are_one_line_errors(params, match):
    with pytest.raises(KerasaeError, match=match) as err:
        kerasae.create_model("vaegan", input_shape=(8, 8, 1), disc_units=(8,), **TINY, **params)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ training (slow)
@pytest.mark.slow
def test_vaegan_fit_trains_all_three_networks_and_samples(digits, tmp_path):
    x = digits[0][:512]
    keras.utils.set_random_seed(0)
    model = kerasae.create_model(
        "vaegan", input_shape=(8, 8, 1), latent_dim=4, hidden_units=(64,), disc_units=(64,)
    )
    model.compile()
    mse = lambda: float(np.mean((model.reconstruct(x) - x) ** 2))  # noqa: E731
    before = mse()
    history = model.fit(x, epochs=6, batch_size=32, verbose=0).history
    assert mse() < 0.8 * before, (before, mse())
    # (L_llike is measured in the discriminator's moving features: it need not fall)
    real, fake = (float(np.mean(model.discriminator(t))) for t in (x, model.sample(512, seed=0)))
    assert real > fake, (real, fake)  # the discriminator learnt to tell them apart
    assert all(np.isfinite(v).all() for v in history.values())
    assert int(model.disc_optimizer.iterations) == int(model.optimizer.iterations) > 0
    samples = model.sample(8, seed=1)
    assert samples.shape == (8, 8, 8, 1) and np.all((samples >= 0) & (samples <= 1))
    model.save(tmp_path / "m.keras")
    loaded = kerasae.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_array_equal(loaded.sample(4, seed=2), model.sample(4, seed=2))
    assert int(loaded.disc_optimizer.iterations) == int(model.disc_optimizer.iterations)


@pytest.mark.slow
def test_msssim_vae_fit_raises_the_ms_ssim_of_reconstructions(digits):
    x = digits[0][:512]
    keras.utils.set_random_seed(0)
    model = kerasae.create_model(
        "msssim_vae", input_shape=(8, 8, 1), latent_dim=4, hidden_units=(64,)
    )
    model.compile()
    quality = lambda: float(np.mean(ms_ssim(x, model.reconstruct(x), 3)))  # noqa: E731
    before = quality()
    history = model.fit(x, epochs=6, batch_size=32, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]
    assert quality() > before + 0.2, (before, quality())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vaegan", "msssim_vae"])
def test_cli_trains_the_family(name, tmp_path):
    out = tmp_path / name
    args = [
        "train",
        "--model",
        name,
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--latent-dim",
        "4",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished" and config["model"] == name
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    cls = get_model_class(name)
    assert (set(cls.loss_names) | set(cls.metric_names)) - {"beta"} <= set(header)
    assert (out / "model.keras").stat().st_size > 0
    assert main(["sample", str(out), "-n", "16"]) == 0
    assert (out / "samples" / "samples.png").stat().st_size > 0
