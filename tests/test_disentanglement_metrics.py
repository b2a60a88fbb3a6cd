"""Known answers of the disentanglement metrics (kerasae.evaluation.disentanglement*).

Five discrete factors of sizes (3, 6, 10, 8, 8). "Perfect" codes are the factor indices
plus a little noise, one factor per dimension; "noise" codes ignore the factors; "rotated"
codes are the perfect ones mixed by a random orthogonal matrix: as informative, but no
longer axis-aligned. The intervention scores (BetaVAE, FactorVAE) run on a toy dataset
whose observations are the factors themselves.
"""

import functools

import numpy as np
import pytest

from kerasae.errors import KerasaeError
from kerasae.evaluation.disentanglement import (
    all_metrics,
    dci,
    dci_scores,
    histogram_discretize,
    mig,
    modularity,
    modularity_explicitness,
    sap,
)
from kerasae.evaluation.disentanglement_scores import (
    beta_vae_score,
    factor_vae_score,
    uniform_factors,
)

SIZES = (3, 6, 10, 8, 8)
N = 1500
TREES = 10  # disentanglement_lib's 100 take ten times as long; 10 fit these codes


@functools.cache
def data():
    rng = np.random.default_rng(0)
    factors = uniform_factors(SIZES, N, rng)
    perfect = factors + 0.05 * rng.normal(size=factors.shape)
    rotation, _ = np.linalg.qr(rng.normal(size=(len(SIZES), len(SIZES))))
    return {
        "factors": factors,
        "perfect": perfect,
        "noise": rng.normal(size=factors.shape),
        "rotated": perfect @ rotation,
    }


@functools.cache
def dci_of(name):
    return dci(data()[name], data()["factors"], n_estimators=TREES)


@functools.cache
def sap_of(name):
    return sap(data()[name], data()["factors"])


def mig_of(name):
    return mig(data()[name], data()["factors"])


def test_axis_aligned_codes_score_near_one():
    assert mig_of("perfect") > 0.95
    scores = dci_of("perfect")
    assert scores["disentanglement"] > 0.9
    assert scores["completeness"] > 0.9
    assert scores["informativeness_test"] > 0.95
    importance = scores["importance_matrix"]
    assert importance.shape == (len(SIZES), len(SIZES))
    np.testing.assert_array_equal(importance.argmax(axis=0), np.arange(len(SIZES)))


def test_sap_of_axis_aligned_codes_is_what_one_dimension_can_reach():
    # a linear classifier on one dimension separates the extreme values of an ordinal
    # factor, not the middle ones: about 0.33 here, against about 0.01 for noise
    assert sap_of("perfect") > 0.25
    assert abs(sap_of("noise")) < 0.05
    assert sap_of("perfect") > 5 * abs(sap_of("noise"))
    # a test set of one's own instead of a held-out third
    codes, factors = data()["perfect"], data()["factors"]
    assert sap(codes[:1000], factors[:1000], test=(codes[1000:], factors[1000:])) > 0.25
    # continuous factors: squared correlations, nearly 1 for one dimension and 0 for the rest
    assert sap(codes, factors, continuous_factors=True) > 0.95
    assert abs(sap(data()["noise"], factors, continuous_factors=True)) < 0.01


def test_noise_codes_score_near_chance():
    assert abs(mig_of("noise")) < 0.05
    scores = dci_of("noise")
    assert scores["disentanglement"] < 0.1
    assert scores["completeness"] < 0.1
    chance = np.mean([1 / size for size in SIZES])  # about 0.17
    assert scores["informativeness_test"] < chance + 0.1


def test_rotated_codes_score_clearly_lower():
    assert mig_of("rotated") < mig_of("perfect") - 0.5
    assert sap_of("rotated") < sap_of("perfect") / 2
    assert dci_of("rotated")["disentanglement"] < dci_of("perfect")["disentanglement"] - 0.3
    # the information is all there, only mixed: a classifier on all codes still finds it
    explicit = modularity_explicitness(data()["rotated"][:800], data()["factors"][:800])
    assert explicit["explicitness_score_test"] > 0.95


