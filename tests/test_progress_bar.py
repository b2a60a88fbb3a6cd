"""The progress bar counts the steps that ran: with several train steps per compiled call
Keras reported each call's nominal last step (480/469 for 469 steps run 16 at a time)."""

import keras
import numpy as np

import kerasae
from kerasae.models.fitting import StepProgbar


def test_the_count_stops_at_the_epochs_last_step():
    bar = StepProgbar()
    bar.set_params({"verbose": 2, "epochs": 1, "steps": 10})
    bar.on_epoch_begin(0)
    for end in (3, 7, 11):  # calls of 4 steps: Keras says 11 for the last, of 10 steps
        bar.on_train_batch_end(end)
    assert bar.seen == 10


def test_fit_and_evaluate_never_count_past_the_total(monkeypatch):
    shown = []
    update = keras.utils.Progbar.update

    def recording(self, current, values=None, finalize=None):
        shown.append((current, self.target))
        return update(self, current, values, finalize)

    monkeypatch.setattr(keras.utils.Progbar, "update", recording)
    model = kerasae.create_model("ae", input_shape=(6,), latent_dim=2, hidden_units=(8,))
    model.compile(steps_per_execution=4)
    x = np.random.default_rng(0).random((40, 6)).astype("float32")
    model.fit(x, batch_size=4, epochs=2, verbose=1, validation_data=x[:8])  # 10 steps
    model.evaluate(x, batch_size=4, verbose=1)
    assert shown and all(current <= target for current, target in shown), shown
    assert (10, 10) in shown
