"""Writing TFRecord shards of images: what `kerasae convert-tfrecord` does.

Each record is a tf.train.Example with `image` (PNG bytes of uint8 pixels, decoded, resized
and converted to the channel count exactly as training from the folder would) and `key`
(the image's relative path, or the array row's index), so the TFRecord dataset splits the
same way the folder does (`kerasae.data.streams`). Records go to the shards round-robin; the
folder is written beside OUT_DIR and renamed into place (`kerasae.io.atomic_folder`).
"""

import os

import numpy as np
import tensorflow as tf

from kerasae.data.folders import ImageFolder
from kerasae.data.images import _check_size, decode_image, fit_image
from kerasae.data.pipeline import PARALLEL, plain
from kerasae.errors import KerasaeError
from kerasae.io import NUMPY_MAGIC, atomic_folder, load_numpy

RECORDS_PER_SHARD = 10_000  # default shard count: enough files for FILE sharding at scale


def convert(
    source, out_dir, shards=None, image_size=None, channels=None, overwrite=False, progress=None
):
    """Write `source` (an image folder, or a .npy/.npz of uint8 images) as TFRecord shards
    OUT_DIR/data-00000-of-0000N.tfrecord. `progress(n)` is called every 1000 records.
    Returns a summary dict (records, skipped, shards, input_shape, out, files)."""

    source, out_dir = str(source), str(out_dir)
    if not os.path.exists(source):
        raise KerasaeError(f"{source} does not exist; give an image folder or a .npy/.npz file")
    if os.path.isfile(out_dir) or (
        os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite
    ):
        raise KerasaeError(
            f"{out_dir} exists and is not empty; choose another folder or pass "
            "--overwrite to replace it"
        )
    if os.path.abspath(source) == os.path.abspath(out_dir):
        raise KerasaeError("OUT_DIR must differ from SOURCE")
    if shards is not None and int(shards) < 1:
        raise KerasaeError(f"--shards must be a positive integer, got {shards}")
    image_size = _check_size(image_size)
    if os.path.isdir(source):
        pairs, n, shape, skipped = _folder_records(source, image_size, channels)
    else:
        pairs, n, shape, skipped = _array_records(source, image_size, channels)
    shards = int(shards or max(1, -(-n // RECORDS_PER_SHARD)))
    shards = min(shards, n)
    written = 0
    with atomic_folder(out_dir) as tmp:
        names = [f"data-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]
        writers = [tf.io.TFRecordWriter(os.path.join(tmp, name)) for name in names]
        try:
            for key, png in pairs.as_numpy_iterator():
                writers[written % shards].write(_example(key, png))
                written += 1
                if progress is not None and written % 1000 == 0:
                    progress(written)
        finally:
            for w in writers:
                w.close()
        if not written:
            raise KerasaeError(f"{source}: no image could be converted")
    return {
        "records": written,
        "skipped": skipped + (n - written),
        "shards": shards,
        "input_shape": shape,
        "out": out_dir,
        "files": [os.path.join(out_dir, name) for name in names],
    }


def _example(key, png):
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
        "key": tf.train.Feature(bytes_list=tf.train.BytesList(value=[key])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _encode(batch_map):
    """(key, uint8 image) -> (key, PNG bytes), in parallel, dropping undecodable files."""

    return batch_map.map(
        lambda k, img: (k, tf.io.encode_png(img)), num_parallel_calls=PARALLEL, deterministic=True
    ).ignore_errors()


def _folder_records(path, image_size, channels):

    folder = ImageFolder(path, image_size=image_size, channels=channels, split=False)
    size, c = folder.input_shape[:2], folder.input_shape[2]
    ds = tf.data.Dataset.from_tensor_slices((folder._files["all"], folder._keys["all"]))
    ds = ds.map(
        plain(
            lambda f, k: (
                k,
                decode_image(tf.io.read_file(f), c, size, folder._other_formats, folder._resize),
            )
        ),
        num_parallel_calls=PARALLEL,
        deterministic=True,
    )
    return _encode(ds), folder.n_train, folder.input_shape, folder.skipped


def _array_records(path, image_size, channels):

    x = _uint8_images(path)
    size = image_size or x.shape[1:3]
    c = channels or (1 if x.shape[3] < 3 else 3)

    def rows():
        for i in range(len(x)):  # one row at a time: a memory-mapped array stays on disk
            yield str(i).encode(), np.asarray(x[i])

    ds = tf.data.Dataset.from_generator(
        rows, output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec(x.shape[1:], tf.uint8))
    )
    ds = ds.map(
        plain(lambda k, img: (k, fit_image(img, c, size))),
        num_parallel_calls=PARALLEL,
        deterministic=True,
    )
    return _encode(ds), len(x), (*size, c), 0


def _uint8_images(path):
    """A .npy (memory-mapped) or .npz array of uint8 images as (N, H, W, C)."""
    try:
        if path.lower().endswith(".npy"):
            with open(path, "rb") as f:
                if not f.read(6).startswith(NUMPY_MAGIC[0]):
                    raise KerasaeError(f"{path} is not a .npy file (no NumPy header)")
            x = np.load(path, mmap_mode="r", allow_pickle=False)  # mapped, never loaded whole
        else:
            with load_numpy(path) as npz:
                keys = list(npz.keys())
                key = next(
                    (k for k in ("x_train", "x", "X", "images", "data") if k in keys),
                    keys[0] if keys else None,
                )
                if key is None:
                    raise KerasaeError(f"{path} holds no arrays")
                x = npz[key]
    except (ValueError, OSError, AttributeError) as exc:
        raise KerasaeError(f"{path} cannot be read as numeric numpy data ({exc})") from None
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] > 4):
        raise KerasaeError(
            f"{path} has dtype {x.dtype} and shape {x.shape}; convert-tfrecord "
            "writes uint8 images (N, H, W[, C]): save them as uint8"
        )
    return x[..., None] if x.ndim == 3 else x
