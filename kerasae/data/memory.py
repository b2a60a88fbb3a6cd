"""The in-memory dataset: train and test splits held as arrays (kerasae.data opens them).

Image sets keep their pixels uint8 and scale each batch; `x_train` / `x_test` (float32 in
[0, 1]) are computed from that store on first access, for scripts and closed-form fits.
"""

import numpy as np

from kerasae.data.pipeline import make_tf_dataset
from kerasae.errors import KerasaeError

SPLIT_SEED = 0  # the train/test split never depends on --seed, so evaluate sees the same test set


class Dataset:
    """A dataset held in memory: the train and test splits of x (and labels where known).

    Named image sets keep their pixels in their own dtype (uint8) with a `divisor`, and scale
    per batch; `x_train` / `x_test` (float32 in [0, 1], the public arrays scripts use) are
    computed from that store on first access. Other data is stored scaled, as float32.
    The same interface as a streaming dataset (`kerasae.data.streams`): n_train, n_test,
    batches, head, arrays.
    """

    streaming = False
    skipped = 0  # files that could not be decoded: only a streamed image folder skips any

    def __init__(
        self, name, x_train, x_test, y_train=None, y_test=None, scaling=None, divisor=None
    ):
        self.name, self.y_train, self.y_test = name, y_train, y_test
        self.scaling = scaling  # how raw values were mapped to [0, 1] (saved in the run)
        self._store = {"train": x_train, "test": x_test}
        self._divisor = divisor  # None: the store is already scaled float32
        self._scaled = {}

    def __repr__(self):
        return (
            f"Dataset({self.name!r}, input_shape={self.input_shape}, "
            f"n_train={self.n_train}, n_test={self.n_test})"
        )

    @property
    def input_shape(self):
        return tuple(self._store["train"].shape[1:])

    @property
    def n_train(self):
        return len(self._store["train"])

    @property
    def n_test(self):
        return len(self._store["test"])

    def count(self, split):
        return len(self._split_store(split))

    @property
    def x_train(self):
        return self.arrays("train")

    @x_train.setter
    def x_train(self, value):
        self._set("train", value)

    @property
    def x_test(self):
        return self.arrays("test")

    @x_test.setter
    def x_test(self, value):
        self._set("test", value)

    def _set(self, split, value):
        if self._divisor is not None:  # one scale for both splits: store the other scaled too
            other = "test" if split == "train" else "train"
            self._store[other], self._divisor = self.arrays(other), None
        self._store[split] = np.asarray(value)
        self._scaled.clear()

    def _split_store(self, split):
        if split not in self._store:
            raise KerasaeError(f"split must be 'train' or 'test', got {split!r}")
        return self._store[split]

    def _scale(self, x):
        if self._divisor is None:
            return np.asarray(x, dtype="float32")
        return np.asarray(x).astype("float32") / np.float32(self._divisor)

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
        """float32 batches of x scaled to [0, 1] (uint8 until the batch is scaled).
        `shard` is accepted as streamed datasets take it: in memory, every worker holds the
        data and tf.distribute keeps each worker's batches (DATA policy) anyway."""
        x = self._split_store(split)
        if self._divisor is None:
            x = self.arrays(split)
        return make_tf_dataset(
            x,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            repeat=repeat,
            divisor=self._divisor,
            drop_remainder=drop_remainder,
        )

    def head(self, split, n):
        """The first n examples of the split, float32, scaled."""
        return self._scale(self._split_store(split)[:n])

    def arrays(self, split):
        """The whole split, float32, scaled (computed once, then kept)."""
        x = self._split_store(split)
        if self._divisor is None and x.dtype == np.float32:
            return x
        if split not in self._scaled:
            self._scaled[split] = self._scale(x)
        return self._scaled[split]


def _check_finite(x, source):
    if x.size == 0 or len(x) == 0:
        raise KerasaeError(f"{source} holds no examples; pass a non-empty array")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise KerasaeError(f"{source} contains NaN or infinite values; clean or impute them")


def split_indices(n, test_fraction, name, y=None):
    """(train, test) row indices of a fixed split (SPLIT_SEED, stratified by labels where
    there are enough): the same rows whether the array is in memory or memory-mapped."""
    # slow to import: only where it is used
    from sklearn.model_selection import train_test_split

    if n < 2:
        raise KerasaeError(
            f"{name} has {n} example(s); at least 2 are needed for a train/test split"
        )
    stratify = y if y is not None and np.unique(y).size * 2 <= len(y) else None
    return train_test_split(
        np.arange(n), test_size=test_fraction, random_state=SPLIT_SEED, stratify=stratify
    )


def _split(x, y, test_fraction, name, scaling=None, divisor=None):
    train, test = split_indices(len(x), test_fraction, name, y)
    if y is None:
        return Dataset(name, x[train], x[test], scaling=scaling, divisor=divisor)
    return Dataset(name, x[train], x[test], y[train], y[test], scaling=scaling, divisor=divisor)
