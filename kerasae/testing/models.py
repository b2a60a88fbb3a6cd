"""Conformance checks for model families: the ones the project runs on its own, for plugins.

A plugin's whole test suite can be one line:

    from kerasae.testing import check_model

    def test_conformance():
        check_model("cae", input_shape=(8, 8, 1))

`check_model` builds the model from its `tiny_config` and checks, in order: the contract
(`encode`/`decode`/`reconstruct`/`score` shapes, `sample` or NotGenerativeError), that
`get_config` lists every constructor argument, that `compute_losses` returns exactly its
declared scalars, that every trainable weight of the encoder and decoder gets a non-zero
gradient from "loss" (a broken straight-through estimator or a stray stop_gradient fails
here), that a short fit lowers the loss *and* the reconstruction error (a sign-flipped
penalty can lower the first alone), that a `.keras` save/load round trip gives the same
class, config and outputs, and, when the onnx extra is installed, that the ONNX export
matches Keras (a failure names the op that did not
convert).
Each check is also a function of its own. A failure raises AssertionError saying which
check failed and why (explicit raises, so `python -O` and non-pytest runners see it too).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import tempfile

import keras
import numpy as np

from kerasae.errors import KerasaeError
from kerasae.export.write import export_model
from kerasae.models.base import Autoencoder
from kerasae.models.registry import MODELS, get_model_class
from kerasae.models.saving import load_model
from kerasae.params import check_params
from kerasae.testing.contract import (
    check_config,
    check_contract,
    check_fit_lowers_loss,
    check_gradients,
    check_losses,
    expect,
    plain,
    reconstruction_error,
)
from kerasae.testing.own import own_name

__all__ = [
    "check_model",
    "build",
    "sample_data",
    "check_contract",
    "check_config",
    "check_losses",
    "check_gradients",
    "check_fit_lowers_loss",
    "check_save_load",
    "check_export",
    "export_available",
    "reconstruction_error",
]


def _model_class(name_or_class):
    if isinstance(name_or_class, str):  # in a plugin's own tests, a clashing name is its own
        name_or_class = own_name(MODELS, name_or_class)
    cls = get_model_class(name_or_class) if isinstance(name_or_class, str) else name_or_class
    expect(
        isinstance(cls, type) and issubclass(cls, Autoencoder),
        f"{cls!r} is not a subclass of kerasae.models.base.Autoencoder",
    )
    return cls


def build(name_or_class, input_shape=(8, 8, 1), **overrides):
    """The model from its `tiny_config` (plus `overrides`), validated like `create_model`."""
    cls = _model_class(name_or_class)
    kwargs = {**cls.tiny_config, **overrides, "input_shape": tuple(input_shape)}
    return cls(**check_params(cls, kwargs))


def sample_data(input_shape, n=256, seed=0):
    """`n` float32 examples in [0, 1] with learnable structure: convex mixtures of 4 patterns."""
    rng = np.random.default_rng(seed)
    patterns = rng.random((4, math.prod(input_shape)))
    weights = rng.dirichlet(np.ones(4), size=n)
    return (weights @ patterns).reshape((n, *input_shape)).astype("float32")


def check_save_load(model, x, directory):
    """A `.keras` round trip keeps the class, the config and the outputs exactly."""
    name = vars(type(model)).get("registered_name")  # a subclass does not inherit its name
    expect(
        name is not None,
        f"{type(model).__name__} is not registered; decorate it with "
        "@kerasae.register_model(NAME) so that saved files can be loaded",
    )
    path = os.path.join(directory, f"{name}.keras")
    model.save(path)
    loaded = load_model(path)
    expect(
        type(loaded) is type(model),
        f"loading {name} gave {type(loaded).__name__}, not {type(model).__name__}",
    )
    expect(
        plain(loaded.get_config()) == plain(model.get_config()),
        f"{name}: the loaded config differs: {loaded.get_config()} != {model.get_config()}",
    )
    for method in ("encode", "reconstruct"):
        got, want = getattr(loaded, method)(x), getattr(model, method)(x)
        expect(
            np.array_equal(got, want),
            f"{name}: loaded.{method} differs from the "
            f"saved model's by up to {np.max(np.abs(got - want)):.3g}",
        )
    return loaded


def export_available():
    """None when the ONNX export can run here, else the reason it cannot."""
    for module in ("tf2onnx", "onnx", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'kerasae[onnx]')"
    return None


def check_export(model, x, directory):
    """ONNX encoder and decoder match Keras (kerasae.export verifies; it raises if not)."""
    try:
        manifest = export_model(
            model, os.path.join(directory, "export"), formats=("onnx",), real_x=x[:7]
        )
    except KerasaeError as exc:
        raise AssertionError(f"{type(model).__name__}: ONNX export failed: {exc}") from None
    return max(r["max_abs_diff"] for r in manifest["verification"].values())


def check_model(
    name_or_class: str | type[Autoencoder],
    input_shape: tuple[int, ...] = (8, 8, 1),
    data: np.ndarray | None = None,
    config: dict | None = None,
    epochs: int = 4,
    export: bool | None = None,
    directory: str | os.PathLike | None = None,
    seed: int = 0,
) -> dict:
    """Run every conformance check on one model; returns a dict of what was measured.

    data: examples shaped `(n, *input_shape)` in the model's range (default: `sample_data`);
    config: constructor overrides on top of `tiny_config`; export: True requires the ONNX
    check, False skips it, None runs it when the onnx extra is installed.
    """
    keras.utils.set_random_seed(seed)
    x = (
        sample_data(tuple(input_shape), seed=seed)
        if data is None
        else np.asarray(data, dtype="float32")
    )
    expect(
        x.shape[1:] == tuple(input_shape),
        f"data has examples of shape {x.shape[1:]}, but input_shape is {input_shape}",
    )
    model = build(name_or_class, input_shape, **(config or {}))
    check_contract(model, x[:10])
    check_config(model)
    check_losses(model, x)
    check_gradients(model, x)
    before, after = check_fit_lowers_loss(model, x, epochs=epochs)
    report = {
        "model": getattr(model, "registered_name", type(model).__name__),
        "loss_before": before,
        "loss_after": after,
    }
    if directory is not None:
        os.makedirs(directory, exist_ok=True)
    with (
        tempfile.TemporaryDirectory()
        if directory is None
        else contextlib.nullcontext(str(directory)) as tmp
    ):
        check_save_load(model, x[:16], tmp)
        unavailable = export_available() if export is not False else "export=False"
        if unavailable and export:
            raise AssertionError(f"export=True but the ONNX export cannot run: {unavailable}")
        report["export_max_abs_diff"] = None if unavailable else check_export(model, x, tmp)
        report["export_skipped"] = unavailable
    return report
