"""Datasets: named ones and user data, scaled to [0, 1] per batch (pipelines: kerasae.pipeline).

Named: `digits` (scikit-learn's 8x8 digits, always offline), `fashion_mnist` (Debian's
dataset-fashion-mnist first, then the Keras cache, then a download), `mnist` and `cifar10`
(Keras loaders), held in memory as uint8 (`kerasae.data_memory.Dataset`). Paths: an image
folder or TFRecord files, streamed (`kerasae.data_files`, `kerasae.data_records`); `.npy` /
`.npz` (never unpickled; a large .npy memory-mapped) and `.csv` of numeric columns
(`kerasae.data_arrays`). Every dataset offers the same interface: n_train, n_test,
batches(split, batch_size, ...), head(split, n), arrays(split).
"""
import gzip
import os

import numpy as np

from kerasae.data_arrays import _load_csv, _load_numpy, apply_scaling, numeric, read_examples
from kerasae.data_files import IMAGE_SUFFIXES
from kerasae.data_memory import SPLIT_SEED, Dataset, _check_finite, _split
from kerasae.errors import KerasaeError

__all__ = ["NAMED", "IMAGE_SUFFIXES", "MMAP_BYTES", "SPLIT_SEED", "Dataset", "load_dataset",
           "apply_scaling", "numeric", "read_examples"]

NAMED = ("digits", "fashion_mnist", "mnist", "cifar10")
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)
MMAP_BYTES = 256 * 2 ** 20  # larger .npy files are memory-mapped and streamed


def load_dataset(source, test_fraction=0.2, scaling=None, image_size=None, channels=None,
                 feature=None):
    """A dataset from a registered name or a path. `scaling` re-applies a saved scaling.

    Named sets and small arrays are an in-memory `Dataset`; image folders, TFRecord files
    (a quoted glob or a folder of *.tfrecord) and .npy files over `MMAP_BYTES` stream from
    disk (`kerasae.data_files`). `image_size` (H, W), `channels` (1 or 3) and `feature`
    (the TFRecord bytes feature, default "image") apply to image files only.
    """
    from kerasae import data_files

    source = str(source)
    image_options = {"image_size": image_size, "channels": channels, "feature": feature}
    if source in NAMED or not data_files.is_image_source(source):
        given = [k for k, v in image_options.items() if v is not None]
        if given:
            raise KerasaeError(f"--{given[0].replace('_', '-')} applies to image folders and "
                               f"TFRecord files, not to {source}; drop it")
    if source in NAMED:
        return globals()[f"_load_{source}"]()
    if data_files.is_image_source(source):
        return data_files.open_images(source, test_fraction, **image_options)
    if os.path.exists(source):
        ds = _load_path(source, test_fraction, scaling)
    elif os.sep in source or "." in os.path.basename(source):
        raise KerasaeError(f"data path {source} does not exist; check the path")
    else:
        raise KerasaeError(f"unknown dataset {source!r}; use one of {', '.join(NAMED)} "
                           "or a path to an image folder, TFRecord files, .npy, .npz or .csv")
    if not ds.streaming:
        for split in ("train", "test"):
            _check_finite(ds._store[split], source)
    return ds


# ---------------------------------------------------------------------- named datasets
def _load_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()  # integer grey levels 0..16, stored as uint8
    return _split(bunch.images.astype("uint8")[..., None], bunch.target.astype("int64"), 0.2,
                  "digits", {"kind": "divide", "scale": 16.0}, divisor=16.0)


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _load_fashion_mnist():
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    cache = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")),
                         "datasets", "fashion-mnist")
    for folder in (*FASHION_DIRS, cache):
        if all(os.path.exists(os.path.join(folder, n)) for n in names):
            xtr, ytr, xte, yte = (_read_idx(os.path.join(folder, n)) for n in names)
            return _images(xtr, ytr, xte, yte, "fashion_mnist")
    return _keras_dataset(
        "fashion_mnist",
        "Fashion-MNIST is not installed and cannot be downloaded; "
        "run `apt-get install dataset-fashion-mnist`")


def _load_mnist():
    return _keras_dataset("mnist", "MNIST could not be downloaded; copy mnist.npz into "
                                   "~/.keras/datasets/ or use --dataset digits")


def _load_cifar10():
    return _keras_dataset("cifar10", "CIFAR-10 could not be downloaded; copy it into "
                                     "~/.keras/datasets/ or use another dataset")


def _keras_dataset(name, hint):
    import keras

    try:
        (xtr, ytr), (xte, yte) = getattr(keras.datasets, name).load_data()
    except Exception as exc:
        raise KerasaeError(f"{hint} ({type(exc).__name__})") from None
    return _images(xtr, ytr, xte, yte, name)


def _images(xtr, ytr, xte, yte, name):
    def prep(x):  # kept uint8: scaled per batch
        return np.asarray(x)[..., None] if x.ndim == 3 else np.asarray(x)

    return Dataset(name, prep(xtr), prep(xte), np.ravel(ytr).astype("int64"),
                   np.ravel(yte).astype("int64"), {"kind": "divide", "scale": 255.0}, 255.0)


# ---------------------------------------------------------------------- user data
def _load_path(path, test_fraction, scaling):
    lower = path.lower()
    if lower.endswith(".csv"):
        return _load_csv(path, test_fraction, scaling)
    if lower.endswith(".npy") and os.path.getsize(path) > MMAP_BYTES:
        from kerasae.data_arrays import MappedArray

        return MappedArray(path, test_fraction, scaling)
    if lower.endswith(".npy") or lower.endswith(".npz"):
        return _load_numpy(path, test_fraction, scaling)
    raise KerasaeError(f"{path}: unsupported file type; use an image folder, TFRecord files, "
                       ".npy, .npz or .csv")
