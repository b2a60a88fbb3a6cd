"""dsprites: the grid kerasae renders (kerasae.data.dsprites) and the datasets over it
(kerasae.data.dsprites_data). Small subsets only: nothing here renders the 737,280-image
grid."""

import json
import subprocess
import sys

import numpy as np
import pytest

from kerasae.data import dsprites
from kerasae.data.sources import is_named, named_datasets, resolve
from kerasae.errors import KerasaeError


def image(shape=0, scale=5, orientation=0, x=16, y=16):
    return dsprites.render([[shape, scale, orientation, x, y]])[0]


def centre_of_mass(img):
    rows, cols = np.nonzero(img)
    return cols.mean(), rows.mean()


def differ(a, b):
    return int(np.sum(a != b))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASAE_CACHE", str(tmp_path))
    return tmp_path


# ---------------------------------------------------------------------- the renderer
def test_render_is_binary_and_deterministic():
    factors = dsprites.sample_factors(300, np.random.default_rng(1))
    a, b = dsprites.render(factors), dsprites.render(factors)
    assert a.dtype == np.uint8 and a.shape == (300, 64, 64)
    assert np.array_equal(a, b)
    assert set(np.unique(a)) == {0, 1}
    assert a.reshape(300, -1).sum(1).min() > 20  # every image shows its sprite


def test_grid_index_and_factors_map_both_ways():
    assert dsprites.N_IMAGES == 737_280
    assert dsprites.factors_of(1).tolist() == [[0, 0, 0, 0, 1]]  # posY fastest
    assert dsprites.factors_of(32).tolist() == [[0, 0, 0, 1, 0]]
    assert dsprites.factors_of(dsprites.N_IMAGES - 1).tolist() == [[2, 5, 39, 31, 31]]
    index = np.random.default_rng(0).integers(0, dsprites.N_IMAGES, 500)
    assert np.array_equal(dsprites.index_of(dsprites.factors_of(index)), index)
    values = dsprites.factor_values([[2, 5, 39, 31, 0]])[0]
    assert np.allclose(values, [3.0, 1.0, 2 * np.pi, 1.0, 0.0])
    assert np.isclose(dsprites.ORIENTATIONS[1], 0.16110732)  # the original's step, 2 pi / 39


def test_positions_move_the_sprite_right_and_down():
    for shape in range(3):
        xs = [centre_of_mass(image(shape, x=i))[0] for i in range(32)]
        ys = [centre_of_mass(image(shape, y=i))[1] for i in range(32)]
        assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)
        assert 7 < xs[0] < 10 and 54 < xs[-1] < 57  # the centre spans pixels 8..56


def test_scale_grows_the_sprite_and_shapes_differ():
    for shape in range(3):
        areas = [image(shape, scale=s).sum() for s in range(6)]
        assert np.all(np.diff(areas) > 0)
        assert 3.0 < areas[-1] / areas[0] < 5.0  # area goes with scale squared (0.5 -> 1)
    square, ellipse, heart = (image(s) for s in range(3))
    assert min(differ(square, ellipse), differ(square, heart), differ(ellipse, heart)) > 40


def test_orientation_turns_each_shape_by_its_symmetry():
    """Index 10 of 40 is 92.3 degrees: a square looks the same up to a few edge pixels, an
    ellipse does not; index 20 (184.6 degrees) leaves square and ellipse nearly alone but
    turns the heart upside down."""
    square, ellipse, heart = (image(s) for s in range(3))
    assert differ(square, image(0, orientation=10)) < 0.1 * square.sum()
    assert differ(ellipse, image(1, orientation=10)) > 0.5 * ellipse.sum()
    assert differ(square, image(0, orientation=20)) < 0.1 * square.sum()
    assert differ(ellipse, image(1, orientation=20)) < 0.1 * ellipse.sum()
    assert differ(heart, image(2, orientation=20)) > 0.25 * heart.sum()
    assert np.array_equal(image(2, orientation=0), image(2, orientation=39))  # 0 and 2 pi
    rows, _ = np.nonzero(heart)
    top, bottom = heart[rows.min()].sum(), heart[rows.max()].sum()
    assert rows.min() < centre_of_mass(heart)[1] and heart.sum(1)[rows.min() + 2] > bottom
    assert top >= 2  # the lobes are up at orientation 0
    # counter-clockwise as displayed: a 46-degree ellipse runs lower left to upper right
    turned = image(1, orientation=5)
    cx, cy = centre_of_mass(turned)
    upper_right = turned[: int(cy), int(cx) + 1 :].sum()
    upper_left = turned[: int(cy), : int(cx)].sum()
    assert upper_right > 2 * upper_left


def test_factor_rows_are_checked():
    with pytest.raises(KerasaeError, match=r"\(n, 5\) array of indices"):
        dsprites.render([[3, 0, 0, 0, 0]])
    with pytest.raises(KerasaeError, match=r"\(n, 5\) array of indices"):
        dsprites.render(np.zeros((2, 4), int))
    f = dsprites.sample_factors(1000, 7)
    assert f.shape == (1000, 5) and np.all(f.max(0) == np.asarray(dsprites.FACTOR_SIZES) - 1)
    assert np.array_equal(f, dsprites.sample_factors(1000, np.random.default_rng(7)))


