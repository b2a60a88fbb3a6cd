"""Streaming sources (issue 20): image folders, TFRecord files and memory-mapped .npy.

Small generated folders: two image sizes in nested subfolders, a corrupt file and a text
file; TFRecords written by convert-tfrecord and by hand (raw pixels, no keys).
"""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from kerasae.data.sources import load_dataset
from kerasae.data.streams import open_images
from kerasae.errors import KerasaeError


def _save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """root/a: 20 RGB 12x10 PNGs; root/b/c: 10 greyscale 16x14 (9 PNG, 1 TIFF);
    broken.png; notes.txt; .hidden/x.png (left out)."""
    root = tmp_path_factory.mktemp("tree")
    rng = np.random.default_rng(0)
    for i in range(20):
        _save(str(root / "a" / f"{i:02d}.png"), rng.integers(0, 256, (12, 10, 3), np.uint8))
    for i in range(10):  # one TIFF: a format tf.io.decode_image lacks, decoded by PIL
        name = f"{i:02d}.{'tif' if i == 9 else 'png'}"
        _save(str(root / "b" / "c" / name), rng.integers(0, 256, (16, 14), np.uint8))
    _save(str(root / ".hidden" / "x.png"), np.zeros((3, 3), np.uint8))
    (root / "broken.png").write_bytes(b"this is not a png")
    (root / "notes.txt").write_text("not an image")
    return root


def pixels(x):
    """The rows of float batches as uint8 byte strings, sorted (order-free comparison)."""
    return sorted(
        bytes(r) for r in np.round(np.asarray(x) * 255).astype(np.uint8).reshape(len(x), -1)
    )


def test_folder_resizes_skips_corrupt_files_and_batches_in_unit_range(tree):
    with pytest.warns(
        UserWarning, match=r"skipped 1 files that could not be decoded: broken\.png"
    ):
        data = load_dataset(str(tree), image_size=(8, 8))
    assert data.streaming and data.skipped == 1 and data.input_shape == (8, 8, 3)
    assert data.n_train + data.n_test == 30 and data.n_test > 0  # .hidden and notes.txt left out
    batches = list(data.batches("train", 7).as_numpy_iterator())
    assert sum(len(b) for b in batches) == data.n_train
    for b in batches:
        assert b.dtype == np.float32 and b.shape[1:] == (8, 8, 3)
        assert 0.0 <= b.min() and b.max() <= 1.0
    # the epoch with repeat/drop_remainder never yields a short batch
    full = data.batches("train", 4, shuffle=True, repeat=True, drop_remainder=True).take(9)
    assert [len(b) for b in full.as_numpy_iterator()] == [4] * 9


def test_folder_pixels_head_and_channels(tree):
    data = load_dataset(str(tree / "a"))
    assert data.input_shape == (12, 10, 3) and data.skipped == 0
    keys = data.keys("train")[:5]
    want = np.stack([np.asarray(Image.open(tree / "a" / k)) for k in keys]) / np.float32(255)
    np.testing.assert_array_equal(data.head("train", 5), want)  # decoded exactly, in key order
    np.testing.assert_array_equal(data.head("train", 5), data.head("train", 5))
    shuffled = np.concatenate(
        list(data.batches("train", 6, shuffle=True, seed=3).as_numpy_iterator())
    )
    assert pixels(shuffled) == pixels(data.arrays("train"))
    grey = load_dataset(str(tree / "a"), channels=1)
    assert grey.input_shape == (12, 10, 1)
    luma = np.stack([np.asarray(Image.open(tree / "a" / k).convert("L")) for k in keys])
    assert np.abs(grey.head("train", 5)[..., 0] * 255 - luma).max() <= 1.01
    rgb = load_dataset(str(tree / "b"), channels=3)  # greyscale files, three channels
    x = rgb.arrays("all")
    assert x.shape == (10, 16, 14, 3) and np.array_equal(x[..., 0], x[..., 2])
    want = np.stack([np.asarray(Image.open(tree / "b" / k)) for k in rgb.keys("all")])
    np.testing.assert_array_equal(x[..., 0], want / np.float32(255))  # the TIFF too
    assert load_dataset(str(tree / "b")).input_shape == (16, 14, 1)  # default: the first's


def test_split_is_a_stable_hash_of_the_relative_path(tree, tmp_path):
    folder = tmp_path / "grow"
    shutil.copytree(tree / "a", folder / "a")
    before = load_dataset(str(folder))
    rng = np.random.default_rng(1)
    for i in range(15):  # new files, some sorting before the old ones
        _save(str(folder / "0new" / f"{i}.png"), rng.integers(0, 256, (12, 10, 3), np.uint8))
    after = load_dataset(str(folder))
    assert after.n_train + after.n_test == 35
    assert set(before.keys("test")) <= set(after.keys("test"))
    assert set(before.keys("train")) <= set(after.keys("train"))


