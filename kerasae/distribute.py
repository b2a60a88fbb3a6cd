"""Training on several devices or machines (tf.distribute) and in mixed precision.

Data parallelism: every replica holds a copy of the model, takes its slice of the global
batch, and the replicas' gradients are all-reduced before one identical optimizer step
(synchronous SGD as in Goyal et al., "Accurate, Large Minibatch SGD", 2017). Strategies:

  default      one device, no tf.distribute machinery;
  mirrored     `MirroredStrategy` over all local GPUs, or all logical CPU devices when
               there is no GPU (one CPU device on a plain host: a single replica);
  multiworker  `MultiWorkerMirroredStrategy` over the workers listed in `TF_CONFIG`
               (every machine runs the same `kerasae train` command with its own task).

Input under multiworker: each worker reads its own shard of the files (tf.data auto-shard
by FILE where every worker gets at least two files, by DATA otherwise; kerasae.data.pipeline),
and every worker runs the same number of steps per epoch (the data repeats, an epoch is
n_train // global batch steps: kerasae.runs.data.fit_pipelines), so no worker waits forever
at an epoch's end for a peer whose shard ran dry.

Mixed precision (Micikevicius et al., "Mixed Precision Training", ICLR 2018): layers compute
in float16/bfloat16 with float32 variables; kerasae's losses cast to float32 and the decoder
output is float32, and Keras wraps the optimizer in a dynamic loss scale for float16.
"""

import contextlib
import json
import os

import numpy as np

from kerasae.errors import KerasaeError

STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def check(strategy, precision):
    if strategy not in STRATEGIES:
        raise KerasaeError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if precision not in PRECISIONS:
        raise KerasaeError(
            f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )


def cluster_spec():
    """(cluster dict, task dict) from TF_CONFIG, checked; KerasaeError when unusable."""
    raw = os.environ.get("TF_CONFIG")
    hint = (
        'set TF_CONFIG on every machine, e.g. {"cluster": {"worker": ["host1:12345", '
        '"host2:12345"]}, "task": {"type": "worker", "index": 0}}'
    )
    if not raw:
        raise KerasaeError(f"--strategy multiworker needs the TF_CONFIG variable; {hint}")
    try:
        spec = json.loads(raw)
        cluster, task = spec["cluster"], spec["task"]
        workers = list(cluster.get("worker", [])) + list(cluster.get("chief", []))
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KerasaeError(
            f"TF_CONFIG is not valid ({type(exc).__name__}: {exc}); {hint}"
        ) from None
    if not workers:
        raise KerasaeError(f"TF_CONFIG lists no workers; {hint}")
    if kind not in cluster or not 0 <= index < len(cluster[kind]):
        raise KerasaeError(f"TF_CONFIG task {kind}:{index} is not in its cluster; {hint}")
    return cluster, {"type": kind, "index": index}


def is_chief(strategy_name):
    """The worker that owns the canonical run folder (task `chief`, else worker 0)."""
    if strategy_name != "multiworker":
        return True
    cluster, task = cluster_spec()
    if "chief" in cluster:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def worker_out(out, strategy_name):
    """Non-chief workers write their own copy of the run beside the chief's, never into it
    (two CSV loggers and checkpoint writers on one shared folder would corrupt it)."""
    if is_chief(strategy_name):
        return out
    _, task = cluster_spec()
    return f"{os.path.normpath(out)}-{task['type']}{task['index']}"


def make_strategy(name):
    """The tf.distribute strategy for `name`. Call it before any other TensorFlow op: the
    multi-worker collectives must be configured before TensorFlow starts its runtime."""
    import tensorflow as tf  # TensorFlow: only when used (this module must import fast)

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":
        cluster_spec()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    check(name, "float32")


def is_multiworker(strategy=None):
    """True under MultiWorkerMirroredStrategy (default: the strategy in scope)."""
    import tensorflow as tf  # TensorFlow: only when used (this module must import fast)

    strategy = strategy or tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def check_batch(batch_size, strategy):
    replicas = strategy.num_replicas_in_sync
    if batch_size < replicas:
        raise KerasaeError(
            f"--batch-size {batch_size} is the global batch and is split over "
            f"{replicas} replicas; use at least {replicas}"
        )


@contextlib.contextmanager
def precision_policy(name):
    """Build and train under Keras's global dtype policy `name`, restoring it afterwards."""
    import keras  # TensorFlow: only when used (this module must import fast)

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def training_context(strategy_name, precision, batch_size):
    """Everything `kerasae train` builds and fits inside: the strategy's scope, the policy."""
    check(strategy_name, precision)
    strategy = make_strategy(strategy_name)
    check_batch(batch_size, strategy)
    with strategy.scope(), precision_policy(precision):
        yield strategy


def reducible_logs(logs):
    """A step's logs as Keras can reduce them: under a multi-worker strategy Keras 3.15
    reduces each with axis=0, which fails on scalars ("Invalid reduction dimension 0"), so
    there they get shape (1,), which reduces to a scalar."""
    from keras import ops  # TensorFlow: only when used (this module must import fast)

    if not is_multiworker():
        return logs
    return {name: ops.reshape(value, (1,)) for name, value in logs.items()}


# ---------------------------------------------------------------------- statistics over workers
def local_batches(ds):
    """The batches of `ds` that this worker reads, as tensors.

    Under a multi-worker strategy a kerasae file pipeline holds a worker-shard placeholder
    that only tf.distribute fills in (kerasae.data.pipeline.shard_items), so iterating it
    directly fails: it is read through `experimental_distribute_dataset`, each worker its
    own shard. Every worker must then read the same number of batches (an endless pipeline
    taken to `steps_per_epoch`, as kerasae's are), since each read checks with the others.
    Elsewhere `ds` is iterated as it is."""
    import tensorflow as tf  # TensorFlow: only when used (this module must import fast)

    if not is_multiworker():
        yield from ds
        return
    strategy = tf.distribute.get_strategy()
    for batch in strategy.experimental_distribute_dataset(ds):
        yield from strategy.experimental_local_results(batch)


def across_workers(values, op="sum"):
    """float64 arrays combined elementwise over every worker ("sum", "min" or "max"): one
    collective each, which every worker must call in the same order. Unchanged without a
    multi-worker strategy (a statistic of all the data read on this machine)."""
    import tensorflow as tf  # TensorFlow: only when used (this module must import fast)

    values = [np.asarray(v, dtype="float64") for v in values]
    if not is_multiworker():
        return values
    strategy = tf.distribute.get_strategy()
    local = len(strategy.extended.worker_devices)  # each local replica holds a 1/local share

    def combine(*parts):
        ctx = tf.distribute.get_replica_context()
        if op == "sum":
            return [ctx.all_reduce("SUM", p) for p in parts]
        gathered = [ctx.all_gather(p[None], axis=0) for p in parts]
        reduce = tf.reduce_min if op == "min" else tf.reduce_max
        return [reduce(g, axis=0) for g in gathered]

    inputs = [tf.constant(v / local if op == "sum" else v) for v in values]
    out = strategy.run(combine, args=tuple(inputs))
    return [np.asarray(strategy.experimental_local_results(o)[0]) for o in out]
