"""The export format, written once: `manifest.json`'s schema, its checksums, the input
scaling and the numpy draws of the priors. kerasae writes exports with it (it imports this
module rather than keeping a copy); the runtime reads them with it.

A runtime trusts nothing it has not checked: the manifest's format and version, and the
SHA-256 of every file it is about to hand to onnxruntime (a truncated copy or a swapped
file fails here with a clear message, not as a wrong number in production). This module
needs numpy only: importing it imports neither onnxruntime nor TensorFlow.
"""

import hashlib
import json
import os

import numpy as np

FORMAT, FORMAT_VERSION = "kerasae-export", 1  # what kerasae writes
SUPPORTED_VERSIONS = (1,)  # what this runtime reads
MANIFEST = "manifest.json"


class ExportError(ValueError):
    """Something about the export folder or the input is wrong; the message says the fix."""


def read(export_dir):
    path = os.path.join(export_dir, MANIFEST)
    if not os.path.isfile(path):
        raise ExportError(
            f"{export_dir} has no {MANIFEST}; pass the folder written by `kerasae export`"
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except ValueError as exc:
        raise ExportError(f"{path} is not valid JSON ({exc}); re-export the model") from None
    if manifest.get("format") != FORMAT:
        raise ExportError(f"{path} is not a kerasae export manifest")
    if manifest.get("format_version") not in SUPPORTED_VERSIONS:
        raise ExportError(
            f"{path} has format_version {manifest.get('format_version')}; this "
            "kerasae-runtime reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}: upgrade kerasae-runtime"
        )
    return manifest


def sha256(path, chunk=1 << 20):
    """The SHA-256 of a file, read in chunks (exports and checkpoints alike)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def file_table(root):
    """{relative posix path: {"sha256", "bytes"}} of every file under `root` but the
    manifest: the manifest's "files", written by kerasae, checked here before loading."""
    table = {}
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if rel != MANIFEST:
                table[rel] = {"sha256": sha256(path), "bytes": os.path.getsize(path)}
    return dict(sorted(table.items()))


def verify_file(export_dir, manifest, rel):
    """The absolute path of `rel` after checking it against the manifest's checksum."""
    inside(rel)
    entry = manifest.get("files", {}).get(rel)
    path = os.path.join(export_dir, rel)
    if entry is None:
        raise ExportError(f"{rel} is not listed in {MANIFEST}; re-export the model")
    if not os.path.isfile(path):
        raise ExportError(f"{path} is missing; copy the whole export folder")
    if sha256(path) != entry["sha256"]:
        raise ExportError(
            f"{path} does not match its SHA-256 in {MANIFEST} (corrupted or "
            "modified); copy the export folder again or re-export"
        )
    return path


def inside(rel):
    """A manifest path must name a file inside the export folder (no ../, no absolute
    path): a tampered manifest must not make the runtime read files elsewhere."""
    norm = os.path.normpath(str(rel))
    if (
        os.path.isabs(str(rel))
        or norm == ".."
        or norm.startswith(".." + os.sep)
        or str(rel).startswith(("/", "\\"))
    ):
        raise ExportError(
            f"{MANIFEST} names {rel!r}, a path outside the export folder; the "
            "manifest is damaged or tampered with: re-export the model"
        )
    return rel


#: precision -> the manifest's file key: `*.onnx`, `*.fp16.onnx` (--fp16), `*.int8.onnx`
#: (--int8: int8 Dense weights, float32 inputs and outputs)
FILE_KEYS = {"fp32": "onnx", "fp16": "onnx_fp16", "int8": "onnx_int8"}


def part_file(manifest, part, precision):
    info = manifest.get("parts", {}).get(part)
    if info is None:
        raise ExportError(
            f"this export has no {part}; export it with "
            f"`kerasae export RUN --parts encoder,decoder,scorer`"
        )
    key = FILE_KEYS.get(precision)
    if key is None:
        raise ExportError(f"precision must be one of {', '.join(FILE_KEYS)}, got {precision!r}")
    if key not in info.get("files", {}):
        flag = "" if precision == "fp32" else f" --{precision}"
        raise ExportError(
            f"this export has no {precision} ONNX {part}; run "
            f"`kerasae export RUN --format onnx{flag}`"
        )
    return info["files"][key], info


def scale(x, scaling):
    """Raw values (the training data's units) -> the model's [0, 1] inputs."""
    x = np.asarray(x, dtype=np.float32)
    kind = (scaling or {"kind": "identity"})["kind"]
    if kind == "divide":
        return x / np.float32(scaling["scale"])
    if kind == "minmax":
        lo = np.asarray(scaling["min"], dtype=np.float32)
        span = np.asarray(scaling["max"], dtype=np.float32) - lo
        return (x - lo) / np.where(span > 0, span, 1.0).astype(np.float32)
    if kind != "identity":
        raise ExportError(f"unknown input scaling {kind!r}; upgrade kerasae-runtime")
    return x


def unscale(x, scaling):
    """The inverse of `scale`: model outputs back in the training data's units."""
    x = np.asarray(x, dtype=np.float32)
    kind = (scaling or {"kind": "identity"})["kind"]
    if kind == "divide":
        return x * np.float32(scaling["scale"])
    if kind == "minmax":
        lo = np.asarray(scaling["min"], dtype=np.float32)
        return x * (np.asarray(scaling["max"], dtype=np.float32) - lo) + lo
    return scale(x, scaling)  # identity, or the unknown-kind error


#: kinds drawn here from numbers in the manifest; the learned ones (a network in
#: sampler.onnx) are drawn in `kerasae_runtime.samplers`: "network" is any sampler that maps
#: u ~ N(0, I) of `noise_dim` to a code (a plugin's flow), "two_stage" one of them
ARRAY_KINDS = ("standard_normal", "gaussian", "gmm", "uniform", "uniform_sphere", "wrapped_normal")
LEARNED_KINDS = ("two_stage", "network", "pixelcnn")
PRIOR_KINDS = ARRAY_KINDS + LEARNED_KINDS


def draw_gaussian(rng, mean, scale_tril, n):
    """n draws of N(mean, L L^T): eps first, float64 until the end."""
    eps = rng.standard_normal((n, len(mean)))
    return (np.asarray(mean, np.float64) + eps @ np.asarray(scale_tril, np.float64).T).astype(
        np.float32
    )


def draw_uniform_sphere(rng, dim, n):
    """n uniform draws on the unit sphere S^(dim-1): normalised standard normals (Muller,
    "A note on a method for generating points uniformly on n-dimensional spheres", 1959)."""
    eps = rng.standard_normal((n, dim))
    return (eps / np.linalg.norm(eps, axis=1, keepdims=True)).astype(np.float32)


def draw_wrapped_normal(rng, dim, curvature, scale, n):
    """n draws of the wrapped normal at the origin of the Poincare ball of curvature
    -curvature (Mathieu et al., NeurIPS 2019): u ~ N(0, scale^2 I) in orthonormal tangent
    coordinates at 0, z = exp_0(u / 2) = tanh(sqrt(c) |u| / 2) u / (sqrt(c) |u|), kept
    within (1 - 1e-5) / sqrt(c) of the origin as kerasae keeps its points."""
    u = scale * rng.standard_normal((n, dim))
    norm = np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-15)
    sqrt_c = np.sqrt(curvature)
    radius = np.minimum(np.tanh(sqrt_c * norm / 2.0), 1.0 - 1e-5) / sqrt_c
    return (radius * u / norm).astype(np.float32)


