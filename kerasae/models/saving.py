"""Loading `.keras` files safely: the registry imports the model's class, Keras does the rest.

`safe_mode=True` stays on (no arbitrary code runs from a file); the file's own config says
which registered model it holds, so only that model's module is imported.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import TYPE_CHECKING

from kerasae.errors import KerasaeError
from kerasae.models.registry import MODELS

if TYPE_CHECKING:  # type names only: never imported at run time
    from kerasae.models.base import Autoencoder


def saved_model_name(path):
    """The registered kerasae name stored in a .keras file, without loading any weights."""
    if not os.path.isfile(path):
        raise KerasaeError(f"model file {path} does not exist; pass the model.keras of a run")
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise KerasaeError(
            f"{path} is not a readable .keras file ({exc}); retrain or "
            "point at an intact model.keras"
        ) from None
    registered = str(config.get("registered_name") or "")
    package, _, name = registered.partition(">")
    if package != "kerasae" or not name:
        raise KerasaeError(
            f"{path} holds {registered or config.get('class_name')!r}, "
            "not a kerasae model; save it from a kerasae model"
        )
    return name


def load_model(path: str | os.PathLike, compile: bool = True) -> Autoencoder:
    """Load a kerasae model saved with `model.save(path)`."""
    import keras  # TensorFlow: only when used (this module must import fast)

    MODELS.get(saved_model_name(path), saved=True)  # imports and registers the class
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:
        raise KerasaeError(f"could not load {path}: {str(exc).splitlines()[0]}") from None
