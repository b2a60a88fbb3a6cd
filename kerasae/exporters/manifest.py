"""`manifest.json`: everything a runtime needs to use an export without TensorFlow.

Model name and config, library versions and opset, each part's input/output names and
shapes, the latent size, the input scaling of the run, the prior `generate` samples from,
the score the runtime computes, verification figures, and a SHA-256 of every file so a
runtime can refuse a corrupted or tampered artifact before loading it.

A model that is not generative exports no prior, and `no_prior` holds the refusal its
`sample` gives, so `kerasae sample` and `kerasae-runtime generate` refuse alike (latent
samplers fitted after training are what make such models generative).
"""
import hashlib
import os

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




def prior(model):
    """The latent distribution `generate` draws from; None for a model that is not
    generative (the manifest's `no_prior` then holds the model's own refusal, which
    kerasae-runtime prints: both sides say the same)."""
    spec = getattr(model, "prior_spec", None)
    if callable(spec):  # a family with a non-standard prior describes it itself
        return spec()
    if model.generative:
        return {"kind": "standard_normal", "dim": model.latent_dim,
                "source": "the model's prior"}
    return None


def score_spec(model, scorer):
    """What `score` computes; `scorer`: whether scorer.onnx holds it (else the runtime
    falls back to the reconstruction error of decoder(encoder(x)))."""
    from kerasae.anomaly import score_description

    return {"description": score_description(model), "part": "scorer" if scorer else None}
