"""A large .npy, memory-mapped (`numpy.load(mmap_mode="r")`) and streamed batch by batch."""

import os

import numpy as np
import tensorflow as tf

from kerasae.data import pipeline
from kerasae.data.arrays import _infer_scaling, apply_scaling, numeric
from kerasae.data.memory import _check_finite, split_indices
from kerasae.errors import KerasaeError
from kerasae.io import NUMPY_MAGIC


# ---------------------------------------------------------------------- memory-mapped .npy
class MappedArray:
    """A large .npy read through `numpy.load(mmap_mode="r")`: the OS pages rows in as the
    batches need them. The split is the in-memory one (`split_indices`), so the batches
    equal those of the same array loaded whole; scaling statistics come from one chunked
    pass (none for uint8, which is divided by 255 per batch)."""

    streaming = True
    y_train = y_test = None
    skipped = 0
    CHUNK_BYTES = 64 * 2**20

    def __init__(self, path, test_fraction=0.2, scaling=None):
        self.name = os.path.basename(path)
        with open(path, "rb") as f:
            if not f.read(6).startswith(NUMPY_MAGIC[0]):
                raise KerasaeError(
                    f"{path} is not a .npy file (no NumPy header); write it with numpy.save"
                )
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
        return (
            f"MappedArray({self.name!r}, input_shape={self.input_shape}, "
            f"n_train={self.n_train}, n_test={self.n_test})"
        )

    def _chunks(self):
        step = max(1, self.CHUNK_BYTES // max(1, self._x[:1].nbytes))
        for i in range(0, len(self._x), step):
            yield np.asarray(self._x[i : i + step])

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

    def batches(
        self,
        split,
        batch_size,
        shuffle=False,
        seed=0,
        repeat=False,
        drop_remainder=False,
        shard=True,
    ):
        """float32 batches in [0, 1]: row indices shuffled and batched, each batch's rows
        read from the map in one fancy index (uint8 until scaled)."""

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
            out[i : i + step] = self._scaled(self._gather(index[i : i + step]))
        return out

    def _scaled(self, rows):
        if self._divisor is None:
            return rows
        return rows.astype("float32") / np.float32(self._divisor)
