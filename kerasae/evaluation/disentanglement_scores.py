"""Intervention-based disentanglement scores: the BetaVAE and the FactorVAE metric.

    beta_vae_score    Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a
                      Constrained Variational Framework"
    factor_vae_score  Kim & Mnih 2018, "Disentangling by Factorising"

Both follow disentanglement_lib (Locatello et al., ICML 2019), with numpy and scikit-learn
only. Unlike the metrics of disentanglement.py they need observations drawn with one
factor held fixed, so they take a factor dataset, any object with

    factor_sizes                 a tuple of K ints, the number of values of each factor
    sample_factors(n, rng)       an (n, K) int array of factor indices (rng: a numpy
                                 Generator); `uniform_factors` draws each one uniformly
    observations(factors)        the observations (images) of those factor rows

and `encode(x)`, which maps a batch of observations to (n, d) codes: the posterior mean.
Observations are encoded in batches of up to `max_batch` rows (disentanglement_lib
encodes one mini-batch at a time), which changes the order of the draws, not their
distribution. The defaults of num_train and num_eval are a tenth of disentanglement_lib's
(10,000 and 5,000) so that a CPU gets through them; pass those for comparable numbers.
"""

from typing import Protocol

import numpy as np

from kerasae.errors import KerasaeError


class FactorDataset(Protocol):
    """Observations generated from known discrete factors of variation."""

    factor_sizes: tuple[int, ...]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def observations(self, factors: np.ndarray) -> np.ndarray: ...


def uniform_factors(factor_sizes, n, rng):
    """(n, K) factor indices, each drawn uniformly and independently of the others."""
    return np.stack([rng.integers(size, size=n) for size in factor_sizes], axis=1)


def encode_observations(dataset, encode, factors, max_batch):
    """Codes of the observations of `factors`, encoded in batches of up to max_batch rows."""
    codes = []
    for start in range(0, len(factors), max_batch):
        x = dataset.observations(factors[start : start + max_batch])
        z = np.asarray(encode(x), dtype=np.float64)
        codes.append(z.reshape(len(z), -1))
    return np.concatenate(codes)


def _sample(dataset, rng, n):
    factors = np.asarray(dataset.sample_factors(n, rng)).astype(np.int64)
    if factors.shape != (n, len(dataset.factor_sizes)):
        raise KerasaeError(
            f"sample_factors({n}, rng) returned shape {factors.shape}, not "
            f"({n}, {len(dataset.factor_sizes)})"
        )
    return factors


def _check_sizes(dataset, batch_size, num_train, num_eval, max_batch):
    if len(dataset.factor_sizes) < 2:
        raise KerasaeError("these scores need at least two factors of variation")
    if min(batch_size, num_train, num_eval, max_batch) < 1:
        raise KerasaeError("batch_size, num_train, num_eval and max_batch must be positive")


