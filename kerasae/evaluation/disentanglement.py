"""Disentanglement metrics on (codes, factors) arrays: MIG, SAP, DCI, modularity/explicitness.

Following disentanglement_lib (Locatello et al., "Challenging Common Assumptions in the
Unsupervised Learning of Disentangled Representations", ICML 2019), its definitions and its
defaults, with numpy and scikit-learn only:

    mig                      Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs"
    sap                      Kumar et al. 2018, "Variational Inference of Disentangled
                             Latent Concepts from Unlabeled Observations" (SAP score)
    dci                      Eastwood & Williams 2018, "A Framework for the Quantitative
                             Evaluation of Disentangled Representations"
    modularity_explicitness  Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings
                             with the F-Statistic Loss"
    all_metrics              all of the above as one flat dict of floats

`codes` is a float (N, d) array (the posterior means), `factors` an int (N, K) array of
discrete factor indices. The metrics that fit a classifier (SAP, DCI, explicitness) take a
separate test set, `test=(codes_test, factors_test)` (disentanglement_lib samples one), or
hold out `test_fraction` of the rows, chosen by `seed`; every result is deterministic.
disentanglement_lib samples 10,000 training points and 5,000 test points; the default
test_fraction of 1/3 keeps that ratio. The metrics that need observations drawn with a
factor held fixed (BetaVAE, FactorVAE) are in disentanglement_scores.py.
"""

import numpy as np

from kerasae.errors import KerasaeError


def _check(codes, factors, varied=True):
    """(N, d) float codes and (N, K) int factors; `varied`: each factor takes two values."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise KerasaeError(
            f"codes must be (N, d) and factors (N, K) with the same N; got codes "
            f"{codes.shape} and factors {factors.shape}"
        )
    if not np.issubdtype(factors.dtype, np.integer):
        if not np.all(np.isfinite(factors)) or np.any(factors != np.round(factors)):
            raise KerasaeError("factors must hold discrete (integer) factor indices")
    factors = factors.astype(np.int64)
    if not np.all(np.isfinite(codes)):
        raise KerasaeError("codes hold NaN or infinite values")
    constant = [j for j in range(factors.shape[1]) if np.all(factors[:, j] == factors[0, j])]
    if varied and constant:
        raise KerasaeError(f"factor(s) {constant} take a single value: nothing to measure")
    return codes, factors


def _split(codes, factors, test, test_fraction, seed):
    """(train codes, train factors, test codes, test factors): `test` given, or held out."""
    codes, factors = _check(codes, factors)
    if test is not None:
        codes_test, factors_test = _check(*test, varied=False)
        if codes_test.shape[1] != codes.shape[1] or factors_test.shape[1] != factors.shape[1]:
            raise KerasaeError("the test codes and factors need the columns of the train ones")
        return codes, factors, codes_test, factors_test
    n_test = int(round(len(codes) * test_fraction))
    if not 0 < n_test < len(codes):
        raise KerasaeError(f"test_fraction {test_fraction} leaves no train or no test rows")
    order = np.random.default_rng(seed).permutation(len(codes))
    train, test = order[n_test:], order[:n_test]
    return codes[train], factors[train], codes[test], factors[test]


def histogram_discretize(codes, num_bins=20):
    """Each column into `num_bins` equal-width bins over its range (disentanglement_lib)."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.zeros(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram(codes[:, i], num_bins)[1][:-1]
        out[:, i] = np.digitize(codes[:, i], edges)
    return out


def mutual_information(codes, factors, num_bins=20):
    """(d, K) discrete mutual information (nats) of the binned codes with each factor."""
    from sklearn.metrics import mutual_info_score  # slow to import: only where used

    binned = histogram_discretize(codes, num_bins)
    m = np.zeros((binned.shape[1], factors.shape[1]))
    for i in range(binned.shape[1]):
        for j in range(factors.shape[1]):
            m[i, j] = mutual_info_score(factors[:, j], binned[:, i])
    return m


def mig(codes, factors, num_bins=20):
    """Mutual information gap (Chen et al. 2018), as disentanglement_lib's discrete_mig.

    Codes are binned per dimension into `num_bins` histogram bins (disentanglement_lib: 20);
    for each factor, the mutual information of its best code dimension minus that of the
    second best, divided by the factor's entropy; the mean over factors. 1 when each factor
    is captured by one dimension alone, 0 when two dimensions share it equally.
    """
    from sklearn.metrics import mutual_info_score  # slow to import: only where used

    codes, factors = _check(codes, factors)
    if codes.shape[1] < 2:
        raise KerasaeError("MIG needs at least two code dimensions")
    m = mutual_information(codes, factors, num_bins)
    entropy = np.array([mutual_info_score(f, f) for f in factors.T])
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / entropy))