# ---------------------------------------------------------------------- names and subsets
def test_names_and_subset_syntax():
    assert "dsprites" in named_datasets()
    for name in ("dsprites", "dsprites:5000", "kerasae:dsprites", "kerasae:dsprites:50"):
        assert resolve(name).name == "dsprites" and is_named(name)
    assert dsprites.subset_size("dsprites") is None
    assert dsprites.subset_size("kerasae:dsprites:50") == 50
    for bad in ("dsprites:0", "dsprites:1", "dsprites:abc", "dsprites:", "dsprites:737280"):
        with pytest.raises(KerasaeError, match="from 2 to 737279.*dsprites:20000"):
            resolve(bad)
    with pytest.raises(KerasaeError, match="'digits' takes no argument"):
        resolve("digits:5")
    small, large = dsprites.subset_indices(100), dsprites.subset_indices(1000)
    assert np.array_equal(small, dsprites.subset_indices(100)) and np.isin(small, large).all()


def test_train_refuses_a_bad_subset_before_tensorflow():
    code = (
        "import contextlib, io, json, sys\n"
        "from kerasae.cli import main\n"
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        "    rc = main(['train', '--model', 'vae', '--dataset', 'dsprites:10x'])\n"
        "print(json.dumps([rc, err.getvalue().strip(), 'tensorflow' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    rc, message, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert rc == 2 and not heavy
    assert len(message.splitlines()) == 1 and "dsprites:10x is not a dSprites subset" in message


def test_a_subset_is_fixed_and_its_factors_render_its_images(cache):
    from kerasae.data.sources import load_dataset

    data = load_dataset("dsprites:300")
    again = load_dataset("dsprites:300")
    assert (data.n_train, data.n_test, data.input_shape) == (240, 60, (64, 64, 1))
    assert np.array_equal(data.x_test, again.x_test)
    assert np.array_equal(data.factors_train, again.factors_train)
    assert data.factor_names == dsprites.FACTOR_NAMES and data.factor_sizes == (3, 6, 40, 32, 32)
    assert np.array_equal(data.observations(data.factors_train), data.x_train)
    assert np.array_equal(data.observations(data.factors_test), data.x_test)
    assert np.array_equal(data.y_test, data.factors_test[:, 0])
    rows = np.concatenate([data.factors_train, data.factors_test])
    assert np.array_equal(np.sort(dsprites.index_of(rows)), dsprites.subset_indices(300))
    batch = next(data.batches("train", 32).as_numpy_iterator())
    assert batch.dtype == np.float32 and set(np.unique(batch)) == {0.0, 1.0}
    assert not any(cache.iterdir())  # a subset never writes the grid's cache


# ---------------------------------------------------------------------- the grid and its cache
def test_cache_is_packed_and_written_atomically(cache, monkeypatch):
    from kerasae.data import dsprites_data

    path = cache / "c.npy"
    dsprites_data.write_cache(path, n=100)
    bits = np.load(path, mmap_mode="r")
    assert bits.shape == (100, 512) and bits.dtype == np.uint8
    unpacked = np.unpackbits(np.asarray(bits), axis=1).reshape(100, 64, 64)
    assert np.array_equal(unpacked, dsprites.render(dsprites.factors_of(np.arange(100))))

    monkeypatch.setattr(dsprites_data, "CACHE_CHUNK", 40)
    render, calls = dsprites.render, []

    def interrupted(factors):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return render(factors)

    monkeypatch.setattr(dsprites, "render", interrupted)
    broken = cache / "broken.npy"
    with pytest.raises(KeyboardInterrupt):
        dsprites_data.write_cache(broken, n=100)
    assert sorted(p.name for p in cache.iterdir()) == ["c.npy"]  # no cache, no temporary


def test_grid_streams_unpacked_rows_with_their_factors(cache):
    from kerasae.data import dsprites_data

    class Rendered:  # the packed grid, rendered on demand instead of read from a cache
        dtype, shape = np.dtype(np.uint8), (dsprites.N_IMAGES, 512)

        def __len__(self):
            return dsprites.N_IMAGES

        def __getitem__(self, index):
            images = dsprites.render(dsprites.factors_of(index))
            return np.packbits(images.reshape(len(images), -1), axis=1)

    grid = dsprites_data.DSpritesGrid("dsprites", Rendered())
    assert grid.n_train + grid.n_test == dsprites.N_IMAGES and grid.input_shape == (64, 64, 1)
    assert np.array_equal(grid.head("test", 5), grid.observations(grid.factors_test[:5]))
    batch = next(grid.batches("train", 8).as_numpy_iterator())
    assert np.array_equal(batch, grid.observations(grid.factors_train[:8]))


def test_a_foreign_cache_is_refused(cache):
    from kerasae.data import dsprites_data

    path = dsprites_data.cache_path()
    assert path.startswith(str(cache))
    (cache / "dsprites").mkdir()
    np.save(path, np.zeros((3, 512), np.uint8))
    with pytest.raises(KerasaeError, match="delete it"):
        dsprites_data.grid_bits()
