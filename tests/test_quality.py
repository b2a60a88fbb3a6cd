"""FID-C and precision/recall (kerasae.evaluation.quality): real data scores well, noise badly, the
numbers repeat for a seed, the classifier is cached per dataset, `evaluate --generation`."""

import json
import os

import numpy as np
import pytest
from scipy.linalg import sqrtm

from kerasae.data.memory import Dataset
from kerasae.data.sources import load_dataset
from kerasae.errors import KerasaeError
from kerasae.evaluation import classifier, quality


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One classifier cache for the module, never the user's home."""
    folder = tmp_path_factory.mktemp("kerasae_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERASAE_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def digits_data():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def digits_classifier(cache, digits_data):
    return classifier.classifier_for(digits_data)


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    assert quality.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 0.0, 3.0])
    # the same covariance: only the means differ
    assert quality.frechet_distance(a, a + shift) == pytest.approx(shift @ shift, rel=1e-8)
    b = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 1.0
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    d = a.mean(0) - b.mean(0)
    expected = d @ d + np.trace(ca + cb - 2 * np.real(sqrtm(ca @ cb)))
    assert quality.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_precision_recall_on_point_clouds():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 4))
    same = rng.normal(size=(500, 4))
    collapsed = np.repeat(real[:5], 100, axis=0) + 1e-3 * rng.normal(size=(500, 4))
    p, r = quality.precision_recall(real, same)
    assert p > 0.8 and r > 0.8, (p, r)
    p, r = quality.precision_recall(real, collapsed)
    assert p > 0.95 and r < 0.1, (p, r)
    p, r = quality.precision_recall(real, same + 20.0)
    assert p == 0.0 and r == 0.0
    with pytest.raises(KerasaeError, match="more than k=3"):
        quality.precision_recall(real, same[:3])


@pytest.mark.slow
def test_fid_c_separates_real_data_from_noise(digits_data, digits_classifier):
    data, clf = digits_data, digits_classifier
    assert clf.test_accuracy > 0.9
    noise = np.random.default_rng(0).random(data.x_test.shape, dtype=np.float32)
    real = quality.generation_metrics(data.x_test, data, seed=0, classifier=clf)
    fake = quality.generation_metrics(noise, data, seed=0, classifier=clf)
    assert real["fid_c"] * 10 < fake["fid_c"], (real["fid_c"], fake["fid_c"])
    assert real["precision"] > 0.8 and real["recall"] > 0.8, real
    assert fake["precision"] < 0.1 and fake["recall"] < 0.1, fake
    assert real["classes_covered"] == 10 and real["n_samples"] == len(data.x_test)
    assert real["n_real"] == len(data.x_test) and real["classifier_accuracy"] == clf.test_accuracy
    # deterministic for a seed; another seed draws other real examples
    assert quality.generation_metrics(data.x_test, data, seed=0, classifier=clf) == real
    other = quality.generation_metrics(data.x_test, data, seed=1, classifier=clf)
    assert other["fid_c"] != real["fid_c"]
    with pytest.raises(KerasaeError, match="do not match the data"):
        quality.generation_metrics(data.x_test[:, :4], data, classifier=clf)
    broken = data.x_test.copy()
    broken[5, 0, 0, 0] = np.nan
    with pytest.raises(KerasaeError, match="1 of 360 samples hold NaN"):
        quality.generation_metrics(broken, data, classifier=clf)
    with pytest.raises(KerasaeError, match="more than k=3 samples"):
        quality.generation_metrics(data.x_test[:3], data, classifier=clf)


@pytest.mark.slow  # trains a second classifier
def test_classifier_is_cached_per_dataset(cache, digits_data, digits_classifier, monkeypatch):
    folder = digits_classifier.folder
    assert os.path.dirname(os.path.dirname(folder)) == str(cache)
    weights = os.path.join(folder, "classifier.weights.h5")
    info = json.loads(open(os.path.join(folder, "classifier.json")).read())
    assert info["test_accuracy"] == digits_classifier.test_accuracy
    assert info["key"] == os.path.basename(folder) == classifier.dataset_key(digits_data)
    stamp = os.stat(weights).st_mtime_ns
    trained = []
    real_train = classifier.train_classifier
    monkeypatch.setattr(
        classifier, "train_classifier", lambda *a, **k: trained.append(1) or real_train(*a, **k)
    )
    again = classifier.classifier_for(load_dataset("digits"))
    assert trained == [] and os.stat(weights).st_mtime_ns == stamp
    x = digits_data.x_test[:50]
    np.testing.assert_array_equal(again.features(x), digits_classifier.features(x))
    # other data (here the same pixels as vectors, labels of two classes) gets its own
    # classifier: an MLP, in its own folder
    keep = digits_data.y_train < 2
    vectors = Dataset(
        "digits vectors",
        digits_data.x_train[keep].reshape(-1, 64),
        digits_data.x_test.reshape(-1, 64)[:40],
        digits_data.y_train[keep],
        np.minimum(digits_data.y_test[:40], 1),
    )
    other = classifier.classifier_for(vectors)
    assert trained == [1] and other.info["kind"] == "mlp" and other.folder != folder
    assert os.path.basename(other.folder).startswith("digits_vectors-64-")
    assert sorted(os.listdir(os.path.join(str(cache), "classifiers"))) == sorted(
        [os.path.basename(folder), os.path.basename(other.folder)]
    )


def test_cache_folder_and_unlabelled_data(monkeypatch, tmp_path, digits_data):
    monkeypatch.setenv("KERASAE_CACHE", str(tmp_path / "a"))
    assert classifier.cache_dir() == str(tmp_path / "a")
    monkeypatch.delenv("KERASAE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert classifier.cache_dir() == str(tmp_path / "xdg" / "kerasae")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert classifier.cache_dir() == str(tmp_path / "home" / ".cache" / "kerasae")
    unlabelled = Dataset("pixels", digits_data.x_train, digits_data.x_test)
    with pytest.raises(KerasaeError, match="has no labels"):
        classifier.classifier_for(unlabelled)
    assert not (tmp_path / "home").exists()


@pytest.mark.slow
def test_evaluate_generation_cli(cache, tmp_path, capsys):
    """The acceptance path: a conv_ae made generative by a gmm sampler, then evaluated."""
    from kerasae.cli import main
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.training import train

    run = tmp_path / "conv_ae"
    train(
        TrainConfig(
            model="conv_ae",
            dataset="digits",
            epochs=2,
            latent_dim=4,
            out=str(run),
            sampler="gmm",
            params={"filters": (8, 16)},
        ),
        verbose=0,
    )
    capsys.readouterr()
    assert main(["evaluate", str(run), "--generation", "--samples", "300", "--json"]) == 0
    g = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["generation"]
    assert 0 < g["fid_c"] and 0 <= g["precision"] <= 1 and 0 <= g["recall"] <= 1
    assert 0 <= g["classes_covered"] <= 10 and g["n_samples"] == sum(g["sample_counts"]) == 300
    assert g["sampler"].startswith("gmm") and g["seconds_per_1000"] > 0
    assert g["classifier_accuracy"] > 0.9
    assert main(["evaluate", str(run), "--generation", "--samples", "300"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "FID-C" in out[-2] and "not Inception" in out[-2] and "classes covered" in out[-1]
    # the model has no prior of its own: one line naming the fix, exit 2
    assert main(["evaluate", str(run), "--generation", "--sampler", "prior"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not generative" in err[0] and "fit-sampler" in err[0]
