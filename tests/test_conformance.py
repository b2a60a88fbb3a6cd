"""One conformance suite over the whole registry (timm-style), kept fast by tiny configs.

Every registered model, built-in or plugin, goes through `kerasae.testing`, the same
checks a plugin author runs: the contract's shapes, a complete `get_config`, a short fit
that lowers the loss and the reconstruction error, the declared losses dict, a gradient
to every encoder and decoder weight, and an exact `.keras` save/load round trip. (Export
parity over the registry is tests/test_export.py's.) Three deliberately broken models
show that each stricter check fails, naming the cause.
"""

import pytest

import kerasae
from kerasae import testing
from tests.helpers import registry_params

MODELS = kerasae.list_models()
#: families whose contract check takes over a second (measured 2026-12-07: rhvae 3.5 s,
#: beta_tcvae 2.8, svae 2.3, poincare_vae 1.5, msssim_vae 1.3, vae_iaf 1.2, ncsn 1.2): the
#: full suite checks them, the fast subset every other family
SLOW_CONTRACT = ("rhvae", "beta_tcvae", "svae", "poincare_vae", "msssim_vae", "vae_iaf", "ncsn")


@pytest.mark.parametrize("name", registry_params(MODELS))
def test_fit_lowers_loss_and_round_trips(name, digits, tmp_path):
    x = digits[0][:256]
    model = testing.build(name)
    testing.check_fit_lowers_loss(model, x)
    testing.check_save_load(model, x[:16], tmp_path)


@pytest.mark.parametrize(
    "name", registry_params(MODELS, fast=[m for m in MODELS if m not in SLOW_CONTRACT])
)
def test_contract_config_losses_and_gradients(name, digits):
    model = testing.build(name)
    testing.check_contract(model, digits[0][:10])
    testing.check_config(model)
    testing.check_losses(model, digits[0][:64])
    testing.check_gradients(model, digits[0][:64])


@pytest.mark.parametrize("name", MODELS)
def test_only_documented_families_override_train_step(name):
    """Families are a compute_losses plus hooks; the adversarial loop is the one exception."""
    from kerasae.models.adversarial import AdversarialAutoencoder
    from kerasae.models.base import Autoencoder
    from kerasae.models.registry import get_model_class

    cls = get_model_class(name)
    owner = next(c for c in cls.__mro__ if "train_step" in vars(c))
    assert owner in (Autoencoder, AdversarialAutoencoder), (
        f"{name} overrides train_step in {owner.__name__}; use compute_losses and hooks"
    )


def test_check_model_catches_a_broken_model(digits):
    """The kit must fail a model that breaks the contract, not only pass good ones."""
    from kerasae.models.ae import AE

    class Frozen(AE):  # trains nothing: its loss cannot fall
        def train_step(self, data):
            return self.test_step(data)

    with pytest.raises(AssertionError, match="did not lower the loss"):
        testing.check_model(Frozen, data=digits[0][:64], epochs=1, export=False)

    class Forgetful(AE):  # takes an argument get_config does not record
        tiny_config = {"latent_dim": 2}

        def __init__(self, input_shape=(28, 28, 1), latent_dim=16, width=8, **kwargs):
            super().__init__(
                input_shape=input_shape, latent_dim=latent_dim, hidden_units=(width,), **kwargs
            )

        def get_config(self):
            return {k: v for k, v in super().get_config().items() if k != "width"}

    with pytest.raises(AssertionError, match=r"misses \['width'\]"):
        testing.check_config(testing.build(Forgetful))
