"""The dSprites datasets (Matthey et al. 2017; rendered by kerasae.data.dsprites): a subset
held in memory, the whole grid streamed from a bit-packed cache, both with their factors.

The cache: the first `dsprites` renders the grid once (under a minute on one core) into
`kerasae.io.cache_dir()/dsprites/dsprites-v{RENDER_VERSION}.npy`, a (737280, 512) uint8
array: each image's 4,096 binary pixels packed 8 to a byte (np.packbits), 377 MB instead
of the 3 GB of a byte per pixel. It is written chunk by chunk into a temporary file that
replaces the cache in one rename, so an interrupted render leaves no cache, never a torn
one; later opens memory-map it and unpack each batch's rows as the batch is read (drawing
each batch anew instead would spend the training CPUs on rendering every epoch). A subset
(`dsprites:N`) is rendered straight from its factors (about 6 s per 100,000 images), the
same pixels as the cache's rows, so it never needs the cache.

Both datasets split with `split_indices` (SPLIT_SEED), unstratified: a subset is already a
uniform draw of the grid. Beside the usual interface they hold `factors_train` and
`factors_test` ((n, 5) int64 factor indices of each split's rows, in FACTOR_NAMES order),
`factor_names`, `factor_sizes`, and draw observations for any factors: `sample_factors(n,
rng)` (uniform over the grid) and `observations(factors)` (rendered on demand, the cache
not needed), as the disentanglement metrics read them.
"""

import os
import sys

import numpy as np

from kerasae.data import dsprites
from kerasae.data.mapped import MappedArray
from kerasae.data.memory import Dataset, split_indices
from kerasae.errors import KerasaeError
from kerasae.io import atomic_path, cache_dir

SCALING = {"kind": "divide", "scale": 1.0}  # the pixels are already 0 or 1
PACKED = dsprites.SIZE * dsprites.SIZE // 8  # bytes per packed image
CACHE_CHUNK = 16384  # images rendered and packed at once while writing the cache


class FactorAccess:
    """The factors of a generated dataset, and observations drawn for any factor rows."""

    factor_names = dsprites.FACTOR_NAMES
    factor_sizes = dsprites.FACTOR_SIZES

    def sample_factors(self, n, rng=None):
        """(n, 5) factor indices drawn uniformly over the whole grid (`rng`: a numpy
        Generator or a seed)."""
        return dsprites.sample_factors(n, rng)

    def observations(self, factors):
        """float32 images (n, 64, 64, 1) in [0, 1] of (n, 5) factor indices, rendered."""
        return dsprites.render(factors)[..., None].astype(np.float32)

    def factor_values(self, factors):
        """(n, 5) float64 factor values (shape 1..3, scale, radians, posX, posY)."""
        return dsprites.factor_values(factors)


class DSpritesSubset(FactorAccess, Dataset):
    """`dsprites:N`: N images of the grid (`dsprites.subset_indices`), rendered and held in
    memory as 0/1 uint8; the labels are the shape (0 square, 1 ellipse, 2 heart)."""

    def __init__(self, name, index, test_fraction=0.2):
        factors = dsprites.factors_of(index)
        x = dsprites.render(factors)[..., None]
        train, test = split_indices(len(x), test_fraction, name)
        super().__init__(
            name,
            x[train],
            x[test],
            factors[train, 0],
            factors[test, 0],
            scaling=dict(SCALING),
            divisor=1.0,
        )
        self.factors_train, self.factors_test = factors[train], factors[test]


class DSpritesGrid(FactorAccess, MappedArray):
    """`dsprites`: the whole grid, streamed like a large .npy (MappedArray's batches, head
    and arrays) from the packed cache, each batch's rows unpacked as it is read."""

    def __init__(self, name, bits, test_fraction=0.2):  # not MappedArray's: no pixels to scan
        self.name = name
        self._x = bits  # the packed rows MappedArray gathers from
        self.scaling, self._divisor = dict(SCALING), 1.0
        train, test = split_indices(len(bits), test_fraction, name)
        self._index = {"train": train, "test": test, "all": np.arange(len(bits))}
        self.n_train, self.n_test = len(train), len(test)
        self.input_shape = (dsprites.SIZE, dsprites.SIZE, 1)
        self.factors_train, self.factors_test = (
            dsprites.factors_of(train),
            dsprites.factors_of(test),
        )

    def __repr__(self):
        return f"DSpritesGrid({self.name!r}, n_train={self.n_train}, n_test={self.n_test})"

    def _gather(self, index):
        rows = np.asarray(self._x[np.asarray(index)])
        pixels = np.unpackbits(rows, axis=1, count=dsprites.SIZE * dsprites.SIZE)
        return pixels.reshape(-1, *self.input_shape)


# ---------------------------------------------------------------------- the cache
def cache_path():
    """Where the packed grid is cached (KERASAE_CACHE honoured)."""
    return os.path.join(cache_dir(), "dsprites", f"dsprites-v{dsprites.RENDER_VERSION}.npy")


def write_cache(path, n=dsprites.N_IMAGES):
    """Render the first n grid images, packed, into `path`, atomically."""
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, PACKED))
        for start in range(0, n, CACHE_CHUNK):
            index = np.arange(start, min(start + CACHE_CHUNK, n))
            images = dsprites.render(dsprites.factors_of(index))
            out[index[0] : index[-1] + 1] = np.packbits(images.reshape(len(index), -1), axis=1)
        out.flush()
        del out  # closes the map before the file is renamed


def grid_bits():
    """The packed grid, memory-mapped; rendered into the cache first when it is not there."""
    path = cache_path()
    if not os.path.isfile(path):
        print(
            f"kerasae: rendering the dSprites grid once into {path} (about a minute)",
            file=sys.stderr,
        )
        write_cache(path)
    try:
        bits = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        bits = None
    if bits is None or bits.shape != (dsprites.N_IMAGES, PACKED) or bits.dtype != np.uint8:
        raise KerasaeError(
            f"{path} is not a dSprites cache this kerasae reads; delete it and open "
            "dsprites again to render it anew"
        )
    return bits


def open_dsprites(n=None, test_fraction=0.2):
    """`dsprites` (n None: the whole grid, from the cache) or `dsprites:n` (in memory)."""
    if n is None:
        return DSpritesGrid(dsprites.NAME, grid_bits(), test_fraction)
    return DSpritesSubset(f"{dsprites.NAME}:{n}", dsprites.subset_indices(n), test_fraction)
