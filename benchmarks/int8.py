"""`kerasae export --int8`: file size, latency and error of int8 decoders against fp32, on CPU.

    nice -n 5 .venv/bin/python -m benchmarks.int8 [--models ae,vae,conv_ae] [--epochs 10]

Each decoder is trained (--epochs on --train-size images) on Fashion-MNIST (digits where
/usr/share/datasets/fashion-mnist is missing: the weights' range sets the quantization
error), exported to float32 ONNX and quantized exactly as `kerasae export --int8` does
(`kerasae.export.quantize`: static QDQ, calibrated on 512 training images' codes), so the
numbers are measured even for a decoder the export refuses; the export's own verdict
(accepted, or refused and why) is the last column, from `export_model(..., int8=True)`.
Latency: the fp32 and int8 sessions timed in turn, each timed call right after an
untimed one of the same session; median and interquartile range, since the machine is
shared. Error: |int8 - fp32| over the test split's codes, in the decoder's [0, 1] data
units (mean, 99th percentile, max), and the test reconstruction MSE of each.
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
    from kerasae.export import quantize, verify
    from kerasae.export.write import export_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="ae,vae,conv_ae")
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
        calibration = x_train[: quantize.CALIBRATION_EXAMPLES]
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "export")
            export_model(model, out, formats=("onnx",), parts=("decoder",), real_x=x_test[:7])
            paths = {"fp32": os.path.join(out, "decoder.onnx")}
            codes = verify.latent_codes(model, calibration)
            paths["int8"] = quantize.quantize(
                paths["fp32"], os.path.join(tmp, "decoder.int8.onnx"), "decoder", codes
            )
            try:  # the export's own verdict: accuracy on the test split, speed at batch 256
                export_model(
                    model,
                    os.path.join(tmp, "checked"),
                    formats=("onnx",),
                    parts=("decoder",),
                    int8=True,
                    real_x=x_test[:7],
                    int8_data=(calibration, x_test),
                )
                verdict = "accepted"
            except KerasaeError as exc:
                verdict = str(exc).split(": ", 1)[1].split("; export without")[0]
            print(family, verdict, flush=True)
            sess = {
                k: ort.InferenceSession(v, providers=["CPUExecutionProvider"])
                for k, v in paths.items()
            }
            fns = {k: (lambda z, s=s: s.run(["x_hat"], {"z": z})[0]) for k, s in sess.items()}
            z = np.asarray(model.encode(x_test), dtype="float32")
            images = {k: fn(z) for k, fn in fns.items()}
            diff = np.abs(images["int8"] - images["fp32"])
            mse = {k: float(np.mean((v - x_test) ** 2)) for k, v in images.items()}
            cells = {}
            for batch in BATCHES:
                reps = args.repeats if batch == 1 else max(5, args.repeats // 10)
                times = interleaved(fns, z[:batch], reps)
                for k in fns:
                    cells[k, batch] = times[k]
            size = {k: os.path.getsize(v) / 1e6 for k, v in paths.items()}
            for k in ("fp32", "int8"):
                rows.append(
                    [
                        label,
                        k,
                        f"{size[k]:.2f}",
                        spread(cells[k, 1]),
                        spread(cells[k, 256]),
                        f"{mse[k]:.5f}",
                        ""
                        if k == "fp32"
                        else f"{diff.mean():.4f} / {np.percentile(diff, 99):.4f} / "
                        f"{diff.max():.4f}",
                        "" if k == "fp32" else verdict,
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)
    load_after = os.getloadavg()[0]
    import onnxruntime

    body = "\n\n".join(
        [
            "### int8 decoders (`kerasae export --int8`)",
            f"Decoders (latent_dim 16) trained for {args.epochs} epoch(s) on "
            f"{args.train_size:,} {name} images, quantized as `--int8` does: static QDQ "
            f"(onnxruntime `quantize_static`), int8 weights per channel in 7 bits, uint8 "
            f"activations calibrated on {quantize.CALIBRATION_EXAMPLES} training images' "
            f"codes, float32 in and out. Latency: median (interquartile range) of "
            f"{args.repeats} calls at batch 1 and {max(5, args.repeats // 10)} at batch 256, "
            f"fp32 and int8 timed in turn; error: abs(int8 - fp32) over the {len(x_test):,} "
            f"test images' codes in [0, 1] data units (mean / 99th percentile / max), beside "
            f"each decoder's test MSE. Last column: `export_model(..., int8=True)`'s verdict "
            f"(its accuracy bound: mean {quantize.TOLERANCE['decoder'][0]:g}; its speed check "
            f"at batch 256). Machine: {machine()}, load average {load_before:.1f} before, "
            f"{load_after:.1f} after; onnxruntime {onnxruntime.__version__}.",
            markdown_table(
                [
                    "decoder",
                    "precision",
                    "file (MB)",
                    "batch 1 (ms)",
                    "batch 256 (ms)",
                    "test MSE",
                    "abs(int8 - fp32) mean / p99 / max",
                    "export's verdict",
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
