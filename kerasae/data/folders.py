"""Streaming datasets: image folders, decoded inside tf.data, never whole.

Memory does not grow with the data: what is held is the file list (an image folder's paths,
read once with a sorted `os.walk`) and one shuffle buffer; pixels stay uint8 until the batch
is scaled. The train/test split is a stable hash of each example's key (an image's relative
path), so it never depends on listing order or on files added later, and a folder
converted to TFRecord (`kerasae.data.tfrecord`) keeps its split.
"""

import os
import warnings

import numpy as np
import tensorflow as tf

from kerasae.data import pipeline
from kerasae.data.images import (
    GREY_MODES,
    IMAGE_SUFFIXES,
    SCALING,
    TF_FORMATS,
    _header,
    decode_image,
    key_fraction,
    list_images,
)
from kerasae.data.pipeline import file_dataset
from kerasae.errors import KerasaeError


# ---------------------------------------------------------------------- the common interface
class StreamingDataset:
    """What every streamed source offers (the in-memory `kerasae.data.Dataset` offers the
    same): name, input_shape, scaling, n_train, n_test, batches, head, arrays. Labels are
    not streamed (y_train/y_test None). Split "all" is every example, in source order."""

    streaming = True
    y_train = y_test = None
    skipped = 0
    scaling = SCALING

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.name!r}, input_shape={self.input_shape}, "
            f"n_train={self.n_train}, n_test={self.n_test})"
        )

    def count(self, split):
        return {"train": self.n_train, "test": self.n_test, "all": self.n_train + self.n_test}[
            self._check_split(split)
        ]

    def _check_split(self, split):
        if split not in ("train", "test", "all"):
            raise KerasaeError(f"split must be 'train', 'test' or 'all', got {split!r}")
        return split

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
        """float32 batches of x in [0, 1] (uint8 until the batch is scaled), prefetched.

        One pass has a known length (`pipeline.with_length`), so `model.fit(data.batches(
        "train", 128))` counts its steps and its loss right; an endless one (`repeat`) and
        a worker's shard under a multi-worker strategy are sized by `steps_per_epoch`.
        `shard=False`: every example, read on this machine even under a multi-worker
        strategy (scores, statistics), never distributed."""
        ds = self._pipeline(
            self._check_split(split),
            batch_size,
            shuffle,
            seed,
            repeat,
            drop_remainder,
            shard=shard,
        )
        n = self.count(split)
        steps = n // batch_size if drop_remainder else -(-n // batch_size)
        if repeat or not steps or (shard and pipeline.worker_count() > 1):
            return ds
        return pipeline.with_length(ds, steps)

    def head(self, split, n):
        """The first n examples of the split in source order, float32, scaled."""
        return self._read(split, min(n, self.count(split)))

    def arrays(self, split):
        """The whole split as one float32 array, read batch by batch."""
        return self._read(split, self.count(split))

    def _read(self, split, n):
        out = np.empty((n, *self.input_shape), dtype="float32")
        done = 0
        if n:
            batches = self._pipeline(split, min(256, n), False, 0, False, False, shard=False)
            for batch in batches.as_numpy_iterator():
                take = min(len(batch), n - done)
                out[done : done + take] = batch[:take]
                done += take
                if done == n:
                    break
        return out[:done]  # fewer where a file damaged past its header was dropped


# ---------------------------------------------------------------------- image folders
class ImageFolder(StreamingDataset):
    """Every image under a folder (recursive, hidden files and folders left out), streamed.

    The folder is listed once and each image's header read once (PIL: format, size, mode;
    ~50-100 us a file) so that undecodable files are skipped and counted, mixed sizes are
    found before training, and the channel count is known; pixels are decoded in tf.data.
    """

    def __init__(self, path, test_fraction=0.2, image_size=None, channels=None, split=True):
        self.path, self.name = path, os.path.basename(os.path.normpath(path))
        rel = list_images(path)
        if not rel:
            raise KerasaeError(
                f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}); check the path"
            )
        headers = [_header(os.path.join(path, r)) for r in rel]
        bad = [r for r, h in zip(rel, headers) if h is None]
        good = [(r, h) for r, h in zip(rel, headers) if h is not None]
        self.skipped = len(bad)
        if bad:
            shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
            warnings.warn(
                f"skipped {len(bad)} files that could not be decoded: {shown}", stacklevel=2
            )
        if not good:
            raise KerasaeError(
                f"none of the {len(rel)} images in {path} can be decoded; check the files"
            )
        first, (size, mode, _) = good[0]
        if image_size is None:
            other = next((r for r, h in good if h[0] != size), None)
            if other is not None:
                sizes = dict(good)
                raise KerasaeError(
                    f"images in {path} have mixed sizes ({first} is {size[0]}x{size[1]}, "
                    f"{other} is {sizes[other][0][0]}x{sizes[other][0][1]}); pass "
                    "--image-size H,W to resize them to one size"
                )
            image_size = size
        channels = channels or (1 if mode in GREY_MODES else 3)
        self.input_shape = (*image_size, channels)
        # what the decoder needs: PIL for formats TensorFlow lacks, a resize for other sizes
        self._other_formats = any(h[2] not in TF_FORMATS for _, h in good)
        self._resize = any(h[0] != tuple(image_size) for _, h in good)
        # bytes as the OS spells them (utf-8, undecodable bytes kept): the same key bytes
        # convert-tfrecord writes
        keys = np.asarray([os.fsencode(r) for r, _ in good], dtype=object)
        files = np.asarray([os.fsencode(os.path.join(path, r)) for r, _ in good], dtype=object)
        self._keys = {"all": keys}
        self._files = {"all": files}
        if split:
            fraction = key_fraction(tf.constant(keys)).numpy()
            test = fraction < test_fraction
            if len(test) > 1 and test.all() or not test.any():
                # a tiny folder: its lowest hash is test, its highest train
                test[np.argmin(fraction)], test[np.argmax(fraction)] = True, False
            for name, mask in (("train", ~test), ("test", test)):
                self._keys[name], self._files[name] = keys[mask], files[mask]
            self.n_train, self.n_test = int((~test).sum()), int(test.sum())
            if not (self.n_train and self.n_test):
                raise KerasaeError(
                    f"{path} has {len(good)} decodable image(s), too few for a "
                    "train and a test split; add images"
                )
        else:
            self.n_train, self.n_test = len(good), 0
            self._keys["train"], self._files["train"] = keys, files

    def keys(self, split):
        """Relative paths (posix) of the split's files, in the order `head` reads them."""
        return [os.fsdecode(k) for k in self._keys[self._check_split(split)]]

    def _pipeline(self, split, batch_size, shuffle, seed, repeat, drop_remainder, shard):

        size, channels = self.input_shape[:2], self.input_shape[2]

        def load(path):
            return decode_image(
                tf.io.read_file(path), channels, size, self._other_formats, self._resize
            )

        return file_dataset(
            self._files[split],
            load,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            repeat=repeat,
            drop_remainder=drop_remainder,
            shardable=shard,
        )
