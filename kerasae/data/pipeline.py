"""The tf.data input pipelines every kerasae model trains from: arrays, files and TFRecords.

Building blocks only; `kerasae.data` decides what to read and how to split it.
`make_tf_dataset` shuffles and batches row *indices* of an in-memory array and gathers each
batch in one op; `file_dataset` maps a list of items (file paths) through a loader in
parallel; `record_dataset` interleaves TFRecord files, parses them in blocks and decodes
in parallel. Pixels stay uint8 until `scale_batch` divides the whole batch (a quarter of
float32's memory in every buffer).
`pipeline_options` holds the settings all kerasae pipelines share (autotuning off: TF 2.21's
autotune thread stalled every epoch's end) and the sharding policy under tf.distribute.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

#: explicit parallelism: autotuning is off, so AUTOTUNE would not adapt anyway
PARALLEL = os.cpu_count() or 1
SHUFFLE_RECORDS = 10_000  # default TFRecord shuffle buffer (records, still encoded)
PARSE_BLOCK = 128  # TFRecord records parsed together


def make_tf_dataset(
    x: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = False,
    divisor: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """A batched tf.data pipeline of x alone (autoencoders reconstruct their input).

    Built for throughput: the array is held once as a tensor, the pipeline shuffles and
    batches row *indices* (a full-epoch shuffle of int64s costs nothing) and gathers each
    batch in one vectorised op, then prefetches, so a step never waits on per-example
    slicing. With `divisor`, x is kept in its own dtype (uint8) and each batch is scaled
    to float32 by `scale_batch`. Under tf.distribute the global batch is split across
    replicas by Keras.
    """
    x = tf.constant(np.asarray(x, dtype="float32") if divisor is None else np.asarray(x))
    n = int(x.shape[0])
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if divisor is None:
        ds = ds.map(
            lambda i: tf.gather(x, i), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    else:
        ds = ds.map(
            lambda i: scale_batch(tf.gather(x, i), divisor),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.with_options(pipeline_options()).prefetch(tf.data.AUTOTUNE)


def scale_batch(batch, divisor):
    """uint8 (or any numeric) batch -> float32 / divisor: the same float32 division numpy
    does, so a streamed batch equals the in-memory array bit for bit."""
    batch = tf.cast(batch, tf.float32)
    return batch if divisor is None else batch / tf.constant(divisor, tf.float32)


def file_dataset(
    items,
    load,
    batch_size,
    shuffle=False,
    seed=0,
    repeat=False,
    drop_remainder=False,
    divisor=255.0,
    skip_errors=True,
    shardable=True,
):
    """Batches of `load(item)` over `items` (a 1-D array: file paths or row indices).

    The items are shuffled whole each epoch (strings or int64s: cheap even for millions),
    then loaded in parallel in a fixed order; an item whose loader fails (a file damaged
    past its header) is dropped with `skip_errors` rather than ending the epoch. Under a
    multi-worker strategy with at least 2 items per worker, each worker loads only its
    own items (see `shard_items`); otherwise every worker reads all and keeps its part.
    """
    ds = tf.data.Dataset.from_tensor_slices(items)
    ds, policy = shard_items(ds, len(items) if shardable else 0)
    if shuffle:
        ds = ds.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(plain(load), num_parallel_calls=PARALLEL, deterministic=True)
    if skip_errors:
        ds = ds.ignore_errors()
    return _finish(ds, batch_size, drop_remainder, divisor, policy)


def record_dataset(
    files,
    parse,
    decode,
    batch_size,
    shuffle=False,
    seed=0,
    repeat=False,
    drop_remainder=False,
    divisor=255.0,
    shardable=True,
    shuffle_buffer=SHUFFLE_RECORDS,
):
    """Batches of `decode(record)` over TFRecord `files`, where `parse` turns a vector of
    serialized records into the features of those to keep (the train/test split).

    Records are parsed `PARSE_BLOCK` at a time (`tf.io.parse_example`: measured ~4x less
    CPU per record than parse_single_example plus a filter), then decoded one by one in
    parallel. Shuffling shuffles the file order, then the parsed records within a buffer
    of `shuffle_buffer`. Under a multi-worker strategy the files are sharded when there
    are at least 2 per worker (`shard_items`: tf.data's own FILE rewrite cannot walk past
    `ignore_errors`), else every worker reads all records and keeps its part (DATA). A
    record that fails to decode is dropped.
    """
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(files))
    ds, policy = shard_items(ds, len(files) if shardable else 0)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    readers = max(1, min(len(files), PARALLEL))
    ds = ds.interleave(
        tf.data.TFRecordDataset,
        cycle_length=readers,
        num_parallel_calls=readers,
        deterministic=True,
    )
    ds = ds.batch(PARSE_BLOCK).map(plain(parse), num_parallel_calls=PARALLEL, deterministic=True)
    ds = ds.ignore_errors().unbatch()
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(plain(decode), num_parallel_calls=PARALLEL, deterministic=True)
    ds = ds.ignore_errors()
    return _finish(ds, batch_size, drop_remainder, divisor, policy)


def plain(fn):
    """`fn` traced as written, without AutoGraph's rewrite: kerasae's loaders use tf.cond,
    never Python control flow on tensors, and AutoGraph's conversion of the decoder cost
    ~2 s on the first pipeline built in a process."""
    return tf.autograph.experimental.do_not_convert(fn)


def _finish(ds, batch_size, drop_remainder, divisor, policy):
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda b: scale_batch(b, divisor), num_parallel_calls=PARALLEL, deterministic=True)
    return ds.with_options(pipeline_options(policy)).prefetch(2)


def with_length(ds, batches):
    """`ds` as an epoch of exactly `batches` batches where tf.data cannot tell its length
    (files are read lazily). Keras needs the length: given a pipeline of unknown length
    (Keras 3.15, TF 2.21) it runs one more step on an empty batch at the end, a step whose
    zero loss its mean trackers average in (measured: evaluate reported 3/4 of the loss
    over three batches). With it, Keras shows the epoch's steps, counts the optimizer's,
    and starts a fresh (reshuffled) pass each epoch. Repeat-then-take rather than
    `assert_cardinality`: a file that fails to decode mid-epoch (dropped, not counted up
    front) borrows a batch from the next pass instead of failing the epoch."""
    if int(ds.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY):
        ds = ds.repeat().take(batches)
    return ds


# ---------------------------------------------------------------------- sharding
def worker_count():
    """Workers of the tf.distribute strategy in scope (1 without one, or a one-machine one)."""
    if not tf.distribute.has_strategy():
        return 1
    resolver = getattr(tf.distribute.get_strategy(), "cluster_resolver", None)
    try:
        spec = resolver.cluster_spec()
        return max(1, sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs))
    except (AttributeError, ValueError, TypeError):
        return 1


def shard_policy(n_files, workers=None):
    """ "FILE" when every worker gets at least 2 files (each reads only its own), else "DATA"
    (each reads everything and keeps every n-th batch: correct, but n times the reading).
    kerasae's file pipelines carry out FILE with a HINT placeholder (`shard_items`)."""
    workers = worker_count() if workers is None else workers
    return "FILE" if workers > 1 and n_files >= 2 * workers else "DATA"


