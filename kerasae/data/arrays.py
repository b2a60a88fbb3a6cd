"""User arrays: .npy / .npz (never unpickled), and scaling to [0, 1].

Small files load into an in-memory `Dataset`; a .npy over `kerasae.data.MMAP_BYTES` is
memory-mapped and streamed (`kerasae.data.mapped`); uint8 kept uint8 until the batch is
scaled.
"""

import os

import numpy as np

from kerasae.data.csv_files import _read_csv
from kerasae.data.memory import Dataset, _check_finite, _split
from kerasae.data.streams import open_images
from kerasae.errors import KerasaeError
from kerasae.io import load_numpy
from kerasae_runtime.manifest import ExportError
from kerasae_runtime.manifest import scale as runtime_scale


def _load_numpy(path, test_fraction, scaling):
    name = os.path.basename(path)
    x, x_test = _read_numpy(path, ("x_train", "x", "X", "images", "data"), "x_test")
    if x_test is not None and x_test.ndim == x.ndim - 1:
        x_test = x_test[..., None]
    scaling = scaling or _infer_scaling(x, path)
    divisor = None
    if (
        scaling["kind"] == "divide"
        and x.dtype == np.uint8
        and (x_test is None or x_test.dtype == np.uint8)
    ):
        divisor = float(scaling["scale"])  # kept uint8 until the batch is scaled
    else:
        x = apply_scaling(x, scaling)
        x_test = None if x_test is None else apply_scaling(x_test, scaling)
    if x_test is not None:
        return Dataset(name, x, x_test, scaling=scaling, divisor=divisor)
    return _split(x, None, test_fraction, name, scaling, divisor)


def _read_numpy(path, prefer, second=None):
    """(main array, `second` array or None) of a .npy/.npz, never unpickled, numeric,
    with (N, H, W) greyscale images given a channel axis. `prefer` orders the .npz keys."""
    try:
        loaded = load_numpy(path)
    except (ValueError, OSError) as exc:
        raise KerasaeError(f"{path} cannot be read as numeric numpy data ({exc})") from None
    other = None
    if not isinstance(loaded, np.ndarray):
        with loaded:
            keys = list(loaded.keys())
            if not keys:
                raise KerasaeError(f"{path} holds no arrays")
            key = next((k for k in prefer if k in keys), keys[0])
            if second in keys and second != key:
                other = _npz_member(loaded, second, path)
            loaded = _npz_member(loaded, key, path)
    arrays = []
    for x in (loaded, other):
        if x is not None:
            x = numeric(x, path)
            if x.ndim == 3 and x.shape[-1] > 4:  # (N, H, W) greyscale images
                x = x[..., None]
        arrays.append(x)
    return arrays[0], arrays[1]


def _npz_member(npz, key, path):
    """One array of an .npz; object arrays would need unpickling, which is never done."""
    try:
        return npz[key]
    except ValueError as exc:
        raise KerasaeError(
            f"{path}: array {key!r} cannot be loaded as numeric data ({exc}); "
            "save numeric arrays only"
        ) from None


def numeric(x, path, check_values=True):
    """x itself, refused unless numeric with an examples axis (and finite)."""
    if x.dtype.kind not in "biuf":
        raise KerasaeError(f"{path} has dtype {x.dtype}; numeric arrays only")
    if x.ndim < 2:
        raise KerasaeError(
            f"{path} has shape {x.shape}; need (examples, features) or "
            "(examples, height, width[, channels])"
        )
    if check_values:
        _check_finite(x, path)
    return x


def _infer_scaling(x, path, lo=None, hi=None):
    """How to map x to [0, 1]; `lo`/`hi` (x's per-feature min and max) when already known."""
    if x.dtype == np.uint8:
        return {"kind": "divide", "scale": 255.0}
    lo = np.min(x, axis=0) if lo is None else lo
    hi = np.max(x, axis=0) if hi is None else hi
    if lo.min() >= 0.0 and hi.max() <= 1.0:
        return {"kind": "identity"}
    if lo.min() >= 0.0 and hi.max() <= 255.0 and x.ndim >= 3:
        return {"kind": "divide", "scale": 255.0}
    return {"kind": "minmax", "min": lo.tolist(), "max": hi.tolist()}


def apply_scaling(x, scaling):
    """Map raw values to [0, 1] the way the run's training data was mapped (the export's
    own scaling: kerasae-runtime maps a service's inputs with the same function)."""
    try:
        return runtime_scale(x, scaling)
    except ExportError as exc:
        raise KerasaeError(f"{exc}") from None


def read_examples(path):
    """Every example of a user data file or image folder, raw and in file order (no split,
    no scaling): what `kerasae detect` scores. An image folder is read whole here; stream
    a large one with `load_dataset(path).batches("all", ...)` instead."""
    if not os.path.exists(path):
        raise KerasaeError(f"data path {path} does not exist; check the path")
    lower = str(path).lower()
    if os.path.isdir(path):
        # raw pixel values, like the other files
        x = open_images(str(path), split=False).arrays("all") * np.float32(255.0)
    elif lower.endswith(".csv"):
        x = _read_csv(path)
    elif lower.endswith((".npy", ".npz")):
        x, _ = _read_numpy(path, ("x", "X", "x_test", "images", "data"))
    else:
        raise KerasaeError(
            f"{path}: unsupported file type; use an image folder, .npy, .npz or .csv"
        )
    _check_finite(x, path)
    return x
