"""Which sources stream from disk (image folders, TFRecord files), and opening them.

Telling which paths these are imports no TensorFlow (the CLI checks a data path before
importing it); opening them does.
"""

import glob
import os

from kerasae.errors import KerasaeError

TFRECORD_MARK = ".tfrecord"  # in the name: x.tfrecord, x.tfrecords, x.tfrecord-00000-of-00008


def is_image_source(source):
    """An image folder, a TFRecord file, a folder of them or a glob of them."""
    source = str(source)
    if os.path.isdir(source):
        return True
    if not os.path.isfile(source) and glob.has_magic(source):
        return True
    return TFRECORD_MARK in os.path.basename(source).lower()


def open_images(
    source, test_fraction=0.2, image_size=None, channels=None, feature=None, split=True
):
    """The streaming dataset of an image folder or of TFRecord files (a glob or folder)."""
    # TensorFlow, only once a source is opened (this module must import fast):
    from kerasae.data.folders import ImageFolder  # TensorFlow
    from kerasae.data.images import _check_size  # TensorFlow
    from kerasae.data.records import RecordFiles  # TensorFlow

    source = str(source)
    image_size = _check_size(image_size)
    if channels is not None and int(channels) not in (1, 3):
        raise KerasaeError(f"--channels must be 1 or 3, got {channels}")
    channels = None if channels is None else int(channels)
    records = tfrecord_files(source)
    if records:
        return RecordFiles(
            source, records, test_fraction, image_size, channels, feature or "image", split
        )
    if not glob.has_magic(source) and not os.path.exists(source):
        raise KerasaeError(f"data path {source} does not exist; check the path")
    if not os.path.isdir(source):
        raise KerasaeError(
            f"{source} matches no files; quote a glob of TFRecord files "
            '("data/*.tfrecord") or give an image folder'
        )
    if feature is not None:
        raise KerasaeError(f"--feature applies to TFRecord files; {source} is an image folder")
    return ImageFolder(source, test_fraction, image_size, channels, split)


def tfrecord_files(source):
    """The sorted TFRecord files a source names (a folder holding them, a glob, a file)."""
    if os.path.isdir(source):
        return sorted(
            os.path.join(source, f)
            for f in os.listdir(source)
            if TFRECORD_MARK in f.lower() and not f.startswith(".")
        )
    return sorted(f for f in glob.glob(source) if os.path.isfile(f))
