"""`kerasae export --int8`: file size, latency and error of int8 decoders against fp32, on CPU.

    nice -n 5 .venv/bin/python -m benchmarks.int8 [--models ae,vae] [--epochs 10]

The dense `ae` and `vae` decoders, trained (10 epochs on 20,000 images) on Fashion-MNIST (digits
where
/usr/share/datasets/fashion-mnist is missing: the weights' range sets the quantization
error), exported by `kerasae.export.export_model(..., int8=True)`, i.e. through the same
quantization, verification and speed check users get. Latency: the fp32 and int8 sessions
timed in turn, each timed call right after an untimed one of the same session; median and
interquartile range, since the machine is shared. Error: max |int8 - fp32| over the test
set's codes, in the decoder's [0, 1] pixel units.
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

SECTION = "inference_int8"
BATCHES = (1, 256)


def interleaved(fns, x, repeats):
    """{name: [ms, ...]}: the runners timed in turn, each after an untimed call of its own."""
    for fn in fns.values():
        fn(x)
        fn(x)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn(x)
            start = time.perf_counter()
            fn(x)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def spread(ms):
    q1, med, q3 = statistics.quantiles(ms, n=4)
    return f"{med:.3f} ({q1:.3f}-{q3:.3f})"


def main(argv=None):
    import keras
    import onnxruntime as ort

    import kerasae
    from kerasae.data.sources import load_dataset
    from kerasae.errors import KerasaeError
    from kerasae.export.write import export_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="ae,vae")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-size", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=200, help="at batch 1 (a tenth at 256)")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = p.parse_args(argv)

    name = "fashion_mnist" if os.path.isdir("/usr/share/datasets/fashion-mnist") else "digits"
    data = load_dataset(name)
    x_train = np.asarray(data.x_train[: args.train_size], dtype="float32")
    x_test = np.asarray(data.x_test, dtype="float32")
    load_before = os.getloadavg()[0]
    rows = []
    for family in args.models.split(","):
        keras.utils.set_random_seed(0)
        model = kerasae.create_model(family, input_shape=x_train.shape[1:], latent_dim=16)
        model.compile()
        model.fit(x_train, epochs=args.epochs, batch_size=128, verbose=0)
        label = f"{family} ({model.decoder.count_params():,} params)"
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "export")
            try:
                manifest = export_model(
                    model, out, formats=("onnx",), parts=("decoder",), int8=True, real_x=x_test[:7]
                )
            except KerasaeError as exc:  # the export's own speed or parity check
                rows.append([label, "refused", "", "", "", "", str(exc)])
                print(family, exc, flush=True)
                continue
            paths = {
                k: os.path.join(out, f"decoder{s}.onnx")
                for k, s in (("fp32", ""), ("int8", ".int8"))
            }
            sess = {
                k: ort.InferenceSession(v, providers=["CPUExecutionProvider"])
                for k, v in paths.items()
            }
            fns = {k: (lambda z, s=s: s.run(["x_hat"], {"z": z})[0]) for k, s in sess.items()}
            z = np.asarray(model.encode(x_test), dtype="float32")
            diff = float(np.max(np.abs(fns["int8"](z) - fns["fp32"](z))))
            cells = {}
            for batch in BATCHES:
                reps = args.repeats if batch == 1 else max(5, args.repeats // 10)
                times = interleaved(fns, z[:batch], reps)
                for k in fns:
                    cells[k, batch] = times[k]
            size = {k: os.path.getsize(v) / 1e6 for k, v in paths.items()}
            check = manifest["verification"]["decoder.int8.onnx"]
            for k in ("fp32", "int8"):
                rows.append(
                    [
                        label,
                        k,
                        f"{size[k]:.2f}",
                        spread(cells[k, 1]),
                        spread(cells[k, 256]),
                        "" if k == "fp32" else f"{diff:.4f}",
                        ""
                        if k == "fp32"
                        else f"max diff {check['max_abs_diff']:.4f} (tol "
                        f"{check['tolerance']:g}); {check['speed']['int8_ms']:.2f} vs "
                        f"{check['speed']['fp32_ms']:.2f} ms",
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)
    load_after = os.getloadavg()[0]
    import onnxruntime

    body = "\n\n".join(
        [
            "### int8 decoders (`kerasae export --int8`)",
            f"Dense decoders (latent_dim 16) trained for {args.epochs} epoch(s) on "
            f"{args.train_size:,} {name} images, exported with `int8=True`: Dense (MatMul) "
            f"weights stored as int8, activations quantized per call (onnxruntime dynamic "
            f"quantization), float32 in and out. Latency: median (interquartile range) of "
            f"{args.repeats} calls at batch 1 and {max(5, args.repeats // 10)} at batch 256, "
            f"fp32 and int8 timed in turn; error: max |int8 - fp32| over the "
            f"{len(x_test):,} test images' codes, in [0, 1] pixel units. The export's own "
            f"check (last column) is against the Keras decoder on 7 real and 7 random codes, "
            f"and its speed check at batch 256. Machine: {machine()}, shared with other jobs "
            f"(a CI run among them; load average {load_before:.1f} before, {load_after:.1f} "
            f"after); onnxruntime {onnxruntime.__version__}.",
            markdown_table(
                [
                    "decoder",
                    "precision",
                    "file (MB)",
                    "batch 1 (ms)",
                    "batch 256 (ms)",
                    "max diff vs fp32",
                    "export's check",
                ],
                rows,
            ),
            "Reproduce: `nice -n 5 .venv/bin/python -m benchmarks.int8`",
        ]
    )
    if not args.no_write:
        update_section(SECTION, body)
        print("updated BENCHMARKS.md")
    return rows


if __name__ == "__main__":
    main()
