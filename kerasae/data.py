"""Datasets: named ones and user data, as float32 arrays in [0, 1] (pipelines: kerasae.pipeline).

Named: `digits` (scikit-learn's 8x8 digits, always offline), `fashion_mnist` (Debian's
dataset-fashion-mnist first, then the Keras cache, then a download), `mnist` and `cifar10`
(Keras loaders). Paths: a folder of images, `.npy` / `.npz` (never unpickled), `.csv` of
numeric columns (min-max scaled with the training split's statistics, saved in the run).
"""
import dataclasses
import gzip
import os

import numpy as np

from kerasae.errors import KerasaeError
from kerasae.io import load_numpy

NAMED = ("digits", "fashion_mnist", "mnist", "cifar10")
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SPLIT_SEED = 0  # the train/test split never depends on --seed, so evaluate sees the same test set


@dataclasses.dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray = None
    y_test: np.ndarray = None
    scaling: dict = None  # how raw values were mapped to [0, 1] (saved in the run)

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])


def load_dataset(source, test_fraction=0.2, scaling=None):
    """A `Dataset` from a registered name or a path. `scaling` re-applies a saved scaling."""
    source = str(source)
    if source in NAMED:
        ds = globals()[f"_load_{source}"]()
    elif os.path.exists(source):
        ds = _load_path(source, test_fraction, scaling)
    elif os.sep in source or "." in os.path.basename(source):
        raise KerasaeError(f"data path {source} does not exist; check the path")
    else:
        raise KerasaeError(f"unknown dataset {source!r}; use one of {', '.join(NAMED)} "
                           "or a path to an image folder, .npy, .npz or .csv file")
    for split in (ds.x_train, ds.x_test):
        _check_finite(split, source)
    return ds


def _check_finite(x, source):
    if x.size == 0 or len(x) == 0:
        raise KerasaeError(f"{source} holds no examples; pass a non-empty array")
    if not np.isfinite(x).all():
        raise KerasaeError(f"{source} contains NaN or infinite values; clean or impute them")


def _split(x, y, test_fraction, name, scaling=None):
    from sklearn.model_selection import train_test_split

    if len(x) < 2:
        raise KerasaeError(f"{name} has {len(x)} example(s); at least 2 are needed for a "
                           "train/test split")
    stratify = y if y is not None and np.unique(y).size * 2 <= len(y) else None
    parts = train_test_split(x, *([y] if y is not None else []), test_size=test_fraction,
                             random_state=SPLIT_SEED, stratify=stratify)
    if y is None:
        return Dataset(name, parts[0], parts[1], scaling=scaling)
    return Dataset(name, parts[0], parts[1], parts[2], parts[3], scaling=scaling)


# ---------------------------------------------------------------------- named datasets
def _load_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]
    return _split(x, bunch.target.astype("int64"), 0.2, "digits",
                  {"kind": "divide", "scale": 16.0})


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
    def prep(x):
        x = x.astype("float32") / 255.0
        return x[..., None] if x.ndim == 3 else x

    return Dataset(name, prep(xtr), prep(xte), np.ravel(ytr).astype("int64"),
                   np.ravel(yte).astype("int64"), {"kind": "divide", "scale": 255.0})


# ---------------------------------------------------------------------- user data
def _load_path(path, test_fraction, scaling):
    name = os.path.basename(os.path.normpath(path))
    if os.path.isdir(path):
        return _split(_image_folder(path), None, test_fraction, name,
                      {"kind": "divide", "scale": 255.0})
    lower = path.lower()
    if lower.endswith(".csv"):
        return _load_csv(path, test_fraction, scaling)
    if lower.endswith(".npy") or lower.endswith(".npz"):
        return _load_numpy(path, test_fraction, scaling)
    raise KerasaeError(f"{path}: unsupported file type; use an image folder, .npy, .npz or .csv")