def test_mig_of_a_duplicated_dimension_is_zero_for_that_factor():
    factors = data()["factors"][:, :2]
    codes = np.column_stack([factors[:, 0], factors[:, 0] * 2.0 + 1.0, factors[:, 1]])
    # factor 0 is in two dimensions equally (gap 0), factor 1 in one alone (gap 1)
    assert mig(codes, factors) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("name", ["perfect", "rotated"])
def test_permuting_code_dimensions_changes_nothing(name):
    codes, factors = data()[name], data()["factors"]
    order = np.array([3, 0, 4, 1, 2])
    assert mig(codes[:, order], factors) == pytest.approx(mig_of(name), abs=1e-12)
    assert sap(codes[:, order], factors) == pytest.approx(sap_of(name), abs=1e-12)
    # D and C are functions of the importance matrix that ignore the order of its rows
    importance = dci_of(name)["importance_matrix"]
    assert dci_scores(importance[order]) == pytest.approx(dci_scores(importance), abs=1e-12)
    # the trees break exact ties between features by the order they visit them in, so
    # refitting on permuted columns matches closely, not to the last digit
    permuted = dci(codes[:, order], factors, n_estimators=TREES)
    for key in ("disentanglement", "completeness", "informativeness_test"):
        assert permuted[key] == pytest.approx(dci_of(name)[key], abs=0.01)
    np.testing.assert_allclose(permuted["importance_matrix"], importance[order], atol=0.02)


def test_mig_and_dci_ignore_a_positive_affine_map_of_each_dimension():
    # equal-width bins over each dimension's range, and tree splits, follow such a map
    codes, factors = data()["rotated"], data()["factors"]
    scaled = codes * np.array([0.01, 3.0, 1.0, 250.0, 0.5]) + np.array([5, -2, 0, 1e3, 7])
    assert mig(scaled, factors) == pytest.approx(mig_of("rotated"), abs=1e-9)
    moved = dci(scaled, factors, n_estimators=TREES)
    for key in ("disentanglement", "completeness", "informativeness_test"):
        assert moved[key] == pytest.approx(dci_of("rotated")[key], abs=1e-6)


def test_histogram_discretize_uses_equal_width_bins_per_column():
    codes = np.array([[0.0, 10.0], [0.5, 30.0], [1.0, 20.0], [0.26, 10.0]])
    np.testing.assert_array_equal(
        histogram_discretize(codes, num_bins=4), [[1, 1], [3, 4], [4, 3], [2, 1]]
    )


def test_dci_and_modularity_of_known_matrices():
    assert dci_scores(np.eye(4)) == pytest.approx((1.0, 1.0), abs=1e-6)
    assert dci_scores(np.ones((4, 4))) == pytest.approx((0.0, 0.0), abs=1e-6)
    # one code predicts every factor: not disentangled, but complete
    one_code = np.zeros((4, 3))
    one_code[1] = 1.0
    assert dci_scores(one_code) == pytest.approx((0.0, 1.0), abs=1e-6)
    assert modularity(np.eye(3) * 0.7) == pytest.approx(1.0)
    assert modularity(np.ones((3, 3))) == pytest.approx(0.0)
    # a dimension with no information at all scores 0, not NaN
    assert modularity([[1.0, 0.0], [0.0, 0.0]]) == pytest.approx(0.5)


def test_modularity_and_explicitness_separate_perfect_from_noise():
    factors = data()["factors"][:800]  # a logistic regression per factor: slow on 2 cores
    perfect = modularity_explicitness(data()["perfect"][:800], factors)
    noise = modularity_explicitness(data()["noise"][:800], factors)
    assert perfect["modularity_score"] > 0.95
    assert perfect["explicitness_score_test"] > 0.95
    assert noise["modularity_score"] < perfect["modularity_score"] - 0.3
    assert abs(noise["explicitness_score_test"] - 0.5) < 0.1  # chance ROC-AUC


