"""`sdae`: the stacked denoising autoencoder (Vincent, Larochelle, Lajoie, Bengio and
Manzagol, JMLR 2010): each layer pretrained greedily as a denoising autoencoder on the codes
of the layers below it, then the whole stack fine-tuned end to end as a `dae`.

Layer k is trained as a one-layer DAE on the clean codes of the layers below (section 3.5)
for `pretrain_epochs`. Upper layers see relu codes rather than [0, 1] pixels, so there the
noise uses the codes' own range (min..max over the training codes) and Gaussian noise is
not clipped.
"""

import os

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import kerasae.distribute as distribute
from kerasae.data.pipeline import make_tf_dataset
from kerasae.errors import KerasaeError
from kerasae.io import atomic_path
from kerasae.models.denoising import DAE, corrupt
from kerasae.models.registry import register_model

PRETRAINING = "pretraining.csv"


class _LayerDAE(keras.Model):
    """One sdae layer as a one-layer DAE: h = enc(corrupt(c)), c_hat = dec(h)."""

    def __init__(self, enc, dec, noise, level, low, high, clip, output_activation):
        super().__init__(name=f"pretrain_{enc.name}")
        self.enc, self.dec = enc, dec
        self.noise, self.level, self.low, self.high, self.clip = noise, level, low, high, clip
        self.output_activation = keras.activations.get(output_activation)
        self.seed = keras.random.SeedGenerator()

    def call(self, c, training=False):
        if training:
            c = corrupt(c, self.noise, self.level, self.seed, self.low, self.high, self.clip)
        return self.output_activation(self.dec(self.enc(c)))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # fitted on the codes alone, the target being the clean code: a pipeline of single
        # tensors, which Keras's symbolic build can reduce under a multi-worker strategy
        # (a pipeline of (c, c) pairs fails there: Keras 3.15, TF 2.21)
        return super().compute_loss(x, x if y is None else y, y_pred, sample_weight, training)

    def get_metrics_result(self):
        return distribute.reducible_logs(super().get_metrics_result())


