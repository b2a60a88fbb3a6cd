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
        assert all(
            layer.strides == (2, 2) for layer in enc.layers if type(layer).__name__ == "Conv2D"
        )


def test_multi_head_encoder_names_its_outputs():
    enc = nets.build_encoder(
        (8, 8, 1), 2, "mlp", output_names=("z_mean", "z_log_var"), hidden_units=(8,)
    )
    assert [t.name.split("/")[0] for t in enc.outputs] == [
        "z_mean",
        "z_log_var",
    ] or enc.output_names == ["z_mean", "z_log_var"]


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
        nets.check_architecture(
            "conv", (28, 28, 1), code="spatial", latent_dim=50, filters=(8, 16)
        )
    with pytest.raises(KerasaeError, match="architecture='conv'"):
        nets.check_architecture("mlp", (28, 28, 1), code="spatial", latent_dim=49, filters=(8, 16))
    with pytest.raises(KerasaeError, match="code must be one of dense, spatial"):
        nets.check_architecture("conv", (28, 28, 1), code="grid", latent_dim=49)


# ------------------------------------------------------------------ depth from the image size
@pytest.mark.parametrize(
    "shape, expected, expected_wide",
    [
        ((8, 8, 1), (32, 64), (64, 128)),
        ((28, 28, 1), (32, 64), (64, 128)),
        ((12, 12), (32, 64), (64, 128)),
        ((32, 32, 3), (32, 64, 128), (64, 128, 256)),
        ((64, 40, 3), (32, 64, 128), (64, 128, 256)),
        ((64, 64, 3), (32, 64, 128, 256), (32, 64, 128, 256)),
        ((128, 128, 3), (16, 32, 64, 128, 256), (16, 32, 64, 128, 256)),
    ],
)
def test_default_depth_follows_the_image_size(shape, expected, expected_wide):
    assert nets.default_filters(shape) == expected  # vae's base width, 32
    assert nets.default_filters(shape, base=64) == expected_wide  # conv_ae's
    grid = nets.code_grid(shape)  # None resolves the same way in every builder
    assert grid == nets.code_grid(shape, expected)
    if min(shape[:2]) >= 16:  # halved down to about 4x4 (at most 7 on the smaller side)
        assert 4 <= min(grid) <= 7


def test_explicit_filters_win_and_bad_ones_are_refused():
    assert nets.resolve_filters([16, 32], (64, 64, 3)) == (16, 32)  # a saved config's list
    assert nets.resolve_filters(8, (64, 64, 3)) == (8,)  # --param filters=8
    for bad in ((), (0, 8), "abc"):
        with pytest.raises(KerasaeError, match="filters must be positive integers"):
            nets.resolve_filters(bad, (64, 64, 3))


#: (family, conv kwargs, the fixed default filters every release before deeper nets had)
FAMILIES = [
    ("conv_ae", {}, (64, 128)),
    ("vae", {"architecture": "conv"}, (32, 64)),
    ("wae", {}, (64, 128)),
    ("aae", {}, (64, 128)),
    ("dae", {"architecture": "conv"}, (64, 128)),
]


@pytest.mark.parametrize("name, kwargs, old", FAMILIES)
def test_28x28_defaults_are_unchanged(name, kwargs, old):
    import kerasae

    model = kerasae.create_model(name, input_shape=(28, 28, 1), **kwargs)
    explicit = kerasae.create_model(name, input_shape=(28, 28, 1), filters=old, **kwargs)
    assert tuple(model.get_config()["filters"]) == old
    assert model.count_params() == explicit.count_params()


@pytest.mark.parametrize(
    "name, kwargs, old",
    [pytest.param(*f, marks=pytest.mark.slow) for f in FAMILIES],  # 3-16 s each
)
def test_64x64_defaults_build_train_and_reload(name, kwargs, old):
    import kerasae

    shape = (64, 64, 3)
    model = kerasae.create_model(name, input_shape=shape, **kwargs)
    config = model.get_config()
    assert config["filters"] == (32, 64, 128, 256)  # four stride-2 stages down to 4x4
    model.compile()
    x = np.random.default_rng(0).random((8, *shape), dtype=np.float32)
    history = model.fit(x, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert np.asarray(model.reconstruct(x[:2])).shape == (2, *shape)
    # the resolved filters are in the config: a reload builds the same networks, even where
    # the size-based default would now pick others (an old config's explicit filters)
    clone = type(model).from_config(config)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(
        np.asarray(clone.encode(x[:2])), np.asarray(model.encode(x[:2])), atol=1e-5
    )
    old_config = {**config, "filters": list(old)}
    assert type(model).from_config(old_config).get_config()["filters"] == tuple(old)
