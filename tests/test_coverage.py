"""Mode coverage: closed-form KL, a collapsed sampler is caught, `evaluate --generation`."""

import json
import math

import numpy as np
import pytest

from kerasae.cli import main
from kerasae.data.sources import load_dataset
from kerasae.evaluation.coverage import class_coverage, label_kl, mode_coverage, train_classifier
from kerasae.runs.config import TrainConfig
from kerasae.runs.training import train


class _Sampler:
    """A stand-in generative model that 'samples' real digits of the given classes."""

    generative = True

    def __init__(self, x, y, classes):
        self.pool = x[np.isin(y, classes)]

    def sample(self, n, seed=None):
        return self.pool[np.random.default_rng(seed).integers(len(self.pool), size=n)]


def test_label_kl_closed_form():
    assert label_kl([1, 1], [1, 3]) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    assert label_kl([5, 5, 0], [1, 1, 1]) == pytest.approx(math.log(1.5))
    assert label_kl([2, 3], [20, 30]) == pytest.approx(0.0)


def test_collapsed_sampler_is_caught_and_a_faithful_one_is_not():
    data = load_dataset("digits")
    clf = train_classifier(data.x_train, data.y_train)
    full = mode_coverage(_Sampler(data.x_test, data.y_test, range(10)), data, 1000, classifier=clf)
    collapsed = mode_coverage(
        _Sampler(data.x_test, data.y_test, [3, 7]), data, 1000, classifier=clf
    )
    assert full["classifier_accuracy"] > 0.9
    assert full["classes_covered"] == 10 and full["kl_to_data"] < 0.05, full
    assert collapsed["classes_covered"] == 2 and set(collapsed["missing_classes"]) == set(
        range(10)
    ) - {3, 7}
    assert collapsed["kl_to_data"] > math.log(10 / 2) - 0.2, collapsed  # ~ log(5) nats
    # the same figures from samples drawn elsewhere (kerasae.evaluation.quality's path)
    drawn = _Sampler(data.x_test, data.y_test, [3, 7]).sample(1000, seed=0)
    assert class_coverage(drawn, data, classifier=clf) == collapsed


@pytest.mark.slow
def test_evaluate_generation_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERASAE_CACHE", str(tmp_path / "cache"))  # the FID-C classifier
    vae, ae = tmp_path / "vae", tmp_path / "ae"
    train(
        TrainConfig(
            model="vae",
            dataset="digits",
            epochs=1,
            latent_dim=4,
            out=str(vae),
            params={"hidden_units": (64,)},
        ),
        verbose=0,
    )
    train(
        TrainConfig(
            model="ae",
            dataset="digits",
            epochs=1,
            latent_dim=4,
            out=str(ae),
            params={"hidden_units": (16,)},
        ),
        verbose=0,
    )
    capsys.readouterr()
    assert main(["evaluate", str(vae), "--generation", "--samples", "500", "--json"]) == 0
    g = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["generation"]
    assert g["n_classes"] == 10 and 0 <= g["classes_covered"] <= 10
    assert sum(g["sample_counts"]) == 500 and g["kl_to_data"] >= 0
    assert (vae / "coverage.png").stat().st_size > 2000
    assert {"fid_c", "precision", "recall"} <= set(g)
    assert main(["evaluate", str(ae), "--generation"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not generative" in err
