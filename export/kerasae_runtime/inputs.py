"""Strict inputs for `kerasae-runtime serve`: every array has the part's exact rank and shape
(a 1-D `z` is refused, not read as one row), and an encoder's `x` lies in the range the
model was trained on, which the export's scaling records (the model's [0, 1] units for
`divide` and `minmax`), unless the server was started with --allow-out-of-range.

A value far outside that range (5.0, or a raw 128 on a /16 scale) is almost always a
client sending the wrong units; a model answers it without complaint and the answer is
meaningless, so it is refused with the reason and the fix.
"""

import numpy as np

from kerasae_runtime.bodies import RequestError

#: how far outside the training range a value may lie (fraction of the range): test data
#: scaled with the training set's min and max can overshoot them a little
MARGIN = 0.05


def training_range(manifest):
    """(low, high) of the model's inputs, as the scaling makes them, or None (identity
    scaling: the export does not say)."""
    kind = (manifest.get("scaling") or {"kind": "identity"})["kind"]
    return (0.0, 1.0) if kind in ("divide", "minmax") else None


def rows(array, shape, name, max_batch):
    """`array` as float32 (batch, *shape), or a 422 naming the expected shape."""
    x = np.asarray(array, dtype=np.float32)
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        want = f"(batch, {', '.join(map(str, shape))})"
        hint = " (wrap one example in a list: one row per example)" if x.shape == shape else ""
        raise RequestError(422, f"{name} must have shape {want}, got {tuple(x.shape)}{hint}")
    if len(x) == 0:
        raise RequestError(422, "no examples given (the array is empty)")
    if len(x) > max_batch:
        raise RequestError(
            422,
            f"{len(x)} examples in one request; this server takes at most {max_batch} "
            "(--max-batch)",
        )
    if not np.isfinite(x).all():
        raise RequestError(422, f"{name} contains NaN or infinite values")
    return x


def outside(x, bounds, name, raw):
    """None when `x` (model units) is within `bounds` plus the margin, else the message."""
    if bounds is None:
        return None
    low, high = bounds
    pad = MARGIN * (high - low)
    lo, hi = float(x.min()), float(x.max())
    if lo >= low - pad and hi <= high + pad:
        return None
    units = "after the export's scaling" if raw else "in the model's units"
    fix = (
        "send the training data's units with raw=true"
        if not raw
        else "send values in the training data's units"
    )
    return (
        f"{name} has values from {lo:.4g} to {hi:.4g} {units}; the model was trained on "
        f"[{low:g}, {high:g}]: {fix}, or start the server with --allow-out-of-range"
    )
