"""User arrays: .npy / .npz (never unpickled), .csv of numeric columns, and scaling to [0, 1].

Small files load into an in-memory `Dataset`; a .npy over `kerasae.data.MMAP_BYTES` is
memory-mapped (`numpy.load(mmap_mode="r")`) and streamed batch by batch (`MappedArray`),
uint8 kept uint8 until the batch is scaled. A .csv is min-max scaled with the training
split's statistics (saved in the run), parsed in one streaming pass straight to float32.
"""
import os

import numpy as np

from kerasae.data_memory import Dataset, _check_finite, _split, split_indices
from kerasae.errors import KerasaeError
from kerasae.io import load_numpy


def _load_numpy(path, test_fraction, scaling):
    name = os.path.basename(path)
    x, x_test = _read_numpy(path, ("x_train", "x", "X", "images", "data"), "x_test")
    if x_test is not None and x_test.ndim == x.ndim - 1:
        x_test = x_test[..., None]
    scaling = scaling or _infer_scaling(x, path)
    divisor = None
    if scaling["kind"] == "divide" and x.dtype == np.uint8 and \
            (x_test is None or x_test.dtype == np.uint8):
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
        raise KerasaeError(f"{path}: array {key!r} cannot be loaded as numeric data ({exc}); "
                           "save numeric arrays only") from None


def numeric(x, path, check_values=True):
    """x itself, refused unless numeric with an examples axis (and finite)."""
    if x.dtype.kind not in "biuf":
        raise KerasaeError(f"{path} has dtype {x.dtype}; numeric arrays only")
    if x.ndim < 2:
        raise KerasaeError(f"{path} has shape {x.shape}; need (examples, features) or "
                           "(examples, height, width[, channels])")
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
    """Map raw values to [0, 1] the way the run's training data was mapped."""
    x = np.asarray(x, dtype="float32")
    kind = (scaling or {"kind": "identity"})["kind"]
    if kind == "divide":
        return x / np.float32(scaling["scale"])
    if kind == "minmax":
        lo = np.asarray(scaling["min"], dtype="float32")
        span = np.asarray(scaling["max"], dtype="float32") - lo
        return (x - lo) / np.where(span > 0, span, 1.0).astype("float32")
    return x


def read_examples(path):
    """Every example of a user data file or image folder, raw and in file order (no split,
    no scaling): what `kerasae detect` scores. An image folder is read whole here; stream
    a large one with `load_dataset(path).batches("all", ...)` instead."""
    if not os.path.exists(path):
        raise KerasaeError(f"data path {path} does not exist; check the path")
    lower = str(path).lower()
    if os.path.isdir(path):
        from kerasae.data_files import open_images

        # raw pixel values, like the other files
        x = open_images(str(path), split=False).arrays("all") * np.float32(255.0)
    elif lower.endswith(".csv"):
        x = _read_csv(path)
    elif lower.endswith((".npy", ".npz")):
        x, _ = _read_numpy(path, ("x", "X", "x_test", "images", "data"))
    else:
        raise KerasaeError(f"{path}: unsupported file type; use an image folder, .npy, .npz "
                           "or .csv")
    _check_finite(x, path)
    return x


def _load_csv(path, test_fraction, scaling):
    data = _read_csv(path)
    name = os.path.basename(path)
    ds = _split(data, None, test_fraction, name)
    train, test = ds._store["train"], ds._store["test"]
    if scaling is None:  # statistics of the training split only: one pass, no copy
        scaling = {"kind": "minmax", "min": train.min(axis=0).tolist(),
                   "max": train.max(axis=0).tolist()}
    ds.scaling = scaling
    for x in (train, test):
        _scale_in_place(x, scaling)
    return ds


def _scale_in_place(x, scaling):
    kind = scaling["kind"]
    if kind == "divide":
        x /= np.float32(scaling["scale"])
    elif kind == "minmax":
        lo = np.asarray(scaling["min"], dtype="float32")
        span = np.asarray(scaling["max"], dtype="float32") - lo
        x -= lo
        x /= np.where(span > 0, span, 1.0).astype("float32")


