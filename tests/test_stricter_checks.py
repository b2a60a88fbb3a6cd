"""`kerasae.testing` fails broken models, each with a message that names the cause.

Each model below lowers its own loss, so the old "a short fit lowers the loss" check
passes them all; the stricter checks of plugin API 2 must not.
"""

import keras
import pytest
import tensorflow as tf
from keras import ops

from kerasae import testing
from kerasae.models.ae import AE


class NoEncoderGradient(AE):
    """A stop_gradient on the code (what a broken straight-through estimator does)."""

    tiny_config = {"latent_dim": 2, "hidden_units": (16,)}

    def compute_losses(self, x, training=False):
        z = ops.stop_gradient(self.encoder(x, training=training))
        return {"loss": self.reconstruction_loss(x, self.decoder(z, training=training))}


class FlippedPenalty(AE):
    """An L1 sparsity penalty on the output with its sign flipped: the loss falls by
    pushing every pixel up, away from the data."""

    tiny_config = {"latent_dim": 2, "hidden_units": (16,)}
    loss_names = ("loss", "reconstruction", "sparsity")

    def compute_losses(self, x, training=False):
        x_hat = self.decoder(self.encoder(x, training=training), training=training)
        rec = self.reconstruction_loss(x, x_hat)
        sparsity = ops.mean(ops.abs(x_hat))
        return {"loss": rec - 1.0 * sparsity, "reconstruction": rec, "sparsity": sparsity}


class UndeclaredKey(AE):
    """Returns a diagnostic that is neither in loss_names nor in metric_names."""

    tiny_config = {"latent_dim": 2, "hidden_units": (16,)}

    def compute_losses(self, x, training=False):
        z = self.encoder(x, training=training)
        return {
            "loss": self.reconstruction_loss(x, self.decoder(z, training=training)),
            "code_mean": ops.mean(z),
        }


@pytest.mark.parametrize(
    "cls, message",
    [
        (
            NoEncoderGradient,
            r"no gradient to 4 of the 8 trainable weights .*enc_dense0/kernel.*stop_gradient",
        ),
        (FlippedPenalty, r"lowered the loss .* but not the reconstruction error.*sign flipped"),
        (
            UndeclaredKey,
            r"UndeclaredKey.compute_losses returned 'code_mean', which is not "
            r"declared",
        ),
    ],
)
def test_check_model_fails_broken_models_naming_the_cause(cls, message, digits):
    with pytest.raises(AssertionError, match=message):
        testing.check_model(cls, data=digits[0][:256], export=False)


def test_training_an_undeclared_key_fails_on_the_first_step(digits):
    from kerasae.errors import KerasaeError

    model = testing.build(UndeclaredKey)
    model.compile()
    with pytest.raises(KerasaeError, match="'code_mean'.*add it to metric_names"):
        model.fit(digits[0][:64], epochs=1, verbose=0)


def test_missing_and_non_scalar_outputs_are_named(digits):
    from kerasae.errors import KerasaeError

    class Missing(AE):
        loss_names = ("loss", "kl")

    class Vector(AE):
        metric_names = ("code",)

        def compute_losses(self, x, training=False):
            z = self.encoder(x, training=training)
            return {
                "loss": self.reconstruction_loss(x, self.decoder(z)),
                "code": ops.mean(z, axis=0),
            }

    x = tf.constant(digits[0][:8])
    with pytest.raises(
        KerasaeError, match="Missing.compute_losses did not return 'kl'.*loss_names"
    ):
        model = testing.build(Missing)
        model.check_outputs(model.compute_losses(x))
    with pytest.raises(KerasaeError, match=r"'code' of shape \(2,\).*must be scalars"):
        model = testing.build(Vector)
        model.check_outputs(model.compute_losses(x))


@pytest.mark.slow
def test_metrics_are_logged_and_not_differentiated(digits):
    """A metric is in the history; a metric that would change the gradient does not."""

    class WithMetric(AE):
        tiny_config = {"latent_dim": 2, "hidden_units": (16,)}
        metric_names = ("code_norm",)

        def compute_losses(self, x, training=False):
            z = self.encoder(x, training=training)
            return {
                "loss": self.reconstruction_loss(x, self.decoder(z, training=training)),
                "code_norm": 1e6 * ops.mean(ops.square(z)),
            }

    x = digits[0][:128]
    keras.utils.set_random_seed(0)
    plain = testing.build(AE, latent_dim=2, hidden_units=(16,))
    keras.utils.set_random_seed(0)
    metric = testing.build(WithMetric)
    for m in (plain, metric):
        m.compile(steps_per_execution=1)
        history = m.fit(x, epochs=2, batch_size=32, verbose=0, shuffle=False)
    assert "code_norm" in history.history and "val_code_norm" not in history.history
    for a, b in zip(plain.get_weights(), metric.get_weights()):
        assert (a == b).all()  # the huge metric changed nothing


class CodeL2(keras.layers.Layer):
    """Adds weight * mean(z^2) with `add_loss`, the Keras way to attach a penalty."""

    def __init__(self, weight, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, z):
        self.add_loss(self.weight * ops.mean(ops.square(z)))
        return z


@pytest.mark.slow
def test_add_loss_terms_are_trained_and_logged(digits):
    """Losses that layers add (add_loss, regularizers) reach the logged loss and training."""

    class Penalised(AE):
        def __init__(
            self,
            input_shape=(8, 8, 1),
            latent_dim=2,
            hidden_units=(16,),
            code_weight=0.0,
            **kwargs,
        ):
            super().__init__(
                input_shape=input_shape, latent_dim=latent_dim, hidden_units=hidden_units, **kwargs
            )
            encoder = self.encoder
            if code_weight:
                code = CodeL2(code_weight, name="code_l2")(encoder.output)
                encoder = keras.Model(encoder.input, code, name="encoder")
            self.set_networks(encoder, self.decoder)

    x = tf.constant(digits[0][:64])
    keras.utils.set_random_seed(0)
    plain = testing.build(Penalised)
    keras.utils.set_random_seed(0)
    penalised = testing.build(Penalised, code_weight=10.0)
    rec = float(penalised.compute_losses(x)["loss"])
    z = penalised.encoder(x)
    logged = float(penalised.with_added_losses(penalised.compute_losses(x))["loss"])
    assert logged == pytest.approx(rec + 10.0 * float(ops.mean(ops.square(z))), rel=1e-5)
    for model in (plain, penalised):
        model.compile(keras.optimizers.Adam(1e-2))
        model.fit(digits[0][:256], epochs=3, batch_size=32, verbose=0)
    norms = [float(ops.mean(ops.square(m.encoder(x)))) for m in (plain, penalised)]
    assert norms[1] < 0.2 * norms[0], norms
