"""Latent samplers fitted after training: how any model with an encoder generates.

A deterministic autoencoder has no prior, but a density fitted to its training codes
after the fact makes it generative, and often as good a generator as a VAE (Ghosh et al.,
"From Variational to Deterministic Autoencoders", ICLR 2020). One registry, like models:
`prior` (the model's own), `gaussian` (a full-covariance Gaussian), `gmm` (a
full-covariance Gaussian mixture, scikit-learn's EM) and the learned ones in their own
modules (`two_stage`: Dai and Wipf 2019, kerasae.two_stage).

    sampler = create_sampler("gmm", n_components=10).fit(model, x_train, seed=0)
    images = sampler.generate(model, 64, seed=1)      # model.decode(sampler.sample_latent(...))

Every draw is plain numpy (`default_rng(seed)`, in the order written in each
`sample_latent`), so kerasae-runtime reproduces it from the export's arrays. In a run a
sampler lives in RUN/samplers/NAME/ (sampler.json plus arrays.npz or model.weights.h5, no
pickles); config.json names the default ("sampler") and all fitted ones ("samplers").
"""
import importlib
import importlib.util
import os

import numpy as np

from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.io import atomic_folder, read_json, write_json
from kerasae.latent_draws import draw_gaussian, draw_mixture, draw_spec

SAMPLERS = {}
#: modules holding learned samplers, imported (when present) so that they register
LEARNED_MODULES = ("kerasae.two_stage", "kerasae.pixelcnn")
SAMPLERS_DIR, META, ARRAYS = "samplers", "sampler.json", "arrays.npz"


def register_sampler(name):
    def decorate(cls):
        cls.name = name
        SAMPLERS[name] = cls
        return cls

    return decorate


