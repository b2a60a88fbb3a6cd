"""The model contract every kerasae model follows (built-in or plugin).

An `Autoencoder` owns two plain Keras models, `encoder` and `decoder` (what the exporters
export), and one generic `train_step`/`test_step` in the style of the keras.io examples:
a family only overrides `compute_losses(x, training)` and returns a dict with "loss" (and
its declared `loss_names`, `metric_names` and `aux_names`). Work that is not a gradient
step goes in two hooks: `initialize(x_batch)`, once on the first batch before training
(data-dependent init; a resumed run finds its result in the weights), and
`after_step(x, outputs)`, inside the compiled step after the optimizer update (EMA
updates, code restarts). Losses added with `add_loss` (and weight regularizers) are
added to "loss". Constructor keyword arguments are the whole config: a family declares
only the arguments it adds or whose default it changes (`kerasae.params` merges them with
its parents'), `get_config` returns every one (recorded as the object is built), and
`from_config` is `cls(**config)`. Inference (`kerasae.models.inference`) and compiling and
fitting (`kerasae.models.fitting`) are the two halves it inherits.
"""

import inspect
import math
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

import kerasae.distribute as distribute
from kerasae.errors import KerasaeError
from kerasae.models.fitting import Fitting
from kerasae.models.inference import Inference
from kerasae.models.step_outputs import check_step_outputs
from kerasae.params import constructor_params
from kerasae.probability.likelihoods import reconstruction_loss


