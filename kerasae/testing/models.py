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

import contextlib
import importlib.util
import math
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

import kerasae
from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.export.write import export_model
from kerasae.models.base import Autoencoder
from kerasae.models.registry import get_model_class
from kerasae.params import check_params, signature_params

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


def _expect(ok, message):
    if not ok:
        raise AssertionError(message)


def _model_class(name_or_class):
    cls = get_model_class(name_or_class) if isinstance(name_or_class, str) else name_or_class
    _expect(
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


def check_contract(model, x):
    """Shapes of encode/decode/reconstruct/score; `sample` works or says it cannot."""
    name = getattr(model, "registered_name", type(model).__name__)
    n = len(x)
    z = model.encode(x)
    _expect(
        z.shape == (n, model.latent_dim),
        f"{name}.encode gave shape {z.shape}, expected {(n, model.latent_dim)}",
    )
    for method, out in (("decode", model.decode(z)), ("reconstruct", model.reconstruct(x))):
        _expect(
            out.shape == x.shape,
            f"{name}.{method} gave shape {out.shape}, expected the data's {x.shape}",
        )
    scores = model.score(x)
    _expect(
        scores.shape == (n,) and bool(np.all(np.isfinite(scores))),
        f"{name}.score must give one finite score per example, got {scores!r}",
    )
    if model.generative:
        samples = model.sample(5, seed=0)
        _expect(
            samples.shape == (5, *x.shape[1:]),
            f"{name}.sample(5) gave shape {samples.shape}, expected {(5, *x.shape[1:])}",
        )
    else:
        try:
            model.sample(5)
        except NotGenerativeError:
            pass
        else:
            raise AssertionError(
                f"{name} is not generative but sample() did not raise "
                "NotGenerativeError; set `generative = True` or leave "
                "sample() to the base class"
            )


def check_config(model):
    """`get_config` lists every constructor argument, and from_config rebuilds the model."""
    config = model.get_config()
    missing = [k for k in signature_params(type(model)) if k not in config]
    _expect(
        not missing,
        f"{type(model).__name__}.get_config() misses {missing}; list every "
        "constructor argument in __init__ (no **kwargs for model settings)",
    )
    clone = type(model).from_config(config)
    _expect(
        _plain(clone.get_config()) == _plain(config),
        f"{type(model).__name__}.from_config(get_config()) gives a different config",
    )


def check_losses(model, x):
    """`compute_losses` returns every declared loss and metric as a scalar, nothing else."""
    try:
        model.check_outputs(model.compute_losses(_tensor(x[:32]), training=True))
    except KerasaeError as exc:
        raise AssertionError(str(exc)) from None


def check_gradients(model, x):
    """Every trainable weight of the encoder and decoder gets a non-zero gradient from
    "loss" on a training batch (layers' `add_loss` terms included, as in training)."""
    name = type(model).__name__
    variables = model.encoder.trainable_weights + model.decoder.trainable_weights
    with tf.GradientTape() as tape:
        loss = model.with_added_losses(model.compute_losses(_tensor(x[:32]), training=True))[
            "loss"
        ]
    grads = tape.gradient(loss, variables)
    dead = [
        v.path
        for v, g in zip(variables, grads)
        if g is None or not np.any(np.asarray(tf.convert_to_tensor(g)) != 0)
    ]
    _expect(
        not dead,
        f"{name}: 'loss' gives no gradient to {len(dead)} of the "
        f"{len(variables)} trainable weights of its encoder and decoder ({', '.join(dead[:4])}"
        f"{', ...' if len(dead) > 4 else ''}); a stop_gradient or a broken "
        "straight-through estimator cuts them off, or a ReLU code is dead on the whole "
        "batch (give tiny_config a larger latent_dim)",
    )


def reconstruction_error(model, x):
    """Mean squared error of `model.reconstruct(x)` (deterministic for every family)."""
    return float(np.mean((model.reconstruct(x) - x) ** 2))


def check_fit_lowers_loss(model, x, epochs=4, batch_size=32):
    """compile() with defaults, fit briefly: the loss must be finite and lower than before,
    and so must the reconstruction error (a penalty whose sign is flipped can lower the
    loss by ruining the reconstructions)."""
    model.compile()
    before, rec_before = _loss(model, x), reconstruction_error(model, x)
    model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0)
    after, rec_after = _loss(model, x), reconstruction_error(model, x)
    _expect(
        np.isfinite(after) and after < before,
        f"{type(model).__name__}: {epochs} epochs did not lower the loss "
        f"({before:.6g} -> {after:.6g})",
    )
    _expect(
        rec_after < rec_before,
        f"{type(model).__name__}: {epochs} epochs lowered the loss ({before:.6g} -> "
        f"{after:.6g}) but not the reconstruction error ({rec_before:.6g} -> "
        f"{rec_after:.6g}); is a penalty's sign flipped?",
    )
    return before, after


def check_save_load(model, x, directory):
    """A `.keras` round trip keeps the class, the config and the outputs exactly."""
    name = vars(type(model)).get("registered_name")  # a subclass does not inherit its name
    _expect(
        name is not None,
        f"{type(model).__name__} is not registered; decorate it with "
        "@kerasae.register_model(NAME) so that saved files can be loaded",
    )
    path = os.path.join(directory, f"{name}.keras")
    model.save(path)
    loaded = kerasae.load_model(path)
    _expect(
        type(loaded) is type(model),
        f"loading {name} gave {type(loaded).__name__}, not {type(model).__name__}",
    )
    _expect(
        _plain(loaded.get_config()) == _plain(model.get_config()),
        f"{name}: the loaded config differs: {loaded.get_config()} != {model.get_config()}",
    )
    for method in ("encode", "reconstruct"):
        got, want = getattr(loaded, method)(x), getattr(model, method)(x)
        _expect(
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
    """ONNX encoder and decoder match Keras (kerasae.exporters verifies; it raises if not)."""
    try:
        manifest = export_model(
            model, os.path.join(directory, "export"), formats=("onnx",), real_x=x[:7]
        )
    except KerasaeError as exc:
        raise AssertionError(f"{type(model).__name__}: ONNX export failed: {exc}") from None
    return max(r["max_abs_diff"] for r in manifest["verification"].values())


def check_model(
    name_or_class,
    input_shape=(8, 8, 1),
    data=None,
    config=None,
    epochs=4,
    export=None,
    directory=None,
    seed=0,
):
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
    _expect(
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


def _tensor(x):
    return tf.constant(np.asarray(x, dtype="float32"))


def _loss(model, x):
    return float(model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"])


def _plain(value):
    """Configs compare equal whether a sequence came back from JSON as a list or a tuple."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