class LatentSampler:
    """A distribution over a model's codes: `fit` to training codes, `sample_latent` draws
    decoder inputs of shape (n, model.latent_dim), `save`/`load` keep it in a run."""

    name = None
    learned = False  # True: weights (model.weights.h5), False: plain arrays (arrays.npz)
    defaults = {}  # every option with its default: what sampler.json records

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise KerasaeError(f"unknown option(s) {', '.join(unknown)} for the {self.name} "
                               f"sampler; it takes: {known}")
        self.options = {**self.defaults, **options}
        self.latent_dim = self.n_codes = self.seed = None

    @classmethod
    def check(cls, model):
        """Raise KerasaeError when the sampler does not apply to `model`."""
        if getattr(model, "encoder", None) is None:
            raise KerasaeError(f"the {cls.name} sampler is fitted to a model's codes, and "
                               "this model has no encoder")

    def fit(self, model, x_train, seed=0):
        """Encode `x_train` (an array, or a tf.data pipeline of batches) with `model` and
        fit to the codes; returns self."""
        self.check(model)
        if not hasattr(x_train, "element_spec"):  # a tf.data.Dataset streams as it is
            x_train = np.asarray(x_train, "float32")
        codes = np.asarray(model.encode(x_train), "float64")
        codes = codes.reshape(len(codes), -1)
        if codes.shape[1] != model.latent_dim:
            raise KerasaeError(f"the encoder's codes have {codes.shape[1]} values but the "
                               f"decoder takes {model.latent_dim}; the {self.name} sampler "
                               "needs the decoder's input as the code")
        self.latent_dim, self.n_codes, self.seed = model.latent_dim, len(codes), seed
        self.fit_codes(codes, seed)
        return self

    def fit_codes(self, codes, seed):
        raise NotImplementedError

    def sample_latent(self, n, seed=None):
        raise NotImplementedError

    def generate(self, model, n, seed=None):
        """`n` images: the decoder's output for `sample_latent(n, seed)`."""
        return model.decode(self.sample_latent(_count(n), seed))

    def describe(self):
        return f"{self.name} sampler (fitted to {self.n_codes} training codes)"

    # ------------------------------------------------------------------ storage
    def state(self):
        """Arrays (or, for learned samplers, write weights in `save_weights`)."""
        return {}

    def save(self, folder):
        from kerasae import __version__

        with atomic_folder(folder) as tmp:
            meta = {"name": self.name, "latent_dim": self.latent_dim, "options": self.options,
                    "n_codes": self.n_codes, "seed": self.seed, "kerasae_version": __version__,
                    **self.extra_meta()}
            write_json(os.path.join(tmp, META), meta)
            arrays = self.state()
            if arrays:
                np.savez(os.path.join(tmp, ARRAYS), **arrays)
            self.save_weights(tmp)

    def extra_meta(self):
        return {}

    def save_weights(self, folder):
        pass

    @classmethod
    def load(cls, folder):
        """The sampler saved in `folder` (its class from sampler.json's name)."""
        path = os.path.join(folder, META)
        if not os.path.isfile(path):
            raise KerasaeError(f"{folder} holds no fitted sampler ({META} missing); fit one "
                               "with kerasae fit-sampler RUN --sampler NAME")
        meta = read_json(path)
        sampler = create_sampler(meta["name"], **meta.get("options", {}))
        sampler.latent_dim, sampler.n_codes, sampler.seed = (
            meta["latent_dim"], meta["n_codes"], meta.get("seed"))
        arrays = {}
        if os.path.isfile(os.path.join(folder, ARRAYS)):
            with np.load(os.path.join(folder, ARRAYS), allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        sampler.restore(meta, arrays, folder)
        return sampler

    def restore(self, meta, arrays, folder):
        pass

    def export_spec(self, folder):
        """The export manifest's "prior" entry (kerasae-runtime draws from it)."""
        raise NotImplementedError


def _count(n):
    if isinstance(n, bool) or int(n) != n or int(n) <= 0:
        raise KerasaeError(f"the number of samples must be a positive integer, got {n}")
    return int(n)


def _rows(array):
    return np.asarray(array, "float64").tolist()


@register_sampler("prior")
class PriorSampler(LatentSampler):
    """The model's own prior, as its export describes it (kerasae.exporters.manifest.prior:
    N(0, I) for vae and its kin, rae's fitted Gaussian, vamp's and aae's mixtures, aae's
    uniform box), drawn in numpy exactly as kerasae-runtime draws it; a prior of another
    kind falls back to the model's own `sample`."""

    @classmethod
    def check(cls, model):
        if not getattr(model, "generative", False):
            raise NotGenerativeError(f"{model.not_generative_reason()}; the prior sampler "
                                     "needs one: use a fitted sampler such as --sampler gmm")

    def fit(self, model, x_train=None, seed=0):
        """Nothing to fit: binds `model` (its prior is the distribution)."""
        self.check(model)
        self.model, self.latent_dim, self.n_codes, self.seed = model, model.latent_dim, 0, seed
        return self

    def spec(self):
        from kerasae.exporters.manifest import prior

        if getattr(self, "model", None) is None:
            raise KerasaeError("the prior sampler is bound to a model: call fit(model) first")
        return prior(self.model)

    def sample_latent(self, n, seed=None):
        z = draw_spec(self.spec(), _count(n), seed)
        if z is None:
            raise KerasaeError(f"{self.model.registered_name}'s prior is drawn by the model "
                               "itself, not as codes; call generate(model, n, seed)")
        return z

    def generate(self, model, n, seed=None):
        z = draw_spec(self.spec(), _count(n), seed)
        if z is None:
            return np.asarray(model.sample(_count(n), seed=seed), "float32")
        return np.asarray(model.decode(z), "float32")

    def describe(self):
        spec = self.spec()
        return f"prior sampler (the model's own: {spec.get('source', spec['kind'])})"

    def export_spec(self, folder):
        from kerasae.sampler_runs import no_sampler_message

        spec = self.spec()
        if spec is None:
            raise NotGenerativeError(no_sampler_message(self.model))
        return {**spec, "sampler": "prior"}


@register_sampler("gaussian")
class GaussianSampler(LatentSampler):
    """A full-covariance Gaussian fitted to the codes (maximum likelihood, with the small
    ridge of `distributions.gaussian_scale_tril` so that a dead dimension still factors)."""

    def fit_codes(self, codes, seed):
        from kerasae.distributions import gaussian_scale_tril

        if len(codes) < 2:
            raise KerasaeError(f"a Gaussian needs at least 2 training codes, got {len(codes)}")
        self.mean = codes.mean(axis=0)
        self.scale_tril = gaussian_scale_tril(np.cov(codes, rowvar=False).reshape(
            codes.shape[1], codes.shape[1]))

    def sample_latent(self, n, seed=None):
        return draw_gaussian(np.random.default_rng(seed), self.mean, self.scale_tril, _count(n))

    def describe(self):
        return f"gaussian sampler (full covariance, fitted to {self.n_codes} training codes)"

    def state(self):
        return {"mean": self.mean, "scale_tril": self.scale_tril}

    def restore(self, meta, arrays, folder):
        self.mean, self.scale_tril = arrays["mean"], arrays["scale_tril"]

    def export_spec(self, folder):
        return {"kind": "gaussian", "dim": int(self.latent_dim), "sampler": self.name,
                "source": self.describe(), "mean": _rows(self.mean),
                "scale_tril": _rows(self.scale_tril)}


@register_sampler("gmm")
class GMMSampler(LatentSampler):
    """A Gaussian mixture with full covariances fitted by EM (scikit-learn's
    GaussianMixture, k-means initialised, seeded); kept as weights, means and the
    Cholesky factors of the covariances (sklearn's precisions_cholesky_ is the inverse)."""

    defaults = {"n_components": 10, "max_iter": 200, "n_init": 1, "reg_covar": 1e-6}

    def fit_codes(self, codes, seed):
        from sklearn.mixture import GaussianMixture

        k = self.options["n_components"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise KerasaeError(f"n_components must be a positive integer, got {k!r}")
        if len(codes) < max(2, k):
            raise KerasaeError(f"a {k}-component mixture needs at least {max(2, k)} training "
                               f"codes, got {len(codes)}; lower n_components")
        gm = GaussianMixture(k, covariance_type="full", random_state=seed,
                             max_iter=self.options["max_iter"], n_init=self.options["n_init"],
                             reg_covar=self.options["reg_covar"]).fit(codes)
        self.weights, self.means = gm.weights_, gm.means_
        self.scale_tril = np.linalg.cholesky(gm.covariances_)

    def sample_latent(self, n, seed=None):
        return draw_mixture(np.random.default_rng(seed), self.weights, self.means,
                            self.scale_tril, _count(n))

    def describe(self):
        return (f"gmm sampler ({len(self.weights)} components, fitted to {self.n_codes} "
                "training codes)")

    def state(self):
        return {"weights": self.weights, "means": self.means, "scale_tril": self.scale_tril}

    def restore(self, meta, arrays, folder):
        self.weights, self.means, self.scale_tril = (
            arrays["weights"], arrays["means"], arrays["scale_tril"])

    def export_spec(self, folder):
        return {"kind": "gmm", "dim": int(self.latent_dim), "sampler": self.name,
                "source": self.describe(), "weights": _rows(self.weights),
                "means": _rows(self.means), "scale_tril": _rows(self.scale_tril)}


def _import_learned():
    for module in LEARNED_MODULES:  # cached after the first import
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def sampler_names():
    return sorted(SAMPLERS)


def create_sampler(name, **options):
    """A new (unfitted) sampler; unknown names and options raise KerasaeError."""
    if name not in SAMPLERS:
        raise KerasaeError(f"unknown sampler {name!r}; use one of {', '.join(sampler_names())}")
    return SAMPLERS[name](**options)


#: the run-level API (kerasae/sampler_runs.py), reached from here as the rest of the API is
RUN_API = ("training_examples", "fit_run_sampler", "save_run_sampler", "load_sampler",
           "run_generator", "resolve_sampler", "no_sampler_message", "check_for_model", "fit_after_training",
           "run_samplers_dir", "FIT_LIMIT")


def __getattr__(name):  # PEP 562: sampler_runs imports this module, so not at import time
    if name in RUN_API:
        from kerasae import sampler_runs

        return getattr(sampler_runs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_import_learned()  # SAMPLERS names every sampler (their modules import Keras lazily)
