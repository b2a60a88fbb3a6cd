"""The data of a run: reopened the same way by every command, and read batch by batch.

A run records how its data was read (`dataset`, `scaling`, `image_size`, `channels`,
`feature` in config.json), so evaluate, detect, compare, export and `--resume` reopen the
same examples the same way. Nothing here holds a whole split: training and validation
read `data.batches(...)` (the interface of both dataset kinds in kerasae.data) and the
metrics accumulate over batches, so memory does not grow with the dataset.

Under MultiWorkerMirroredStrategy every worker must run the same number of steps per
epoch, or the all-reduce of the step after one worker's shard ran dry waits forever (the
tf.distribute input guide): there the data repeats and an epoch is `n_train // batch`
steps. Elsewhere an epoch is one pass of `ceil(n_train / batch)` batches, a length every
dataset's `batches` tells Keras (`kerasae.pipeline.with_length` where tf.data cannot), so
the progress bar, the loss and the optimizer's step count are exact.
"""
import numpy as np

from kerasae.errors import KerasaeError

DATA_OPTIONS = ("image_size", "channels", "feature")
EVAL_BATCH = 256


def check_data_options(image_size, channels, feature):
    """`image_size` as a (height, width) tuple (or None); KerasaeError for bad values."""
    if feature is not None and (not isinstance(feature, str) or not feature):
        raise KerasaeError(f"--feature must be a TFRecord feature name, got {feature!r}")
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise KerasaeError(f"--channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
    if image_size is None:
        return None
    size = tuple(image_size) if isinstance(image_size, (list, tuple)) else (image_size,)
    if len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0
                             for v in size):
        raise KerasaeError(f"--image-size must be two positive integers HEIGHT,WIDTH, got "
                           f"{image_size!r}")
    return size


def parse_image_size(text):
    """'64,64' (or '64x64') -> (64, 64): the argparse type of --image-size."""
    parts = str(text).replace("x", ",").split(",")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = None
    if size is None or len(size) != 2 or min(size) <= 0:
        raise KerasaeError(f"--image-size must be HEIGHT,WIDTH in pixels, e.g. 64,64; got "
                           f"{text!r}")
    return size


def _get(config, key):
    return config.get(key) if isinstance(config, dict) else getattr(config, key, None)


def data_options(config):
    """{image_size, channels, feature} of a TrainConfig or a run's config.json, unset ones
    left out (a run that predates them reads its data as it always did)."""
    out = {}
    for key in DATA_OPTIONS:
        value = _get(config, key)
        if value is not None:
            out[key] = tuple(value) if key == "image_size" else value
    return out


def open_data(config, dataset=None, scaling=None):
    """`dataset` (default: the run's own) read the way the run read its data."""
    from kerasae.data import load_dataset

    return load_dataset(dataset or _get(config, "dataset"), scaling=scaling,
                        **data_options(config))


def check_shape(data, model, what="the data", fix="evaluate on data of the same shape"):
    if tuple(data.input_shape) != tuple(model.data_shape):
        raise KerasaeError(f"{what} has shape {tuple(data.input_shape)} but the model was "
                           f"trained on {tuple(model.data_shape)}; {fix}")


# ---------------------------------------------------------------------- training pipelines
def is_multiworker(strategy=None):
    from kerasae import distribute

    return distribute.is_multiworker(strategy)


def fit_pipelines(data, batch_size, seed=0, strategy=None):
    """(train, validation, extra `fit` kwargs, optimizer steps per epoch) for `data`.

    `batch_size` is the global batch (Keras splits it over the replicas)."""
    if is_multiworker(strategy):
        steps = max(1, data.n_train // batch_size)
        fit_kwargs = {"steps_per_epoch": steps,
                      "validation_steps": max(1, data.n_test // batch_size)}
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


# ---------------------------------------------------------------------- streamed metrics
def batch_arrays(batches):
    """The batches of a tf.data pipeline (or an iterable of arrays) as float32 arrays."""
    if hasattr(batches, "as_numpy_iterator"):
        batches = batches.as_numpy_iterator()
    for x in batches:
        yield np.asarray(x, dtype="float32")


def reconstruction_mse(model, batches):
    """Mean squared reconstruction error over every value of `batches`, summed in float64."""
    total, count = 0.0, 0
    for x in batch_arrays(batches):
        x_hat = model.reconstruct(x, batch_size=len(x))
        total += float(np.sum(np.square(x.astype("float64") - x_hat)))
        count += x.size
    if not count:
        raise KerasaeError("no examples to evaluate (the split is empty)")
    return total / count


def stream_scores(model, batches):
    """The model's per-example scores over `batches`, in order (n floats: small)."""
    parts = [np.asarray(model.score(x, batch_size=len(x))) for x in batch_arrays(batches)]
    if not parts:
        raise KerasaeError("no examples to score (the data is empty)")
    return np.concatenate(parts)


def evaluate(run_dir, dataset=None, verbose=False):
    """Test-set reconstruction metrics of a finished run (`verbose`: Keras's progress bar),
    streamed over the test split."""
    from kerasae.runs import load_run

    config, model = load_run(run_dir)
    if not model.compiled:
        model.compile()
    data = open_data(config, dataset, scaling=config.get("scaling"))
    check_shape(data, model)
    model.reseed(config.get("seed", 0))  # a stochastic loss (vae's draws) repeats
    mse = reconstruction_mse(model, data.batches("test", EVAL_BATCH))
    loss = model.evaluate(data.batches("test", EVAL_BATCH), verbose=int(verbose),
                          return_dict=True)["loss"]
    return {"run": run_dir, "model": config["model"], "dataset": data.name,
            "n_test": int(data.n_test), "test_mse": mse,
            "psnr": float(10 * np.log10(1.0 / max(mse, 1e-12))), "test_loss": float(loss)}
