"""kerasae: a plugin-based zoo of autoencoders for Keras 3 on TensorFlow, with export tooling.

    import kerasae
    kerasae.list_models("*ae*")
    model = kerasae.create_model("conv_ae", input_shape=(28, 28, 1), latent_dim=16)
    model.compile(); model.fit(x_train, epochs=10)
    kerasae.load_model("run/model.keras")
"""
from kerasae import quiet

quiet.install()  # before anything imports TensorFlow: its start-up notices go to fd 2

from kerasae.errors import KerasaeError  # noqa: E402
from kerasae.registry import create_model, list_models, register_model  # noqa: E402
from kerasae.saving import load_model  # noqa: E402

__version__ = "0.2.0"

__all__ = ["create_model", "list_models", "register_model", "load_model", "KerasaeError",
           "__version__"]
