"""The data of a run: reopened the same way by every command, and read batch by batch.

Nothing here holds a whole split: training and validation read `data.batches(...)`.
Under MultiWorkerMirroredStrategy every worker must run the same number of steps per
epoch, or the all-reduce of the step after one worker's shard ran dry waits forever (the
tf.distribute input guide): there the data repeats and an epoch is `n_train // batch`
steps. Elsewhere an epoch is one pass of `ceil(n_train / batch)` batches, a length every
dataset's `batches` tells Keras, so the progress bar, the loss and the optimizer's step
count are exact.
"""

import numpy as np

import kerasae.distribute as distribute
from kerasae.data.options import _get, data_options
from kerasae.data.sources import load_dataset
from kerasae.errors import KerasaeError

EVAL_BATCH = 256


def open_data(config, dataset=None, scaling=None):
    """`dataset` (default: the run's own) read the way the run read its data."""
    return load_dataset(
        dataset or _get(config, "dataset"), scaling=scaling, **data_options(config)
    )


def check_shape(data, model, what="the data", fix="evaluate on data of the same shape"):
    if tuple(data.input_shape) != tuple(model.data_shape):
        raise KerasaeError(
            f"{what} has shape {tuple(data.input_shape)} but the model was "
            f"trained on {tuple(model.data_shape)}; {fix}"
        )


# ---------------------------------------------------------------------- training pipelines
def is_multiworker(strategy=None):
    return distribute.is_multiworker(strategy)


def fit_pipelines(data, batch_size, seed=0, strategy=None):
    """(train, validation, extra `fit` kwargs, optimizer steps per epoch) for `data`.

    `batch_size` is the global batch (Keras splits it over the replicas)."""
    if is_multiworker(strategy):
        steps = max(1, data.n_train // batch_size)
        fit_kwargs = {
            "steps_per_epoch": steps,
            "validation_steps": max(1, data.n_test // batch_size),
        }
        train = data.batches("train", batch_size, shuffle=True, seed=seed, repeat=True)
        test = data.batches("test", batch_size, repeat=True)
        return train, test, fit_kwargs, steps
    steps = -(-data.n_train // batch_size)
    train = data.batches("train", batch_size, shuffle=True, seed=seed)
    return train, data.batches("test", batch_size), {}, steps


def read_batches(data, split, batch_size=EVAL_BATCH):
    """Every example of the split, to be read on this machine (scores, statistics), never
    a worker's shard. Under a multi-worker strategy a streamed dataset's `batches` holds a
    shard placeholder that only tf.distribute fills in, so iterating it directly fails."""
    return data.batches(split, batch_size, shard=False)


# ---------------------------------------------------------------------- read in batches
def batch_arrays(batches):
    """The batches of a tf.data pipeline (or an iterable of arrays) as float32 arrays."""
    if hasattr(batches, "as_numpy_iterator"):
        batches = batches.as_numpy_iterator()
    for x in batches:
        yield np.asarray(x, dtype="float32")


def stream_scores(model, batches):
    """The model's per-example scores over `batches`, in order (n floats: small)."""
    parts = [np.asarray(model.score(x, batch_size=len(x))) for x in batch_arrays(batches)]
    if not parts:
        raise KerasaeError("no examples to score (the data is empty)")
    return np.concatenate(parts)
