"""Streaming datasets: image folders and TFRecord files, decoded inside tf.data, never whole.

Memory does not grow with the data: what is held is the file list (an image folder's paths,
read once with a sorted `os.walk`) and one shuffle buffer; pixels stay uint8 until the batch
is scaled. The train/test split is a stable hash of each example's key (an image's relative
path, a record's `key` feature: FarmHash Fingerprint64, which TensorFlow guarantees stable
across platforms and versions), so it never depends on listing order or on files added
later, and a folder converted to TFRecord (`kerasae.tfrecord`) keeps its split.
"""
import glob
import os
import warnings

import numpy as np

from kerasae import pipeline
from kerasae.errors import KerasaeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
TFRECORD_MARK = ".tfrecord"  # in the name: x.tfrecord, x.tfrecords, x.tfrecord-00000-of-00008
TF_FORMATS = ("PNG", "JPEG", "GIF", "BMP")  # what tf.io.decode_image reads
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
SCALING = {"kind": "divide", "scale": 255.0}


def is_image_source(source):
    """An image folder, a TFRecord file, a folder of them or a glob of them."""
    source = str(source)
    if os.path.isdir(source):
        return True
    if not os.path.isfile(source) and glob.has_magic(source):
        return True
    return TFRECORD_MARK in os.path.basename(source).lower()


def open_images(source, test_fraction=0.2, image_size=None, channels=None, feature=None,
                split=True):
    """The streaming dataset of an image folder or of TFRecord files (a glob or folder)."""
    source = str(source)
    image_size = _check_size(image_size)
    if channels is not None and int(channels) not in (1, 3):
        raise KerasaeError(f"--channels must be 1 or 3, got {channels}")
    channels = None if channels is None else int(channels)
    records = tfrecord_files(source)
    if records:
        from kerasae.data_records import RecordFiles

        return RecordFiles(source, records, test_fraction, image_size, channels,
                           feature or "image", split)
    if not glob.has_magic(source) and not os.path.exists(source):
        raise KerasaeError(f"data path {source} does not exist; check the path")
    if not os.path.isdir(source):
        raise KerasaeError(f"{source} matches no files; quote a glob of TFRecord files "
                           "(\"data/*.tfrecord\") or give an image folder")
    if feature is not None:
        raise KerasaeError(f"--feature applies to TFRecord files; {source} is an image folder")
    return ImageFolder(source, test_fraction, image_size, channels, split)


def tfrecord_files(source):
    """The sorted TFRecord files a source names (a folder holding them, a glob, a file)."""
    if os.path.isdir(source):
        return sorted(os.path.join(source, f) for f in os.listdir(source)
                      if TFRECORD_MARK in f.lower() and not f.startswith("."))
    return sorted(f for f in glob.glob(source) if os.path.isfile(f))


def _check_size(size):
    if size is None:
        return None
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise KerasaeError(f"--image-size must be H,W (two positive integers), "
                           f"got {size}") from None
    if h < 1 or w < 1:
        raise KerasaeError(f"--image-size must be H,W (two positive integers), got {size}")
    return h, w


def key_fraction(keys):
    """Per key (a string tensor, rank 1) a fraction in [0, 1): Fingerprint64's first 7
    bytes. A key whose fraction is below test_fraction is in the test split."""
    import tensorflow as tf

    fp = tf.cast(tf.fingerprint(tf.reshape(keys, [-1]), method="farmhash64"), tf.float64)
    weights = tf.constant([2.0 ** (-8 * (i + 1)) for i in range(7)], tf.float64)
    return tf.reduce_sum(fp[:, :7] * weights, axis=1)


# ---------------------------------------------------------------------- decoding (in tf.data)
def decode_image(data, channels, size, other_formats=True, resize=True):
    """Encoded bytes -> uint8 (H, W, channels): PNG/JPEG/GIF/BMP by tf.io.decode_image
    (first frame), any other format PIL reads (TIFF, WebP) through PIL; resized (area-aware
    bilinear, rounded back to uint8) where its size differs from `size`. A caller that
    knows every image is PNG/JPEG/GIF/BMP (`other_formats=False`) or already `size`
    (`resize=False`) leaves those branches out of the graph (~15-30 us an image less)."""
    import tensorflow as tf

    if not other_formats:
        img = tf.io.decode_image(data, channels=0, expand_animations=False)
        return fit_image(tf.ensure_shape(img, (None, None, None)), channels, size, resize)
    head = tf.strings.substr(data, 0, 4)
    native = tf.reduce_any(tf.stack([
        tf.equal(head, b"\x89PNG"), tf.strings.substr(data, 0, 3) == b"\xff\xd8\xff",
        tf.strings.substr(data, 0, 3) == b"GIF", tf.strings.substr(data, 0, 2) == b"BM"]))
    img = tf.cond(native,
                  lambda: tf.io.decode_image(data, channels=0, expand_animations=False),
                  lambda: tf.numpy_function(_pil_decode, [data], tf.uint8, stateful=False))
    return fit_image(tf.ensure_shape(img, (None, None, None)), channels, size, resize)


def _pil_decode(data):
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        a = np.asarray(im.convert("L" if im.mode in GREY_MODES else "RGB"))
    return a[..., None] if a.ndim == 2 else a