def shard_items(ds, n_items, workers=None):
    """Shard a dataset of items (one file or row each) before anything is read.

    tf.data's FILE policy only finds reader datasets (TFRecordDataset...), not paths mapped
    through `tf.io.read_file`, and cannot walk past `ignore_errors` (TF 2.21: "did not find
    a shardable source"); a `shard(SHARD_HINT, SHARD_HINT)` placeholder, filled in with
    (workers, worker index) by `experimental_distribute_dataset` (HINT policy), gives the
    same: each worker reads only its own files. Returns (dataset, policy name).
    """
    if shard_policy(n_items, workers) == "FILE":
        hint = tf.data.experimental.SHARD_HINT
        return ds.shard(hint, hint), "HINT"
    return ds, "DATA"


def pipeline_options(policy="DATA"):
    """tf.data options for every kerasae pipeline.

    Autotuning is off: its model thread (TF 2.21) sleeps in a timed wait that deleting the
    iterator does not interrupt, so each epoch's iterator teardown stalled training for up
    to ~10 s (measured: 3-4 s lost per epoch on a 7 s conv_ae epoch, CPU idle meanwhile).
    Parallelism is set explicitly instead (`PARALLEL`). `policy` is the auto-shard policy
    under a multi-worker strategy: DATA for in-memory arrays, HINT for sharded files.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, policy
    )
    return options
