"""An ONNX export that cannot convert an op names the op, the part and a known fix.

Observed with tf2onnx 1.17 (opset 17): `keras.ops.argmin` lowers to Bitcast + BitwiseAnd
(its NaN test) around an ArgMin; tf2onnx does not raise, it logs "Tensorflow op [...: Bitcast]
is not supported" and leaves the TensorFlow nodes in the ONNX graph.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.models.ae import AE
from kerasae.testing import check_export, export_available

pytestmark = pytest.mark.skipif(export_available() is not None, reason="no ONNX export here")

CODES = 3


class ArgminCode(keras.layers.Layer):
    """(batch, latent_dim, CODES) scores -> the index of the smallest, as float32."""

    def __init__(self, use_tf=False, **kwargs):
        super().__init__(**kwargs)
        self.use_tf = use_tf

    def call(self, scores):
        idx = tf.argmin(scores, axis=-1) if self.use_tf else keras.ops.argmin(scores, axis=-1)
        return keras.ops.cast(idx, "float32")


class ArgminAE(AE):
    """An `ae` whose encoder ends in an argmin over CODES scores per latent unit."""

    def __init__(
        self,
        input_shape=(8, 8, 1),
        latent_dim=2,
        hidden_units=(16,),
        activation="relu",
        loss="mse",
        use_tf=False,
        **kwargs,
    ):
        super().__init__(
            input_shape=input_shape,
            latent_dim=latent_dim,
            hidden_units=hidden_units,
            activation=activation,
            loss=loss,
            **kwargs,
        )
        x = keras.Input(self.data_shape, name="x")
        h = keras.layers.Dense(self.latent_dim * CODES)(keras.layers.Flatten()(x))
        z = ArgminCode(use_tf)(keras.layers.Reshape((self.latent_dim, CODES))(h))
        self.set_networks(keras.Model(x, z, name="encoder"), self.decoder)


def _data():
    return np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)


def test_keras_argmin_fails_export_naming_bitcast_and_the_fix(tmp_path, capsys, caplog):
    model = ArgminAE()
    with pytest.raises(AssertionError) as info:  # check_export turns KerasaeError into this
        check_export(model, _data(), str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert "the encoder could not be converted to ONNX" in message
    assert "Bitcast" in message and "BitwiseAnd" in message  # both ops keras.ops.argmin emits
    assert "use tf.argmin/tf.argmax" in message and "kerasae.nets.VectorQuantizer" in message
    assert "--opset 18" not in message  # BitwiseAnd's own fix would leave the Bitcast
    # tf2onnx's log is captured, not shown
    assert "is not supported" not in capsys.readouterr().err
    assert not [r for r in caplog.records if r.name.startswith("tf2onnx")]
    assert not (tmp_path / "export").exists()  # a failed export leaves nothing behind


def test_export_model_raises_kerasae_error(tmp_path):
    from kerasae.export.write import export_model

    with pytest.raises(KerasaeError, match=r"TensorFlow ops Bitcast \(at .*argmin_code"):
        export_model(ArgminAE(), tmp_path / "export", formats=("onnx",), parts=("encoder",))


def test_tf_argmin_exports(tmp_path):
    model = ArgminAE(use_tf=True)
    assert check_export(model, _data(), str(tmp_path)) < 1e-4


def test_known_fixes():
    from kerasae.export.onnx_errors import GENERIC_FIX, known_fix, unsupported_message

    for op in (
        "RandomStandardNormal",
        "StatelessRandomNormalV2",
        "Multinomial",
        "StatelessTruncatedNormalV2",
    ):
        assert "posterior mean" in known_fix(op), op
    assert "tf.argmin" in known_fix("Bitcast")
    assert known_fix("SomeNewOp") == GENERIC_FIX
    one = unsupported_message("decoder", 17, {"SomeNewOp": "decoder/layer/SomeNewOp"})
    assert one == (
        "the decoder could not be converted to ONNX (opset 17): TensorFlow op "
        "SomeNewOp (at decoder/layer/SomeNewOp) did not convert; " + GENERIC_FIX
    )
