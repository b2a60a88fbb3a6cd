"""dSprites (Matthey, Higgins, Hassabis & Lerchner 2017, "dSprites: Disentanglement testing
Sprites dataset"), rendered by kerasae itself: offline, deterministic, with its factors.

The grid is the original's: shape 3 (square, ellipse, heart) x scale 6 (linspace(0.5, 1, 6))
x orientation 40 (linspace(0, 2 pi, 40): the endpoint is included, so orientations 0 and 39
are one angle, as in the original) x posX 32 x posY 32 (linspace(0, 1, 32)) = 737,280
binary 64x64 images. Grid index i has the factors np.unravel_index(i, (3, 6, 40, 32, 32)),
posY fastest: the original's order. The original file (deepmind/dsprites-dataset) is a
download kerasae does not make; the images here are not the original's pixels:
  - each sprite is point-sampled (a pixel is on when its centre is inside the shape), at
    scale 1 a filled square of side 18 px, a filled ellipse of 25.6 x 14 px (long axis
    along x at orientation 0) and a filled heart from the implicit curve
    (x^2 + y^2 - 1)^3 <= x^2 y^3 (lobes up) at 9.1 px per unit, 20.7 px wide: sizes
    picked so the mean pixel over the grid (0.044) is near the original file's (0.043);
  - each shape turns counter-clockwise (as displayed) about its centre of mass, which sits
    at 8 + 48 * pos pixels from the left (posX) and from the top (posY); a sprite near
    the border may be cut by it;
  - the original's outlines, sizes, placement and binarisation are not published and its
    file could not be read here, so the pixels differ from it: results on this grid
    compare with each other, not with numbers measured on the original file.
Open it as `dsprites` (the whole grid, streamed from a bit-packed cache rendered once, see
dsprites_data.py) or `dsprites:N`: N images of the grid (2 <= N < 737,280), rendered in
memory, the first N of one fixed permutation (SUBSET_SEED), so `dsprites:N` is always the
same N images and a smaller subset lies inside a larger one. The source is registered in
named.py, the datasets are in dsprites_data.py; this module needs numpy only.
"""

import numpy as np

from kerasae.errors import KerasaeError

NAME = "dsprites"
FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
N_IMAGES = int(np.prod(FACTOR_SIZES))  # 737,280
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
SIZE = 64  # pixels a side
LOW, SPAN = 8.0, 48.0  # the centre moves over pixels 8..56
RENDER_VERSION = 1  # in the cache's file name: a changed renderer never reads an old cache
SUBSET_SEED = 0

# the shapes at scale 1, in pixels (see the docstring)
SQUARE_HALF = 9.0
ELLIPSE_AXES = (12.8, 7.0)
HEART_UNIT = 9.1  # pixels per unit of the heart curve
HEART_CENTROID = 0.29348  # the curve's centre of mass lies this far above its origin
HALF_WINDOW = 15  # every sprite fits in 30 x 30 pixels around its centre
CHUNK = 1024  # images rendered at once (a few tens of MB of temporaries)


def _square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) <= SQUARE_HALF


def _ellipse(u, v):
    return (u / ELLIPSE_AXES[0]) ** 2 + (v / ELLIPSE_AXES[1]) ** 2 <= 1.0


def _heart(u, v):
    x, y = u / HEART_UNIT, v / HEART_UNIT + HEART_CENTROID
    r = x * x + y * y - 1.0
    return r * r * r <= x * x * y * y * y


INSIDE = (_square, _ellipse, _heart)  # by shape index


# ---------------------------------------------------------------------- the factor grid
def check_factors(factors):
    """`factors` as an (n, 5) int64 array of factor indices; KerasaeError if it is not one."""
    f = np.asarray(factors)
    if f.ndim == 1 and f.size == len(FACTOR_SIZES):
        f = f[None]
    ok = f.ndim == 2 and f.shape[1] == len(FACTOR_SIZES)
    if ok and f.size and not np.issubdtype(f.dtype, np.integer):
        ok = np.issubdtype(f.dtype, np.number) and bool(np.all(f == np.round(f)))
    f = f.astype(np.int64) if ok else f
    if not ok or (f.size and (np.any(f < 0) or np.any(f >= np.asarray(FACTOR_SIZES)))):
        raise KerasaeError(
            f"dSprites factors must be an (n, 5) array of indices (shape, scale, "
            f"orientation, posX, posY) below {FACTOR_SIZES}; got shape {np.shape(factors)}"
        )
    return f