def draw_mixture(rng, weights, means, scales, n):
    """n draws of a Gaussian mixture: the components first (one uniform each, inverse CDF:
    Bishop, Pattern Recognition and Machine Learning, 2006, sec. 11.1), then eps.
    `scales`: Cholesky factors (K, d, d), or diagonal scales (K, d)."""
    weights, means, scales = (np.asarray(a, np.float64) for a in (weights, means, scales))
    u = rng.random(n)
    pick = np.minimum(np.searchsorted(np.cumsum(weights), u, side="right"), len(weights) - 1)
    eps = rng.standard_normal((n, means.shape[1]))
    if scales.ndim == 2:  # diagonal components: scale_tril's diagonal, the same numbers
        return (means[pick] + scales[pick] * eps).astype(np.float32)
    return (means[pick] + np.einsum("nij,nj->ni", scales[pick], eps)).astype(np.float32)


def sample_prior(prior, n, seed=None, no_prior=None):
    """n latent codes (float32) from the manifest's prior: a standard normal, a fitted
    Gaussian, a Gaussian mixture, a uniform box, the uniform on a sphere or a wrapped
    normal on the Poincare ball, drawn exactly as `kerasae sample`
    draws them for the same seed (one numpy Generator, these draws in this order, float64
    until the end); without a prior, the model's own refusal (the manifest's `no_prior`)."""
    if not prior:
        raise ExportError(no_prior or "this export records no prior to generate from")
    kind, n = prior.get("kind"), int(n)
    if kind in LEARNED_KINDS:
        raise ExportError(
            f"the {kind} sampler is a network (sampler.onnx): draw from it "
            "with Decoder.load(EXPORT_DIR).generate or kerasae_runtime.samplers"
        )
    if kind not in ARRAY_KINDS:
        raise ExportError(f"unknown prior kind {kind!r}; upgrade kerasae-runtime")
    dim = int(prior["dim"])
    rng = np.random.default_rng(seed)
    if kind == "gmm":
        return draw_mixture(rng, *_mixture(prior, dim), n)
    if kind == "uniform":  # a box [low, high]^dim (an aae's uniform prior)
        low, high = (float(_array(prior, key, ())) for key in ("low", "high"))
        return rng.uniform(low, high, (n, dim)).astype(np.float32)
    if kind == "standard_normal":
        return rng.standard_normal((n, dim)).astype(np.float32)
    if kind == "uniform_sphere":  # uniform on S^(dim-1) (an svae's prior)
        return draw_uniform_sphere(rng, dim, n)
    if kind == "wrapped_normal":  # on the Poincare ball, at its origin (a poincare_vae's)
        curvature, scale = (float(_array(prior, key, ())) for key in ("curvature", "scale"))
        if curvature <= 0 or scale <= 0:
            raise ExportError(
                f"the wrapped_normal prior in {MANIFEST} needs a positive curvature and "
                "scale; the manifest is damaged: re-export the model"
            )
        return draw_wrapped_normal(rng, dim, curvature, scale, n)
    return draw_gaussian(
        rng, _array(prior, "mean", (dim,)), _array(prior, "scale_tril", (dim, dim)), n
    )


