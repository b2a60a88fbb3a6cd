"""What `kerasae detect` scores: every example of a source, in file order, read batch by batch.

Scoring must not hold the data either (Japkowicz et al.'s reconstruction-error detector
scores each example on its own): an image folder or TFRecord files stream through
tf.data, read the way the run read its training data (`image_size`, `channels`, `feature`
from its config.json), each image tagged with its relative path so a file that fails to
decode mid-stream cannot shift the paths of the scores after it; a large `.npy` is
memory-mapped and read in slices; a named dataset gives its test split. Values are scaled
like the run's training data.
"""

import os
import warnings

import numpy as np
import tensorflow as tf

from kerasae.data import streams
from kerasae.data.arrays import apply_scaling, numeric, read_examples
from kerasae.data.images import decode_image
from kerasae.data.options import data_options
from kerasae.data.pipeline import PARALLEL, pipeline_options
from kerasae.data.schemes import MMAP_BYTES
from kerasae.data.sources import is_named, load_dataset
from kerasae.errors import KerasaeError


class ScoredExamples:
    """`shape` of one example, `n` examples (known up front), `keys` (relative paths of an
    image folder's files, else None) and `batches()`: (row indices, float32 batch) pairs."""

    def __init__(self, shape, n, batches, keys=None):
        self.shape, self.n, self.keys = tuple(shape), int(n), keys
        self.batches = batches

    def score(self, model):
        """(row indices, scores) of every example read; rows that failed to decode are
        missing from both."""
        index, scores = [], []
        for rows, x in self.batches():
            index.append(np.asarray(rows, dtype="int64"))
            scores.append(np.asarray(model.score(x, batch_size=len(x))))
        if not scores:
            raise KerasaeError("no examples to score (the data is empty)")
        return np.concatenate(index), np.concatenate(scores)


def scored_examples(source, config, batch_size=256):
    """The `ScoredExamples` of SOURCE for the run whose config.json is `config`."""
    source, scaling = str(source), config.get("scaling")
    if is_named(source):  # a named dataset: its test split
        data = load_dataset(source)
        return ScoredExamples(
            data.input_shape, data.n_test, lambda: _numbered(data.batches("test", batch_size))
        )
    if streams.is_image_source(source):
        return _images(source, config, batch_size, scaling)
    if (
        source.lower().endswith(".npy")
        and os.path.isfile(source)
        and os.path.getsize(source) > MMAP_BYTES
    ):
        return _mapped(source, scaling, batch_size)
    x = _in_memory(source, scaling)
    return ScoredExamples(
        x.shape[1:],
        len(x),
        lambda: (
            (np.arange(i, min(i + batch_size, len(x))), x[i : i + batch_size])
            for i in range(0, len(x), batch_size)
        ),
    )


def _numbered(batches):
    start = 0
    for x in batches.as_numpy_iterator():
        yield np.arange(start, start + len(x)), x
        start += len(x)


def _rescale(scaling):
    """Images stream in [0, 1] (pixels / 255): what maps them to the run's own scaling."""
    if not scaling or (scaling.get("kind") == "divide" and float(scaling["scale"]) == 255.0):
        return None

    return lambda x: apply_scaling(x * np.float32(255.0), scaling)


def _images(source, config, batch_size, scaling):
    options = data_options(config)
    if not streams.tfrecord_files(source):
        options.pop("feature", None)  # the run read TFRecord files; this is a folder
    data = streams.open_images(source, split=False, **options)
    rescale = _rescale(scaling)
    n = data.count("all")
    if not hasattr(data, "keys"):  # TFRecord files: rows numbered in file order

        def batches():
            for rows, x in _numbered(data.batches("all", batch_size)):
                yield rows, (x if rescale is None else rescale(x))

        return ScoredExamples(data.input_shape, n, batches)
    keys = data.keys("all")
    files = [os.path.join(data.path, k) for k in keys]

    def batches():
        for rows, x in _keyed_images(files, data.input_shape, batch_size).as_numpy_iterator():
            yield rows, (x if rescale is None else rescale(x))

    return ScoredExamples(data.input_shape, n, batches, keys)


def _keyed_images(files, shape, batch_size):
    """(row index, image / 255) batches of `files` in order; undecodable ones dropped."""

    size, channels = tuple(shape[:2]), shape[2]
    ds = tf.data.Dataset.from_tensor_slices(
        (np.arange(len(files), dtype="int64"), np.asarray(files))
    )
    ds = ds.map(
        lambda i, path: (i, decode_image(tf.io.read_file(path), channels, size)),
        num_parallel_calls=PARALLEL,
        deterministic=True,
    ).ignore_errors()
    ds = ds.batch(batch_size).map(lambda i, x: (i, tf.cast(x, tf.float32) / 255.0))
    return ds.with_options(pipeline_options()).prefetch(2)


def _mapped(path, scaling, batch_size):
    """A large .npy, memory-mapped: each batch is sliced, then scaled."""
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise KerasaeError(f"{path} cannot be read as numeric numpy data ({exc})") from None
    numeric(x, path, check_values=False)
    grey = x.ndim == 3 and x.shape[-1] > 4  # (N, H, W) greyscale images
    shape = (*x.shape[1:], 1) if grey else x.shape[1:]

    def batches():
        for i in range(0, len(x), batch_size):
            part = apply_scaling(np.asarray(x[i : i + batch_size]), scaling)
            if not np.isfinite(part).all():
                raise KerasaeError(f"{path} contains NaN or infinite values; clean or impute them")
            yield np.arange(i, i + len(part)), (part[..., None] if grey else part)

    return ScoredExamples(shape, len(x), batches)


def _in_memory(source, scaling):
    """A small file read whole (as before streaming), scaled like the training data."""
    x = read_examples(source)
    if (
        (scaling or {}).get("kind") == "divide"
        and x.dtype.kind == "f"
        and x.size
        and float(x.max()) <= 1.0 < float(scaling["scale"])
    ):
        warnings.warn(
            f"{source} already holds values in [0, 1]; it is used as is instead of "
            f"being divided by {scaling['scale']:g} like the training data",
            stacklevel=2,
        )
        return x.astype("float32")
    return apply_scaling(x, scaling)