def factors_of(index):
    """(n, 5) factor indices of grid indices (posY fastest, as in the original)."""
    index = np.atleast_1d(np.asarray(index, dtype=np.int64))
    return np.stack(np.unravel_index(index, FACTOR_SIZES), 1)


def index_of(factors):
    """The grid indices of (n, 5) factor indices."""
    return np.ravel_multi_index(check_factors(factors).T, FACTOR_SIZES)


def factor_values(factors):
    """(n, 5) float64 values of factor indices: shape 1..3 (as the original's
    latents_values), scale, orientation in radians, posX and posY in [0, 1]."""
    f = check_factors(factors)
    grids = (np.arange(1.0, 4.0), SCALES, ORIENTATIONS, POSITIONS, POSITIONS)
    return np.stack([g[f[:, j]] for j, g in enumerate(grids)], 1)


def sample_factors(n, rng=None):
    """n factor rows drawn uniformly over the grid; `rng` a numpy Generator or a seed."""
    rng = np.random.default_rng(rng)
    return np.stack([rng.integers(0, s, size=int(n)) for s in FACTOR_SIZES], 1)


def subset_indices(n):
    """The sorted grid indices of `dsprites:n`: the first n of one fixed permutation."""
    return np.sort(np.random.default_rng(SUBSET_SEED).permutation(N_IMAGES)[: int(n)])


# ---------------------------------------------------------------------- rendering
def render(factors):
    """uint8 images (n, 64, 64) of 0s and 1s, one per row of factor indices."""
    f = check_factors(factors)
    out = np.empty((len(f), SIZE, SIZE), dtype=np.uint8)
    for i in range(0, len(f), CHUNK):
        out[i : i + CHUNK] = _render(f[i : i + CHUNK])
    return out


def _render(f):
    """Each sprite evaluated on a window of pixels around its centre, then placed."""
    n, w, pad = len(f), 2 * HALF_WINDOW, HALF_WINDOW
    scale, theta = SCALES[f[:, 1]], ORIENTATIONS[f[:, 2]]
    cx, cy = LOW + SPAN * POSITIONS[f[:, 3]], LOW + SPAN * POSITIONS[f[:, 4]]
    c0 = np.floor(cx).astype(np.int64) - HALF_WINDOW  # the window's first column and row
    r0 = np.floor(cy).astype(np.int64) - HALF_WINDOW
    k = np.arange(w)
    dx = (c0[:, None] + k + 0.5 - cx[:, None]) / scale[:, None]  # pixel centres, sprite
    dy = (cy[:, None] - (r0[:, None] + k + 0.5)) / scale[:, None]  # units, y up
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = cos * dx[:, None, :] + sin * dy[:, :, None]  # turned back by the orientation
    v = cos * dy[:, :, None] - sin * dx[:, None, :]
    inside = np.zeros((n, w, w), dtype=np.uint8)
    for shape, test in enumerate(INSIDE):
        rows = f[:, 0] == shape
        if rows.any():
            inside[rows] = test(u[rows], v[rows])
    canvas = np.zeros((n, SIZE + 2 * pad, SIZE + 2 * pad), dtype=np.uint8)
    rows = (r0 + pad)[:, None, None] + k[None, :, None]
    cols = (c0 + pad)[:, None, None] + k[None, None, :]
    canvas[np.arange(n)[:, None, None], rows, cols] = inside
    return canvas[:, pad : pad + SIZE, pad : pad + SIZE]


# ---------------------------------------------------------------------- the names
def subset_size(source):
    """N of `dsprites:N` (or `DIST:dsprites:N`); None for the whole grid."""
    last = str(source).rpartition(":")[2]
    return None if last == NAME else check_subset(last)


def check_subset(text):
    """N of the text after `dsprites:`; KerasaeError (one line) unless 2 <= N < 737,280."""
    n = int(text) if text.isascii() and text.isdigit() else None
    if n is None or not 2 <= n < N_IMAGES:
        raise KerasaeError(
            f"{NAME}:{text} is not a dSprites subset: give a whole number of images from 2 "
            f"to {N_IMAGES - 1} (e.g. {NAME}:20000), or {NAME} for the whole grid"
        )
    return n
