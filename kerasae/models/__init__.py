"""Model families (core layer): the contract, the registry and one family per module.

    base.py         Autoencoder: the contract every family (built-in or plugin) follows and
                    the one train step; step_outputs.py checks what a step returns
    adversarial.py  the one two-optimizer loop (aae, wae, factor_vae)
    registry.py     name -> class, fed by the `kerasae.models` entry points
    introspect.py   a family's description read from its source (no TensorFlow)
    saving.py       load_model: a `.keras` file, safe_mode on
    ae.py, conv.py, vae.py, ...: the families

Importing this package imports nothing. May import nets, probability, data and the base;
never runs, callbacks, evaluation or export.
"""

from kerasae.lazy import namespace

__getattr__, __dir__ = namespace(
    __name__,
    """
    kerasae.models.base: Autoencoder
    kerasae.models.networks: NetworkAutoencoder
    kerasae.models.adversarial: AdversarialAutoencoder
    kerasae.models.vae: VAE
""",
)
