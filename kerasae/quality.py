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

The classifier (a two-layer conv net for images, an MLP for vectors) is trained once per
dataset and cached under the user's cache folder (KERASAE_CACHE, else
$XDG_CACHE_HOME/kerasae, else ~/.cache/kerasae), keyed by the data's name, shape and a
hash of its contents and labels, as .weights.h5 + classifier.json with its test accuracy.
"""
import hashlib
import os
import re
import time

import numpy as np

from kerasae.errors import KerasaeError

CLASSIFIER_VERSION = 1  # part of the cache key: a new architecture never reuses old weights
FEATURES = 128
K_NEIGHBOURS = 3
CLASSIFIER_SEED = 0  # the classifier is part of the metric: it never depends on --seed


def cache_dir():
    """KERASAE_CACHE, else $XDG_CACHE_HOME/kerasae, else ~/.cache/kerasae."""
    if os.environ.get("KERASAE_CACHE"):
        return os.path.expanduser(os.environ["KERASAE_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "kerasae")


def dataset_key(data):
    """`name-shape-hash`: different data (values, labels, size) never shares a classifier."""
    digest = hashlib.sha256(f"v{CLASSIFIER_VERSION}".encode())
    for part in (data.x_train, data.y_train, data.x_test, data.y_test):
        if part is None:
            digest.update(b"none")
            continue
        part = np.asarray(part)
        if part.dtype.kind in "OUS":  # text labels: hash their strings
            part = np.asarray([str(v) for v in part.ravel()], dtype="U")
        digest.update(f"{part.dtype.str}{part.shape}".encode())
        digest.update(np.ascontiguousarray(part).data)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(data.name))[:40] or "data"
    shape = "x".join(str(d) for d in data.input_shape)
    return f"{name}-{shape}-{digest.hexdigest()[:16]}"


def _build(input_shape, n_classes, kind):
    import keras

    init = keras.initializers.GlorotUniform(seed=CLASSIFIER_SEED)
    inputs = keras.Input(input_shape)
    x = inputs
    if kind == "conv":
        # stride 2 early on larger images keeps a Fashion-MNIST epoch to seconds on one core
        first = 2 if min(input_shape[:2]) >= 16 else 1
        x = keras.layers.Conv2D(32, 3, strides=first, padding="same", activation="relu",
                                kernel_initializer=init)(x)
        x = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=init)(x)
        x = keras.layers.Flatten()(x)
    else:
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(256, activation="relu", kernel_initializer=init)(x)
    features = keras.layers.Dense(FEATURES, activation="relu", kernel_initializer=init,
                                  name="features")(x)
    logits = keras.layers.Dense(n_classes, kernel_initializer=init, name="logits")(features)
    return keras.Model(inputs, [features, logits], name="fid_c_classifier")


class Classifier:
    """The FID-C feature network; sklearn-like `predict`, `score` and `classes_`."""

    def __init__(self, network, info, folder=None):
        self.network, self.info, self.folder = network, info, folder
        self.classes_ = np.asarray(info["classes"])
        self.input_shape = tuple(info["input_shape"])
        self.test_accuracy = info.get("test_accuracy")

    def _outputs(self, x, batch_size=512):
        import keras

        x = np.asarray(x, dtype="float32").reshape((len(x),) + self.input_shape)
        feats, logits = [], []
        for start in range(0, len(x), batch_size):
            f, lg = self.network(x[start:start + batch_size], training=False)
            feats.append(keras.ops.convert_to_numpy(f))
            logits.append(keras.ops.convert_to_numpy(lg))
        return np.concatenate(feats), np.concatenate(logits)

    def features(self, x):
        """Penultimate-layer activations, (n, 128) float64."""
        return self._outputs(x)[0].astype("float64")

    def predict(self, x):
        return self.classes_[np.argmax(self._outputs(x)[1], axis=1)]

    def score(self, x, y):
        return float(np.mean(self.predict(x) == np.asarray(y)))


def _require_labels(data):
    if getattr(data, "y_train", None) is None:
        raise KerasaeError(f"{data.name} has no labels; FID-C and precision/recall need a "
                           "labelled dataset such as digits, mnist or fashion_mnist")


def train_classifier(data, seed=CLASSIFIER_SEED, epochs=None, verbose=0):
    """A fresh `Classifier` trained on `data`'s labelled training split (not cached)."""
    import keras
    import tensorflow as tf

    _require_labels(data)
    classes, y = np.unique(np.asarray(data.y_train).ravel(), return_inverse=True)
    if len(classes) < 2:
        raise KerasaeError(f"{data.name} has a single class; FID-C's classifier needs at "
                           "least two labelled classes")
    x = np.asarray(data.x_train, dtype="float32")
    kind = "conv" if x.ndim == 4 else "mlp"
    # about 40k examples seen in all: many epochs on digits, four on Fashion-MNIST
    epochs = epochs or int(np.clip(np.ceil(40_000 / len(x)), 4, 30))
    network = _build(x.shape[1:], len(classes), kind)
    trainer = keras.Model(network.inputs, network.outputs[1])  # shares the layers
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # an op-seeded shuffle: the same order every time, and no global seed is touched
    batches = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
        len(x), seed=seed, reshuffle_each_iteration=True).batch(128)
    began = time.perf_counter()
    trainer.fit(batches, epochs=epochs, shuffle=False, verbose=verbose)
    info = {"kind": kind, "input_shape": list(x.shape[1:]), "n_classes": len(classes),
            "classes": [c.item() for c in classes], "features": FEATURES,
            "epochs": epochs, "n_train": len(x), "seed": seed, "dataset": str(data.name),
            "train_seconds": round(time.perf_counter() - began, 2),
            "version": CLASSIFIER_VERSION, "test_accuracy": None}
    classifier = Classifier(network, info)
    if data.y_test is not None and len(data.x_test):
        classifier.test_accuracy = info["test_accuracy"] = classifier.score(data.x_test,
                                                                            data.y_test)
    return classifier


