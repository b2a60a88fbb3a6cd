"""The latent sampler contract and its registry: fit to a model's codes, draw, save, export.

A sampler is fitted after training to the codes of the training examples (`fit`), draws
decoder inputs (`sample_latent`), lives in a run as RUN/samplers/NAME/ (sampler.json plus
arrays.npz or model.weights.h5, no pickles), and describes itself for the export's manifest
(`export_spec`), from which kerasae-runtime draws the same codes for the same seed.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any

import numpy as np

from kerasae.errors import KerasaeError
from kerasae.io import atomic_folder, read_json, write_json
from kerasae.registry import Registry
from kerasae.version import __version__

SAMPLERS_DIR, META, ARRAYS = "samplers", "sampler.json", "arrays.npz"


class LatentSampler:
    """A distribution over a model's codes: `fit` to training codes, `sample_latent` draws
    decoder inputs of shape (n, model.latent_dim), `save`/`load` keep it in a run."""

    name = None
    learned = False  # True: weights (model.weights.h5), False: plain arrays (arrays.npz)
    defaults = {}  # every option with its default: what sampler.json records
    tiny_options = {}  # options small enough for the conformance check (kerasae.testing)

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise KerasaeError(
                f"unknown option(s) {', '.join(unknown)} for the {self.name} "
                f"sampler; it takes: {known}"
            )
        self.options = {**self.defaults, **options}
        self.latent_dim = self.n_codes = self.seed = None

    @classmethod
    def check(cls, model):
        """Raise KerasaeError when the sampler does not apply to `model`."""
        if getattr(model, "encoder", None) is None:
            raise KerasaeError(
                f"the {cls.name} sampler is fitted to a model's codes, and "
                "this model has no encoder"
            )

    def fit(self, model, x_train, seed=0):
        """Encode `x_train` (an array, or a tf.data pipeline of batches) with `model` and
        fit to the codes; returns self."""
        self.check(model)
        if not hasattr(x_train, "element_spec"):  # a tf.data.Dataset streams as it is
            x_train = np.asarray(x_train, "float32")
        codes = np.asarray(model.encode(x_train), "float64")
        codes = codes.reshape(len(codes), -1)
        if codes.shape[1] != model.latent_dim:
            raise KerasaeError(
                f"the encoder's codes have {codes.shape[1]} values but the "
                f"decoder takes {model.latent_dim}; the {self.name} sampler "
                "needs the decoder's input as the code"
            )
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
        with atomic_folder(folder) as tmp:
            meta = {
                "name": self.name,
                "latent_dim": self.latent_dim,
                "options": self.options,
                "n_codes": self.n_codes,
                "seed": self.seed,
                "kerasae_version": __version__,
                **self.extra_meta(),
            }
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
            raise KerasaeError(
                f"{folder} holds no fitted sampler ({META} missing); fit one "
                "with kerasae fit-sampler RUN --sampler NAME"
            )
        meta = read_json(path)
        sampler = create_sampler(meta["name"], **meta.get("options", {}))
        sampler.latent_dim, sampler.n_codes, sampler.seed = (
            meta["latent_dim"],
            meta["n_codes"],
            meta.get("seed"),
        )
        arrays = {}
        if os.path.isfile(os.path.join(folder, ARRAYS)):
            with np.load(os.path.join(folder, ARRAYS), allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        sampler.restore(meta, arrays, folder)
        return sampler

    def restore(self, meta, arrays, folder):
        pass

    def export_spec(self):
        """The export manifest's "prior" entry: a kind kerasae-runtime draws
        (`kerasae_runtime.manifest.PRIOR_KINDS`), its numbers, and the "file" of the network
        `export_graph` gives, if any."""
        raise NotImplementedError

    def export_graph(self):
        """The network a learned sampler draws through (`SamplerGraph`), which the export
        writes as ONNX beside the parts; None for a sampler of plain numbers."""
        return None


@dataclasses.dataclass
class SamplerGraph:
    """A learned sampler's network, as the export writes it (`file`, ONNX): `function` maps
    one input tensor (`input_name`, shape with None for the batch, dtype) to {output name:
    tensor}; kerasae-runtime feeds it the same draws `sample_latent` makes."""

    file: str
    function: object
    input_name: str
    input_shape: tuple
    input_dtype: str
    output_names: tuple
    output_shapes: tuple


def _count(n):
    if isinstance(n, bool) or int(n) != n or int(n) <= 0:
        raise KerasaeError(f"the number of samples must be a positive integer, got {n}")
    return int(n)


def _rows(array):
    return np.asarray(array, "float64").tolist()


def _check_sampler_class(cls, dist):
    if not (isinstance(cls, type) and issubclass(cls, LatentSampler)):
        raise TypeError(f"{cls!r} is not a subclass of kerasae.samplers.LatentSampler")


#: name -> LatentSampler subclass, fed by the `kerasae.samplers` entry points
SAMPLERS = Registry("sampler", "kerasae.samplers", accept=_check_sampler_class)
register_sampler = SAMPLERS.register


def sampler_names(pattern="*"):
    return SAMPLERS.names(pattern)


def sampler_class(name):
    """The registered sampler class `name`; unknown names raise KerasaeError."""
    return SAMPLERS.get(name)


def create_sampler(name: str, **options: Any) -> LatentSampler:
    """A new (unfitted) sampler; unknown names and options raise KerasaeError."""
    return sampler_class(name)(**options)


def no_sampler_message(model, run_dir="RUN"):
    """Why a run cannot generate: also an export's `no_prior` (the same words everywhere)."""
    return (
        f"{model.not_generative_reason()}; fit a latent sampler: kerasae fit-sampler "
        f"{shlex.quote(str(run_dir))} --sampler gmm"
    )
