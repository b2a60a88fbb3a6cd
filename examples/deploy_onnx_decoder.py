"""
Title: Deploy a decoder as ONNX and generate images with onnxruntime alone
Description: Train a small variational autoencoder on digits, export its encoder and
decoder with `kerasae.export.export_model` (verified ONNX files plus manifest.json),
then generate new digits the way a service would: read the manifest, check the file's
SHA-256, draw codes from the prior the manifest records and run `decoder.onnx` in
onnxruntime, with no TensorFlow involved. The images are checked against `model.decode`.
Expected output: the manifest's prior (standard_normal, 8 dimensions), a max |onnx - keras|
difference of about 1e-7, and `onnx_samples.png` (64 generated digits) in the output folder.
Runtime: about 12 seconds on a 2-core CPU (30 epochs on 1,437 digits, then the export).
"""

import hashlib
import json
import os

import numpy as np

import kerasae
from kerasae.data.sources import load_dataset
from kerasae.export.write import export_model
from kerasae.plots import save_grid

EPOCHS = int(os.environ.get("KERASAE_EXAMPLE_EPOCHS", "30"))
OUT = os.environ.get("KERASAE_EXAMPLE_OUT", "runs/example-onnx")
# A generative model: its manifest records the prior to draw from (N(0, I) for a vae; a
# Gaussian for rae or vamp, which `draw_codes` handles too). Any model exports, but one
# that is not generative (conv_ae) records no prior, only why (`no_prior`).
MODEL = os.environ.get("KERASAE_EXAMPLE_MODEL", "vae")

"""
## Train a small model on digits
"""
data = load_dataset("digits")
model = kerasae.create_model(MODEL, input_shape=data.input_shape, latent_dim=8)
model.compile()
model.fit(
    data.x_train,
    batch_size=64,
    epochs=EPOCHS,
    validation_data=data.x_test,
    verbose=2 if EPOCHS <= 5 else 0,
)

"""
## Export: ONNX files, verified against Keras, and a manifest

`export_model` converts each part, reloads it in onnxruntime, compares it with the Keras
network on real and random inputs (`real_x`: real ones to check with), and writes the
folder only if every check passes. `export_run(run_dir)` does the same for a folder
written by `kerasae train`, and `kerasae export RUN` from the shell.
"""
export_dir = os.path.join(OUT, "export")
export_model(model, export_dir, formats=("onnx",), real_x=data.x_test)
print(f"exported to {export_dir}: {', '.join(sorted(os.listdir(export_dir)))}")

"""
## Generate with onnxruntime alone

Everything a service needs is in the folder: the decoder's input and output names, the
latent size, the prior to sample from, and a checksum of every file.
"""
import onnxruntime as ort  # noqa: E402 (the deployment side starts here)

with open(os.path.join(export_dir, "manifest.json"), encoding="utf-8") as f:
    manifest = json.load(f)
decoder = manifest["parts"]["decoder"]
onnx_file = decoder["files"]["onnx"]
with open(os.path.join(export_dir, onnx_file), "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
assert digest == manifest["files"][onnx_file]["sha256"], f"{onnx_file} does not match"


def draw_codes(prior, n, rng):
    """n codes from the manifest's prior: N(0, I), or a Gaussian N(mean, L L^T)."""
    eps = rng.standard_normal((n, prior["dim"]))
    if prior["kind"] == "standard_normal":
        return eps.astype("float32")
    if prior["kind"] == "gaussian":
        z = np.asarray(prior["mean"]) + eps @ np.asarray(prior["scale_tril"]).T
        return z.astype("float32")
    raise ValueError(f"no sampler here for a {prior['kind']!r} prior")


prior = manifest["prior"]
if prior is None:
    raise SystemExit(f"{MODEL} exported no prior to generate from: {manifest['no_prior']}")
print(f"prior: {prior['kind']} in {prior['dim']} dimensions ({prior['source']})")
z = draw_codes(prior, 64, np.random.default_rng(0))
session = ort.InferenceSession(
    os.path.join(export_dir, onnx_file), providers=["CPUExecutionProvider"]
)
(images,) = session.run([decoder["outputs"][0]["name"]], {decoder["inputs"][0]["name"]: z})
print(f"onnxruntime decoded {images.shape[0]} codes into images of shape {images.shape[1:]}")

"""
## Parity with Keras, and the grid
"""
diff = float(np.max(np.abs(images - model.decode(z))))
print(f"max |onnx - keras| over 64 samples: {diff:.2e}")
assert diff < 1e-4, "the ONNX decoder disagrees with the Keras one"
path = save_grid(
    images,
    os.path.join(OUT, "onnx_samples.png"),
    title=f"{MODEL}: 64 samples decoded by onnxruntime",
)
print(f"wrote {path}")