def classifier_for(data, verbose=0):
    """The cached FID-C classifier of `data`, trained (once) and cached when missing."""
    from kerasae import __version__
    from kerasae.io import atomic_folder, read_json, write_json

    _require_labels(data)  # before hashing: streamed data has none and no arrays
    key = dataset_key(data)
    folder = os.path.join(cache_dir(), "classifiers", key)
    meta, weights = os.path.join(folder, "classifier.json"), "classifier.weights.h5"
    if os.path.isfile(meta):
        try:
            info = read_json(meta)
            network = _build(tuple(info["input_shape"]), info["n_classes"], info["kind"])
            network.load_weights(os.path.join(folder, weights))
            return Classifier(network, info, folder)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt, not trusted
    classifier = train_classifier(data, verbose=verbose)
    classifier.info.update(key=key, kerasae_version=__version__)
    with atomic_folder(folder) as tmp:
        classifier.network.save_weights(os.path.join(tmp, weights))
        write_json(os.path.join(tmp, "classifier.json"), classifier.info)
    classifier.folder = folder
    return classifier


def frechet_distance(a, b):
    """||mu_a - mu_b||^2 + tr(C_a + C_b - 2 (C_a C_b)^1/2) of two feature sets (rows).

    ReLU features have dead units, so the covariances are singular and scipy's general
    `sqrtm(C_a @ C_b)` warns and loses accuracy there. The same trace comes stably from
    symmetric eigendecompositions: tr (C_a C_b)^1/2 = tr (S C_b S)^1/2 with S = C_a^1/2."""
    from scipy.linalg import eigh

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
    from sklearn.neighbors import NearestNeighbors

    if len(features) <= k:
        raise KerasaeError(f"precision/recall need more than k={k} samples, got "
                           f"{len(features)}; pass --samples of a few hundred or more")
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    return distances[:, k]  # column 0 is the point itself


def _inside(points, centres, radii):
    """For each point: is it within radii[j] of some centre j? (in chunks: bounded memory)"""
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


