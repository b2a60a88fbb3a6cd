"""The model contract every kerasae model follows (built-in or plugin).

An `Autoencoder` owns two plain Keras models, `encoder` and `decoder` (what the exporters
export), and one generic `train_step`/`test_step` in the style of the keras.io examples:
a family only overrides `compute_losses(x, training)` and returns a dict with "loss" (and
its declared `loss_names`, `metric_names` and `aux_names`). Work that is not a gradient
step goes in two hooks: `initialize(x_batch)`, once on the first batch before training
(data-dependent init; a resumed run finds its result in the weights), and
`after_step(x, outputs)`, inside the compiled step after the optimizer update (EMA
updates, code restarts). Losses added with `add_loss` (and weight regularizers) are
added to "loss". Constructor keyword arguments are the whole config: `get_config`
returns every one of them (Keras records them as the object is built), and
`from_config` is `cls(**config)`.
"""

import inspect
import math
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from kerasae import distribute
from kerasae.data import pipeline
from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.models.step_outputs import check_step_outputs
from kerasae.params import constructor_params
from kerasae.probability.likelihoods import per_example_error, reconstruction_loss

#: train steps per compiled call by default: amortises Python and tf.function dispatch
#: (measured +30% for conv_ae at batch 128 and 2x for ae at batch 512 on CPU)
STEPS_PER_EXECUTION = 16


class Autoencoder(keras.Model):
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
    def compile(self, optimizer=None, jit_compile="auto", steps_per_execution=None, **kwargs):
        """`compile()` with no arguments uses Adam(`default_learning_rate`) and the fast path.

        The fast path: several train steps per `tf.function` call (`steps_per_execution`,
        fewer Python round trips), and XLA where it helps: Keras's "auto" turns it on for
        one accelerator and off on CPU-only hosts and under tf.distribute. We keep "auto"
        because XLA on CPU measured 5x slower for conv_ae here (see BENCHMARKS.md).
        """
        if optimizer is None:
            optimizer = keras.optimizers.Adam(learning_rate=self.default_learning_rate)
        if steps_per_execution is None:
            steps_per_execution = self.fast_steps_per_execution()
        super().compile(
            optimizer=optimizer,
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
            **kwargs,
        )

    def fast_steps_per_execution(self):
        """STEPS_PER_EXECUTION, or 1 over several replicas: Keras 3.15's multi-step loop
        fails under MirroredStrategy ("must feed a value for placeholder"), plain models too."""
        replicas = self.distribute_strategy.num_replicas_in_sync
        return STEPS_PER_EXECUTION if replicas == 1 else 1

    def gradient_loss(self, loss, optimizer=None):
        """The loss a train step differentiates for `optimizer` (default `self.optimizer`).

        Optimizers SUM gradients across tf.distribute replicas, so each replica's mean is
        divided by the replica count (the step then follows the global batch's mean, as on
        one device); under mixed_float16 the optimizer's loss scale is applied too.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / tf.cast(replicas, loss.dtype)
        return (optimizer or self.optimizer).scale_loss(loss)

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return {
            "optimizer": keras.optimizers.serialize(self.optimizer),
            "jit_compile": self.jit_compile,
            "steps_per_execution": self.steps_per_execution,
        }

    def compile_from_config(self, config):
        if not config:
            return
        config = dict(config)
        config["optimizer"] = keras.optimizers.deserialize(config["optimizer"])
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)  # so its saved state can load

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

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        **kwargs,
    ):
        """Keras `fit`; arrays go through `kerasae.data.pipeline.make_tf_dataset` (fast, and
        without
        the tf.data autotune stall at each epoch's end that Keras's own array pipeline has).

        Targets are ignored (an autoencoder reconstructs x); `validation_split` and
        per-example weights keep Keras's own array handling. A model with an `initialize`
        hook is initialized on the first batch first, unless it was already.
        """
        if (
            self.has_hook("initialize")
            and not int(self.initialized.numpy())
            and not kwargs.get("initial_epoch")
        ):
            self.run_initialize(x, batch_size)
        if isinstance(x, np.ndarray) and not validation_split and "sample_weight" not in kwargs:
            x = _array_dataset(x, batch_size, shuffle)
            if (
                isinstance(validation_data, (tuple, list))
                and validation_data
                and isinstance(validation_data[0], np.ndarray)
            ):
                validation_data = validation_data[0]  # (x_val, y_val): targets ignored
            if isinstance(validation_data, np.ndarray):
                validation_data = _array_dataset(
                    validation_data, kwargs.pop("validation_batch_size", None) or batch_size, False
                )
            y = batch_size = None
        if isinstance(x, tf.data.Dataset):
            shuffle = False  # a dataset shuffles itself; Keras would warn it ignores the flag
        return super().fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_split=validation_split,
            validation_data=validation_data,
            shuffle=shuffle,
            **kwargs,
        )

    def run_initialize(self, data, batch_size=None):
        """Call `initialize` on the first batch of `data` (an array or a tf.data.Dataset)."""
        if isinstance(data, tf.data.Dataset):
            batch = self._inputs(next(iter(data)))
        else:
            batch = np.asarray(self._inputs(data), dtype="float32")[: batch_size or 32]
        self.initialize(tf.convert_to_tensor(batch, dtype="float32"))
        self.initialized.assign(1)

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

    # ------------------------------------------------------------------ inference
    def _batched(self, fn, x, batch_size=256):
        """`fn` over an array in batches, or over the batches of a (finite) tf.data.Dataset
        (e.g. `data.batches("test", 256)`: streamed, never all in memory at once)."""
        if isinstance(x, tf.data.Dataset):
            outs = [np.asarray(fn(tf.cast(self._inputs(b), "float32"))) for b in x]
        else:
            x = np.asarray(x, dtype="float32")
            outs = [
                np.asarray(fn(tf.constant(x[i : i + batch_size])))
                for i in range(0, len(x), batch_size)
            ]
        if not outs:
            raise KerasaeError("no examples given (the input array is empty)")
        return np.concatenate(outs)

    def encode(self, x, batch_size=256):
        """Deterministic latent codes (the posterior mean for probabilistic models)."""
        return self._batched(lambda b: self.encoder(b, training=False), x, batch_size)

    def decode(self, z, batch_size=256):
        return self._batched(lambda b: self.decoder(b, training=False), z, batch_size)

    def reconstruct(self, x, batch_size=256):
        return self._batched(lambda b: self(b, training=False), x, batch_size)

    def score(self, x, batch_size=256):
        """Per-example anomaly score: mean squared reconstruction error (higher = stranger)."""
        return self._batched(self.score_tensor, x, batch_size)

    def score_tensor(self, x):
        """The score of a batch tensor, shape (batch,): traceable, with no randomness and no
        dependence on the batch, since the export's scorer.onnx is this graph. A family
        whose `score` is not the reconstruction error overrides both."""
        return per_example_error(x, self(x, training=False))

    def sample(self, n, seed=None):
        raise NotGenerativeError(self.not_generative_reason())

    def not_generative_reason(self):
        """Why `sample` refuses: also what an export records and kerasae-runtime prints."""
        return (
            f"model {getattr(self, 'registered_name', type(self).__name__)!r} is not "
            "generative (it has no prior to sample from); train a generative family "
            "such as vae, beta_vae, aae, wae or rae"
        )


def _array_dataset(x, batch_size, shuffle):
    # seed None: the order follows the global seed (keras.utils.set_random_seed), as in Keras
    return pipeline.make_tf_dataset(x, batch_size or 32, shuffle=bool(shuffle), seed=None)
