"""The named datasets: `digits`, `fashion_mnist`, `mnist`, `cifar10` (held in memory as uint8)
and `dsprites` (rendered by kerasae: dsprites.py, dsprites_data.py).

`digits` is scikit-learn's 8x8 digits (always offline); `fashion_mnist` (Xiao et al. 2017)
is read from Debian's dataset-fashion-mnist first, then the Keras cache, then a download;
`mnist` and `cifar10` come from Keras's loaders. Each is scaled to [0, 1] per batch.
The sources are known without TensorFlow; loading one imports it.
"""

import gzip
import os

import numpy as np

from kerasae.data import dsprites
from kerasae.data.sources import DataSource, register_dataset
from kerasae.errors import KerasaeError

NAMED = ("digits", "fashion_mnist", "mnist", "cifar10", "dsprites")


FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)


# ---------------------------------------------------------------------- named datasets
def _load_digits():
    from sklearn.datasets import load_digits  # slow to import: only where it is used

    from kerasae.data.memory import _split  # TensorFlow: only once a dataset is opened

    bunch = load_digits()  # integer grey levels 0..16, stored as uint8
    return _split(
        bunch.images.astype("uint8")[..., None],
        bunch.target.astype("int64"),
        0.2,
        "digits",
        {"kind": "divide", "scale": 16.0},
        divisor=16.0,
    )


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _load_fashion_mnist():
    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    cache = os.path.join(
        os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "datasets", "fashion-mnist"
    )
    for folder in (*FASHION_DIRS, cache):
        if all(os.path.exists(os.path.join(folder, n)) for n in names):
            xtr, ytr, xte, yte = (_read_idx(os.path.join(folder, n)) for n in names)
            return _images(xtr, ytr, xte, yte, "fashion_mnist")
    return _keras_dataset(
        "fashion_mnist",
        "Fashion-MNIST is not installed and cannot be downloaded; "
        "run `apt-get install dataset-fashion-mnist`",
    )


def _load_mnist():
    return _keras_dataset(
        "mnist",
        "MNIST could not be downloaded; copy mnist.npz into "
        "~/.keras/datasets/ or use --dataset digits",
    )


def _load_cifar10():
    return _keras_dataset(
        "cifar10",
        "CIFAR-10 could not be downloaded; copy it into ~/.keras/datasets/ or use another dataset",
    )


def _keras_dataset(name, hint):
    import keras  # TensorFlow: only once a dataset is opened

    try:
        (xtr, ytr), (xte, yte) = getattr(keras.datasets, name).load_data()
    except Exception as exc:
        raise KerasaeError(f"{hint} ({type(exc).__name__})") from None
    return _images(xtr, ytr, xte, yte, name)


def _images(xtr, ytr, xte, yte, name):
    from kerasae.data.memory import Dataset  # TensorFlow: only once a dataset is opened

    def prep(x):  # kept uint8: scaled per batch
        return np.asarray(x)[..., None] if x.ndim == 3 else np.asarray(x)

    return Dataset(
        name,
        prep(xtr),
        prep(xte),
        np.ravel(ytr).astype("int64"),
        np.ravel(yte).astype("int64"),
        {"kind": "divide", "scale": 255.0},
        255.0,
    )


class NamedDataset(DataSource):
    """A dataset known by its name, held in memory (the train/test split is its own)."""

    load = None

    def open(self, source, test_fraction=0.2, scaling=None):
        return type(self).load()


@register_dataset("digits")
class Digits(NamedDataset):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes): always offline."""

    order = 1
    load = staticmethod(_load_digits)


@register_dataset("fashion_mnist")
class FashionMNIST(NamedDataset):
    """Fashion-MNIST (Xiao et al. 2017): 70,000 28x28 garments, 10 classes (Debian's
    dataset-fashion-mnist, else the Keras cache)."""

    order = 2
    load = staticmethod(_load_fashion_mnist)


@register_dataset("mnist")
class MNIST(NamedDataset):
    """MNIST (LeCun et al. 1998): 70,000 28x28 digits, from the Keras cache or a download."""

    order = 3
    load = staticmethod(_load_mnist)


@register_dataset("cifar10")
class CIFAR10(NamedDataset):
    """CIFAR-10 (Krizhevsky 2009): 60,000 32x32 colour images, from the Keras cache or a
    download."""

    order = 4
    load = staticmethod(_load_cifar10)


@register_dataset("dsprites")
class DSprites(DataSource):
    """dSprites (Matthey et al. 2017): 737,280 binary 64x64 sprites over 5 factors, rendered
    offline (the whole grid cached once, 377 MB); `dsprites:N` for a fixed subset of N images
    (e.g. dsprites:20000), rendered in memory."""

    order = 5
    argument = "N"
    factors = True

    def check_argument(self, argument):
        dsprites.check_subset(argument)

    def open(self, source, test_fraction=0.2, scaling=None):
        from kerasae.data.dsprites_data import open_dsprites  # TensorFlow: only when opened

        return open_dsprites(dsprites.subset_size(source), test_fraction)
