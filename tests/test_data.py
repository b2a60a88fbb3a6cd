"""Data loaders: every source becomes float32 in [0, 1] with a held-out test split."""

import os

import numpy as np
import pytest
from PIL import Image

from kerasae.data.arrays import apply_scaling
from kerasae.data.pipeline import make_tf_dataset
from kerasae.data.sources import load_dataset
from kerasae.errors import KerasaeError


def check_unit_range(ds):
    x_train, x_test = ds.arrays("train"), ds.arrays("test")  # streamed sources have no x_train
    for x in (x_train, x_test):
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert len(x_train) > len(x_test) > 0


def test_digits_offline():
    ds = load_dataset("digits")
    check_unit_range(ds)
    assert ds.input_shape == (8, 8, 1)
    assert len(ds.x_train) + len(ds.x_test) == 1797
    # the split is fixed: evaluate sees the test set training never saw
    again = load_dataset("digits")
    np.testing.assert_array_equal(ds.x_test, again.x_test)


@pytest.mark.skipif(
    not os.path.isdir("/usr/share/datasets/fashion-mnist"),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_fashion_mnist_from_debian():
    ds = load_dataset("fashion_mnist")
    check_unit_range(ds)
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert set(np.unique(ds.y_test)) == set(range(10))


def test_fashion_mnist_missing_names_the_apt_package(monkeypatch, tmp_path):
    import keras

    from kerasae.data import named

    monkeypatch.setattr(named, "FASHION_DIRS", (str(tmp_path / "none"),))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(KerasaeError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist")


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    ds = load_dataset(str(tmp_path))
    check_unit_range(ds)
    assert ds.input_shape == (12, 10, 1)


def test_rgb_folder_and_mixed_sizes(tmp_path):
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(tmp_path / "b.png")
    assert load_dataset(str(tmp_path)).input_shape == (8, 8, 3)
    Image.new("RGB", (9, 8)).save(tmp_path / "c.png")
    with pytest.raises(KerasaeError, match="mixed sizes"):
        load_dataset(str(tmp_path))


def test_npy_uint8_images(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    ds = load_dataset(str(tmp_path / "x.npy"))
    check_unit_range(ds)
    assert ds.input_shape == (6, 6, 1) and ds.scaling == {"kind": "divide", "scale": 255.0}


def test_npz_with_own_test_split(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.random((30, 5)), x_test=rng.random((7, 5)))
    ds = load_dataset(str(tmp_path / "d.npz"))
    assert ds.x_train.shape == (30, 5) and ds.x_test.shape == (7, 5)


def test_npy_refuses_pickles(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(KerasaeError, match="cannot be read"):
        load_dataset(str(tmp_path / "obj.npy"))


def test_csv_minmax_uses_training_split_only(tmp_path):
    rows = ["a,b,c"] + [f"{i},{2 * i},{-i}" for i in range(50)]
    (tmp_path / "t.csv").write_text("\n".join(rows))
    ds = load_dataset(str(tmp_path / "t.csv"))
    assert ds.input_shape == (3,)
    assert ds.scaling["kind"] == "minmax"
    train_max = np.asarray(ds.scaling["max"])
    assert ds.x_train.max() == pytest.approx(1.0) and ds.x_train.min() == pytest.approx(0.0)
    raw_train = ds.x_train * (train_max - np.asarray(ds.scaling["min"])) + ds.scaling["min"]
    assert np.allclose(raw_train.max(axis=0), train_max)
    # re-applying the saved scaling reproduces the same arrays
    again = load_dataset(str(tmp_path / "t.csv"), scaling=ds.scaling)
    np.testing.assert_allclose(again.x_test, ds.x_test)


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b\n1,x\n2,3\n", "not numeric"),
        ("1,2\n3\n", "columns"),
        ("", "empty"),
    ],
)
def test_bad_csv(tmp_path, content, message):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(KerasaeError, match=message):
        load_dataset(str(tmp_path / "bad.csv"))


def test_nan_and_unknown_sources(tmp_path):
    x = np.ones((10, 4), dtype="float32")
    x[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(KerasaeError, match="NaN"):
        load_dataset(str(tmp_path / "nan.npy"))
    with pytest.raises(KerasaeError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(KerasaeError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.npy"))


def test_scaling_and_pipeline():
    x = np.arange(12, dtype="float32").reshape(4, 3)
    scaled = apply_scaling(x, {"kind": "minmax", "min": [0, 1, 2], "max": [9, 10, 11]})
    np.testing.assert_allclose(scaled[0], [0, 0, 0]) and np.testing.assert_allclose(
        scaled[-1], [1, 1, 1]
    )
    batches = list(make_tf_dataset(x, batch_size=3, shuffle=True).as_numpy_iterator())
    assert [len(b) for b in batches] == [3, 1]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches), axis=0), x)


def test_pipeline_has_tf_data_autotune_off():
    # autotuning stalls every epoch's end on TF 2.21 (the iterator's teardown waits for the
    # autotune thread's timed sleep); the pipeline must keep it off
    ds = make_tf_dataset(np.zeros((10, 3), "float32"), batch_size=4)
    assert ds.options().autotune.enabled is False


def test_fit_on_arrays_goes_through_the_kerasae_pipeline(monkeypatch):
    import kerasae
    from kerasae.data import pipeline

    made, real = [], pipeline.make_tf_dataset

    def spy(x, *args, **kwargs):
        made.append((len(x), kwargs.get("shuffle")))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(pipeline, "make_tf_dataset", spy)
    x = np.random.default_rng(0).random((96, 8)).astype("float32")
    model = kerasae.create_model("ae", input_shape=(8,), latent_dim=2, hidden_units=(16,))
    model.compile()
    history = model.fit(
        x, x, epochs=6, batch_size=16, validation_data=(x[:32], x[:32]), verbose=0
    ).history
    assert made == [(96, True), (32, False)]  # training shuffled, validation in order
    assert history["loss"][-1] < history["loss"][0] and len(history["val_loss"]) == 6
