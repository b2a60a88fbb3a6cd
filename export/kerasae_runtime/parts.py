"""`Encoder`, `Decoder` and `Autoencoder` (both parts): the deploy-side API.

    dec = Decoder.load("runs/vae/export")          # checksums verified before loading
    images = dec.generate(64, seed=0)              # (64, H, W, C) in [0, 1], from the
                                                   # export's sampler, as `kerasae sample`
    z = Encoder.load("runs/vae/export").encode(x)  # the deterministic code (z or z_mean)
    s = Autoencoder.load("runs/vae/export").score(x)   # what `kerasae detect` computes

Inputs are in the model's units ([0, 1], like `kerasae`'s `model.encode`) unless
`raw=True`, which first applies the run's input scaling from the manifest.
"""

import numpy as np

from kerasae_runtime import manifest as mf
from kerasae_runtime.session import Session


class _Part:
    part = None

    def __init__(self, export_dir, manifest, session, info, precision):
        self.export_dir = export_dir
        self.manifest = manifest
        self.session = session
        self.info = info
        self.precision = precision

    @classmethod
    def load(cls, export_dir, device="auto", precision="fp32", verify=True, threads=None):
        """Open one part. device: auto (CUDA when available), cuda or cpu; precision:
        fp32, fp16 or int8 (an export made with --fp16 / --int8); verify: check the
        SHA-256 first."""
        manifest = mf.read(export_dir)
        rel, info = mf.part_file(manifest, cls.part, precision)
        path = mf.verify_file(export_dir, manifest, rel) if verify else f"{export_dir}/{rel}"
        session = Session(
            path,
            info["inputs"][0]["name"],
            [o["name"] for o in info["outputs"]],
            device=device,
            threads=threads,
        )
        part = cls(export_dir, manifest, session, info, precision)
        part.options = {"device": device, "threads": threads, "verify": verify}
        return part

    @property
    def provider(self):
        """The execution provider onnxruntime actually uses (CUDA or CPU)."""
        return self.session.provider

    @property
    def input_shape(self):
        return tuple(self.info["inputs"][0]["shape"][1:])

    def _check(self, x):
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.input_shape:
            if x.shape == self.input_shape:  # one example without its batch axis
                x = x[None]
            else:
                name = self.info["inputs"][0]["name"]
                raise mf.ExportError(
                    f"the {self.part} expects {name} of shape (batch, "
                    f"{', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}"
                )
        if not np.isfinite(x).all():
            raise mf.ExportError("the input contains NaN or infinite values")
        return x


class Encoder(_Part):
    part = "encoder"

    def encode_all(self, x, raw=False, batch_size=1024):
        """Every encoder output by name (a VAE's z_mean and z_log_var)."""
        if raw:
            x = mf.scale(x, self.manifest.get("scaling"))
        return self.session.run(self._check(x), batch_size)

    def encode(self, x, raw=False, batch_size=1024):
        """The deterministic latent code: the first output (z, or the posterior mean)."""
        return next(iter(self.encode_all(x, raw, batch_size).values()))


class Decoder(_Part):
    part = "decoder"

    def decode(self, z, raw=False, batch_size=1024):
        """x_hat in [0, 1], or in the training data's units with raw=True."""
        x_hat = next(iter(self.session.run(self._check(z), batch_size).values()))
        return mf.unscale(x_hat, self.manifest.get("scaling")) if raw else x_hat

    def generate(self, n, seed=None, raw=False):
        """n new examples decoded from the export's sampler (the one `kerasae sample`
        used: the same seed gives the same images)."""
        return self.decode(self.sample_latent(n, seed), raw)

    def sample_latent(self, n, seed=None):
        """n latent codes from the export's sampler, (n, latent_dim) float32; without one,
        the model's own refusal (the manifest's `no_prior`)."""
        return self.sampler.sample(n, seed)

    @property
    def sampler(self):
        """The export's latent sampler (`kerasae_runtime.samplers.Sampler`), opened once: a
        learned one loads its sampler.onnx on the decoder's device."""
        if getattr(self, "_sampler", None) is None:
            from kerasae_runtime.samplers import Sampler

            self._sampler = Sampler.load(
                self.export_dir, self.manifest, **getattr(self, "options", {})
            )
        return self._sampler

    @property
    def prior(self):
        return self.manifest.get("prior")


class Scorer(_Part):
    """scorer.onnx: x -> the very score `kerasae detect` computes (a vae's negative ELBO
    with its fixed noise baked in), so a service flags what detect flags."""

    part = "scorer"

    def score(self, x, raw=False, batch_size=1024):
        if raw:
            x = mf.scale(x, self.manifest.get("scaling"))
        return self.session.run(self._check(x), batch_size)["score"]


class Autoencoder:
    """Both parts, and the scorer when the export has one: reconstruct, score and flag
    anomalies (what anomaly detection in a service needs)."""

    def __init__(self, encoder, decoder, scorer=None):
        self.encoder, self.decoder, self.scorer = encoder, decoder, scorer

    @classmethod
    def load(cls, export_dir, **options):
        scorer = None
        info = mf.read(export_dir).get("parts", {}).get("scorer")
        if info is not None:  # float32, or int8 where --int8 verified one; never fp16
            int8 = options.get("precision") == "int8" and "onnx_int8" in info.get("files", {})
            scorer = Scorer.load(
                export_dir, **{**options, "precision": "int8" if int8 else "fp32"}
            )
        return cls(
            Encoder.load(export_dir, **options), Decoder.load(export_dir, **options), scorer
        )

    @property
    def threshold(self):
        """The run's anomaly threshold (threshold.json at training), or None."""
        record = self.encoder.manifest.get("threshold") or {}
        return record.get("threshold")

    def is_anomaly(self, scores):
        """scores > threshold, as `kerasae detect` decides by default."""
        if self.threshold is None:
            raise mf.ExportError(
                "this export carries no threshold (threshold.json); "
                "re-export the run with kerasae >= 0.3"
            )
        return np.asarray(scores) > self.threshold

    def reconstruct(self, x, raw=False, batch_size=1024):
        if raw:
            x = mf.scale(x, self.encoder.manifest.get("scaling"))
        return self.decoder.decode(
            self.encoder.encode(x, batch_size=batch_size), batch_size=batch_size
        )

    def score(self, x, raw=False, batch_size=1024):
        """Per-example anomaly score (higher = stranger): the scorer's, which is the model's
        own `score`; without one (an older export), the mean squared reconstruction error
        in the model's [0, 1] units, as `kerasae`'s default `score`."""
        if self.scorer is not None:
            return self.scorer.score(x, raw, batch_size)
        x = self.encoder._check(mf.scale(x, self.encoder.manifest.get("scaling")) if raw else x)
        x_hat = self.reconstruct(x, batch_size=batch_size)
        return np.mean((x - x_hat).reshape(len(x), -1) ** 2, axis=1)

    def generate(self, n, seed=None, raw=False):
        return self.decoder.generate(n, seed, raw)
