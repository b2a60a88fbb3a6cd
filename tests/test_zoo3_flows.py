"""The flows in the posterior (issue 31): MADE's autoregressive property, each flow's
log-determinant against a numerical Jacobian, and the vae_linnf / vae_iaf families."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.nets.made import MADE


def _jacobians(layer, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        shift, log_scale = layer(x)
    return tape.batch_jacobian(shift, x).numpy(), tape.batch_jacobian(log_scale, x).numpy()


@pytest.mark.parametrize(
    "order, hidden",
    [
        ("left-to-right", (16, 16)),
        ("right-to-left", (7,)),
        ((2, 0, 4, 1, 3), (16, 9, 5)),
        ((3, 1, 0, 4, 2), ()),
    ],
)
def test_made_outputs_depend_only_on_earlier_inputs(order, hidden):
    layer = MADE(5, hidden_units=hidden, order=order)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    perm = list(layer.order)
    for jac in _jacobians(layer, x):
        permuted = jac[:, perm][:, :, perm]  # rows and columns in autoregressive order
        assert np.all(np.triu(permuted) == 0.0)  # strictly lower-triangular
        # and MADE is not trivially zero: the last output sees every earlier input
        assert np.any(np.abs(np.tril(permuted, -1)) > 0)


def test_made_round_trips_and_rejects_bad_arguments(tmp_path):
    layer = MADE(4, hidden_units=(8,), order="right-to-left", output_initializer="zeros")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(1).normal(size=(2, 4)).astype("float32")
    path = str(tmp_path / "made.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(model(x), loaded(x)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert loaded.layers[-1].order == (3, 2, 1, 0)
    with pytest.raises(KerasaeError, match="permutation"):
        MADE(3, order=(0, 0, 1))
    with pytest.raises(KerasaeError, match="order must be one of"):
        MADE(3, order="random")
