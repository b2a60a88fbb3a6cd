"""kerasae: a plugin-based zoo of autoencoders for Keras 3 on TensorFlow, with export tooling.

    import kerasae
    kerasae.list_models("*ae*")
    model = kerasae.create_model("conv_ae", input_shape=(28, 28, 1), latent_dim=16)
    model.compile(); model.fit(x_train, epochs=10)
    kerasae.load_model("run/model.keras")

The public API: create_model, list_models, register_model, load_model, KerasaeError and the
packages `kerasae.nets`, `kerasae.callbacks` and `kerasae.testing`. Nothing inside kerasae
imports this module: it is the facade (docs/architecture.md shows the layers).
"""

from kerasae import moved, onednn, quiet

quiet.install()  # before anything imports TensorFlow: its start-up notices go to fd 2
onednn.default_on()  # before TensorFlow reads it: oneDNN's kernels on AVX2 CPUs too
moved.install()  # the module paths of kerasae 0.2 keep working, with a DeprecationWarning

from kerasae.errors import KerasaeError  # noqa: E402
from kerasae.models.registry import create_model, list_models, register_model  # noqa: E402
from kerasae.models.saving import load_model  # noqa: E402
from kerasae.version import __version__  # noqa: E402

__all__ = [
    "create_model",
    "list_models",
    "register_model",
    "load_model",
    "KerasaeError",
    "__version__",
]
