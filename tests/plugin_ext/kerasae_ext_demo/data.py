"""Data sources: `blobs` (a named dataset) and `gauss:D` (a path scheme)."""

import numpy as np

from kerasae.data import Dataset, DataSource, register_dataset


def _dataset(name, x, labels=None):
    x = (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0))  # scaled to [0, 1]
    cut = int(0.8 * len(x))
    return Dataset(
        name,
        x[:cut].astype("float32"),
        x[cut:].astype("float32"),
        *((labels[:cut], labels[cut:]) if labels is not None else ()),
        scaling={"kind": "identity"},
    )


@register_dataset("blobs")
class Blobs(DataSource):
    """Three Gaussian blobs in 8 features (scikit-learn's make_blobs), 600 examples."""

    def open(self, source, test_fraction=0.2, scaling=None):
        from sklearn.datasets import make_blobs

        x, y = make_blobs(n_samples=600, n_features=8, centers=3, random_state=0)
        return _dataset("blobs", x, y)


@register_dataset("gauss")
class GaussianCloud(DataSource):
    """gauss:D, a correlated Gaussian cloud of D features (400 examples)."""

    path_scheme = True
    reads = "gauss:D (a Gaussian cloud of D features)"

    def claims(self, source):
        prefix, _, dim = source.partition(":")
        return prefix == "gauss" and dim.isdigit()

    def open(self, source, test_fraction=0.2, scaling=None):
        dim = int(source.partition(":")[2])
        rng = np.random.default_rng(dim)
        x = rng.standard_normal((400, dim)) @ rng.normal(size=(dim, dim))
        return _dataset(source, x)
