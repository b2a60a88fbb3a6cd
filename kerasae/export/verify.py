"""Parity check of every written artifact against the Keras model it came from.

Each artifact is reloaded the way a user would load it (an onnxruntime session, or
`tf.saved_model.load`) and fed real and random inputs at batch 1 and at an odd batch
size, which also proves the batch dimension is dynamic. A difference above tolerance is a
broken export, so it fails the command instead of shipping a silently wrong model.

Tolerance: max |artifact - keras| <= tol * max(1, max |keras|), i.e. an absolute bound for
outputs of unit scale (images in [0, 1]) that grows with large latent codes (PCA codes in
raw units), where float16 storage can only be relatively accurate. Integer outputs (a VQ
encoder's code indices) must be equal, at every precision.
"""

import numpy as np
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.export.signatures import serving_function

TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "int8": 1e-1}  # int8: see quantize.py
ODD_BATCH = 7


def probe_inputs(model, signatures, real_x=None, seed=0):
    """{part: {"real": array, "random": array}} with ODD_BATCH rows each."""
    rng = np.random.default_rng(seed)
    probes = {}
    enc_shape = model.encoder.inputs[0].shape[1:]
    if real_x is None:
        real_x = rng.random((ODD_BATCH, *enc_shape), dtype=np.float32)
    real_x = np.asarray(real_x, dtype="float32")[:ODD_BATCH]
    if len(real_x) < ODD_BATCH:  # tile a tiny reference set up to the odd batch
        real_x = np.resize(real_x, (ODD_BATCH, *real_x.shape[1:]))
    lo, hi = float(real_x.min()), float(real_x.max())
    random_x = (lo + (hi - lo) * rng.random(real_x.shape)).astype("float32")
    for part in ("encoder", "scorer"):  # both take x
        if part in signatures:
            probes[part] = {"real": real_x, "random": random_x}
    if "decoder" in signatures:
        z_shape = signatures["decoder"].input_shape[1:]
        real_z = latent_codes(model, real_x)
        if real_z.shape[1:] != tuple(z_shape):  # an unusual encoder: fall back to the prior
            real_z = rng.standard_normal((ODD_BATCH, *z_shape)).astype("float32")
        random_z = rng.standard_normal((ODD_BATCH, *z_shape)).astype("float32")
        probes["decoder"] = {"real": real_z.astype("float32"), "random": random_z}
    return probes


def latent_codes(model, x):
    """The deterministic codes the decoder sees in use (`encode`: the posterior mean)."""
    return np.asarray(model.encode(np.asarray(x, dtype="float32")), dtype="float32")


def keras_outputs(net, signature, x):
    out = serving_function(net, signature)(tf.constant(x))
    return {k: np.asarray(v) for k, v in out.items()}


def check(artifact, signature, runner, net, probes, precision):
    """Compare `runner(x) -> {name: array}` with the Keras part; returns the report dict.

    Raises KerasaeError naming the artifact, output, input kind and the difference."""
    tol = TOLERANCE[precision]
    worst = 0.0
    for kind, x in probes.items():
        for batch in (1, len(x)):
            expected = keras_outputs(net, signature, x[:batch])
            try:
                got = runner(x[:batch])
            except Exception as exc:
                raise KerasaeError(
                    f"{artifact} failed to run on a {kind} batch of {batch}: "
                    f"{str(exc).splitlines()[0]}"
                ) from None
            for name in signature.output_names:
                if got[name].shape != expected[name].shape:
                    raise KerasaeError(
                        f"{artifact} output {name!r} has shape {got[name].shape} on a {kind} "
                        f"batch of {batch}; the Keras {signature.part} gives "
                        f"{expected[name].shape}"
                    )
                if np.issubdtype(expected[name].dtype, np.integer):  # indices: exactly
                    wrong = int(np.sum(got[name] != expected[name]))
                    if wrong or got[name].dtype != expected[name].dtype:
                        raise KerasaeError(
                            f"{artifact} does not match the Keras {signature.part}: integer "
                            f"output {name!r} ({got[name].dtype}) differs in {wrong} of "
                            f"{expected[name].size} entries on {kind} inputs at batch "
                            f"{batch}; the export is not usable"
                        )
                    continue
                diff = float(np.max(np.abs(got[name].astype("float64") - expected[name])))
                bound = tol * max(1.0, float(np.max(np.abs(expected[name]))))
                if not diff <= bound:  # NaN fails too
                    raise KerasaeError(
                        f"{artifact} does not match the Keras {signature.part}: output "
                        f"{name!r} differs by {diff:.3g} (tolerance {bound:.3g}, {precision}) "
                        f"on {kind} inputs at batch {batch}; the export is not usable"
                    )
                worst = max(worst, diff)
    return {
        "max_abs_diff": worst,
        "tolerance": tol,
        "precision": precision,
        "batches": [1, ODD_BATCH],
        "inputs": sorted(probes),
    }
