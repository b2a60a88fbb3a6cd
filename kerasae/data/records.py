"""Streaming TFRecord datasets: tf.train.Example records holding one image each.

The image is a bytes feature (`image` unless --feature names another): encoded PNG/JPEG/GIF/
BMP, or raw uint8 pixels with int64 `height`, `width` and `channels` features. Records split
by a stable hash of their `key` bytes feature (what `kerasae convert-tfrecord` writes: the
image's relative path or the array row), so a converted folder keeps its split; files
without keys split by file (every k-th file of the sorted list, k = 1 / test_fraction).
The files are read once at open, keys only, to count each split.
"""

import os

import numpy as np
import tensorflow as tf

from kerasae.data.folders import StreamingDataset
from kerasae.data.images import decode_image, fit_image, key_fraction
from kerasae.data.pipeline import PARALLEL, record_dataset
from kerasae.errors import KerasaeError

KEY = "key"
RAW_SHAPE = ("height", "width", "channels")
SHUFFLE_BYTES = 64 * 2**20


class RecordFiles(StreamingDataset):
    """TFRecord files of images, streamed (interleaved reads, a record shuffle buffer)."""

    def __init__(
        self,
        source,
        files,
        test_fraction=0.2,
        image_size=None,
        channels=None,
        feature="image",
        split=True,
    ):
        self.source, self.files, self.feature = source, list(files), feature
        folder = os.path.dirname(os.path.abspath(files[0]))
        self.name = (
            os.path.basename(os.path.normpath(source))
            if os.path.isdir(source)
            else os.path.basename(folder)
        )
        example, where = _first_example(self.files, source)
        features = example.features.feature
        if feature not in features or not features[feature].HasField("bytes_list"):
            have = ", ".join(sorted(features)) or "none"
            raise KerasaeError(
                f"{where} has no bytes feature {feature!r} (its features: "
                f"{have}); pass --feature NAME"
            )
        data = features[feature].bytes_list.value[0]
        self.raw = all(f in features and features[f].HasField("int64_list") for f in RAW_SHAPE)
        if self.raw:
            shape = tuple(int(features[f].int64_list.value[0]) for f in RAW_SHAPE)
            if np.prod(shape) != len(data):
                raise KerasaeError(
                    f"{where}: {feature!r} holds {len(data)} bytes but height x "
                    f"width x channels is {shape}; write raw uint8 pixels"
                )
        else:
            try:
                shape = tuple(tf.io.decode_image(data, expand_animations=False).shape)
            except (tf.errors.InvalidArgumentError, ValueError):
                raise KerasaeError(
                    f"{where}: {feature!r} is not an encoded image (PNG, JPEG, "
                    "GIF, BMP) nor raw pixels with height/width/channels "
                    "features; pass --feature NAME"
                ) from None
        self.input_shape = (*(image_size or shape[:2]), channels or (1 if shape[2] < 3 else 3))
        self.keyed = KEY in features and features[KEY].HasField("bytes_list")
        # records shuffled in memory: about SHUFFLE_BYTES of them, 1000 to 10,000
        self.shuffle_buffer = int(np.clip(SHUFFLE_BYTES // max(1, len(data)), 1000, 10_000))
        self._count(test_fraction if split else 0.0)

    def _count(self, test_fraction):
        """n_train / n_test: keys hashed in one pass, or records counted per file."""
        self.test_fraction = test_fraction
        if self.keyed:
            reads = _reads(self.files)
            ds = tf.data.TFRecordDataset(self.files, num_parallel_reads=reads).batch(4096)
            spec = {KEY: tf.io.FixedLenFeature([], tf.string, default_value=b"")}
            ds = ds.map(
                lambda s: key_fraction(tf.io.parse_example(s, spec)[KEY]), num_parallel_calls=reads
            )
            n = n_test = 0
            for fraction in ds.as_numpy_iterator():
                n, n_test = n + len(fraction), n_test + int((fraction < test_fraction).sum())
            self._split_files = {s: self.files for s in ("train", "test", "all")}
            self.n_train, self.n_test = n - n_test, n_test
        elif not test_fraction:  # no split wanted: every record is "all" (and "train")
            self._split_files = {s: self.files for s in ("train", "test", "all")}
            self.n_train, self.n_test = sum(_records(f) for f in self.files), 0
        else:
            k = max(2, int(round(1 / test_fraction)))
            if len(self.files) < k:
                raise KerasaeError(
                    f"TFRecord files without a {KEY!r} feature split by file (every {k}th is "
                    f"test), and {self.source} has {len(self.files)}; write {k} or more shards "
                    "or add a key feature (kerasae convert-tfrecord writes both)"
                )
            test = [f for i, f in enumerate(self.files) if i % k == k - 1]
            train = [f for f in self.files if f not in test]
            self._split_files = {"train": train, "test": test, "all": self.files}
            self.n_train, self.n_test = (sum(_records(f) for f in fs) for fs in (train, test))
        if test_fraction and not (self.n_train and self.n_test):
            raise KerasaeError(
                f"{self.source} holds {self.n_train + self.n_test} record(s), "
                "too few for a train and a test split; add records"
            )

    def _parse(self, serialized, split="all"):
        """A vector of serialized records -> the features (still encoded) of the split's."""
        spec = {self.feature: tf.io.FixedLenFeature([], tf.string, default_value=b"")}
        if self.raw:  # a record without them fails to decode alone, not its whole block
            spec.update(
                {f: tf.io.FixedLenFeature([], tf.int64, default_value=0) for f in RAW_SHAPE}
            )
        if self.keyed:
            spec[KEY] = tf.io.FixedLenFeature([], tf.string, default_value=b"")
        ex = tf.io.parse_example(serialized, spec)
        if not self.keyed:
            return ex
        is_test = key_fraction(ex.pop(KEY)) < self.test_fraction
        if split == "all":
            return ex
        keep = is_test if split == "test" else tf.logical_not(is_test)
        return {k: tf.boolean_mask(v, keep) for k, v in ex.items()}

    def _decode(self, ex):
        size, channels = self.input_shape[:2], self.input_shape[2]
        if not self.raw:
            return decode_image(ex[self.feature], channels, size)
        pixels = tf.io.decode_raw(ex[self.feature], tf.uint8)
        img = tf.reshape(pixels, tf.cast(tf.stack([ex[f] for f in RAW_SHAPE]), tf.int32))
        return fit_image(tf.ensure_shape(img, (None, None, None)), channels, size)

    def _pipeline(self, split, batch_size, shuffle, seed, repeat, drop_remainder, shard):
        return record_dataset(
            self._split_files[split],
            lambda s: self._parse(s, split),
            self._decode,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            repeat=repeat,
            drop_remainder=drop_remainder,
            shardable=shard,
            shuffle_buffer=self.shuffle_buffer,
        )


def _reads(files):
    return max(1, min(len(files), PARALLEL))


def _records(path):
    return int(tf.data.TFRecordDataset(path).reduce(np.int64(0), lambda n, _: n + 1))


def _first_example(files, source):
    """The first record of the first non-empty file, parsed, and where it was found."""
    from google.protobuf.message import DecodeError  # TensorFlow's protobuf: only here

    for path in files:
        try:
            for raw in tf.data.TFRecordDataset(path).take(1):
                return tf.train.Example.FromString(raw.numpy()), f"{path} record 0"
        except (tf.errors.DataLossError, DecodeError):
            raise KerasaeError(
                f"{path} is not a TFRecord file (it cannot be read as one); check the glob"
            ) from None
    raise KerasaeError(f"the TFRecord files of {source} hold no records")
