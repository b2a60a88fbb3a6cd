"""Sample quality: a classifier-feature FID ("FID-C"), precision/recall and class coverage.

FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017) is the Fréchet distance between Gaussians fitted to features of
real and generated samples. Inception features do not fit 8x8 digits or 28x28 garments, so
kerasae measures it in the penultimate layer of a small classifier it trains on the
dataset's own labelled training split: FID-C. It is NOT Inception FID and its numbers are
comparable only with other FID-C numbers on the same dataset (same cached classifier).

Precision and recall follow Kynkäänniemi et al., "Improved Precision and Recall Metric for
Assessing Generative Models" (NeurIPS 2019): each real feature vector gets a ball reaching
its k-th nearest real neighbour (k = 3); precision is the share of generated samples inside
some real ball (are the samples realistic?), recall the share of real samples inside some
generated ball (is the data's variety reached?).

The classifier is `kerasae.evaluation.classifier`.
"""

import os
import time

import numpy as np

from kerasae.errors import KerasaeError
from kerasae.evaluation.classifier import _require_labels, classifier_for
from kerasae.evaluation.coverage import class_coverage, plot_coverage
from kerasae.runs.data import open_data
from kerasae.runs.folder import load_run
from kerasae.runs.samplers import run_generator

K_NEIGHBOURS = 3


def frechet_distance(a, b):
    """||mu_a - mu_b||^2 + tr(C_a + C_b - 2 (C_a C_b)^1/2) of two feature sets (rows).

    ReLU features have dead units, so the covariances are singular and scipy's general
    `sqrtm(C_a @ C_b)` warns and loses accuracy there. The same trace comes stably from
    symmetric eigendecompositions: tr (C_a C_b)^1/2 = tr (S C_b S)^1/2 with S = C_a^1/2."""
    from scipy.linalg import eigh  # slow to import: only where it is used

    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    diff = a.mean(axis=0) - b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(eigh(root_a @ cov_b @ root_a, eigvals_only=True), 0, None)).sum()
    fid = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    return float(max(fid, 0.0))


def knn_radii(features, k=K_NEIGHBOURS):
    """Distance from each row to its k-th nearest other row (the manifold ball's radius)."""
    # slow to import: only where it is used
    from sklearn.neighbors import NearestNeighbors

    if len(features) <= k:
        raise KerasaeError(
            f"precision/recall need more than k={k} samples, got "
            f"{len(features)}; pass --samples of a few hundred or more"
        )
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    return distances[:, k]  # column 0 is the point itself


def _inside(points, centres, radii):
    """For each point: is it within radii[j] of some centre j? (in chunks: bounded memory)"""
    # slow to import: only where it is used
    from sklearn.metrics import pairwise_distances_chunked

    def reduce(d, start):
        return np.any(d <= radii[None, :], axis=1)

    chunks = pairwise_distances_chunked(points, centres, reduce_func=reduce, working_memory=64)
    return np.concatenate(list(chunks))


def precision_recall(real, fake, k=K_NEIGHBOURS):
    """Kynkäänniemi et al. (2019): (precision, recall) of `fake` against `real` features."""
    precision = _inside(fake, real, knn_radii(real, k)).mean()
    recall = _inside(real, fake, knn_radii(fake, k)).mean()
    return float(precision), float(recall)


def generation_metrics(samples, data, seed=0, classifier=None, k=K_NEIGHBOURS, min_share=0.25):
    """FID-C, precision, recall and class coverage of `samples` against `data`'s training
    split (as many real examples as samples, drawn with `seed`); no run folder needed."""
    samples = np.asarray(samples, dtype="float32")
    if samples.ndim < 2 or tuple(samples.shape[1:]) != tuple(data.input_shape):
        raise KerasaeError(
            f"samples of shape {samples.shape[1:]} do not match the data's "
            f"{tuple(data.input_shape)}; pass samples shaped like the data"
        )
    if len(samples) <= k:
        raise KerasaeError(
            f"precision/recall need more than k={k} samples, got "
            f"{len(samples)}; pass --samples of a few hundred or more"
        )
    bad = int(np.sum(~np.isfinite(samples).reshape(len(samples), -1).all(axis=1)))
    if bad:
        raise KerasaeError(
            f"{bad} of {len(samples)} samples hold NaN or inf; the generator "
            "diverged: retrain it or fit another sampler"
        )
    classifier = classifier or classifier_for(data)
    n_real = min(len(samples), len(data.x_train))
    rng = np.random.default_rng(seed)
    real = data.x_train[np.sort(rng.choice(len(data.x_train), n_real, replace=False))]
    real_f, fake_f = classifier.features(real), classifier.features(samples)
    precision, recall = precision_recall(real_f, fake_f, k)
    result = class_coverage(samples, data, classifier=classifier, min_share=min_share)
    result.update(
        fid_c=frechet_distance(real_f, fake_f),
        precision=precision,
        recall=recall,
        k=int(k),
        n_real=int(n_real),
        feature_dim=int(real_f.shape[1]),
        classifier_accuracy=classifier.test_accuracy,
        classifier=f"{classifier.info['kind']} classifier, penultimate layer "
        f"({classifier.info['features']} features)",
    )
    return result


def evaluate_generation(run_dir, dataset=None, n_samples=2000, sampler=None, seed=0):
    """Sample quality of a run's generator: FID-C, precision/recall, class coverage and
    sampling time, plus coverage.png in the run folder."""
    if n_samples <= 0:
        raise KerasaeError(f"--samples must be a positive integer, got {n_samples}")
    config, model = load_run(run_dir)
    draw, description = run_generator(run_dir, config, model, name=sampler)
    data = open_data(config, dataset, scaling=config.get("scaling"))
    _require_labels(data)
    if tuple(data.input_shape) != tuple(model.data_shape):
        raise KerasaeError(
            f"the data has shape {data.input_shape} but the model was trained "
            f"on {tuple(model.data_shape)}; use data of the same shape"
        )
    classifier = classifier_for(data)
    began = time.perf_counter()
    samples = np.asarray(draw(n_samples, seed), dtype="float32")
    seconds = time.perf_counter() - began
    result = generation_metrics(samples, data, seed=seed, classifier=classifier)
    result.update(
        sampler=description, seed=int(seed), seconds_per_1000=round(1000 * seconds / n_samples, 4)
    )
    result["coverage_png"] = plot_coverage(result, os.path.join(run_dir, "coverage.png"))
    return result


def describe(result):
    """Two lines for the CLI: the quality figures, then class coverage."""
    accuracy = result["classifier_accuracy"]
    accuracy = "n/a" if accuracy is None else f"{accuracy:.3f}"
    missing = ", ".join(map(str, result["missing_classes"]))
    return (
        f"{result['n_samples']} samples from {result['sampler']}: FID-C "
        f"{result['fid_c']:.2f} (classifier-feature FID, not Inception FID), precision "
        f"{result['precision']:.3f}, recall {result['recall']:.3f} (k={result['k']}); "
        f"{result['seconds_per_1000']:.3f} s per 1000 samples\n"
        f"classes covered {result['classes_covered']}/{result['n_classes']}"
        f"{f' (missing: {missing})' if missing else ''}, KL(samples || data) "
        f"{result['kl_to_data']:.4f} nats; classifier test accuracy {accuracy}; "
        f"chart {result['coverage_png']}\n"
    )
