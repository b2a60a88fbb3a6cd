"""The model contract, checked one property at a time: inference shapes, config, the declared
losses, gradients reaching every weight, and training that lowers the loss and the
reconstruction error. `kerasae.testing.check_model` runs them all.
"""

import warnings

import numpy as np
import tensorflow as tf

from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.params import signature_params
from kerasae.runs.runaway import falls_without_bound


def expect(ok, message):
    if not ok:
        raise AssertionError(message)


def check_contract(model, x):
    """Shapes of encode/decode/reconstruct/score; `sample` works or says it cannot."""
    name = getattr(model, "registered_name", type(model).__name__)
    n = len(x)
    z = model.encode(x)
    expect(
        z.shape == (n, model.latent_dim),
        f"{name}.encode gave shape {z.shape}, expected {(n, model.latent_dim)}",
    )
    for method, out in (("decode", model.decode(z)), ("reconstruct", model.reconstruct(x))):
        expect(
            out.shape == x.shape,
            f"{name}.{method} gave shape {out.shape}, expected the data's {x.shape}",
        )
    scores = model.score(x)
    expect(
        scores.shape == (n,) and bool(np.all(np.isfinite(scores))),
        f"{name}.score must give one finite score per example, got {scores!r}",
    )
    if model.generative:
        samples = model.sample(5, seed=0)
        expect(
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
    expect(
        not missing,
        f"{type(model).__name__}.get_config() misses {missing}; list every "
        "constructor argument in __init__ (no **kwargs for model settings)",
    )
    clone = type(model).from_config(config)
    expect(
        plain(clone.get_config()) == plain(config),
        f"{type(model).__name__}.from_config(get_config()) gives a different config",
    )


def check_losses(model, x):
    """`compute_losses` returns every declared loss and metric as a scalar, nothing else."""
    try:
        model.check_outputs(model.compute_losses(as_tensor(x[:32]), training=True))
    except KerasaeError as exc:
        raise AssertionError(str(exc)) from None


def check_gradients(model, x):
    """Every trainable weight of the encoder and decoder gets a non-zero gradient from
    "loss" on a training batch (layers' `add_loss` terms included, as in training)."""
    name = type(model).__name__
    variables = model.encoder.trainable_weights + model.decoder.trainable_weights
    with tf.GradientTape() as tape:
        loss = model.with_added_losses(model.compute_losses(as_tensor(x[:32]), training=True))[
            "loss"
        ]
    grads = tape.gradient(loss, variables)
    dead = [
        v.path
        for v, g in zip(variables, grads)
        if g is None or not np.any(np.asarray(tf.convert_to_tensor(g)) != 0)
    ]
    expect(
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
    before, rec_before = mean_loss(model, x), reconstruction_error(model, x)
    history = model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0).history
    after, rec_after = mean_loss(model, x), reconstruction_error(model, x)
    expect(
        np.isfinite(after) and after < before,
        f"{type(model).__name__}: {epochs} epochs did not lower the loss "
        f"({before:.6g} -> {after:.6g})",
    )
    falling = [n for n in model.loss_names if falls_without_bound(history.get(n, ()))]
    for name in [n for n in falling if n != "loss"] or falling:  # the term, not the sum
        values = history[name]
        warnings.warn(
            f"{type(model).__name__}: the loss term {name!r} fell at every epoch with no "
            f"sign of slowing ({values[0]:.4g} -> {values[-1]:.4g}); a term that can fall "
            "forever (a flipped sign, or a weight that outweighs the rest) will drive a "
            "longer run's loss to -inf",
            stacklevel=2,
        )
    expect(
        rec_after < rec_before,
        f"{type(model).__name__}: {epochs} epochs lowered the loss ({before:.6g} -> "
        f"{after:.6g}) but not the reconstruction error ({rec_before:.6g} -> "
        f"{rec_after:.6g}); is a penalty's sign flipped?",
    )
    return before, after


def as_tensor(x):
    return tf.constant(np.asarray(x, dtype="float32"))


def mean_loss(model, x):
    return float(model.evaluate(x, batch_size=64, verbose=0, return_dict=True)["loss"])


def plain(value):
    """Configs compare equal whether a sequence came back from JSON as a list or a tuple."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
