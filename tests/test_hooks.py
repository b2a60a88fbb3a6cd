"""The plugin API's hooks: `initialize` once on the first batch, `after_step` in the step.

A model with both hooks (an initial code offset fitted to the first batch; a step counter
and an EMA of the batch's code means fed by `aux_names`) is trained in memory, reloaded,
and crashed and resumed through `kerasae.runs.train`, as `kerasae train --resume` does.
"""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from kerasae.models import registry
from kerasae.models.ae import AE
from kerasae.models.registry import register_model
from kerasae.models.saving import load_model
from kerasae.runs.folder import resume_config
from kerasae.runs.training import train
from tests.test_resume import Crash, config

CALLS = []  # (eager?, batch size) per initialize call, across model instances


class HookedAE(AE):
    """An AE with a data-dependent code offset and an EMA of the code means."""

    aux_names = ("code_mean",)

    def __init__(self, input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,), **kwargs):
        super().__init__(
            input_shape=input_shape, latent_dim=latent_dim, hidden_units=hidden_units, **kwargs
        )
        self.offset = self.add_weight(
            shape=(latent_dim,), initializer="zeros", trainable=False, name="offset"
        )
        self.ema = self.add_weight(
            shape=(latent_dim,), initializer="zeros", trainable=False, name="ema"
        )
        self.steps_seen = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="steps_seen"
        )

    def initialize(self, x_batch):
        CALLS.append((tf.executing_eagerly(), int(x_batch.shape[0])))
        self.offset.assign(ops.mean(self.encoder(x_batch), axis=0))

    def compute_losses(self, x, training=False):
        z = self.encoder(x, training=training)
        rec = self.reconstruction_loss(x, self.decoder(z, training=training))
        return {"loss": rec, "code_mean": ops.mean(z, axis=0)}

    def after_step(self, x, outputs):
        self.steps_seen.assign_add(1)
        self.ema.assign(0.9 * self.ema + 0.1 * outputs["code_mean"])


@pytest.fixture
def hooked():
    register_model("_hooked_test_ae")(HookedAE)
    CALLS.clear()
    yield HookedAE
    registry.MODELS.forget("_hooked_test_ae")


def test_initialize_once_on_the_first_batch_and_after_step_in_compiled_steps(hooked, digits):
    x = digits[0][:256]
    model = hooked()
    model.compile()  # 16 steps per compiled call: after_step runs inside tf.function
    expected = np.mean(model.encoder(x[:32]).numpy(), axis=0)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(32)  # unshuffled: batch 1 is x[:32]
    model.fit(ds, epochs=2, verbose=0)
    assert CALLS == [(True, 32)]
    np.testing.assert_allclose(model.offset.numpy(), expected, rtol=1e-6)
    assert int(model.steps_seen.numpy()) == int(model.optimizer.iterations.numpy()) == 16
    assert np.all(model.ema.numpy() != 0)

    model.fit(ds, epochs=1, verbose=0)  # a second fit does not initialize again
    assert len(CALLS) == 1 and int(model.steps_seen.numpy()) == 24
    assert int(model.initialized.numpy()) == 1


def test_a_loaded_model_is_not_initialized_again(hooked, digits, tmp_path):
    x = digits[0][:128]
    model = hooked()
    model.compile()
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = load_model(str(tmp_path / "m.keras"))
    np.testing.assert_array_equal(loaded.offset.numpy(), model.offset.numpy())
    loaded.fit(x, epochs=1, batch_size=32, verbose=0)
    assert len(CALLS) == 1


@pytest.mark.slow
def test_resume_does_not_initialize_again(hooked, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config(run, "_hooked_test_ae"), callbacks=[Crash(at_epoch=2)], verbose=0)
    assert len(CALLS) == 1
    _, model, _ = train(resume_config(str(run)), verbose=0, resume=True)
    assert len(CALLS) == 1  # the offset came back with the checkpoint's weights
    assert int(model.steps_seen.numpy()) == int(model.optimizer.iterations.numpy())


def test_models_without_hooks_have_no_extra_weight():
    """Saved files of families without `initialize` are unchanged by the hook machinery."""
    model = AE(input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,))
    assert not hasattr(model, "initialized")
    assert not AE.has_hook("initialize") and not AE.has_hook("after_step")
    assert HookedAE.has_hook("initialize") and HookedAE.has_hook("after_step")
