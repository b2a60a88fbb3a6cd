"""A loss term that falls without bound is named, not blamed on the learning rate.

A penalty with a flipped sign drives the loss to -inf and then NaN; the NaN guard's
message names the term and its value, and `kerasae.testing`'s short fit warns about such
a term before a long run finds it.
"""

import contextlib
import types

import numpy as np
import pytest
from keras import ops

from kerasae.errors import KerasaeError, TrainingDivergedError
from kerasae.models.ae import AE
from kerasae.runs.checkpoints import NaNGuard
from kerasae.runs.runaway import falls_without_bound, runaway_term
from kerasae.testing.contract import check_fit_lowers_loss


def _guard(tmp_path, loss_names):
    guard = NaNGuard(epochs=3, checkpoint_folder=str(tmp_path / "checkpoints"))
    guard.set_model(types.SimpleNamespace(loss_names=loss_names))  # no optimizer: "SMALLER"
    guard.on_epoch_begin(1)
    return guard


def test_a_term_that_fell_without_bound_is_named(tmp_path):
    guard = _guard(tmp_path, ("loss", "reconstruction", "penalty"))
    guard.on_train_batch_end(0, {"loss": 0.9, "reconstruction": 1.0, "penalty": -0.1})
    guard.on_train_batch_end(1, {"loss": -5.9e15, "reconstruction": 0.4, "penalty": -5.9e15})
    with pytest.raises(TrainingDivergedError) as caught:
        guard.on_train_batch_end(2, {"loss": float("nan"), "penalty": float("nan")})
    message = str(caught.value)
    assert "its term 'penalty' fell without bound, from -0.1 to -5.9e+15" in message
    assert "flipped sign" in message and "not the learning rate" in message
    assert "epoch 2/3, step 3" in message and "learning-rate" not in message


def test_a_loss_that_blew_up_still_points_at_the_learning_rate(tmp_path):
    guard = _guard(tmp_path, ("loss", "reconstruction", "kl"))
    guard.on_train_batch_end(0, {"loss": 0.9, "reconstruction": 0.8, "kl": 0.1})
    guard.on_train_batch_end(1, {"loss": 3e30, "reconstruction": 3e30, "kl": 2e20})
    with pytest.raises(TrainingDivergedError, match="lower the learning rate") as caught:
        guard.on_train_batch_end(2, {"loss": float("inf")})
    assert "fell without bound" not in str(caught.value)


def test_which_series_fall_without_bound():
    assert falls_without_bound([0.1, -0.5, -2.0, -6.0])  # faster and faster, below zero
    assert falls_without_bound([0.0, -1.0, -2.0, -3.0])  # steadily: no sign of slowing
    assert not falls_without_bound([5.0, 2.0, 1.0, 0.5])  # converging, above zero
    assert not falls_without_bound([1.0, -1.0, -1.5, -1.7])  # negative, but slowing down
    assert not falls_without_bound([0.0, -1.0, -0.5, -3.0])  # not every epoch
    assert runaway_term({"loss": 1.0}, {"loss": 0.5}) is None


class FlippedPenalty(AE):
    """An AE whose code penalty has the wrong sign: -mean(z^2) rewards ever larger codes."""

    loss_names = ("loss", "reconstruction", "penalty")

    def compute_losses(self, x, training=False):
        z = self.encoder(x, training=training)
        reconstruction = self.reconstruction_loss(x, self.decoder(z, training=training))
        penalty = -ops.mean(ops.square(z))
        return {
            "loss": reconstruction + penalty,
            "reconstruction": reconstruction,
            "penalty": penalty,
        }


def test_the_conformance_fit_warns_about_a_runaway_term():
    model = FlippedPenalty(input_shape=(8,), latent_dim=2, hidden_units=(16,))
    x = np.random.default_rng(0).random((256, 8)).astype("float32")
    with pytest.warns(UserWarning) as caught, contextlib.suppress(KerasaeError):
        check_fit_lowers_loss(model, x, epochs=5, batch_size=32)  # may fail its checks too
    runaway = [str(w.message) for w in caught if "no sign of slowing" in str(w.message)]
    assert len(runaway) == 1 and "the loss term 'penalty' fell at every epoch" in runaway[0]
