"""The array samplers: `prior` (the model's own), `gaussian` (full covariance) and `gmm`.

A deterministic autoencoder has no prior, but a density fitted to its training codes after
the fact makes it generative (Ghosh et al., "From Variational to Deterministic
Autoencoders", ICLR 2020). These are numbers in the export's manifest: kerasae-runtime
draws them with the same numpy calls, so a seed gives the same codes on both sides.
"""

import numpy as np

from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.probability.gaussian import gaussian_scale_tril
from kerasae.samplers.base import (
    LatentSampler,
    _count,
    _rows,
    no_sampler_message,
    register_sampler,
)
from kerasae_runtime.manifest import (
    ARRAY_KINDS,
    draw_gaussian,
    draw_mixture,
    sample_prior,
)


def draw_codes(spec, n, seed=None):
    """n codes from a manifest prior of numbers, drawn as kerasae-runtime draws them for the
    same seed (its own function); None for a prior the model draws itself."""
    return sample_prior(spec, n, seed) if spec["kind"] in ARRAY_KINDS else None


def model_prior(model):
    """The model's own latent distribution as the export's manifest describes it (None for
    a model that is not generative). A family with a non-standard prior describes it
    itself (`prior_spec`: rae's fitted Gaussian, vamp's and aae's mixtures, aae's box)."""
    spec = getattr(model, "prior_spec", None)
    if callable(spec):
        return spec()
    if model.generative:
        source = "the model's N(0, I) prior"
        return {"kind": "standard_normal", "dim": model.latent_dim, "source": source}
    return None


@register_sampler("prior")
class PriorSampler(LatentSampler):
    """The model's own prior, as its export describes it (`model_prior`:
    N(0, I) for vae and its kin, rae's fitted Gaussian, vamp's and aae's mixtures, aae's
    uniform box), drawn in numpy exactly as kerasae-runtime draws it; a prior of another
    kind falls back to the model's own `sample`."""

    @classmethod
    def check(cls, model):
        if not getattr(model, "generative", False):
            raise NotGenerativeError(
                f"{model.not_generative_reason()}; the prior sampler "
                "needs one: use a fitted sampler such as --sampler gmm"
            )

    def fit(self, model, x_train=None, seed=0):
        """Nothing to fit: binds `model` (its prior is the distribution)."""
        self.check(model)
        self.model, self.latent_dim, self.n_codes, self.seed = model, model.latent_dim, 0, seed
        return self

    def spec(self):
        if getattr(self, "model", None) is None:
            raise KerasaeError("the prior sampler is bound to a model: call fit(model) first")
        return model_prior(self.model)

    def sample_latent(self, n, seed=None):
        z = draw_codes(self.spec(), _count(n), seed)
        if z is None:
            raise KerasaeError(
                f"{self.model.registered_name}'s prior is drawn by the model "
                "itself, not as codes; call generate(model, n, seed)"
            )
        return z

    def generate(self, model, n, seed=None):
        z = draw_codes(self.spec(), _count(n), seed)
        if z is None:
            return np.asarray(model.sample(_count(n), seed=seed), "float32")
        return np.asarray(model.decode(z), "float32")

    def describe(self):
        """What the prior is, in the model's words ("model's N(0, I) prior"), so a sentence
        reads "64 samples from the model's N(0, I) prior"."""
        spec = self.spec()
        return spec.get("source", f"the model's own {spec['kind']} prior").removeprefix("the ")

    def export_spec(self):
        spec = self.spec()
        if spec is None:
            raise NotGenerativeError(no_sampler_message(self.model))
        return {**spec, "sampler": "prior"}


@register_sampler("gaussian")
class GaussianSampler(LatentSampler):
    """A full-covariance Gaussian fitted to the codes (maximum likelihood, with the small
    ridge of `distributions.gaussian_scale_tril` so that a dead dimension still factors)."""

    def fit_codes(self, codes, seed):
        if len(codes) < 2:
            raise KerasaeError(f"a Gaussian needs at least 2 training codes, got {len(codes)}")
        self.mean = codes.mean(axis=0)
        self.scale_tril = gaussian_scale_tril(
            np.cov(codes, rowvar=False).reshape(codes.shape[1], codes.shape[1])
        )

    def sample_latent(self, n, seed=None):
        return draw_gaussian(np.random.default_rng(seed), self.mean, self.scale_tril, _count(n))

    def describe(self):
        return f"gaussian sampler (full covariance, fitted to {self.n_codes} training codes)"

    def state(self):
        return {"mean": self.mean, "scale_tril": self.scale_tril}

    def restore(self, meta, arrays, folder):
        self.mean, self.scale_tril = arrays["mean"], arrays["scale_tril"]

    def export_spec(self):
        return {
            "kind": "gaussian",
            "dim": int(self.latent_dim),
            "sampler": self.name,
            "source": self.describe(),
            "mean": _rows(self.mean),
            "scale_tril": _rows(self.scale_tril),
        }


@register_sampler("gmm")
class GMMSampler(LatentSampler):
    """A Gaussian mixture with full covariances fitted by EM (scikit-learn's
    GaussianMixture, k-means initialised, seeded); kept as weights, means and the
    Cholesky factors of the covariances (sklearn's precisions_cholesky_ is the inverse)."""

    defaults = {"n_components": 10, "max_iter": 200, "n_init": 1, "reg_covar": 1e-6}

    def fit_codes(self, codes, seed):
        # slow to import: only where it is used
        from sklearn.mixture import GaussianMixture

        k = self.options["n_components"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise KerasaeError(f"n_components must be a positive integer, got {k!r}")
        if len(codes) < max(2, k):
            raise KerasaeError(
                f"a {k}-component mixture needs at least {max(2, k)} training "
                f"codes, got {len(codes)}; lower n_components"
            )
        gm = GaussianMixture(
            k,
            covariance_type="full",
            random_state=seed,
            max_iter=self.options["max_iter"],
            n_init=self.options["n_init"],
            reg_covar=self.options["reg_covar"],
        ).fit(codes)
        self.weights, self.means = gm.weights_, gm.means_
        self.scale_tril = np.linalg.cholesky(gm.covariances_)

    def sample_latent(self, n, seed=None):
        return draw_mixture(
            np.random.default_rng(seed), self.weights, self.means, self.scale_tril, _count(n)
        )

    def describe(self):
        return (
            f"gmm sampler ({len(self.weights)} components, fitted to {self.n_codes} "
            "training codes)"
        )

    def state(self):
        return {"weights": self.weights, "means": self.means, "scale_tril": self.scale_tril}

    def restore(self, meta, arrays, folder):
        self.weights, self.means, self.scale_tril = (
            arrays["weights"],
            arrays["means"],
            arrays["scale_tril"],
        )

    def export_spec(self):
        return {
            "kind": "gmm",
            "dim": int(self.latent_dim),
            "sampler": self.name,
            "source": self.describe(),
            "weights": _rows(self.weights),
            "means": _rows(self.means),
            "scale_tril": _rows(self.scale_tril),
        }
