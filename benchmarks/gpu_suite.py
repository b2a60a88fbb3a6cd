"""The GPU suite: what a GPU machine should measure, in one run of under 8 minutes.

    .venv/bin/python benchmarks/gpu_suite.py [--families ae vae conv_ae vq_vae]
        [--steps 256] [--batch-size 512] [--skip-onnx] [--skip-serve] [--write]

Prints BENCHMARKS.md-ready markdown rows (`--write` also puts them in the `gpu_suite`
section):
1. `fit` throughput of each family at --batch-size in float32 and mixed_float16 (the
   `kerasae train --precision` policy: float16 layers, float32 variables and losses), with
   the test MSE on Fashion-MNIST's test images after the same --steps steps. kerasae's
   `compile()` defaults: XLA on one GPU (`jit_compile="auto"`), 16 steps per execution.
2. ONNX decoder latency at batch 1 and throughput at batch 1024 with onnxruntime's CUDA
   and TensorRT providers, against `keras predict` and the TF SavedModel on the GPU. The
   provider a session really uses is read back (onnxruntime falls back to the CPU
   silently), and a row whose provider did not start says so.
3. `kerasae-runtime serve --device cuda` under the serving benchmark's load
   (`benchmarks/serve_load.py`'s `make_export` and `measure`: wrk at c=1, 16, 64, one row
   per request); where it cannot run (wrk missing), one line says why.

Without a GPU (no NVIDIA device in /proc/driver/nvidia/gpus and no `nvidia-smi -L`) it
prints one line and exits 0 before importing TensorFlow: CI runs it as a smoke test of
its arguments (tests/test_gpu_suite.py).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SECTION = "gpu_suite"
FAMILIES = ("ae", "vae", "conv_ae", "vq_vae")
PRECISIONS = ("float32", "mixed_float16")
BIG = 1024


def gpu_names():
    """NVIDIA GPUs seen without TensorFlow (the driver's /proc entries, else nvidia-smi)."""
    proc = "/proc/driver/nvidia/gpus"
    if os.path.isdir(proc) and os.listdir(proc):
        return sorted(os.listdir(proc))
    if shutil.which("nvidia-smi"):
        try:
            done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [line for line in done.stdout.splitlines() if line.startswith("GPU")]
    return []


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--batch-size", type=_positive, default=512)
    p.add_argument("--steps", type=_positive, default=256, help="train steps per fit row")
    p.add_argument("--repeats", type=_positive, default=20, help="timed calls per ONNX cell")
    p.add_argument("--serve-seconds", type=_positive, default=10)
    p.add_argument("--skip-onnx", action="store_true")
    p.add_argument("--skip-serve", action="store_true")
    p.add_argument("--write", action="store_true", help="also update BENCHMARKS.md")
    return p


def _positive(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


# ------------------------------------------------------------------ 1. fit throughput
def fit_rows(args, data):
    import keras
    import numpy as np

    import kerasae
    from kerasae.data.pipeline import make_tf_dataset
    from kerasae.distribute import precision_policy

    rows, b = [], args.batch_size
    x = np.concatenate([data.x_train] * (1 + b * args.steps // len(data.x_train)))
    ds = make_tf_dataset(x[: b * args.steps], b, seed=0)
    for name in args.families:
        for precision in args.precisions:
            with precision_policy(precision):
                keras.utils.set_random_seed(0)
                model = kerasae.create_model(name, input_shape=data.input_shape)
                model.compile()
                warm = make_tf_dataset(x[: b * model.steps_per_execution], b, seed=1)
                model.fit(warm, verbose=0)  # tracing and XLA compilation: not timed
                start = time.perf_counter()
                model.fit(ds, verbose=0)
                seconds = time.perf_counter() - start
            x_hat = model.reconstruct(data.x_test, batch_size=1000)
            mse = float(np.mean((data.x_test - x_hat) ** 2))
            rate = b * args.steps / seconds
            trained = args.steps + model.steps_per_execution  # the warm-up's steps too
            rows.append([name, precision, b, f"{rate:,.0f}", trained, f"{mse:.4f}"])
            print("|", " | ".join(map(str, rows[-1])), "|", flush=True)
    header = ["family", "precision", "batch", "fit samples/s", "steps", "test MSE"]
    return header, rows


# ------------------------------------------------------------------ 2. ONNX decoder
def onnx_rows(args, latent_dim=16):
    import keras
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf

    import kerasae
    from benchmarks.inference import timed_round_robin
    from kerasae.export.write import export_model

    rng = np.random.default_rng(0)
    z1 = rng.standard_normal((1, latent_dim)).astype("float32")
    zbig = rng.standard_normal((BIG, latent_dim)).astype("float32")
    rows, notes = [], []
    for name in ("conv_ae", "ae"):
        keras.utils.set_random_seed(0)
        model = kerasae.create_model(name, input_shape=(28, 28, 1), latent_dim=latent_dim)
        with tempfile.TemporaryDirectory() as tmp:
            export_model(model, tmp, parts=("decoder",))
            sig = tf.saved_model.load(os.path.join(tmp, "decoder_savedmodel"))
            sig = sig.signatures["serving_default"]
            fns = {
                "keras predict": lambda z, dec=model.decoder: dec.predict(
                    z, batch_size=len(z), verbose=0
                ),
                "TF SavedModel": lambda z, sig=sig: sig(z=tf.constant(z))["x_hat"].numpy(),
            }
            for provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
                if provider not in ort.get_available_providers():
                    notes.append(f"{name}: {provider} is not in this onnxruntime build")
                    continue
                path = os.path.join(tmp, "decoder.onnx")
                session = ort.InferenceSession(path, providers=[provider])
                if session.get_providers()[0] != provider:
                    notes.append(f"{name}: {provider} did not start (fell back to the CPU)")
                    continue
                fns[f"ONNX Runtime {provider[:-17]}"] = lambda z, s=session: s.run(
                    ["x_hat"], {"z": z}
                )[0]
            small = timed_round_robin(fns, z1, args.repeats)
            big = timed_round_robin(fns, zbig, max(3, args.repeats // 4))
        for runner in fns:
            rows.append([name, runner, f"{small[runner] * 1e3:.3f}", f"{BIG / big[runner]:,.0f}"])
            print("|", " | ".join(rows[-1]), "|", flush=True)
    header = ["decoder", "runner", "batch 1 latency (ms)", f"batch {BIG} examples/s"]
    return header, rows, notes


# ------------------------------------------------------------------ 3. serving
def serve_rows(args):
    """`kerasae-runtime serve` on the CUDA provider under serve_load's load (wrk)."""
    try:
        from benchmarks import serve_load
    except Exception as exc:  # e.g. wrk missing: this row must not break the rest
        return None, f"serve row skipped: benchmarks/serve_load.py does not import ({exc})"
    measure = getattr(serve_load, "measure", None)
    make_export = getattr(serve_load, "make_export", None)
    if not callable(measure) or not callable(make_export):
        return None, "serve row skipped: benchmarks/serve_load.py offers no measure(...) function"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            export_dir = make_export(tmp)
            rows = measure(export_dir, args.serve_seconds, 16)
        except TypeError as exc:  # its signature changed: say so rather than guess
            return None, f"serve row skipped: serve_load.measure's signature changed ({exc})"
    keys = ("batching", "concurrency", "requests_per_s", "p50_ms", "p99_ms", "failures")
    return [[f"{r.get(k, '')}" for k in keys] for r in rows], None


def main(argv=None):
    args = parser().parse_args(argv)
    gpus = gpu_names()
    if not gpus:
        print("gpu_suite: no GPU on this machine (no NVIDIA device found); nothing measured")
        return 0
    started = time.perf_counter()
    from benchmarks.report import machine, markdown_table
    from kerasae.data.sources import load_dataset

    sections = [f"GPU suite on {', '.join(gpus)} ({machine()})"]
    header, rows = fit_rows(args, load_dataset("fashion_mnist"))
    sections.append(markdown_table(header, rows))
    if not args.skip_onnx:
        header, rows, notes = onnx_rows(args)
        sections += [markdown_table(header, rows), *notes]
    if not args.skip_serve:
        rows, skipped = serve_rows(args)
        keys = ["batching", "concurrency", "requests/s", "p50 ms", "p99 ms", "failures"]
        sections.append(skipped or markdown_table(keys, rows))
    sections.append(f"Whole suite: {time.perf_counter() - started:.0f} s.")
    text = "\n\n".join(sections)
    print(text)
    if args.write:
        from benchmarks.report import update_section

        update_section(SECTION, "## GPU suite (`benchmarks/gpu_suite.py`)\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