def generation_metrics(samples, data, seed=0, classifier=None, k=K_NEIGHBOURS,
                       min_share=0.25):
    """FID-C, precision, recall and class coverage of `samples` against `data`'s training
    split (as many real examples as samples, drawn with `seed`); no run folder needed."""
    from kerasae.coverage import class_coverage

    samples = np.asarray(samples, dtype="float32")
    if samples.ndim < 2 or tuple(samples.shape[1:]) != tuple(data.input_shape):
        raise KerasaeError(f"samples of shape {samples.shape[1:]} do not match the data's "
                           f"{tuple(data.input_shape)}; pass samples shaped like the data")
    if len(samples) <= k:
        raise KerasaeError(f"precision/recall need more than k={k} samples, got "
                           f"{len(samples)}; pass --samples of a few hundred or more")
    bad = int(np.sum(~np.isfinite(samples).reshape(len(samples), -1).all(axis=1)))
    if bad:
        raise KerasaeError(f"{bad} of {len(samples)} samples hold NaN or inf; the generator "
                           "diverged: retrain it or fit another sampler")
    classifier = classifier or classifier_for(data)
    n_real = min(len(samples), len(data.x_train))
    rng = np.random.default_rng(seed)
    real = data.x_train[np.sort(rng.choice(len(data.x_train), n_real, replace=False))]
    real_f, fake_f = classifier.features(real), classifier.features(samples)
    precision, recall = precision_recall(real_f, fake_f, k)
    result = class_coverage(samples, data, classifier=classifier, min_share=min_share)
    result.update(fid_c=frechet_distance(real_f, fake_f), precision=precision, recall=recall,
                  k=int(k), n_real=int(n_real), feature_dim=int(real_f.shape[1]),
                  classifier_accuracy=classifier.test_accuracy,
                  classifier=f"{classifier.info['kind']} classifier, penultimate layer "
                             f"({classifier.info['features']} features)")
    return result


def evaluate_generation(run_dir, dataset=None, n_samples=2000, sampler=None, seed=0):
    """Sample quality of a run's generator: FID-C, precision/recall, class coverage and
    sampling time, plus coverage.png in the run folder."""
    from kerasae.coverage import plot_coverage
    from kerasae.rundata import open_data
    from kerasae.runs import load_run
    from kerasae.samplers import run_generator

    if n_samples <= 0:
        raise KerasaeError(f"--samples must be a positive integer, got {n_samples}")
    config, model = load_run(run_dir)
    draw, description = run_generator(run_dir, config, model, name=sampler)
    data = open_data(config, dataset, scaling=config.get("scaling"))
    _require_labels(data)
    if tuple(data.input_shape) != tuple(model.data_shape):
        raise KerasaeError(f"the data has shape {data.input_shape} but the model was trained "
                           f"on {tuple(model.data_shape)}; use data of the same shape")
    classifier = classifier_for(data)
    began = time.perf_counter()
    samples = np.asarray(draw(n_samples, seed), dtype="float32")
    seconds = time.perf_counter() - began
    result = generation_metrics(samples, data, seed=seed, classifier=classifier)
    result.update(sampler=description, seed=int(seed),
                  seconds_per_1000=round(1000 * seconds / n_samples, 4))
    result["coverage_png"] = plot_coverage(result, os.path.join(run_dir, "coverage.png"))
    return result


def describe(result):
    """Two lines for the CLI: the quality figures, then class coverage."""
    accuracy = result["classifier_accuracy"]
    accuracy = "n/a" if accuracy is None else f"{accuracy:.3f}"
    missing = ", ".join(map(str, result["missing_classes"]))
    return (f"{result['n_samples']} samples from {result['sampler']}: FID-C "
            f"{result['fid_c']:.2f} (classifier-feature FID, not Inception FID), precision "
            f"{result['precision']:.3f}, recall {result['recall']:.3f} (k={result['k']}); "
            f"{result['seconds_per_1000']:.3f} s per 1000 samples\n"
            f"classes covered {result['classes_covered']}/{result['n_classes']}"
            f"{f' (missing: {missing})' if missing else ''}, KL(samples || data) "
            f"{result['kl_to_data']:.4f} nats; classifier test accuracy {accuracy}; "
            f"chart {result['coverage_png']}\n")
