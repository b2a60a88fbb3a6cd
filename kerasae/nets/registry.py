"""The architecture registry: network builders by name, fed by `kerasae.architectures`.

kerasae's `mlp` and `conv` are listed in its pyproject like a plugin's. Importing this
module imports neither Keras nor TensorFlow.
"""

from kerasae.registry import Registry


def _check_architecture_class(cls, dist):
    # the base class imports Keras: only once an architecture is actually used
    from kerasae.nets.base import Architecture

    if not (isinstance(cls, type) and issubclass(cls, Architecture)):
        raise TypeError(f"{cls!r} is not a subclass of kerasae.nets.Architecture")


#: name -> Architecture subclass
ARCHITECTURES = Registry("architecture", "kerasae.architectures", accept=_check_architecture_class)
register_architecture = ARCHITECTURES.register


def architecture(name):
    """A new instance of the architecture registered as `name`."""
    return ARCHITECTURES.get(name)()