def _read_csv(path, chunk=65536):
    """A CSV of numeric columns as float32, parsed in one streaming pass (rows are
    converted chunk by chunk, never held as strings)."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        rows = (r for r in csv.reader(f) if r and any(c.strip() for c in r))
        first = next(rows, None)
        if first is None:
            raise KerasaeError(f"{path} is empty; give a CSV of numeric columns")
        header = None
        try:
            [float(c) for c in first]
        except ValueError:
            header, first = first, None
        width = len(header or first)
        chunks, block, line = [], [], 1 + bool(header)
        for row in _chain(first, rows):
            if len(row) != width:
                raise KerasaeError(f"{path} line {line}: {len(row)} columns, "
                                   f"expected {width}; every row needs the same columns")
            block.append(row)
            line += 1
            if len(block) == chunk:
                chunks.append(_parse_block(block, path, header, line - len(block)))
                block = []
        if block:
            chunks.append(_parse_block(block, path, header, line - len(block)))
    data = np.concatenate(chunks) if chunks else np.empty((0, width), "float32")
    _check_finite(data, path)
    return data


def _chain(first, rows):
    if first is not None:
        yield first
    yield from rows


def _parse_block(block, path, header, first_line):
    try:
        return np.asarray(block, dtype="float32")
    except ValueError:
        pass
    for i, row in enumerate(block):  # find the offending cell for the message
        for j, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                col = header[j] if header else f"column {j + 1}"
                raise KerasaeError(f"{path}: {col!r} is not numeric ({cell!r} on line "
                                   f"{first_line + i}); drop or encode that column") from None
    raise KerasaeError(f"{path}: rows from line {first_line} cannot be read as numbers")


# ---------------------------------------------------------------------- memory-mapped .npy
class MappedArray:
    """A large .npy read through `numpy.load(mmap_mode="r")`: the OS pages rows in as the
    batches need them. The split is the in-memory one (`split_indices`), so the batches
    equal those of the same array loaded whole; scaling statistics come from one chunked
    pass (none for uint8, which is divided by 255 per batch)."""

    streaming = True
    y_train = y_test = None
    skipped = 0
    CHUNK_BYTES = 64 * 2 ** 20

    def __init__(self, path, test_fraction=0.2, scaling=None):
        from kerasae.io import NUMPY_MAGIC

        self.name = os.path.basename(path)
        with open(path, "rb") as f:
            if not f.read(6).startswith(NUMPY_MAGIC[0]):
                raise KerasaeError(f"{path} is not a .npy file (no NumPy header); write it "
                                   "with numpy.save")
        try:
            x = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise KerasaeError(f"{path} cannot be read as numeric numpy data ({exc})") from None
        x = numeric(x, path, check_values=False)
        self._x = x[..., None] if x.ndim == 3 and x.shape[-1] > 4 else x
        self.scaling = scaling or self._scan_scaling(path)
        self._divisor = None
        if self._x.dtype == np.uint8 and self.scaling["kind"] == "divide":
            self._divisor = float(self.scaling["scale"])
        train, test = split_indices(len(self._x), test_fraction, self.name)
        self._index = {"train": train, "test": test, "all": np.arange(len(self._x))}
        self.n_train, self.n_test = len(train), len(test)
        self.input_shape = tuple(self._x.shape[1:])

    def __repr__(self):
        return (f"MappedArray({self.name!r}, input_shape={self.input_shape}, "
                f"n_train={self.n_train}, n_test={self.n_test})")

    def _chunks(self):
        step = max(1, self.CHUNK_BYTES // max(1, self._x[:1].nbytes))
        for i in range(0, len(self._x), step):
            yield np.asarray(self._x[i:i + step])

    def _scan_scaling(self, path):
        if self._x.dtype == np.uint8:
            return _infer_scaling(self._x, path)
        lo = hi = None  # per-feature minimum and maximum, in one pass over the file
        for chunk in self._chunks():
            _check_finite(chunk, path)
            c_lo, c_hi = chunk.min(axis=0), chunk.max(axis=0)
            lo = c_lo if lo is None else np.minimum(lo, c_lo)
            hi = c_hi if hi is None else np.maximum(hi, c_hi)
        return _infer_scaling(self._x, path, lo, hi)

    def _check_split(self, split):
        if split not in self._index:
            raise KerasaeError(f"split must be 'train', 'test' or 'all', got {split!r}")
        return self._index[split]

    def _gather(self, index):
        rows = np.asarray(self._x[np.asarray(index)])
        return rows if self._divisor is not None else apply_scaling(rows, self.scaling)

    def batches(self, split, batch_size, shuffle=False, seed=0, repeat=False,
                drop_remainder=False, shard=True):
        """float32 batches in [0, 1]: row indices shuffled and batched, each batch's rows
        read from the map in one fancy index (uint8 until scaled)."""
        import tensorflow as tf

        from kerasae import pipeline

        index = self._check_split(split)
        out_type = self._x.dtype if self._divisor is not None else np.float32
        ds = tf.data.Dataset.from_tensor_slices(index)
        ds, policy = pipeline.shard_items(ds, len(index) if shard else 0)
        if shuffle:
            ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)

        def gather(i):
            rows = tf.numpy_function(self._gather, [i], tf.as_dtype(out_type), stateful=False)
            rows = tf.ensure_shape(rows, (None, *self.input_shape))
            return pipeline.scale_batch(rows, self._divisor)

        ds = ds.map(gather, num_parallel_calls=pipeline.PARALLEL, deterministic=True)
        return ds.with_options(pipeline.pipeline_options(policy)).prefetch(2)

    def head(self, split, n):
        return self._scaled(self._gather(self._check_split(split)[:n]))

    def arrays(self, split):
        index = self._check_split(split)
        out = np.empty((len(index), *self.input_shape), dtype="float32")
        step = max(1, self.CHUNK_BYTES // max(1, out[:1].nbytes))
        for i in range(0, len(index), step):
            out[i:i + step] = self._scaled(self._gather(index[i:i + step]))
        return out

    def _scaled(self, rows):
        if self._divisor is None:
            return rows
        return rows.astype("float32") / np.float32(self._divisor)
