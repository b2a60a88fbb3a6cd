"""The classifier behind FID-C: trained once per dataset on its labelled training split, cached.

The classifier (a two-layer conv net for images, an MLP for vectors) is cached under the
user's cache folder (KERASAE_CACHE, else $XDG_CACHE_HOME/kerasae, else ~/.cache/kerasae),
keyed by the data's name, shape and a hash of its contents and labels, as .weights.h5 +
classifier.json with its test accuracy.
"""

import hashlib
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.io import atomic_folder, cache_dir, read_json, write_json
from kerasae.version import __version__

CLASSIFIER_VERSION = 1  # part of the cache key: a new architecture never reuses old weights


FEATURES = 128


CLASSIFIER_SEED = 0  # the classifier is part of the metric: it never depends on --seed


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
    init = keras.initializers.GlorotUniform(seed=CLASSIFIER_SEED)
    inputs = keras.Input(input_shape)
    x = inputs
    if kind == "conv":
        # stride 2 early on larger images keeps a Fashion-MNIST epoch to seconds on one core
        first = 2 if min(input_shape[:2]) >= 16 else 1
        x = keras.layers.Conv2D(
            32, 3, strides=first, padding="same", activation="relu", kernel_initializer=init
        )(x)
        x = keras.layers.Conv2D(
            64, 3, strides=2, padding="same", activation="relu", kernel_initializer=init
        )(x)
        x = keras.layers.Flatten()(x)
    else:
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(256, activation="relu", kernel_initializer=init)(x)
    features = keras.layers.Dense(
        FEATURES, activation="relu", kernel_initializer=init, name="features"
    )(x)
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
        x = np.asarray(x, dtype="float32").reshape((len(x),) + self.input_shape)
        feats, logits = [], []
        for start in range(0, len(x), batch_size):
            f, lg = self.network(x[start : start + batch_size], training=False)
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
        raise KerasaeError(
            f"{data.name} has no labels; FID-C and precision/recall need a "
            "labelled dataset such as digits, mnist or fashion_mnist"
        )


def train_classifier(data, seed=CLASSIFIER_SEED, epochs=None, verbose=0):
    """A fresh `Classifier` trained on `data`'s labelled training split (not cached)."""
    _require_labels(data)
    classes, y = np.unique(np.asarray(data.y_train).ravel(), return_inverse=True)
    if len(classes) < 2:
        raise KerasaeError(
            f"{data.name} has a single class; FID-C's classifier needs at "
            "least two labelled classes"
        )
    x = np.asarray(data.x_train, dtype="float32")
    kind = "conv" if x.ndim == 4 else "mlp"
    # about 40k examples seen in all: many epochs on digits, four on Fashion-MNIST
    epochs = epochs or int(np.clip(np.ceil(40_000 / len(x)), 4, 30))
    network = _build(x.shape[1:], len(classes), kind)
    trainer = keras.Model(network.inputs, network.outputs[1])  # shares the layers
    trainer.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # an op-seeded shuffle: the same order every time, and no global seed is touched
    batches = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(128)
    )
    began = time.perf_counter()
    trainer.fit(batches, epochs=epochs, shuffle=False, verbose=verbose)
    info = {
        "kind": kind,
        "input_shape": list(x.shape[1:]),
        "n_classes": len(classes),
        "classes": [c.item() for c in classes],
        "features": FEATURES,
        "epochs": epochs,
        "n_train": len(x),
        "seed": seed,
        "dataset": str(data.name),
        "train_seconds": round(time.perf_counter() - began, 2),
        "version": CLASSIFIER_VERSION,
        "test_accuracy": None,
    }
    classifier = Classifier(network, info)
    if data.y_test is not None and len(data.x_test):
        classifier.test_accuracy = info["test_accuracy"] = classifier.score(
            data.x_test, data.y_test
        )
    return classifier


def classifier_for(data, verbose=0):
    """The cached FID-C classifier of `data`, trained (once) and cached when missing."""
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
