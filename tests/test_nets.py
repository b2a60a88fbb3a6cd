"""Shared network builders: conv and MLP encoders/decoders round-trip any input shape."""
import numpy as np
import pytest

from kerasae import nets
from kerasae.errors import KerasaeError


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (8, 8, 1), (30, 22, 1), (12, 12)])
@pytest.mark.parametrize("architecture", ["conv", "mlp"])
def test_encoder_decoder_shapes(shape, architecture):
    body = {"filters": (4, 8)} if architecture == "conv" else {"hidden_units": (16,)}
    enc = nets.build_encoder(shape, 3, architecture, **body)
    dec = nets.build_decoder(3, shape, architecture, **body)
    x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    z = enc(x)
    x_hat = np.asarray(dec(z))
    assert tuple(z.shape) == (2, 3)
    assert x_hat.shape == (2, *shape)
    assert x_hat.min() >= 0 and x_hat.max() <= 1  # sigmoid output for [0, 1] data
    if architecture == "conv":
        assert any(type(layer).__name__ == "Conv2DTranspose" for layer in dec.layers)
        assert all(layer.strides == (2, 2) for layer in enc.layers
                   if type(layer).__name__ == "Conv2D")


def test_multi_head_encoder_names_its_outputs():
    enc = nets.build_encoder((8, 8, 1), 2, "mlp", output_names=("z_mean", "z_log_var"),
                             hidden_units=(8,))
    assert [t.name.split("/")[0] for t in enc.outputs] == ["z_mean", "z_log_var"] or \
        enc.output_names == ["z_mean", "z_log_var"]


def test_conv_on_tabular_data_is_refused():
    with pytest.raises(KerasaeError, match="conv architecture needs image data"):
        nets.check_architecture("conv", (20,))
    with pytest.raises(KerasaeError, match="architecture must be one of"):
        nets.check_architecture("resnet", (8, 8, 1))


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (30, 22, 1), (12, 12)])
def test_spatial_code_is_a_grid_of_local_codes(shape):
    filters = (4, 8)
    height, width = nets.code_grid(shape, filters)
    latent = height * width * 3
    enc = nets.build_encoder(shape, latent, "conv", code="spatial", filters=filters)
    dec = nets.build_decoder(latent, shape, "conv", code="spatial", filters=filters)
    x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    z = np.asarray(enc(x))
    assert z.shape == (2, latent) and np.asarray(dec(z)).shape == (2, *shape)
    # a pixel in the top-left corner only reaches the codes of nearby grid cells (two 3x3
    # stride-2 convolutions see 7 pixels): the far cells of the grid do not move
    poked = x.copy()
    poked[:, 0, 0] += 1.0
    moved = np.abs(np.asarray(enc(poked)) - z).reshape(2, height, width, 3).max(axis=(0, 3))
    assert moved[0, 0] > 0 and np.all(moved[2:, :] == 0) and np.all(moved[:, 2:] == 0)
    dense = nets.build_encoder(shape, latent, "conv", filters=filters)
    assert np.all(np.asarray(dense(poked)) != np.asarray(dense(x)))  # a dense code mixes all


def test_bad_spatial_codes_are_refused():
    with pytest.raises(KerasaeError, match="multiple of 49"):
        nets.check_architecture("conv", (28, 28, 1), code="spatial", latent_dim=50,
                                filters=(8, 16))
    with pytest.raises(KerasaeError, match="architecture='conv'"):
        nets.check_architecture("mlp", (28, 28, 1), code="spatial", latent_dim=49,
                                filters=(8, 16))
    with pytest.raises(KerasaeError, match="code must be one of dense, spatial"):
        nets.check_architecture("conv", (28, 28, 1), code="grid", latent_dim=49)
