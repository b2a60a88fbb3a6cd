"""One conformance suite over the whole registry (timm-style), kept fast by tiny configs.

Every registered model, built-in or plugin: builds from its tiny config, a short fit
lowers its loss, `.keras` save/load gives identical outputs and config, and the contract
methods return the documented shapes.
"""
import numpy as np
import pytest

import kerasae
from kerasae.errors import NotGenerativeError
from kerasae.registry import get_model_class

MODELS = kerasae.list_models()


def build(name, input_shape=(8, 8, 1)):
    cls = get_model_class(name)
    return kerasae.create_model(name, input_shape=input_shape, **cls.tiny_config)


@pytest.mark.parametrize("name", MODELS)
def test_fit_lowers_loss_and_round_trips(name, digits, tmp_path):
    x = digits[0][:256]
    model = build(name)
    model.compile()
    before = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"]
    model.fit(x, epochs=4, batch_size=32, verbose=0)
    after = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"]
    assert np.isfinite(after) and after < before, (before, after)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = kerasae.load_model(str(path))
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config() or \
        {k: list(v) if isinstance(v, tuple) else v for k, v in model.get_config().items()} \
        == loaded.get_config()
    np.testing.assert_array_equal(loaded.reconstruct(x[:16]), model.reconstruct(x[:16]))
    np.testing.assert_array_equal(loaded.encode(x[:16]), model.encode(x[:16]))


@pytest.mark.parametrize("name", MODELS)
def test_contract_shapes(name, digits):
    x = digits[0][:10]
    model = build(name)
    z = model.encode(x)
    assert z.shape == (10, model.latent_dim)
    assert model.decode(z).shape == x.shape
    assert model.reconstruct(x).shape == x.shape
    scores = model.score(x)
    assert scores.shape == (10,) and np.all(np.isfinite(scores))
    if model.generative:
        samples = model.sample(5, seed=0)
        assert samples.shape == (5, *x.shape[1:])
    else:
        with pytest.raises(NotGenerativeError):
            model.sample(5)


@pytest.mark.parametrize("name", MODELS)
def test_config_lists_every_constructor_argument(name):
    from kerasae.params import signature_params

    model = build(name)
    config = model.get_config()
    for key in signature_params(type(model)):
        assert key in config, f"{name}.get_config() misses {key!r}"