def _beta_vae_points(dataset, encode, rng, batch_size, num_points, max_batch):
    """(num_points, d) mean |z1 - z2| over pairs sharing one factor, and that factor."""
    k = len(dataset.factor_sizes)
    per_call = max(1, max_batch // batch_size)  # points whose two batches fit one call
    points, labels = [], []
    for start in range(0, num_points, per_call):
        m = min(per_call, num_points - start)
        index = rng.integers(k, size=m)
        first = _sample(dataset, rng, m * batch_size)
        second = _sample(dataset, rng, m * batch_size)
        rows = np.repeat(index, batch_size)
        second[np.arange(m * batch_size), rows] = first[np.arange(m * batch_size), rows]
        z1 = encode_observations(dataset, encode, first, max_batch)
        z2 = encode_observations(dataset, encode, second, max_batch)
        diff = np.abs(z1 - z2).reshape(m, batch_size, -1)
        points.append(diff.mean(axis=1))
        labels.append(index)
    return np.concatenate(points), np.concatenate(labels)


def beta_vae_score(
    dataset,
    encode,
    *,
    batch_size=64,
    num_train=1000,
    num_eval=500,
    seed=0,
    max_batch=4096,
):
    """The BetaVAE metric (Higgins et al. 2017), as disentanglement_lib's beta_vae_sklearn.

    Each point: a factor k drawn uniformly; two batches of `batch_size` factor rows, the
    second sharing factor k with the first row by row; the point is the mean over the batch
    of |encode(x1) - encode(x2)|, labelled k. A LogisticRegression is fitted to num_train
    points and scored on num_eval fresh ones. Chance is about 1/K.

    disentanglement_lib: batch_size=64, num_train=10000, num_eval=5000 (here 64, 1000, 500).
    Returns a dict: train_accuracy, eval_accuracy.
    """
    from sklearn.linear_model import LogisticRegression  # slow to import: only where used
    from threadpoolctl import threadpool_limits  # slow to import: only where used

    _check_sizes(dataset, batch_size, num_train, num_eval, max_batch)
    rng = np.random.default_rng(seed)
    x_train, y_train = _beta_vae_points(dataset, encode, rng, batch_size, num_train, max_batch)
    # disentanglement_lib keeps sklearn's default of 100 iterations; more, so it converges
    with threadpool_limits(limits=1, user_api="blas"):  # d columns: threads only wait
        model = LogisticRegression(max_iter=1000, random_state=seed).fit(x_train, y_train)
    x_eval, y_eval = _beta_vae_points(dataset, encode, rng, batch_size, num_eval, max_batch)
    return {
        "train_accuracy": float(np.mean(model.predict(x_train) == y_train)),
        "eval_accuracy": float(np.mean(model.predict(x_eval) == y_eval)),
    }


def _factor_vae_votes(dataset, encode, rng, batch_size, num_points, max_batch, scale, active):
    """(K, d) votes: how often fixing factor k left dimension j the least varied."""
    k = len(dataset.factor_sizes)
    votes = np.zeros((k, len(scale)), dtype=np.int64)
    columns = np.flatnonzero(active)
    per_call = max(1, max_batch // batch_size)
    for start in range(0, num_points, per_call):
        m = min(per_call, num_points - start)
        index = rng.integers(k, size=m)
        factors = _sample(dataset, rng, m * batch_size).reshape(m, batch_size, k)
        factors[np.arange(m), :, index] = factors[np.arange(m), 0, index][:, None]
        codes = encode_observations(dataset, encode, factors.reshape(-1, k), max_batch)
        local = codes.reshape(m, batch_size, -1).var(axis=1, ddof=1)
        argmin = columns[np.argmin(local[:, active] / scale[active], axis=1)]
        np.add.at(votes, (index, argmin), 1)
    return votes


def factor_vae_score(
    dataset,
    encode,
    *,
    batch_size=64,
    num_train=1000,
    num_eval=500,
    num_variance_estimate=10000,
    prune_threshold=0.05,
    seed=0,
    max_batch=4096,
):
    """The FactorVAE metric (Kim & Mnih 2018), as disentanglement_lib's factor_vae_score.

    The codes' variances over num_variance_estimate random observations standardise them;
    dimensions whose standard deviation is below prune_threshold (disentanglement_lib's
    _prune_dims, 0.05 in its study) count as collapsed and are left out. Each vote: a factor
    k drawn uniformly, held fixed over a batch of `batch_size` rows; the active dimension of
    least variance (relative to its global variance) votes for k. The majority-vote
    classifier maps each dimension to the factor it received most votes for, fitted on
    num_train votes and scored on num_eval fresh ones. Chance is about 1/K.

    disentanglement_lib: batch_size=64, num_train=10000, num_eval=5000,
    num_variance_estimate=10000, threshold 0.05 (here 64, 1000, 500, 10000, 0.05).
    Returns a dict: train_accuracy, eval_accuracy, num_active_dims (all 0 when every
    dimension is collapsed).
    """
    _check_sizes(dataset, batch_size, num_train, num_eval, max_batch)
    if batch_size < 2 or num_variance_estimate < 2:
        raise KerasaeError("batch_size and num_variance_estimate must be at least 2")
    rng = np.random.default_rng(seed)
    codes = encode_observations(
        dataset, encode, _sample(dataset, rng, num_variance_estimate), max_batch
    )
    scale = codes.var(axis=0, ddof=1)
    active = (np.sqrt(scale) >= prune_threshold) & (scale > 0)  # 0: nothing to divide by
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    args = (dataset, encode, rng, batch_size)
    train = _factor_vae_votes(*args, num_train, max_batch, scale, active)
    classifier = np.argmax(train, axis=0)  # the factor each dimension votes for
    columns = np.arange(train.shape[1])
    evaluation = _factor_vae_votes(*args, num_eval, max_batch, scale, active)
    return {
        "train_accuracy": float(train[classifier, columns].sum() / train.sum()),
        "eval_accuracy": float(evaluation[classifier, columns].sum() / evaluation.sum()),
        # disentanglement_lib reports len(active_dims), the length of its mask: here the count
        "num_active_dims": int(active.sum()),
    }