def _image_folder(path):
    from PIL import Image

    files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise KerasaeError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    arrays, first = [], None
    for f in files:
        try:
            with Image.open(os.path.join(path, f)) as im:
                im = im.convert("L" if im.mode in ("1", "L", "P", "I", "F") else "RGB")
                a = np.asarray(im)
        except OSError as exc:
            raise KerasaeError(f"image {f} in {path} cannot be read ({exc}); remove it") from None
        if first is None:
            first = (f, a.shape)
        elif a.shape != first[1]:
            raise KerasaeError(
                f"images in {path} have mixed sizes ({first[0]} is {first[1]}, {f} is "
                f"{a.shape}); resize them to one size")
        arrays.append(a)
    x = np.stack(arrays).astype("float32") / 255.0
    return x[..., None] if x.ndim == 3 else x


def _load_numpy(path, test_fraction, scaling):
    name = os.path.basename(path)
    x, x_test = _read_numpy(path, ("x_train", "x", "X", "images", "data"), "x_test")
    if x_test is not None and x_test.ndim == x.ndim - 1:
        x_test = x_test[..., None]
    scaling = scaling or _infer_scaling(x, path)
    x = apply_scaling(x, scaling)
    if x_test is not None:
        return Dataset(name, x, apply_scaling(x_test, scaling), scaling=scaling)
    return _split(x, None, test_fraction, name, scaling)


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
            x = _numeric(x, path)
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


def _numeric(x, path):
    if x.dtype.kind not in "biuf":
        raise KerasaeError(f"{path} has dtype {x.dtype}; numeric arrays only")
    if x.ndim < 2:
        raise KerasaeError(f"{path} has shape {x.shape}; need (examples, features) or "
                           "(examples, height, width[, channels])")
    _check_finite(x.astype("float64"), path)
    return x


def _infer_scaling(x, path):
    if x.dtype == np.uint8:
        return {"kind": "divide", "scale": 255.0}
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and hi <= 1.0:
        return {"kind": "identity"}
    if lo >= 0.0 and hi <= 255.0 and x.ndim >= 3:
        return {"kind": "divide", "scale": 255.0}
    return _minmax(x)


def _minmax(x):
    return {"kind": "minmax", "min": np.min(x, axis=0).tolist(), "max": np.max(x, axis=0).tolist()}


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
    no scaling): what `kerasae detect` scores."""
    if not os.path.exists(path):
        raise KerasaeError(f"data path {path} does not exist; check the path")
    lower = str(path).lower()
    if os.path.isdir(path):
        x = _image_folder(path) * np.float32(255.0)  # raw pixel values, like the other files
    elif lower.endswith(".csv"):
        x = _read_csv(path)
    elif lower.endswith((".npy", ".npz")):
        x, _ = _read_numpy(path, ("x", "X", "x_test", "images", "data"))
    else:
        raise KerasaeError(f"{path}: unsupported file type; use an image folder, .npy, .npz or .csv")
    _check_finite(np.asarray(x, dtype="float64"), path)
    return x


def _load_csv(path, test_fraction, scaling):
    data = _read_csv(path)
    name = os.path.basename(path)
    if scaling is not None:
        return _split(apply_scaling(data, scaling), None, test_fraction, name, scaling)
    ds = _split(data.astype("float32"), None, test_fraction, name)
    ds.scaling = _minmax(ds.x_train)  # statistics of the training split only
    ds.x_train, ds.x_test = apply_scaling(ds.x_train, ds.scaling), apply_scaling(ds.x_test, ds.scaling)
    return ds


def _read_csv(path):
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise KerasaeError(f"{path} is empty; give a CSV of numeric columns")
    header = None
    try:
        [float(c) for c in rows[0]]
    except ValueError:
        header, rows = rows[0], rows[1:]
    width = len(header or rows[0]) if rows else 0
    data = np.empty((len(rows), width), dtype="float64")
    for i, row in enumerate(rows):
        if len(row) != width:
            raise KerasaeError(f"{path} line {i + 1 + bool(header)}: {len(row)} columns, "
                               f"expected {width}; every row needs the same columns")
        for j, cell in enumerate(row):
            try:
                data[i, j] = float(cell)
            except ValueError:
                col = header[j] if header else f"column {j + 1}"
                raise KerasaeError(f"{path}: {col!r} is not numeric ({cell!r} on line "
                                   f"{i + 1 + bool(header)}); drop or encode that column") from None
    _check_finite(data, path)
    return data
