"""
Title: A convolutional autoencoder on digits, compared with PCA
Description: Train `conv_ae` with the Python API, compare it with the PCA baseline at the
same latent size, save it, reload it and check the reloaded model gives the same codes.
"""

import os

import numpy as np

import kerasae
from kerasae.data.pipeline import make_tf_dataset
from kerasae.data.sources import load_dataset

EPOCHS = int(os.environ.get("KERASAE_EXAMPLE_EPOCHS", "20"))
OUT = os.environ.get("KERASAE_EXAMPLE_OUT", "runs/example")

"""
## Data: scikit-learn's 8x8 digits (always offline), scaled to [0, 1]
"""
data = load_dataset("digits")
train_ds = make_tf_dataset(data.x_train, batch_size=64)
test_ds = make_tf_dataset(data.x_test, batch_size=256, shuffle=False)

"""
## Train the autoencoder and the baseline at the same latent size
"""
model = kerasae.create_model("conv_ae", input_shape=data.input_shape, latent_dim=8)
model.compile()  # Adam(1e-3) by default
model.fit(train_ds, epochs=EPOCHS, validation_data=test_ds, verbose=2)

pca = kerasae.create_model("pca", input_shape=data.input_shape, latent_dim=8)
pca.fit(data.x_train)

for name, m in (("conv_ae", model), ("pca", pca)):
    mse = np.mean((m.reconstruct(data.x_test) - data.x_test) ** 2)
    print(f"{name}: test MSE {mse:.4f}")

"""
## Save, reload, and use the reloaded model for anomaly scores
"""
os.makedirs(OUT, exist_ok=True)
path = os.path.join(OUT, "conv_ae.keras")
model.save(path)
reloaded = kerasae.load_model(path)
assert np.allclose(reloaded.encode(data.x_test), model.encode(data.x_test))
scores = reloaded.score(data.x_test)
print(f"reloaded from {path}; most anomalous test digit has score {scores.max():.4f}")