class Autoencoder(Fitting, Inference, keras.Model):
    """Base class: encoder, decoder, encode/decode/reconstruct/score, generic training."""

    #: the terms of the objective `compute_losses` returns ("loss" is the total that is
    #: differentiated); each gets a Mean tracker, so it is in history.csv and TensorBoard
    loss_names = ("loss",)
    #: diagnostics `compute_losses` returns that are logged like losses but never
    #: differentiated (perplexity, code usage, a TC estimate, the current beta)
    metric_names = ()
    #: tensors of any shape `compute_losses` returns only for `after_step` (not logged)
    aux_names = ()
    #: True where `sample(n)` decodes draws from a prior
    generative = False
    #: what `score` computes, in words (detect's summary, threshold.json, the manifest)
    score_description = "mean squared reconstruction error"
    #: the constructor kwargs of a tiny variant, used by the conformance tests
    tiny_config = {}
    #: the kerasae plugin API this class was written for (1: no metric_names, hooks or
    #: set_networks; such classes keep working unchanged)
    kerasae_api_version = 2
    #: Adam's learning rate when `compile()` gets no optimizer (and `kerasae train` no
    #: --learning-rate)
    default_learning_rate = 1e-3

    def __new__(cls, *args, **kwargs):
        # keras.Model.__new__ drops the constructor arguments before Keras's own auto-config
        # sees them, so record them here: with the merged signature's defaults, they are the
        # whole config (`kerasae.params.constructor_params`)
        instance = super().__new__(cls, *args, **kwargs)
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        given = dict(bound.arguments)
        given.pop(next(iter(given)))  # self
        for name, param in inspect.signature(cls.__init__).parameters.items():
            if param.kind == param.VAR_KEYWORD:
                given.update(given.pop(name, {}))
        instance._constructor_config = {**constructor_params(cls), **given}
        return instance

    def __init__(self, input_shape=(28, 28, 1), latent_dim=16, loss="mse", **kwargs):
        super().__init__(**kwargs)
        self.data_shape = tuple(int(d) for d in input_shape)
        self.latent_dim = int(latent_dim)
        self.loss_kind = loss
        if self.latent_dim <= 0:
            raise KerasaeError(f"latent_dim must be a positive integer, got {latent_dim}")
        if loss not in ("mse", "bce"):
            raise KerasaeError(f"loss must be 'mse' or 'bce', got {loss!r}")
        self.make_trackers()
        if self.has_hook("initialize"):
            # saved with the weights and checkpoints: a loaded or resumed model is not
            # initialized a second time
            self.initialized = self.add_weight(
                shape=(), dtype="int32", trainable=False, initializer="zeros", name="initialized"
            )

    # ------------------------------------------------------------------ building
    def set_networks(self, encoder, decoder):
        """Store the two plain `keras.Model`s (what the exporters export); marks the model
        built. The encoder maps `x` to the code (or a list whose first item is the code
        `encode` returns), the decoder maps the code `z` back to `x_hat`."""
        self.encoder = encoder
        self.decoder = decoder
        self.built = True

    def _set_networks(self, encoder, decoder):
        """Deprecated alias of `set_networks` (plugin API 1); removed in kerasae 0.3."""
        warnings.warn(
            f"{type(self).__name__}: _set_networks is deprecated, call "
            "set_networks(encoder, decoder)",
            DeprecationWarning,
            stacklevel=2,
        )
        self.set_networks(encoder, decoder)

    def make_trackers(self):
        """One Mean tracker per declared loss and metric name; call it again after changing
        `loss_names`/`metric_names` in `__init__` (e.g. per variant)."""
        names = [*self.loss_names, *(n for n in self.metric_names if n not in self.loss_names)]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}

    @classmethod
    def has_hook(cls, name):
        """True when `cls` overrides the hook `name` ("initialize" or "after_step")."""
        return getattr(cls, name) is not getattr(Autoencoder, name)

    @property
    def input_size(self):
        return math.prod(self.data_shape)

    def _check_undercomplete(self):
        if self.latent_dim >= self.input_size:
            raise KerasaeError(
                f"latent_dim={self.latent_dim} is not smaller than the input size "
                f"{self.input_size}; an undercomplete autoencoder needs a smaller latent_dim"
            )

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    # ------------------------------------------------------------------ config
    @property
    def arguments(self):
        """The constructor's arguments: as given, with the merged signature's defaults.
        Readable in a family's `__init__` even before it calls `super().__init__`."""
        return dict(self._constructor_config)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update(self._constructor_config)
        return config

    def record_config(self, **resolved):
        """Record what a data-dependent default resolved to (e.g. `filters=None` -> the
        conv filters chosen from the image size), so get_config and a saved model hold the
        value built, and a model reloads identically even if a default changes."""
        self._constructor_config.update(resolved)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def reseed(self, seed):
        """Set every layer's Keras SeedGenerator to `seed`, so a stochastic loss (a vae's
        posterior draw) repeats: their state is drawn afresh when a model is loaded."""
        for layer in self._flatten_layers():
            for generator in getattr(layer, "_seed_generators", ()):
                generator.state.assign(np.array([seed, 0], generator.state.dtype))

    def save(self, filepath, *args, **kwargs):
        """`keras.Model.save`, creating the file's folder first (as a run folder is)."""
        folder = os.path.dirname(os.fspath(filepath))
        if folder:
            os.makedirs(folder, exist_ok=True)
        return super().save(filepath, *args, **kwargs)

    # ------------------------------------------------------------------ training
    def reconstruction_loss(self, x, x_hat):
        """Batch mean of the per-example reconstruction loss (`loss` kwarg: mse or bce)."""
        return reconstruction_loss(x, x_hat, kind=self.loss_kind)

    def compute_losses(self, x, training=False):
        """Return a dict of scalar losses with the total under "loss". Families override."""
        x_hat = self(x, training=training)
        return {"loss": self.reconstruction_loss(x, x_hat)}

    @staticmethod
    def _inputs(data):
        """fit(x) trains to reconstruct x: targets, if any, are ignored."""
        if isinstance(data, (tuple, list)):
            data = data[0]
        if isinstance(data, dict):
            data = data.get("x", next(iter(data.values())))
        return data

    # ------------------------------------------------------------------ hooks
    def initialize(self, x_batch):
        """Data-dependent initialisation, called once (eagerly) with the first training batch
        before the first step, e.g. a k-means codebook. Not called again for a model that
        was initialized before (loaded, or resumed from a checkpoint). Default: nothing."""

    def after_step(self, x, outputs):
        """Called inside the compiled train step after the optimizer update, with the batch
        and the dict `compute_losses` returned (its `aux_names` included): updates that are
        not gradient steps (EMA codebooks, dead-code restarts, running statistics). Use
        variable assignments (`v.assign(...)`), not Python side effects. Default: nothing."""

    # ------------------------------------------------------------------ steps
    def train_step(self, data):
        x = self._inputs(data)
        with tf.GradientTape() as tape:
            losses = self.with_added_losses(self.compute_losses(x, training=True))
            scaled = self.gradient_loss(losses["loss"])  # replica mean, loss scale
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        if self.has_hook("after_step"):
            self.after_step(x, losses)
        return self._track(losses)

    def test_step(self, data):
        x = self._inputs(data)
        return self._track(self.with_added_losses(self.compute_losses(x, training=False)))

    def with_added_losses(self, losses):
        """`losses` checked against the declared names, with the losses that layers added
        in this step (`add_loss`, weight and activity regularizers) added to "loss"."""
        self.check_outputs(losses)
        if self.losses:
            losses = {**losses, "loss": self.plus_added_losses(losses["loss"])}
        return losses

    def plus_added_losses(self, loss):
        """`loss` plus the losses layers added in this step (`add_loss`, weight and
        activity regularizers); every training step, the base's or a family's, uses it."""
        added = self.losses
        if not added:
            return loss
        return loss + tf.add_n([tf.cast(t, loss.dtype) for t in added])

    def check_outputs(self, outputs):
        """Raise KerasaeError unless `outputs` (what `compute_losses` or a family's own step
        returns) holds every declared loss and metric as a scalar and nothing undeclared.
        Runs as the step is traced, i.e. on the first step."""
        check_step_outputs(self, outputs)

    def _track(self, losses):
        self.check_outputs(losses)
        for name, tracker in self.trackers.items():
            tracker.update_state(tf.stop_gradient(losses[name]))
        return distribute.reducible_logs(
            {name: tracker.result() for name, tracker in self.trackers.items()}
        )

    @property
    def metrics(self):
        return list(self.trackers.values())

    def run_callbacks(self, run_dir, data):
        """Extra callbacks `kerasae train` adds for this family (schedules, logs), besides
        the grids every run writes (`kerasae.callbacks.default_grid_callbacks`:
        reconstructions, and prior samples and latent traversals for generative models).
        Default: none."""
        return []

    def run_summary(self):
        """Extra facts about the finished training for the run's config.json (e.g. sdae's
        layer-wise pretraining losses); a dict of JSON-serializable values."""
        return {}
