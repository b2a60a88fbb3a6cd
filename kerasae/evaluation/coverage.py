"""Mode coverage of a generative model: do prior samples reach every class of the data?

A model that has collapsed onto a few modes can still reconstruct well, so sample quality
needs its own check. Following the mode-counting protocol of Metz et al. (Unrolled GANs,
2017) and Srivastava et al. (VEEGAN, 2017): a classifier trained on the labelled data
labels N prior samples; we report how many classes the samples reach and
KL(sample label histogram || data label histogram), 0 for a perfect match.

The classifier is multinomial logistic regression on pixels (scikit-learn): small, fast on
a CPU, and its test accuracy is reported so the numbers can be read with its error rate
in mind. A class counts as covered when it receives at least `min_share` (a quarter) of
the samples the data's label frequencies predict: the classifier's few per cent of
errors, spread over the classes, must not count as coverage. `class_coverage` labels
samples drawn elsewhere; `kerasae evaluate --generation` (kerasae.evaluation.quality) passes the
FID-C conv-net classifier instead, more accurate on images than pixel logistic regression.
"""

import os

import numpy as np

from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.plots import _pyplot, save_figure
from kerasae.runs.data import open_data
from kerasae.runs.folder import load_run


def train_classifier(x, y, max_examples=10_000, seed=0):
    """Logistic regression on flattened inputs; returns (classifier, classes)."""
    # slow to import: only where it is used
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype="float32").reshape(len(x), -1)
    if len(x) > max_examples:
        keep = np.random.default_rng(seed).choice(len(x), max_examples, replace=False)
        x, y = x[keep], np.asarray(y)[keep]
    clf = LogisticRegression(max_iter=300, C=0.5)
    clf.fit(x, y)
    return clf


def label_kl(p, q, eps=1e-12):
    """KL(p || q) in nats for two histograms over the same classes (0 log 0 = 0)."""
    p = np.asarray(p, dtype="float64")
    q = np.asarray(q, dtype="float64")
    p, q = p / p.sum(), q / q.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], eps))))


def mode_coverage(model, data, n_samples=2000, seed=0, min_share=0.25, classifier=None):
    """Classes covered by `n_samples` prior samples and the KL of their label histogram."""
    if not getattr(model, "generative", False):
        model.sample(1)  # raises the model's own NotGenerativeError message
        raise NotGenerativeError("this model is not generative")
    _check_labelled(data)
    if n_samples <= 0:
        raise KerasaeError(f"--samples must be a positive integer, got {n_samples}")
    clf = classifier or train_classifier(data.x_train, data.y_train, seed=seed)
    return class_coverage(
        model.sample(n_samples, seed=seed), data, classifier=clf, min_share=min_share
    )


def class_coverage(samples, data, classifier=None, min_share=0.25, seed=0):
    """Classes covered by already drawn `samples` and the KL of their label histogram.

    `classifier`: anything with sklearn's `predict`, `score` and `classes_` (the logistic
    regression above by default; kerasae.evaluation.quality passes its conv-net classifier, which
    is
    more accurate on images, and its recorded `test_accuracy`)."""
    _check_labelled(data)
    samples = np.asarray(samples, dtype="float32")
    if len(samples) == 0:
        raise KerasaeError("no samples to label; pass --samples of a positive integer")
    clf = classifier or train_classifier(data.x_train, data.y_train, seed=seed)
    classes = clf.classes_
    accuracy = getattr(clf, "test_accuracy", None)
    if accuracy is None and data.y_test is not None:
        accuracy = float(clf.score(data.x_test.reshape(len(data.x_test), -1), data.y_test))
    predicted = clf.predict(samples.reshape(len(samples), -1))
    counts = np.array([(predicted == c).sum() for c in classes], dtype="int64")
    data_counts = np.array([(data.y_train == c).sum() for c in classes], dtype="int64")
    expected = len(samples) * data_counts / data_counts.sum()
    covered = counts >= min_share * expected
    return {
        "n_samples": int(len(samples)),
        "n_classes": int(len(classes)),
        "classes_covered": int(covered.sum()),
        "missing_classes": [c.item() for c in classes[~covered]],
        "kl_to_data": label_kl(counts, data_counts),
        "classifier_accuracy": accuracy,
        "min_share": float(min_share),
        "classes": [c.item() for c in classes],
        "sample_counts": counts.tolist(),
        "data_frequencies": (data_counts / data_counts.sum()).tolist(),
    }


def _check_labelled(data):
    if data.y_train is None:
        raise KerasaeError(
            f"{data.name} has no labels; mode coverage needs a labelled dataset "
            "such as digits, mnist or fashion_mnist"
        )


def plot_coverage(result, path, title=None):
    """Bar chart: the samples' label frequencies next to the data's."""
    plt = _pyplot()
    k = np.arange(result["n_classes"])
    counts = np.asarray(result["sample_counts"], dtype="float64")
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(k) + 2), 3.2))
    ax.bar(k - 0.2, result["data_frequencies"], width=0.4, color="tab:grey", label="data")
    ax.bar(k + 0.2, counts / counts.sum(), width=0.4, color="tab:blue", label="prior samples")
    ax.set_xticks(k, [str(c) for c in result["classes"]])
    ax.set_xlabel("class (as labelled by the classifier)")
    ax.set_ylabel("frequency")
    ax.set_title(
        title
        or f"{result['classes_covered']}/{result['n_classes']} classes covered, "
        f"KL {result['kl_to_data']:.3f} nats",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def evaluate_generation(run_dir, dataset=None, n_samples=2000, seed=0):
    """Mode coverage of a finished run on its (or another labelled) dataset; writes a PNG."""

    config, model = load_run(run_dir)
    if not model.generative:
        model.sample(1)  # the model's own one-line NotGenerativeError
    data = open_data(config, dataset, scaling=config.get("scaling"))
    if tuple(data.input_shape) != tuple(model.data_shape):
        raise KerasaeError(
            f"the data has shape {data.input_shape} but the model was trained "
            f"on {tuple(model.data_shape)}; use data of the same shape"
        )
    result = mode_coverage(model, data, n_samples=n_samples, seed=seed)
    result["coverage_png"] = plot_coverage(result, os.path.join(run_dir, "coverage.png"))
    return result