def test_damaged_image_past_its_header_is_dropped_not_fatal(tree, tmp_path):
    folder = tmp_path / "truncated"
    shutil.copytree(tree / "a", folder)
    good = (folder / "05.png").read_bytes()
    (folder / "05.png").write_bytes(good[: len(good) // 2])  # header intact, data cut
    data = load_dataset(str(folder))
    everything = data.arrays("train").shape[0] + data.arrays("test").shape[0]
    assert everything == 19  # the damaged file left out of the epoch, the rest read


@pytest.mark.slow  # ~10 s
def test_convert_tfrecord_round_trip_equals_the_folder(tree, tmp_path, capsys):
    from kerasae.cli import main

    out = tmp_path / "records"
    assert (
        main(["convert-tfrecord", str(tree), str(out), "--shards", "3", "--image-size", "8,8"])
        == 0
    )
    assert "wrote 30 images (8x8x3, 1 skipped) to 3 TFRecord file(s)" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == [f"data-0000{i}-of-00003.tfrecord" for i in range(3)]
    folder = load_dataset(str(tree), image_size=(8, 8))
    records = load_dataset(str(out / "*.tfrecord"))  # a quoted glob
    assert records.streaming and records.input_shape == (8, 8, 3)
    assert (records.n_train, records.n_test) == (folder.n_train, folder.n_test)
    for split in ("train", "test"):  # the same split (the keys are the relative paths)
        assert pixels(records.arrays(split)) == pixels(folder.arrays(split))
    np.testing.assert_array_equal(records.head("test", 3), records.head("test", 3))
    whole = open_images(str(out), split=False)  # what detect scores: every record, in order
    assert whole.count("all") == 30 and pixels(whole.arrays("all")) == pixels(
        np.concatenate([folder.arrays("train"), folder.arrays("test")])
    )
    # a second conversion into the same folder is refused without --overwrite
    assert main(["convert-tfrecord", str(tree), str(out), "--image-size", "8,8"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_raw_pixel_tfrecords_without_keys_split_by_file(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (10, 4, 5, 1), np.uint8)
    for f in range(5):
        name = f"raw.tfrecord-{f:05d}-of-00005"  # TensorFlow Datasets' naming
        with tf.io.TFRecordWriter(str(tmp_path / name)) as writer:
            for img in images[2 * f : 2 * f + 2]:
                feature = {
                    "pixels": tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[img.tobytes()])
                    )
                }
                feature.update(
                    {
                        k: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
                        for k, v in zip(("height", "width", "channels"), img.shape)
                    }
                )
                writer.write(
                    tf.train.Example(
                        features=tf.train.Features(feature=feature)
                    ).SerializeToString()
                )
    with pytest.raises(KerasaeError, match="no bytes feature 'image'.*--feature NAME"):
        load_dataset(str(tmp_path / "*.tfrecord*"))
    data = load_dataset(str(tmp_path), feature="pixels")  # a folder of them
    assert (data.n_train, data.n_test, data.input_shape) == (8, 2, (4, 5, 1))
    np.testing.assert_array_equal(data.arrays("test"), images[8:] / np.float32(255))


def test_large_npy_is_memory_mapped_uint8_and_batches_like_memory(tmp_path, monkeypatch):
    from kerasae.data import schemes as data_module

    x = np.random.default_rng(3).integers(0, 256, (50, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    memory = load_dataset(str(tmp_path / "x.npy"))
    monkeypatch.setattr(data_module, "MMAP_BYTES", 100)
    mapped = load_dataset(str(tmp_path / "x.npy"))
    assert not memory.streaming and mapped.streaming
    assert isinstance(mapped._x, np.memmap) and mapped._x.dtype == np.uint8
    assert (mapped.n_train, mapped.n_test, mapped.input_shape, mapped.scaling) == (
        memory.n_train,
        memory.n_test,
        memory.input_shape,
        memory.scaling,
    )
    for split in ("train", "test"):
        streamed = list(mapped.batches(split, 8).as_numpy_iterator())
        held = list(memory.batches(split, 8).as_numpy_iterator())
        assert len(streamed) == len(held)
        for a, b in zip(streamed, held):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mapped.arrays("test"), memory.x_test)
    np.testing.assert_array_equal(mapped.head("train", 5), memory.head("train", 5))
    # float data: min-max statistics from the chunked pass equal the in-memory ones
    f = np.random.default_rng(4).normal(size=(40, 3)).astype("float32") * 10
    np.save(tmp_path / "f.npy", f)
    mapped_f = load_dataset(str(tmp_path / "f.npy"))
    monkeypatch.setattr(data_module, "MMAP_BYTES", 2**30)
    memory_f = load_dataset(str(tmp_path / "f.npy"))
    assert mapped_f.streaming and mapped_f.scaling == memory_f.scaling
    np.testing.assert_array_equal(mapped_f.arrays("train"), memory_f.x_train)


def test_named_sets_stay_uint8_and_x_train_is_unchanged():
    data = load_dataset("digits")
    assert data._store["train"].dtype == np.uint8 and not data.streaming
    batches = np.concatenate(list(data.batches("train", 500).as_numpy_iterator()))
    assert batches.dtype == np.float32
    np.testing.assert_array_equal(batches, data.x_train)
    assert data.x_train.max() == 1.0 and (data.n_train, data.n_test) == (1437, 360)


def test_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    cases = [
        (str(tmp_path / "empty"), {}, "folder .* holds no images"),
        (str(tmp_path / "nothing" / "*.tfrecord"), {}, "matches no files; quote a glob"),
        ("digits", {"image_size": (8, 8)}, "--image-size applies to image folders"),
        (str(tmp_path / "empty"), {"channels": 2}, "--channels must be 1 or 3"),
    ]
    for source, kwargs, message in cases:
        with pytest.raises(KerasaeError, match=message) as info:
            load_dataset(source, **kwargs)
        assert "\n" not in str(info.value)


def test_mixed_sizes_name_two_files_and_the_fix(tree):
    with pytest.warns(UserWarning):
        with pytest.raises(
            KerasaeError,
            match=r"a/00\.png is 12x10, b/c/00\.png is "
            r"16x14\); pass --image-size H,W",
        ):
            load_dataset(str(tree))


def test_sharding_policy():
    from kerasae.data.pipeline import shard_policy

    assert shard_policy(8, workers=4) == "FILE"  # 2 files a worker: each reads its own
    assert shard_policy(7, workers=4) == "DATA"
    assert shard_policy(1000, workers=1) == "DATA"  # one worker: nothing to shard


def test_two_workers_read_disjoint_halves(tree, tmp_path, monkeypatch):
    # the rewrite MultiWorkerMirroredStrategy applies to a dataset it distributes (a private
    # TF function: the one way to run it without starting two worker processes)
    from tensorflow.python.distribute.input_ops import auto_shard_dataset

    from kerasae.data import pipeline
    from kerasae.data.tfrecord import convert

    monkeypatch.setattr(pipeline, "worker_count", lambda: 2)
    convert(tree / "a", tmp_path / "rec", shards=4)
    for source in (str(tree / "a"), str(tmp_path / "rec")):  # files by HINT, records by FILE
        data = load_dataset(source)
        whole = data.batches("train", 4)
        parts = [
            np.concatenate(list(auto_shard_dataset(whole, 2, i, 2).as_numpy_iterator()))
            for i in range(2)
        ]
        assert min(len(p) for p in parts) >= data.n_train // 4  # both workers read some
        assert pixels(np.concatenate(parts)) == pixels(data.arrays("train"))  # all, once


def test_convert_an_array_of_uint8_images(tmp_path):
    from kerasae.data.tfrecord import convert

    x = np.random.default_rng(5).integers(0, 256, (12, 5, 6), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    summary = convert(tmp_path / "x.npy", tmp_path / "rec", shards=2)
    assert (summary["records"], summary["shards"], summary["input_shape"]) == (12, 2, (5, 6, 1))
    data = open_images(str(tmp_path / "rec"), split=False)
    assert pixels(data.arrays("all")) == pixels(x[..., None] / np.float32(255))
    np.save(tmp_path / "f.npy", x.astype("float32"))
    with pytest.raises(KerasaeError, match="writes uint8 images"):
        convert(tmp_path / "f.npy", tmp_path / "rec2")
    convert(tmp_path / "x.npy", tmp_path / "rec", overwrite=True)  # replaced whole
    assert os.listdir(tmp_path / "rec") == ["data-00000-of-00001.tfrecord"]


def test_one_pass_has_its_length_so_keras_counts_steps_and_loss_right(tree):
    # Keras 3.15 on a pipeline of unknown length runs one more step on an empty batch and
    # averages its zero loss in; a user's own fit/evaluate on data.batches(...) must not
    from kerasae.models.registry import create_model

    data = load_dataset(str(tree / "a"), image_size=(8, 8))
    assert int(data.batches("test", 3).cardinality()) == -(-data.n_test // 3)
    assert int(data.batches("train", 3, drop_remainder=True).cardinality()) == data.n_train // 3
    model = create_model("ae", input_shape=(8, 8, 3), latent_dim=2, hidden_units=(8,))
    model.compile()
    in_memory = model.evaluate(data.arrays("test"), batch_size=3, verbose=0)
    streamed = model.evaluate(data.batches("test", 3), verbose=0)  # was 2/3 of it here
    assert streamed == pytest.approx(in_memory, rel=1e-4)
