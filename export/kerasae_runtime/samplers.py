"""The latent sampler an export carries, drawn exactly as `kerasae sample` draws it.

Ex-post density estimation (Ghosh et al. 2020, "From variational to deterministic
autoencoders") makes any autoencoder generative with a density fitted to its training
codes. The array samplers (a model's standard normal prior, a fitted Gaussian, a Gaussian
mixture) are numbers in the manifest, drawn in `manifest.sample_prior`; the learned ones
are a network in `sampler.onnx`, run here with onnxruntime:

- two_stage (Dai and Wipf 2019, "Diagnosing and enhancing VAE models"): a second VAE over
  the codes; u ~ N(0, I) of its latent size, z = its decoder mean g(u). "network" is the
  same protocol for any sampler that maps noise to codes (a plugin's).
- pixelcnn (van den Oord et al. 2016, "Conditional image generation with PixelCNN
  decoders"): an autoregressive prior over a vq_vae's index grid, sampled one position
  at a time in raster order by inverse-CDF with pre-drawn uniforms, then the codebook
  gather (inside the graph) gives the decoder's input.

All randomness comes from one `numpy.random.default_rng(seed)`, in the order kerasae
uses, so the same seed gives the same codes on both sides.
"""

import numpy as np

from kerasae_runtime import manifest as mf

CHUNK = 1024  # rows per onnxruntime call


class Sampler:
    """`sample(n, seed) -> (n, dim) float32` from the manifest's prior entry."""

    def __init__(self, prior, no_prior=None, session=None):
        self.prior, self.no_prior, self.session = prior, no_prior, session

    @classmethod
    def load(cls, export_dir, manifest, device="auto", threads=None, verify=True):
        """The export's sampler; a learned one opens its sampler.onnx (checksum first)."""
        prior = manifest.get("prior")
        session = None
        if prior and prior.get("kind") in mf.LEARNED_KINDS:
            rel = prior.get("file")
            if not isinstance(rel, str):
                raise mf.ExportError(
                    f"the {prior['kind']} prior in {mf.MANIFEST} names no "
                    "file; the manifest is damaged: re-export the model"
                )
            path = (
                mf.verify_file(export_dir, manifest, rel)
                if verify
                else f"{export_dir}/{mf.inside(rel)}"
            )
            session = _session(path, device, threads)
        return cls(prior, manifest.get("no_prior"), session)

    @property
    def kind(self):
        return (self.prior or {}).get("kind")

    @property
    def learned(self):
        return self.kind in mf.LEARNED_KINDS

    def describe(self):
        """One line: which sampler (the run's, or "prior": the model's own), its kind and
        where it came from, e.g. "gmm (gmm): gmm sampler (10 components, ...)"."""
        if not self.prior:
            return "none"
        name = self.prior.get("sampler") or "prior"  # exports before samplers lack it
        source = self.prior.get("source")
        return f"{name} ({self.kind}){': ' + source if source else ''}"

    def sample(self, n, seed=None):
        if isinstance(n, bool) or int(n) != n or int(n) <= 0:
            raise mf.ExportError(f"n must be a positive integer, got {n}")
        n = int(n)
        if self.kind in ("two_stage", "network"):
            return two_stage(self.session, self.prior, n, seed)
        if self.kind == "pixelcnn":
            return pixelcnn(self.session, self.prior, n, seed)
        return mf.sample_prior(self.prior, n, seed, self.no_prior)


def two_stage(session, prior, n, seed=None):
    """u ~ N(0, I) (float64, cast to float32), z = g(u) by sampler.onnx ("u" -> "z"): a
    two_stage sampler, or any "network" one (its noise is `noise_dim` wide)."""
    dim = prior.get("noise_dim", prior.get("second_latent_dim"))
    u = np.random.default_rng(seed).standard_normal((n, int(dim)))
    u = u.astype(np.float32)
    return np.concatenate(
        [session.run(["z"], {"u": u[i : i + CHUNK]})[0] for i in range(0, n, CHUNK)]
    ).astype(np.float32)


def pixelcnn(session, prior, n, seed=None):
    """Raster-order inverse-CDF sampling of the index grid, then z by the codebook gather."""
    h, w = (int(d) for d in prior["grid"])
    k = int(prior["num_embeddings"])
    uniforms = np.random.default_rng(seed).random((n, h * w))  # all drawn first: the
    chunks = []  # seed fixes every row
    for start in range(0, n, CHUNK):
        u = uniforms[start : start + CHUNK]
        indices = np.zeros((len(u), h, w), dtype=np.int64)
        for p in range(h * w):
            i, j = divmod(p, w)
            logits = session.run(["logits"], {"indices": indices})[0][:, i, j, :]
            logits = logits.astype(np.float64)
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            # searchsorted(cdf, u, side="right") row by row: how many cdf entries <= u
            chosen = (np.cumsum(probs, axis=1) <= u[:, p : p + 1]).sum(axis=1)
            indices[:, i, j] = np.minimum(chosen, k - 1)
        chunks.append(session.run(["z"], {"indices": indices})[0])
    return np.concatenate(chunks).astype(np.float32)


def _session(path, device, threads):
    """An onnxruntime session on the providers `device` asks for (not `session.Session`:
    a sampler's input may be int64 indices, and it has no one-row float warm-up)."""
    import onnxruntime as ort

    from kerasae_runtime import session as sessions

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    if sessions._DEFAULTS["spinning"] is False:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(
            path, sess_options=options, providers=sessions.requested_providers(device)
        )
    except Exception as exc:
        raise mf.ExportError(
            f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}"
        ) from None