class PretrainingLog(keras.callbacks.Callback):
    """Writes the model's per-layer pretraining losses to RUN_DIR/pretraining.csv."""

    def __init__(self, run_dir):
        super().__init__()
        self.path = os.path.join(run_dir, PRETRAINING)

    def on_train_begin(self, logs=None):
        records = getattr(self.model, "pretraining_history", None)
        if not records:
            return
        with atomic_path(self.path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write("layer,units,epoch,loss\n")
            for rec in records:
                for epoch, loss in enumerate(rec["loss"]):
                    f.write(f"{rec['layer']},{rec['units']},{epoch},{loss!r}\n")


@register_model("sdae")
class SDAE(DAE):
    """Stacked denoising autoencoder: greedy layer-wise DAE pretraining, then fine-tuning."""

    tiny_config = {
        "latent_dim": 4,
        "hidden_units": (16,),
        "noise_level": 0.2,
        "pretrain_epochs": 1,
    }

    #: an MLP whose layers pair up for the layer-wise pretraining: nothing else to choose
    fixed_params = ("architecture", "filters", "kernel_size", "code", "encoder", "decoder")

    def __init__(self, *, noise="masking", noise_level=0.25, pretrain_epochs=3, **kwargs):
        """`pretrain_epochs`: of each layer's own denoising autoencoder, before the stack
        is fine-tuned end to end (0: none, a plain dae)."""
        if (
            isinstance(pretrain_epochs, bool)
            or not isinstance(pretrain_epochs, int)
            or pretrain_epochs < 0
        ):
            raise KerasaeError(
                f"pretrain_epochs must be a non-negative integer, got {pretrain_epochs!r}"
            )
        super().__init__(architecture="mlp", noise=noise, noise_level=noise_level, **kwargs)
        self.pretrain_epochs = int(pretrain_epochs)
        # saved with the weights, so fitting a loaded model does not pretrain it again
        self.pretrained = keras.Variable(0, dtype="int32", trainable=False, name="pretrained")
        self.pretraining_history = []

    def layer_pairs(self):
        """[(encoder layer, its mirror decoder layer)] from the input up to the code."""
        n = len(self.hidden_units)
        encs = [self.encoder.get_layer(f"enc_dense{i}") for i in range(n)]
        encs.append(self.encoder.get_layer("z"))
        decs = [self.decoder.get_layer("dec_out")]
        decs += [self.decoder.get_layer(f"dec_dense{n - i}") for i in range(1, n + 1)]
        return list(zip(encs, decs))

    def run_callbacks(self, run_dir, data):
        return [*super().run_callbacks(run_dir, data), PretrainingLog(run_dir)]

    def run_summary(self):
        return {"pretraining": self.pretraining_history}

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_data=None,
        initial_epoch=0,
        **kwargs,
    ):
        """Greedy layer-wise pretraining (once per model), then end-to-end fine-tuning."""
        callbacks = list(callbacks or [])
        resuming = initial_epoch > 0 or any(
            os.path.exists(getattr(cb, "_weights_path", "") or "")
            for cb in callbacks
            if isinstance(cb, keras.callbacks.BackupAndRestore)
        )
        if not self.compiled:
            self.compile()
        if int(self.pretrained.numpy()) == 0 and not resuming and self.pretrain_epochs:
            self.pretrain(
                x, batch_size=batch_size, verbose=verbose, steps=kwargs.get("steps_per_epoch")
            )
        if verbose:
            print(f"sdae: fine-tuning the stacked network end to end for {epochs} epoch(s)")
        return super().fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_data=validation_data,
            initial_epoch=initial_epoch,
            **kwargs,
        )

    def pretrain(self, x, batch_size=None, verbose=1, steps=None):
        """Train each layer as a one-layer DAE on the codes below; returns the records.

        `x`: an array or a batched tf.data.Dataset (`steps` batches per epoch of an endless
        one). Streamed: a batch's codes are computed by the (frozen) layers below as it is
        read, so no array of the data or of its codes is ever held whole."""
        data = _input_batches(x, self._inputs, batch_size or 32)
        lr = float(ops.convert_to_numpy(self.optimizer.learning_rate))
        pairs = self.layer_pairs()
        self.pretraining_history = []
        below, width = [], self.input_size
        for i, (enc, dec) in enumerate(pairs):
            first = i == 0
            codes = data.map(_encoder_below(list(below), self.input_size))
            low, high = (0.0, 1.0) if first else _value_range(codes, steps)
            layer_dae = _LayerDAE(
                enc,
                dec,
                self.noise,
                self.noise_level,
                low,
                high,
                clip=first,
                output_activation="sigmoid" if first else "linear",
            )
            loss = "binary_crossentropy" if first and self.loss_kind == "bce" else "mse"
            layer_dae.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
            units = f"{width}->{enc.units}"
            if verbose:
                print(
                    f"sdae: pretraining layer {i + 1}/{len(pairs)} ({units}) as a one-layer "
                    f"DAE for {self.pretrain_epochs} epoch(s)"
                )
            sample = _first_codes(codes)  # the same codes before and after
            before = _clean_loss(layer_dae, sample, loss)
            hist = layer_dae.fit(
                codes, epochs=self.pretrain_epochs, steps_per_epoch=steps, verbose=verbose
            )
            after = _clean_loss(layer_dae, sample, loss)
            self.pretraining_history.append(
                {
                    "layer": i + 1,
                    "units": units,
                    "epochs": self.pretrain_epochs,
                    "loss": [float(np.ravel(v)[0]) for v in hist.history["loss"]],
                    "clean_loss_before": float(before),
                    "clean_loss_after": float(after),
                }
            )
            below.append(enc)  # the clean codes of this layer feed the next one
            width = enc.units
        self.pretrained.assign(len(pairs))
        return self.pretraining_history


def _input_batches(data, inputs, batch_size):
    """A tf.data pipeline of float32 input batches from an array (shuffled each epoch) or a
    batched tf.data.Dataset (used as it is: it shuffles itself)."""
    if isinstance(data, tf.data.Dataset):
        return data.map(lambda *b: tf.cast(inputs(b), "float32"))
    return make_tf_dataset(np.asarray(inputs(data), dtype="float32"), batch_size, seed=None)


def _encoder_below(layers_below, size):
    """Flattened batch -> the clean codes of the (frozen) encoder layers below."""

    def encode(x):
        c = ops.reshape(x, (-1, size))
        for layer in layers_below:
            c = layer(c)
        return c

    return encode


def _value_range(codes, steps=None):
    """(min, max) over the codes of one pass (or `steps` batches of an endless pipeline)."""
    low, high = np.inf, -np.inf
    for c in distribute.local_batches(codes.take(steps) if steps else codes):
        c = np.asarray(c)
        low, high = min(low, float(c.min())), max(high, float(c.max()))
    # the range of every worker's codes (this one's alone without a multi-worker strategy)
    (low,), (high,) = (
        distribute.across_workers([low], "min"),
        distribute.across_workers([high], "max"),
    )
    return float(low), float(high)


def _first_codes(codes, limit=10_000):
    """Up to `limit` codes from the pipeline's first batches (a bounded sample)."""
    parts, count = [], 0
    for c in distribute.local_batches(codes):  # under multiworker: this worker's shard
        parts.append(np.asarray(c)[: limit - count])
        count += len(parts[-1])
        if count >= limit:
            break
    return np.concatenate(parts)


def _clean_loss(layer_dae, sample, loss):
    """The layer DAE's loss on uncorrupted codes, computed eagerly."""
    fn = keras.losses.get(loss)
    return float(ops.mean(fn(sample, layer_dae(sample, training=False))))
