"""The roofline's measuring tools: FLOPs counted from a model's layers, and the ceilings,
each layer's op alone (forward and backward), a large square GEMM, a streaming bandwidth;
and `profile`, a TensorFlow profiler trace of `fit` summed by op.

Used by benchmarks/roofline.py (which runs them in a child process per oneDNN setting).
Every loop is a `tf.function` over `tf.range`, each iteration ordered after the last by a
control dependency and reading its variables afresh, so nothing is hoisted or folded.
"""

import os
import time


# ------------------------------------------------------------------ FLOPs from the layers
def layer_ops(model):
    """[(kind, spec, forward FLOPs per example, input gradient?)] of the model's Dense and
    convolution layers and vq_vae's code distances (input gradient None: no backward)."""
    import keras

    ops = []
    for net in (model.encoder, model.decoder):
        first = net is model.encoder  # nothing asks for the gradient of x
        for layer in net.layers:
            kinds = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.Conv2DTranspose)
            if not isinstance(layer, kinds) and type(layer).__name__ != "NearestCode":
                continue
            inp = tuple(int(d) for d in layer.input.shape[1:])
            if isinstance(layer, keras.layers.Dense):
                spec = {"rows": _prod(inp[:-1]), "in": inp[-1], "out": int(layer.units)}
                flops = 2 * spec["rows"] * spec["in"] * spec["out"]
                ops.append(("dense", spec, flops, not first))
            elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
                out = tuple(int(d) for d in layer.output.shape[1:])
                transpose = isinstance(layer, keras.layers.Conv2DTranspose)
                grid = _prod(inp[:2] if transpose else out[:2])
                spec = {"in": inp, "out": out, "k": tuple(layer.kernel_size)}
                spec["strides"] = tuple(layer.strides)
                flops = 2 * grid * _prod(spec["k"]) * inp[-1] * out[-1]
                ops.append(("deconv" if transpose else "conv", spec, flops, not first))
            else:  # vq_vae's NearestCode
                q = layer.quantizer
                spec = {"rows": _prod(inp[:-1]), "in": q.embedding_dim, "out": q.num_embeddings}
                flops = 2 * spec["rows"] * spec["in"] * spec["out"]
                ops.append(("dense", spec, flops, None))
            first = False
    return ops


def _prod(xs):
    n = 1
    for x in xs:
        n *= int(x)
    return n


def train_flops(ops):
    """FLOPs of one example's forward and backward pass."""
    return sum(f if g is None else f * (3 if g else 2) for _, _, f, g in ops)


# ------------------------------------------------------------------ ceilings (child process)
def timed(fn, seconds=0.25, repeats=3):
    """The best seconds per n of `repeats` calls of `fn(n)`, n sized to about `seconds`
    (a ceiling: the least disturbed run is the closest to what the kernel can do)."""
    fn(1)
    start = time.perf_counter()
    fn(2)
    n = max(2, int(seconds / max((time.perf_counter() - start) / 2, 1e-6)))
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(n)
        runs.append((time.perf_counter() - start) / n)
    return min(runs)


def kernel_seconds(kind, spec, batch, input_grad):
    """Seconds of one forward and backward pass of one layer's op, alone."""
    import tensorflow as tf

    if kind == "dense":
        x_shape, w_shape = (batch * spec["rows"], spec["in"]), (spec["in"], spec["out"])

        def op(x, w):
            return tf.matmul(x, w)
    else:
        x_shape = (batch, *spec["in"])
        cin, cout = spec["in"][-1], spec["out"][-1]
        w_shape = (*spec["k"], *((cout, cin) if kind == "deconv" else (cin, cout)))

        def op(x, w):
            if kind == "conv":
                return tf.nn.conv2d(x, w, spec["strides"], "SAME")
            return tf.nn.conv2d_transpose(x, w, (batch, *spec["out"]), spec["strides"], "SAME")

    x = tf.Variable(tf.random.normal(x_shape))
    w = tf.Variable(tf.random.normal(w_shape))
    wrt = [] if input_grad is None else ([x, w] if input_grad else [w])

    @tf.function
    def loop(n):
        acc = tf.constant(0.0)
        for _ in tf.range(n):
            with tf.control_dependencies([acc]), tf.GradientTape() as tape:
                y = op(x.read_value(), w.read_value())
            # y too: unused, the forward op would be pruned from the graph
            grads = tape.gradient(y, wrt, output_gradients=tf.ones_like(y)) if wrt else []
            outs = [y, *grads]
            acc += tf.add_n([tf.reduce_sum(o[:1]) for o in outs])
        return acc

    return timed(lambda n: loop(tf.constant(n)).numpy())


def gemm_peak(size=2048):
    import tensorflow as tf

    a, b = tf.Variable(tf.random.normal((size, size))), tf.Variable(tf.random.normal((size, size)))

    @tf.function
    def loop(n):
        acc = tf.constant(0.0)
        for _ in tf.range(n):
            with tf.control_dependencies([acc]):
                acc += tf.reduce_sum(tf.matmul(a.read_value(), b)[:1])
        return acc

    return 2 * size**3 / timed(lambda n: loop(tf.constant(n)).numpy(), seconds=1.0)


def bandwidth(mib=128):
    """Bytes moved per second by `x += y` over two `mib` MiB variables (read x and y, write
    x: in place, so no allocation or page faults are timed)."""
    import tensorflow as tf

    x = tf.Variable(tf.zeros((mib * 2**18,)))
    y = tf.Variable(tf.zeros((mib * 2**18,)))

    @tf.function
    def loop(n):
        for _ in tf.range(n):
            x.assign_add(y)
        return x[0]

    return 3 * mib * 2**20 / timed(lambda n: loop(tf.constant(n)).numpy(), seconds=1.0)


# ------------------------------------------------------------------ where the time goes
def profile(name, batch, kwargs, shape):
    """Op types and layers by their share of a traced `fit` (16 steps, after warm-up)."""
    import collections
    import glob
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    import kerasae
    from kerasae.data.pipeline import make_tf_dataset
    from kerasae.data.sources import load_dataset

    model = kerasae.create_model(name, input_shape=shape, **kwargs)
    model.compile()
    ds = make_tf_dataset(load_dataset("fashion_mnist").x_train[: batch * 16], batch, seed=0)
    model.fit(ds, verbose=0)
    logdir = tempfile.mkdtemp()
    tf.profiler.experimental.start(logdir)
    model.fit(ds, verbose=0)
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    plane = next(p for p in space.planes if p.name == "/host:CPU")
    ops = collections.Counter()
    for line in plane.lines:
        if line.name.startswith("tf_Compute"):
            for event in line.events:
                op = plane.event_metadata[event.metadata_id].name
                if ":" in op:  # an op (`scope/name:Type`), not the executor's own spans
                    ops[op.split("StatefulPartitionedCall/")[-1]] += event.duration_ps / 1e12
    total = sum(ops.values())
    print(
        f"{name} batch {batch}, TF_ENABLE_ONEDNN_OPTS="
        f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS')}: {total:.2f} s of ops in 16 steps"
    )
    for op, s in ops.most_common(15):
        print(f"{100 * s / total:5.1f}%  {s / 16 * 1e3:7.1f} ms/step  {op}")