def test_all_metrics_is_a_flat_deterministic_dict_of_floats():
    codes, factors = data()["perfect"][:450], data()["factors"][:450]
    first = all_metrics(codes, factors, n_estimators=2)
    assert set(first) == {
        "mig",
        "sap",
        "dci_disentanglement",
        "dci_completeness",
        "dci_informativeness_train",
        "dci_informativeness_test",
        "modularity",
        "explicitness_train",
        "explicitness_test",
    }
    assert all(type(value) is float for value in first.values())
    assert first == all_metrics(codes, factors, n_estimators=2)
    assert first["mig"] > 0.9


def test_bad_inputs_are_refused():
    factors = data()["factors"]
    with pytest.raises(KerasaeError, match="same N"):
        mig(data()["perfect"][:10], factors)
    constant = factors.copy()
    constant[:, 2] = 4
    with pytest.raises(KerasaeError, match="single value"):
        mig(data()["perfect"], constant)
    with pytest.raises(KerasaeError, match="integer"):
        sap(data()["perfect"], factors + 0.5)
    with pytest.raises(KerasaeError, match="columns"):
        dci(data()["perfect"], factors, test=(data()["perfect"][:, :3], factors))


class ToyFactors:
    """Observations that are the factor indices themselves, as float "images"."""

    factor_sizes = SIZES

    def sample_factors(self, n, rng):
        return uniform_factors(self.factor_sizes, n, rng)

    def observations(self, factors):
        return np.asarray(factors, dtype=np.float32)


SMALL = dict(batch_size=32, num_train=300, num_eval=300)


def noise_encoder(seed=1):
    rng = np.random.default_rng(seed)
    return lambda x: rng.normal(size=(len(x), len(SIZES)))


def test_beta_vae_score_perfect_against_noise():
    perfect = beta_vae_score(ToyFactors(), lambda x: x, **SMALL)
    assert perfect["eval_accuracy"] > 0.95
    assert perfect["train_accuracy"] > 0.95
    noise = beta_vae_score(ToyFactors(), noise_encoder(), **SMALL)
    assert abs(noise["eval_accuracy"] - 1 / len(SIZES)) < 0.1


def test_factor_vae_score_perfect_against_noise():
    # a positive rescaling of each code is undone by the standardisation
    scale = np.array([0.1, 1.0, 3.0, 0.5, 20.0])
    perfect = factor_vae_score(ToyFactors(), lambda x: x * scale, **SMALL)
    assert perfect == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 5}
    noise = factor_vae_score(ToyFactors(), noise_encoder(), **SMALL)
    assert abs(noise["eval_accuracy"] - 1 / len(SIZES)) < 0.1


def test_factor_vae_score_prunes_collapsed_dimensions():
    def encode(x):  # the factors, plus two dimensions that never move
        return np.column_stack([x, np.zeros(len(x)), 0.01 + 0.001 * x[:, 0]])

    scores = factor_vae_score(ToyFactors(), encode, **SMALL)
    assert scores == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 5}
    # the threshold is on the standard deviation: at 0.05x the codes of factor 0 (std 0.04)
    # are pruned, the others (std 0.085 to 0.14, variances all below 0.05) are kept; fixing
    # factor 0 then votes for no dimension of its own, and 4 factors in 5 are found
    shrunk = factor_vae_score(ToyFactors(), lambda x: 0.05 * x, **SMALL)
    assert shrunk["num_active_dims"] == 4
    assert shrunk["eval_accuracy"] == pytest.approx(0.8, abs=0.05)
    collapsed = factor_vae_score(ToyFactors(), lambda x: 0.01 * x, **SMALL)
    assert collapsed == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def test_intervention_scores_are_deterministic_given_the_seed():
    a = beta_vae_score(ToyFactors(), noise_encoder(), seed=3, **SMALL)
    b = beta_vae_score(ToyFactors(), noise_encoder(), seed=3, **SMALL)
    assert a == b
    a = factor_vae_score(ToyFactors(), noise_encoder(), seed=3, **SMALL)
    assert a == factor_vae_score(ToyFactors(), noise_encoder(), seed=3, **SMALL)
    assert a != factor_vae_score(ToyFactors(), noise_encoder(), seed=4, **SMALL)
