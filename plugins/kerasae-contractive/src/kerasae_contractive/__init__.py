"""kerasae-contractive: the contractive autoencoder as a kerasae plugin (model name `cae`).

Importing this package imports no TensorFlow; kerasae imports `kerasae_contractive.model`
through the entry point only when `cae` is used.
"""

__version__ = "0.2.0"
