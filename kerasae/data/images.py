"""Decoding images for the streamed datasets: PNG/JPEG/GIF/BMP in tf.data, others with Pillow.

An image is decoded, given the requested channels and resized to the dataset's size inside
tf.data; pixels stay uint8 until the batch is scaled. The train/test split of a stream is
a stable hash of each example's key (FarmHash Fingerprint64, which TensorFlow guarantees
stable across platforms and versions).
"""

import io
import os

import numpy as np
import tensorflow as tf

from kerasae.errors import KerasaeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


TF_FORMATS = ("PNG", "JPEG", "GIF", "BMP")  # what tf.io.decode_image reads


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


SCALING = {"kind": "divide", "scale": 255.0}


def _check_size(size):
    if size is None:
        return None
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise KerasaeError(
            f"--image-size must be H,W (two positive integers), got {size}"
        ) from None
    if h < 1 or w < 1:
        raise KerasaeError(f"--image-size must be H,W (two positive integers), got {size}")
    return h, w


def key_fraction(keys):
    """Per key (a string tensor, rank 1) a fraction in [0, 1): Fingerprint64's first 7
    bytes. A key whose fraction is below test_fraction is in the test split."""
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
    if not other_formats:
        img = tf.io.decode_image(data, channels=0, expand_animations=False)
        return fit_image(tf.ensure_shape(img, (None, None, None)), channels, size, resize)
    head = tf.strings.substr(data, 0, 4)
    native = tf.reduce_any(
        tf.stack(
            [
                tf.equal(head, b"\x89PNG"),
                tf.strings.substr(data, 0, 3) == b"\xff\xd8\xff",
                tf.strings.substr(data, 0, 3) == b"GIF",
                tf.strings.substr(data, 0, 2) == b"BM",
            ]
        )
    )
    img = tf.cond(
        native,
        lambda: tf.io.decode_image(data, channels=0, expand_animations=False),
        lambda: tf.numpy_function(_pil_decode, [data], tf.uint8, stateful=False),
    )
    return fit_image(tf.ensure_shape(img, (None, None, None)), channels, size, resize)


def _pil_decode(data):
    from PIL import Image  # only for the images TensorFlow cannot decode

    with Image.open(io.BytesIO(data)) as im:
        a = np.asarray(im.convert("L" if im.mode in GREY_MODES else "RGB"))
    return a[..., None] if a.ndim == 2 else a


def fit_image(img, channels, size, resize=True):
    """uint8 image of any channel count (1-4) -> `channels`, resized to `size` if needed."""
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
    out = tf.image.resize(img, size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


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
    from PIL import Image  # only for the images TensorFlow cannot decode

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
