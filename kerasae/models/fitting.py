"""Compiling and fitting an autoencoder: the fast path, and arrays through kerasae's pipeline.

Several train steps run per compiled call (`steps_per_execution`: fewer Python round trips),
the gradient follows the global batch's mean under tf.distribute, and `fit(x)` on an array
goes through `kerasae.data.pipeline.make_tf_dataset` (one gather per batch, no tf.data
autotune stall at each epoch's end). A model with an `initialize` hook is initialized on
the first batch first. The progress bar counts the steps that ran (`StepProgbar`).
"""

import keras
import numpy as np
import tensorflow as tf

from kerasae.data import pipeline

#: train steps per compiled call by default: amortises Python and tf.function dispatch
#: (measured +30% for conv_ae at batch 128 and 2x for ae at batch 512 on CPU)
STEPS_PER_EXECUTION = 16


class StepProgbar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, never past the epoch's last step.

    With several steps per call Keras reports each call's nominal last step, so an epoch
    of 469 steps run 16 at a time counted 480/469 at its last call (and a negative ETA).
    """

    def _clamped(self, batch):
        return batch if self.target is None else min(batch, self.target - 1)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(self._clamped(batch), logs)

    def on_test_batch_end(self, batch, logs=None):
        super().on_test_batch_end(self._clamped(batch), logs)

    def on_predict_batch_end(self, batch, logs=None):
        super().on_predict_batch_end(self._clamped(batch), logs)


def with_progbar(callbacks, verbose):
    """`callbacks` with a `StepProgbar` where Keras would add its own (which overshoots)."""
    if isinstance(callbacks, keras.callbacks.CallbackList):  # fit's validation: as it is
        return callbacks
    callbacks = list(callbacks or [])
    if verbose != 0 and not any(isinstance(c, keras.callbacks.ProgbarLogger) for c in callbacks):
        callbacks.append(StepProgbar())
    return callbacks


class Fitting:
    """The compile/fit half of `kerasae.models.base.Autoencoder` (a mixin of it)."""

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
        without the tf.data autotune stall at each epoch's end that Keras's own array
        pipeline has), and the progress bar counts exactly (`StepProgbar`).

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
            callbacks=with_progbar(callbacks, verbose),
            validation_split=validation_split,
            validation_data=validation_data,
            shuffle=shuffle,
            **kwargs,
        )

    def evaluate(self, x=None, y=None, verbose="auto", callbacks=None, **kwargs):
        """Keras `evaluate`, its progress bar counting exactly (`StepProgbar`)."""
        callbacks = with_progbar(callbacks, verbose)
        return super().evaluate(x, y, verbose=verbose, callbacks=callbacks, **kwargs)

    def run_initialize(self, data, batch_size=None):
        """Call `initialize` on the first batch of `data` (an array or a tf.data.Dataset)."""
        if isinstance(data, tf.data.Dataset):
            batch = self._inputs(next(iter(data)))
        else:
            batch = np.asarray(self._inputs(data), dtype="float32")[: batch_size or 32]
        self.initialize(tf.convert_to_tensor(batch, dtype="float32"))
        self.initialized.assign(1)


def _array_dataset(x, batch_size, shuffle):
    # seed None: the order follows the global seed (keras.utils.set_random_seed), as in Keras
    return pipeline.make_tf_dataset(x, batch_size or 32, shuffle=bool(shuffle), seed=None)
