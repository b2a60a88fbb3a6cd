"""kerasae's own path schemes: image folders and TFRecord files, NumPy files, CSV files.

Each is a `DataSource` registered under `kerasae.datasets` (images, numpy, csv) that claims
the paths it reads; `kerasae.data.sources.resolve` asks them before any plugin's. Which
scheme claims a path is known without TensorFlow; each imports its reader when it opens.
"""

import os

from kerasae.data import streams
from kerasae.data.sources import DataSource, register_dataset

MMAP_BYTES = 256 * 2**20  # larger .npy files are memory-mapped and streamed


@register_dataset("images")
class ImageFiles(DataSource):
    """An image folder (PNG, JPEG, GIF, BMP, TIFF, WebP; read recursively, streamed) or
    TFRecord files (a file, a folder of them or a quoted glob)."""

    order = 1
    path_scheme = True
    reads = "an image folder, TFRecord files"
    image_options = True

    def claims(self, source):
        return streams.is_image_source(source)

    def open(self, source, test_fraction=0.2, scaling=None, **image_options):
        return streams.open_images(source, test_fraction, **image_options)


class _ArrayFile(DataSource):
    path_scheme = True
    suffixes = ()

    def claims(self, source):
        return os.path.isfile(source) and source.lower().endswith(self.suffixes)

    @staticmethod
    def _finite(ds, source):
        from kerasae.data.memory import _check_finite  # TensorFlow: only when opened

        if not ds.streaming:
            for split in ("train", "test"):
                _check_finite(ds._store[split], source)
        return ds


@register_dataset("numpy")
class NumpyFiles(_ArrayFile):
    """A .npy or .npz array (never unpickled); a .npy over 256 MiB is memory-mapped and
    streamed."""

    order = 2
    reads = ".npy, .npz"
    suffixes = (".npy", ".npz")

    def open(self, source, test_fraction=0.2, scaling=None):
        # TensorFlow, only when opened (the CLI resolves a path before importing it):
        from kerasae.data.arrays import _load_numpy  # TensorFlow
        from kerasae.data.mapped import MappedArray  # TensorFlow

        if source.lower().endswith(".npy") and os.path.getsize(source) > MMAP_BYTES:
            return MappedArray(source, test_fraction, scaling)
        return self._finite(_load_numpy(source, test_fraction, scaling), source)


@register_dataset("csv")
class CsvFiles(_ArrayFile):
    """A .csv of numeric columns, min-max scaled with the training split's statistics."""

    order = 3
    reads = ".csv"
    suffixes = (".csv",)

    def open(self, source, test_fraction=0.2, scaling=None):
        from kerasae.data.csv_files import _load_csv  # TensorFlow: only when opened

        return self._finite(_load_csv(source, test_fraction, scaling), source)
