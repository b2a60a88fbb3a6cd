"""
Title: Anomaly detection on tabular data: breast cancer biopsies
Description: Train a dense autoencoder (`ae`) on benign tumours only (the Wisconsin
diagnostic breast cancer data that ships with scikit-learn, 30 numeric features per
biopsy) and flag malignant ones by their reconstruction error; compare with PCA.
Expected output: on 143 held-out benign and 212 malignant biopsies, AUROC about 0.96 for
`ae` and 0.94 for `pca`; at the 95th percentile of the training scores `ae` flags malignant
biopsies with precision about 0.93 and recall about 0.91 (`pca`: 0.98 and 0.67).
Runtime: about 12 seconds on a 2-core CPU (300 epochs of 214 rows).
"""

import os

import keras  # noqa: I001
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import precision_score, recall_score
from sklearn.model_selection import train_test_split

import kerasae  # before keras: it keeps TensorFlow's start-up lines off stderr
from kerasae.evaluation.anomaly import ranking_metrics
from kerasae.runs.threshold import fit_threshold

EPOCHS = int(os.environ.get("KERASAE_EXAMPLE_EPOCHS", "300"))
OUT = os.environ.get("KERASAE_EXAMPLE_OUT", "runs/example-anomaly")
keras.utils.set_random_seed(0)

"""
## Data: train on normal rows only

scikit-learn labels benign tumours 1 and malignant 0; here 1 means anomaly (malignant),
the convention of `kerasae detect --labels`. 60 % of the benign rows train the model; the
other 40 % and every malignant row make the test set, which the model never sees.
"""
x, y = load_breast_cancer(return_X_y=True)
anomaly = (y == 0).astype("int64")
x_normal, x_malignant = x[anomaly == 0], x[anomaly == 1]
x_train, x_benign_test = train_test_split(x_normal, test_size=0.4, random_state=0)
x_test = np.concatenate([x_benign_test, x_malignant])
y_test = np.concatenate([np.zeros(len(x_benign_test)), np.ones(len(x_malignant))])

"""
## Min-max scaling on the training split

The same mapping `kerasae train` applies to a `.csv` (kerasae.data): each feature's
training minimum goes to 0 and maximum to 1. Test rows may fall outside [0, 1]; that is
part of what makes them look anomalous.
"""
lo, hi = x_train.min(axis=0), x_train.max(axis=0)
scale = np.where(hi > lo, hi - lo, 1.0)
x_train, x_test = ((a - lo) / scale for a in (x_train, x_test))
x_train, x_test = x_train.astype("float32"), x_test.astype("float32")
print(
    f"{len(x_train)} benign training rows; test: {int((y_test == 0).sum())} benign, "
    f"{int(y_test.sum())} malignant; {x_train.shape[1]} features"
)

"""
## Train the autoencoder and the PCA baseline

Tabular rows need no reshaping: `input_shape=(30,)` builds MLP networks on the 30 features.
"""
model = kerasae.create_model(
    "ae", input_shape=(x_train.shape[1],), latent_dim=4, hidden_units=(32,)
)
model.compile()
model.fit(x_train, batch_size=32, epochs=EPOCHS, verbose=0)

pca = kerasae.create_model("pca", input_shape=(x_train.shape[1],), latent_dim=4)
pca.fit(x_train, verbose=0)

"""
## Scores, AUROC, and decisions at a threshold

`model.score` is the per-row mean squared reconstruction error. AUROC measures the
ranking; the threshold, the 95th percentile of the training scores (5 % false alarms on
data like the training data), turns it into decisions. `kerasae train` stores the 99th
percentile in the run's threshold.json with the same `fit_threshold`.
"""
for name, m in (("ae", model), ("pca", pca)):
    scores = m.score(x_test)
    record = fit_threshold(m.score(x_train), percentile=95)
    ranking = ranking_metrics(scores, y_test)
    flagged = (scores > record["threshold"]).astype("int64")
    print(
        f"{name}: AUROC {ranking['auroc']:.4f}, average precision "
        f"{ranking['average_precision']:.4f}; threshold {record['threshold']:.5f} flags "
        f"{flagged.sum()} rows: precision {precision_score(y_test, flagged):.3f}, "
        f"recall {recall_score(y_test, flagged):.3f}"
    )

os.makedirs(OUT, exist_ok=True)
model.save(os.path.join(OUT, "ae_breast_cancer.keras"))
print(f"saved the model to {os.path.join(OUT, 'ae_breast_cancer.keras')}")