def fit_image(img, channels, size, resize=True):
    """uint8 image of any channel count (1-4) -> `channels`, resized to `size` if needed."""
    import tensorflow as tf

    if channels == 3:
        grey, colour = (lambda: tf.tile(img[..., :1], [1, 1, 3])), (lambda: img[..., :3])
    else:
        grey, colour = (lambda: img[..., :1]), (lambda: tf.image.rgb_to_grayscale(img[..., :3]))
    known = img.shape[-1]  # static (raw arrays) or decided per image (decoded files)
    if known is not None:
        img = grey() if known < 3 else colour()
    else:
        img = tf.cond(tf.shape(img)[-1] < 3, grey, colour)
    if resize:
        same = tf.reduce_all(tf.equal(tf.shape(img)[:2], size))
        img = tf.cond(same, lambda: img, lambda: _resize(img, size))
    return tf.ensure_shape(img, (*size, channels))


def _resize(img, size):
    import tensorflow as tf

    out = tf.image.resize(img, size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


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
        return (f"{type(self).__name__}({self.name!r}, input_shape={self.input_shape}, "
                f"n_train={self.n_train}, n_test={self.n_test})")

    def count(self, split):
        return {"train": self.n_train, "test": self.n_test,
                "all": self.n_train + self.n_test}[self._check_split(split)]

    def _check_split(self, split):
        if split not in ("train", "test", "all"):
            raise KerasaeError(f"split must be 'train', 'test' or 'all', got {split!r}")
        return split

    def batches(self, split, batch_size, shuffle=False, seed=0, repeat=False,
                drop_remainder=False, shard=True):
        """float32 batches of x in [0, 1] (uint8 until the batch is scaled), prefetched.

        One pass has a known length (`pipeline.with_length`), so `model.fit(data.batches(
        "train", 128))` counts its steps and its loss right; an endless one (`repeat`) and
        a worker's shard under a multi-worker strategy are sized by `steps_per_epoch`.
        `shard=False`: every example, read on this machine even under a multi-worker
        strategy (scores, statistics), never distributed."""
        ds = self._pipeline(self._check_split(split), batch_size, shuffle, seed, repeat,
                            drop_remainder, shard=shard)
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
                out[done:done + take] = batch[:take]
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
            raise KerasaeError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                               "check the path")
        headers = [_header(os.path.join(path, r)) for r in rel]
        bad = [r for r, h in zip(rel, headers) if h is None]
        good = [(r, h) for r, h in zip(rel, headers) if h is not None]
        self.skipped = len(bad)
        if bad:
            shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
            warnings.warn(f"skipped {len(bad)} files that could not be decoded: {shown}")
        if not good:
            raise KerasaeError(f"none of the {len(rel)} images in {path} can be decoded; "
                               "check the files")
        first, (size, mode, _) = good[0]
        if image_size is None:
            other = next((r for r, h in good if h[0] != size), None)
            if other is not None:
                sizes = dict(good)
                raise KerasaeError(
                    f"images in {path} have mixed sizes ({first} is {size[0]}x{size[1]}, "
                    f"{other} is {sizes[other][0][0]}x{sizes[other][0][1]}); pass "
                    "--image-size H,W to resize them to one size")
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
            import tensorflow as tf

            fraction = key_fraction(tf.constant(keys)).numpy()
            test = fraction < test_fraction
            if len(test) > 1 and test.all() or not test.any():
                # a tiny folder: its lowest hash is test, its highest train
                test[np.argmin(fraction)], test[np.argmax(fraction)] = True, False
            for name, mask in (("train", ~test), ("test", test)):
                self._keys[name], self._files[name] = keys[mask], files[mask]
            self.n_train, self.n_test = int((~test).sum()), int(test.sum())
            if not (self.n_train and self.n_test):
                raise KerasaeError(f"{path} has {len(good)} decodable image(s), too few for a "
                                   "train and a test split; add images")
        else:
            self.n_train, self.n_test = len(good), 0
            self._keys["train"], self._files["train"] = keys, files

    def keys(self, split):
        """Relative paths (posix) of the split's files, in the order `head` reads them."""
        return [os.fsdecode(k) for k in self._keys[self._check_split(split)]]

    def _pipeline(self, split, batch_size, shuffle, seed, repeat, drop_remainder, shard):
        import tensorflow as tf

        from kerasae.pipeline import file_dataset

        size, channels = self.input_shape[:2], self.input_shape[2]

        def load(path):
            return decode_image(tf.io.read_file(path), channels, size, self._other_formats,
                                self._resize)

        return file_dataset(self._files[split], load, batch_size, shuffle=shuffle, seed=seed,
                            repeat=repeat,
                            drop_remainder=drop_remainder, shardable=shard)


def list_images(path):
    """Relative posix paths of the images under `path`, sorted (one `os.walk`)."""
    out = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = os.path.relpath(root, path)
        for f in sorted(files):
            if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES):
                out.append(f if rel == "." else f"{rel}/{f}".replace(os.sep, "/"))
    return out


PNG_MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}  # by IHDR colour type


def _header(path):
    """((height, width), mode, format) from the image's header, or None when it cannot be
    read.

    A PNG's size and colour type sit in its first 33 bytes (signature and IHDR chunk): read
    directly, twice as fast as PIL's open (which parses every chunk before the pixels),
    which matters at 200k files. Other formats go through PIL."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            head = f.read(33)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) == 33:
            width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
            mode = PNG_MODES.get(head[25])
            if mode and width and height:
                return (height, width), mode, "PNG"
            return None
        with Image.open(path) as im:
            return (im.height, im.width), im.mode, im.format
    except (OSError, ValueError, SyntaxError):  # PIL's errors for damaged or unknown files
        return None
