"""Decoder inference: latency at batch 1 and throughput at batch 1024, five ways, on CPU.

    nice -n 5 .venv/bin/python -m benchmarks.inference [--models conv_ae,ae] [--latent-dim 16]

`keras predict` (what most notebooks call), a direct Keras call, the exported TF SavedModel,
ONNX Runtime fp32 and fp16, on the same decoder (28x28x1 Fashion-MNIST shape; weights do
not change the cost, so the models are untrained): the convolutional one (transposed
convolutions) and the dense one. The artifacts come from
`kerasae.export.export_model`, i.e. they passed the same verification users get.
Medians of repeated runs, since the machine is shared. GPU rows are measured only on a
GPU machine; otherwise the table says so.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.report import machine, markdown_table, update_section  # noqa: E402

SECTION = "inference"
BIG = 1024


def timed_round_robin(fns, x, repeats):
    """Median seconds per runner, timing the runners in turn (not one after another), so a
    change in the shared machine's load hits every runner alike rather than one of them.

    Each timed call follows an untimed one of the same runner: onnxruntime's and
    TensorFlow's thread pools spin for a while after a call, and on a 2-core machine the
    previous runner's spinning threads would take the CPU from the next one (two identical
    ONNX sessions timed back to back differed by 8-10% without it)."""
    for fn in fns.values():  # warm-up: tracing, graph optimisation, allocator growth
        fn(x)
        fn(x)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn(x)
            start = time.perf_counter()
            fn(x)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def runners(model, export_dir):
    import onnxruntime as ort
    import tensorflow as tf

    dec = model.decoder
    serve = tf.saved_model.load(os.path.join(export_dir, "decoder_savedmodel"))
    sig = serve.signatures["serving_default"]
    ort_fp32 = ort.InferenceSession(
        os.path.join(export_dir, "decoder.onnx"), providers=["CPUExecutionProvider"]
    )
    ort_fp16 = ort.InferenceSession(
        os.path.join(export_dir, "decoder.fp16.onnx"), providers=["CPUExecutionProvider"]
    )
    plain = os.path.join(export_dir, "plain", "decoder.onnx")
    # one thread, no spin-waiting: on an oversubscribed machine a spinning thread pool
    # waits for descheduled workers, so this row shows how much of a gap is contention
    single = ort.SessionOptions()
    single.intra_op_num_threads = 1
    single.add_session_config_entry("session.intra_op.allow_spinning", "0")
    ort_one = ort.InferenceSession(
        os.path.join(export_dir, "decoder.onnx"), single, providers=["CPUExecutionProvider"]
    )
    fns = {
        "keras predict": lambda z: dec.predict(z, batch_size=len(z), verbose=0),
        "keras direct call": lambda z: dec(z, training=False).numpy(),
        "TF SavedModel": lambda z: sig(z=tf.constant(z))["x_hat"].numpy(),
        "ONNX Runtime fp32": lambda z: ort_fp32.run(["x_hat"], {"z": z})[0],
        "ONNX Runtime fp16": lambda z: ort_fp16.run(["x_hat"], {"z": z})[0],
        "ONNX Runtime fp32, 1 thread": lambda z: ort_one.run(["x_hat"], {"z": z})[0],
    }
    if os.path.exists(plain):  # only where the export rewrote the graph (see phase_conv)
        ort_plain = ort.InferenceSession(plain, providers=["CPUExecutionProvider"])
        fns["ONNX Runtime fp32, --no-optimize"] = lambda z: ort_plain.run(["x_hat"], {"z": z})[0]
    return fns


def main(argv=None):
    import keras
    import onnx
    import onnxruntime as ort
    import tensorflow as tf

    import kerasae
    from kerasae.export.write import export_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="conv_ae,ae")
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument("--repeats-small", type=int, default=40)
    p.add_argument("--repeats-big", type=int, default=7)
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = p.parse_args(argv)

    rng = np.random.default_rng(0)
    z1 = rng.standard_normal((1, args.latent_dim)).astype("float32")
    zbig = rng.standard_normal((BIG, args.latent_dim)).astype("float32")
    rows, summary = [], []
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        model = kerasae.create_model(name, input_shape=(28, 28, 1), latent_dim=args.latent_dim)
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "export")
            export_model(model, out, parts=("decoder",), fp16=True)
            if onnx.load(os.path.join(out, "decoder.onnx")).metadata_props:
                export_model(
                    model,
                    os.path.join(out, "plain"),
                    formats=("onnx",),
                    parts=("decoder",),
                    optimize=False,
                )
            fns = runners(model, out)
            small = timed_round_robin(fns, z1, args.repeats_small)
            big = timed_round_robin(fns, zbig, args.repeats_big)
            for runner in fns:
                results[runner] = (small[runner], BIG / big[runner])
                rows.append(
                    [
                        f"{name} ({model.decoder.count_params():,} params)",
                        runner,
                        "CPU",
                        f"{small[runner] * 1e3:.3f}",
                        f"{BIG / big[runner]:,.0f}",
                    ]
                )
                print(
                    f"{name:8s} {runner:28s} batch 1: {small[runner] * 1e3:8.3f} ms   "
                    f"batch {BIG}: {BIG / big[runner]:10,.0f} examples/s",
                    flush=True,
                )
        speedup = results["keras predict"][0] / results["ONNX Runtime fp32"][0]
        ratio = results["ONNX Runtime fp32"][1] / results["TF SavedModel"][1]
        summary.append(
            f"- `{name}`: ONNX Runtime fp32 at batch 1 is **{speedup:.1f}x** "
            f"faster than `keras predict` (target >= 10x: "
            f"{'met' if speedup >= 10 else 'not met'}); at batch {BIG} its "
            f"throughput is **{ratio:.2f}x** the SavedModel's (target >= 1x: "
            f"{'met' if ratio >= 1 else 'not met'})."
        )
    gpus = tf.config.list_physical_devices("GPU")
    if "CUDAExecutionProvider" not in ort.get_available_providers() or not gpus:
        rows.append(
            ["all", "all of the above", "GPU", "not measured (no GPU here)", "not measured"]
        )
    body = "\n\n".join(
        [
            "## Inference: decoder latency and throughput",
            f"Decoders for 28x28x1 images (latent_dim {args.latent_dim}), exported and verified "
            f"by `kerasae export`'s code path. Median of {args.repeats_small} runs at batch 1 and "
            f"{args.repeats_big} at batch {BIG}, after two warm-up calls, the runners timed in "
            f"turn, each timed call right after an untimed one of the same runner; onnxruntime "
            f"with its default session options (what kerasae-runtime uses) "
            f"unless the row says otherwise. Machine: {machine()}, shared "
            f"with other jobs (load average {os.getloadavg()[0]:.1f} at the end: the medians "
            f"hide some of the noise, not all); TensorFlow {tf.__version__}, onnxruntime "
            f"{ort.__version__}.",
            markdown_table(
                [
                    "decoder",
                    "runner",
                    "device",
                    "batch 1 latency (ms)",
                    f"batch {BIG} throughput (examples/s)",
                ],
                rows,
            ),
            "\n".join(summary),
            "fp16 ONNX stores float16 weights; on CPUs without native float16 arithmetic it "
            "mainly halves the file size, not the time. The convolutional decoder's ONNX graph "
            "is rewritten at export (`kerasae.export.phase_conv`; the `--no-optimize` row is "
            "tf2onnx's graph as converted): onnxruntime's profiler put 73% of the converted "
            "graph's time in its two ConvTranspose nodes, which onnxruntime runs one image at a "
            "time (GEMM, then a single-threaded col2im). The last one, which feeds the output "
            "Conv, becomes one Conv per output phase (exact: only the taps that land on the "
            "phase), and the output Conv is computed on the four phases, so only its 1-channel "
            "result is interleaved (DepthToSpace). Trials that were slower and not kept: the "
            "same rewrite of the first ConvTranspose too, whose 128-channel output must then be "
            "interleaved (Concat + DepthToSpace cost more than the Convs saved); sub-pixel "
            "convolution (Shi et al. 2016: every phase padded to one 2x2 kernel, 16/9 of the "
            "work). Each timed call follows an untimed call of the same runner, so the previous "
            "runner's spinning thread pool does not take the CPU from it.",
            "Reproduce: `nice -n 5 .venv/bin/python -m benchmarks.inference`",
        ]
    )
    if not args.no_write:
        update_section(SECTION, body)
        print("updated BENCHMARKS.md")
    return rows


if __name__ == "__main__":
    main()