def sap_matrix(codes, factors, codes_test, factors_test, continuous_factors=False, seed=0):
    """(d, K) SAP score matrix: how well each code dimension alone predicts each factor.

    Discrete factors: the test accuracy of a LinearSVC(C=0.01, class_weight="balanced")
    fitted on that one dimension. Continuous factors: the squared correlation (train set).
    """
    from sklearn.svm import LinearSVC  # slow to import: only where used

    d, k = codes.shape[1], factors.shape[1]
    score = np.zeros((d, k))
    for i in range(d):
        for j in range(k):
            if continuous_factors:
                cov = np.cov(codes[:, i], factors[:, j], ddof=1)
                if cov[0, 0] > 1e-12:
                    score[i, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
                continue
            # dual=False: liblinear's primal solver for the same objective (squared hinge,
            # penalised intercept), which converges where the dual one warns on one feature
            svc = LinearSVC(C=0.01, class_weight="balanced", dual=False, random_state=seed)
            svc.fit(codes[:, i : i + 1], factors[:, j])
            score[i, j] = np.mean(svc.predict(codes_test[:, i : i + 1]) == factors_test[:, j])
    return score


def sap(codes, factors, test=None, *, continuous_factors=False, test_fraction=1 / 3, seed=0):
    """Separated attribute predictability (Kumar et al. 2018), as disentanglement_lib's.

    The score matrix of `sap_matrix`; for each factor, its best entry minus its second
    best; the mean over factors. Even perfectly axis-aligned codes stay below 1 for
    factors with many values: a linear classifier on one dimension cannot pick out the
    middle values of an ordinal factor.
    """
    codes, factors, codes_test, factors_test = _split(codes, factors, test, test_fraction, seed)
    if codes.shape[1] < 2:
        raise KerasaeError("SAP needs at least two code dimensions")
    score = sap_matrix(codes, factors, codes_test, factors_test, continuous_factors, seed)
    top = np.sort(score, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def _entropy(p, base, axis):
    """scipy.stats.entropy of the columns (axis=0) or rows (axis=1) of p, in `base`."""
    p = p / p.sum(axis=axis, keepdims=True)
    return -np.sum(p * np.log(p), axis=axis) / np.log(base)


def dci_scores(importance):
    """(disentanglement, completeness) of a (d, K) importance matrix (disentanglement_lib)."""
    importance = np.asarray(importance, dtype=np.float64)
    d, k = importance.shape
    per_code = 1.0 - _entropy(importance + 1e-11, base=k, axis=1)
    per_factor = 1.0 - _entropy(importance + 1e-11, base=d, axis=0)
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    code_weight = weights.sum(axis=1) / weights.sum()
    factor_weight = weights.sum(axis=0) / weights.sum()
    return float(np.sum(per_code * code_weight)), float(np.sum(per_factor * factor_weight))


def dci(codes, factors, test=None, *, n_estimators=100, test_fraction=1 / 3, seed=0):
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    As disentanglement_lib's: one GradientBoostingClassifier per factor on all code
    dimensions; its feature importances form column k of the (d, K) importance matrix.
    Disentanglement weighs 1 - entropy (base K) of each code's row by the code's share of
    the importance, completeness 1 - entropy (base d) of each factor's column likewise;
    informativeness is the classifiers' mean accuracy on the train and the test set.
    disentanglement_lib uses sklearn's defaults, n_estimators=100; fewer trees are faster.

    Returns a dict: disentanglement, completeness, informativeness_train,
    informativeness_test (floats) and importance_matrix, a (d, K) array.
    """
    from sklearn.ensemble import GradientBoostingClassifier  # slow to import: only where used

    codes, factors, codes_test, factors_test = _split(codes, factors, test, test_fraction, seed)
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    train_acc, test_acc = [], []
    for j in range(factors.shape[1]):
        model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
        model.fit(codes, factors[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(codes) == factors[:, j]))
        test_acc.append(np.mean(model.predict(codes_test) == factors_test[:, j]))
    disentanglement, completeness = dci_scores(importance)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness_train": float(np.mean(train_acc)),
        "informativeness_test": float(np.mean(test_acc)),
        "importance_matrix": importance,
    }


def modularity(mutual_info):
    """Modularity of a (d, K) mutual information matrix (Ridgeway & Mozer 2018).

    Per code dimension, 1 - (sum of squared MI but the largest) / (largest * (K - 1)); 0 for
    a dimension that carries no information; the mean over dimensions.
    """
    squared = np.square(np.asarray(mutual_info, dtype=np.float64))
    largest = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - (squared.sum(axis=1) - largest) / (largest * (squared.shape[1] - 1.0))
    score[largest == 0.0] = 0.0
    return float(np.mean(score))


def _roc_auc(positive, score):
    """sklearn's roc_auc_score of one binary column, as the Mann-Whitney U statistic."""
    from scipy.stats import rankdata  # slow to import: only where used

    ranks = rankdata(score)  # ties: average ranks, as the ROC curve's diagonal steps
    n_pos = positive.sum()
    n_neg = len(positive) - n_pos
    return (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _explicitness(x_train, y_train, x_test, y_test, seed):
    """Mean one-vs-rest ROC-AUC of a logistic regression, on the train and the test set."""
    from sklearn.linear_model import LogisticRegression  # slow to import: only where used
    from threadpoolctl import threadpool_limits  # slow to import: only where used

    # a few columns: BLAS threads only wait on each other (4x slower on two busy cores)
    with threadpool_limits(limits=1, user_api="blas"):
        clf = LogisticRegression(max_iter=1000, random_state=seed).fit(x_train, y_train)
    aucs = []
    for x, y in ((x_train, y_train), (x_test, y_test)):
        proba = clf.predict_proba(x)
        onehot = y[:, None] == clf.classes_[None, :]
        # classes absent from (or alone in) a set have no AUC there: averaged over the rest
        ok = [c for c in range(len(clf.classes_)) if 0 < onehot[:, c].sum() < len(y)]
        aucs.append(np.mean([_roc_auc(onehot[:, c], proba[:, c]) for c in ok]))
    return aucs


def modularity_explicitness(
    codes, factors, test=None, *, num_bins=20, test_fraction=1 / 3, seed=0
):
    """Modularity and explicitness (Ridgeway & Mozer 2018), as disentanglement_lib's.

    Modularity from the mutual information of the binned train codes with each factor;
    explicitness, per factor, the mean one-vs-rest ROC-AUC of a logistic regression on the
    standardised codes (train mean and std), averaged over factors. Returns a dict:
    modularity_score, explicitness_score_train, explicitness_score_test.
    """
    codes, factors, codes_test, factors_test = _split(codes, factors, test, test_fraction, seed)
    mean, std = codes.mean(axis=0), codes.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_train, x_test = (codes - mean) / std, (codes_test - mean) / std
    factor_pairs = zip(factors.T, factors_test.T)
    auc = np.array([_explicitness(x_train, y, x_test, y_test, seed) for y, y_test in factor_pairs])
    return {
        "modularity_score": modularity(mutual_information(codes, factors, num_bins)),
        "explicitness_score_train": float(auc[:, 0].mean()),
        "explicitness_score_test": float(auc[:, 1].mean()),
    }


def all_metrics(
    codes,
    factors,
    test=None,
    *,
    num_bins=20,
    n_estimators=100,
    test_fraction=1 / 3,
    seed=0,
    with_importance=False,
):
    """MIG, SAP, DCI, modularity and explicitness as one flat dict of floats.

    MIG and modularity use the training rows only (all rows when a test set is given),
    so every metric sees the same split. `with_importance`: (that dict, DCI's (d, K)
    importance matrix), which says which factor each code dimension captures.
    """
    codes, factors, *test = _split(codes, factors, test, test_fraction, seed)
    scores = {"mig": mig(codes, factors, num_bins), "sap": sap(codes, factors, test, seed=seed)}
    d = dci(codes, factors, test, n_estimators=n_estimators, seed=seed)
    scores.update({f"dci_{key}": d[key] for key in d if key != "importance_matrix"})
    me = modularity_explicitness(codes, factors, test, num_bins=num_bins, seed=seed)
    scores["modularity"] = me["modularity_score"]
    scores["explicitness_train"] = me["explicitness_score_train"]
    scores["explicitness_test"] = me["explicitness_score_test"]
    return (scores, d["importance_matrix"]) if with_importance else scores
