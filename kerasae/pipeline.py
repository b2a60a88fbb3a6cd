"""The tf.data input pipeline every kerasae model trains from (arrays in, batches out).

`make_tf_dataset` shuffles and batches row indices and gathers each batch in one op;
`pipeline_options` holds the tf.data settings all kerasae pipelines share (autotuning off:
TF 2.21's autotune thread stalled every epoch's end).
"""
import numpy as np


def make_tf_dataset(x, batch_size, shuffle=True, seed=0, repeat=False):
    """A batched tf.data pipeline of x alone (autoencoders reconstruct their input).

    Built for throughput: the array is held once as a tensor, the pipeline shuffles and
    batches row *indices* (a full-epoch shuffle of int64s costs nothing) and gathers each
    batch in one vectorised op, then prefetches, so a step never waits on per-example
    slicing. Under tf.distribute the global batch is split across replicas by Keras.
    """
    import tensorflow as tf

    x = tf.constant(np.asarray(x, dtype="float32"))
    n = int(x.shape[0])
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size).map(lambda i: tf.gather(x, i),
                                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.with_options(pipeline_options()).prefetch(tf.data.AUTOTUNE)


def pipeline_options():
    """tf.data options for every kerasae pipeline.

    Autotuning is off: its model thread (TF 2.21) sleeps in a timed wait that deleting the
    iterator does not interrupt, so each epoch's iterator teardown stalled training for up
    to ~10 s (measured: 3-4 s lost per epoch on a 7 s conv_ae epoch, CPU idle meanwhile).
    An in-memory gather needs no tuning; AUTOTUNE values then mean "one per core".
    Workers shard by batch (DATA policy: the data is in memory, not in files).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return options