def _mixture(prior, dim):
    weights = _array(prior, "weights", None)
    count = len(weights) if weights.ndim == 1 else 0
    means = _array(prior, "means", (count, dim))
    # full components: Cholesky factors; diagonal ones (a VampPrior's) may give just the
    # diagonal, K x d numbers instead of K x d x d
    tril = (
        _array(prior, "scale_diag", (count, dim))
        if "scale_diag" in prior
        else _array(prior, "scale_tril", (count, dim, dim))
    )
    if count == 0 or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0, atol=1e-6):
        raise ExportError(
            f"the gmm prior's weights in {MANIFEST} are not a probability "
            "vector; the manifest is damaged: re-export the model"
        )
    return weights, means, tril


def _array(prior, key, shape):
    """A float64 array from the manifest, its shape checked: a damaged entry fails here
    with a message, not as a broadcasting error deep in numpy."""
    try:
        value = np.asarray(prior[key], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        value = None
    if (
        value is None
        or (shape is not None and value.shape != shape)
        or not np.isfinite(value).all()
    ):
        want = "" if shape is None else f" of shape {shape}"
        raise ExportError(
            f"the {prior.get('kind')} prior in {MANIFEST} lacks a finite "
            f"{key!r}{want}; the manifest is damaged: re-export the model"
        )
    return value
