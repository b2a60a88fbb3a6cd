"""`manifest.json`: everything a runtime needs to use an export without TensorFlow.

Model name and config, library versions and opset, each part's input/output names and
shapes, the latent size, the input scaling of the run, the prior `generate` samples from,
the score the runtime computes, verification figures, and a SHA-256 of every file so a
runtime can refuse a corrupted or tampered artifact before loading it.

The prior of a non-generative model is an ex-post Gaussian fitted to its training codes,
as Ghosh et al. (2020, "From Variational to Deterministic Autoencoders") do, so any
export can generate; the manifest says which prior it is.
"""
import hashlib
import os

import numpy as np

FORMAT, FORMAT_VERSION = "kerasae-export", 1
MANIFEST = "manifest.json"


def sha256(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def file_table(root):
    """{relative posix path: {"sha256", "bytes"}} of every file under `root` but the manifest."""
    table = {}
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if rel != MANIFEST:
                table[rel] = {"sha256": sha256(path), "bytes": os.path.getsize(path)}
    return dict(sorted(table.items()))


def versions(opset):
    import keras
    import tensorflow as tf

    from kerasae import __version__

    out = {"kerasae": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
           "opset": opset}
    for module in ("tf2onnx", "onnx", "onnxruntime", "onnxconverter_common"):
        try:
            out[module] = __import__(module).__version__
        except ImportError:
            pass
    return out


#: above this many latent dimensions no ex-post Gaussian is fitted for the manifest: its
#: Cholesky factor would be dim^2 numbers in JSON (3136-d vq_vae codes: a 135 MB manifest)
MAX_FITTED_PRIOR_DIM = 1024


def prior(model, codes=None):
    """The latent distribution `generate` draws from (None when nothing is known)."""
    spec = getattr(model, "prior_spec", None)
    if callable(spec):  # a family with a non-standard prior describes it itself
        return spec()
    if model.generative:
        return {"kind": "standard_normal", "dim": model.latent_dim,
                "source": "the model's prior"}
    if codes is None or len(codes) < 2 or model.latent_dim > MAX_FITTED_PRIOR_DIM:
        return None
    codes = np.asarray(codes, dtype="float64").reshape(len(codes), -1)
    mean = codes.mean(axis=0)
    from kerasae.distributions import gaussian_scale_tril

    tril = gaussian_scale_tril(np.cov(codes, rowvar=False).reshape(codes.shape[1],
                                                                    codes.shape[1]))
    return {"kind": "gaussian", "dim": int(codes.shape[1]), "mean": mean.tolist(),
            "scale_tril": tril.tolist(), "n_codes": int(len(codes)),
            "source": "ex-post Gaussian fit to training codes (Ghosh et al. 2020); the "
                      "model itself is not generative"}


def score_spec(model):
    from kerasae.models.base import Autoencoder

    same = getattr(type(model), "score", None) is Autoencoder.score
    return {"kind": "reconstruction_mse", "matches_model_score": same,
            "note": "mean squared error of decoder(encoder(x)[first output]) per example"}
