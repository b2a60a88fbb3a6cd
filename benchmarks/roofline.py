"""Roofline: each family's `fit` against this machine's own measured ceilings.

    flock /tmp/work/bench.lock .venv/bin/python benchmarks/roofline.py
    .venv/bin/python benchmarks/roofline.py --profile conv_ae   # where a step's time goes
    flock /tmp/work/bench.lock .venv/bin/python benchmarks/roofline.py --mse  # same result?

Ceilings, measured in the same run: a large square TensorFlow matmul (the machine's GEMM
peak); each family's own kernels alone, on its shapes at its batch (every Dense layer's
matmul and every convolution, forward and both backward products: `tf.GradientTape` over
the raw `tf.matmul` / `tf.nn.conv2d` / `tf.nn.conv2d_transpose` in a compiled loop); and
a streaming bandwidth (`x * a` over 256 MB). TensorFlow reads `TF_ENABLE_ONEDNN_OPTS`
once, at import, so each measurement runs in a child process per setting: the kernels
with oneDNN's graph pass off and on, the faster being the ceiling, and `fit` both ways.

Achieved: FLOPs counted from the layers (Dense 2*in*out, Conv2D 2*HoWo*k*k*Cin*Cout,
Conv2DTranspose 2*HiWi*k*k*Cin*Cout per example; backward twice the forward, less the
input gradient of the encoder's first layer; vq_vae's code distances forward only) over
the wall time of `fit` on Fashion-MNIST batches with kerasae's defaults (`compile()`, 16
steps per execution), after one untimed execution. wae is its MMD variant (the critic's
second optimizer and gradient penalty have no simple FLOP count).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.roofline_kernels import (  # noqa: E402
    bandwidth,
    gemm_peak,
    kernel_seconds,
    layer_ops,
    profile,
    train_flops,
)
from benchmarks.roofline_report import report  # noqa: E402

SECTION = "roofline"
FAMILIES = {"ae": {}, "vae": {}, "wae": {"variant": "mmd"}, "conv_ae": {}, "vq_vae": {}}
SHAPE = (28, 28, 1)
ONEDNN = "TF_ENABLE_ONEDNN_OPTS"


def child_kernels(batches):
    """Every family's kernel seconds per step at each batch, the GEMM peak, the bandwidth."""
    import kerasae

    out = {"gemm_peak": gemm_peak(), "bandwidth": bandwidth(), "kernels": {}}
    cache = {}
    for name, kwargs in FAMILIES.items():
        ops = layer_ops(kerasae.create_model(name, input_shape=SHAPE, **kwargs))
        for b in batches:
            total = 0.0
            for kind, spec, _, grad in ops:
                key = json.dumps([kind, spec, b, grad])
                if key not in cache:
                    cache[key] = kernel_seconds(kind, spec, b, grad)
                total += cache[key]
            out["kernels"][f"{name}/{b}"] = total
    return out


# ------------------------------------------------------------------ achieved (child process)
def child_fit(batches, seconds, repeats):
    """Samples/s of `fit` per family and batch (kerasae's defaults), and FLOPs per example."""
    import keras

    import kerasae
    from kerasae.data.pipeline import make_tf_dataset
    from kerasae.data.sources import load_dataset

    x = load_dataset("fashion_mnist").x_train
    out = {}
    for name, kwargs in FAMILIES.items():
        for b in batches:
            keras.utils.set_random_seed(0)
            model = kerasae.create_model(name, input_shape=SHAPE, **kwargs)
            model.compile()
            spe = model.steps_per_execution
            start = time.perf_counter()
            model.fit(make_tf_dataset(x[: b * spe], b, seed=0), epochs=1, verbose=0)  # trace
            model.fit(make_tf_dataset(x[: b * spe], b, seed=0), epochs=1, verbose=0)
            rate = b * spe / (time.perf_counter() - start) * 2
            steps = spe * max(1, min(int(rate * seconds / b / spe), len(x) // (b * spe)))
            ds = make_tf_dataset(x[: b * steps], b, seed=0)
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                model.fit(ds, epochs=1, verbose=0)
                runs.append(b * steps / (time.perf_counter() - start))
            out[f"{name}/{b}"] = {
                "samples_per_s": statistics.median(runs),
                "flops": train_flops(layer_ops(model)),
                "steps": steps,
            }
            print(name, b, round(out[f"{name}/{b}"]["samples_per_s"]), file=sys.stderr)
    return out


def child_mse(name, batch, steps, seed):
    """Test MSE on Fashion-MNIST's 10,000 test images after `steps` steps from `seed`."""
    import keras
    import numpy as np

    import kerasae
    from kerasae.data.pipeline import make_tf_dataset
    from kerasae.data.sources import load_dataset

    data = load_dataset("fashion_mnist")
    keras.utils.set_random_seed(seed)
    model = kerasae.create_model(name, input_shape=SHAPE, **FAMILIES[name])
    model.compile()
    start = time.perf_counter()
    model.fit(make_tf_dataset(data.x_train[: batch * steps], batch, seed=seed), verbose=0)
    seconds = time.perf_counter() - start
    x_hat = model.reconstruct(data.x_test, batch_size=1000)
    return {"mse": float(np.mean((data.x_test - x_hat) ** 2)), "seconds": seconds}


def run_child(args, onednn):
    """`args` in a fresh interpreter with TF_ENABLE_ONEDNN_OPTS=`onednn`; its JSON answer."""
    env = {**os.environ, ONEDNN: str(onednn)}
    argv = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(args)]
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(spec):
    kind, rest = spec[0], spec[1:]
    if kind == "version":
        import tensorflow as tf

        return print(json.dumps(tf.__version__))
    result = {"kernels": child_kernels, "fit": child_fit, "mse": child_mse}[kind](*rest)
    print(json.dumps(result))


def isa(onednn):
    """What oneDNN reports it runs on (ONEDNN_VERBOSE=1): its ISA and kernels by count."""
    import collections

    env = {**os.environ, ONEDNN: str(onednn), "ONEDNN_VERBOSE": "1"}
    argv = [sys.executable, os.path.abspath(__file__), "--child", '["mse", "conv_ae", 64, 4, 0]']
    text = subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=True, text=True).stdout
    lines = [line.split(",") for line in text.splitlines() if line.startswith("onednn_verbose")]
    isa_line = next(
        (",".join(f[3:5]) for f in lines if f[2:4] == ["info", "cpu"] and f[4].startswith("isa")),
        "no oneDNN line",
    )
    kernels = collections.Counter(
        f"{f[5]} {f[6]}" for f in lines if len(f) > 6 and f[2:4] == ["primitive", "exec"]
    )
    return {"isa": isa_line, "kernels": dict(kernels.most_common(8))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 512])
    p.add_argument("--seconds", type=float, default=4.0, help="length of one timed fit")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--report", action="store_true", help="rewrite the section from the stored rows"
    )
    p.add_argument("--ceilings", action="store_true", help="measure the ceilings only")
    p.add_argument("--profile", metavar="FAMILY", choices=list(FAMILIES))
    p.add_argument("--mse", action="store_true", help="conv_ae's test MSE, oneDNN off and on")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    if args.profile:
        import kerasae  # noqa: F401  (first: its oneDNN default is set before TensorFlow loads)

        return profile(args.profile, args.batch_sizes[-1], FAMILIES[args.profile], SHAPE)
    from benchmarks.report import load_results, save_results

    results = load_results(SECTION, {})
    load = [os.getloadavg()[0]]
    if args.report:
        return report(results, argparse.Namespace(**results["args"]))
    if args.mse:
        results["mse"] = [
            {"onednn": v, "seed": s, **run_child(["mse", "conv_ae", 128, 128, s], v)}
            for v in (0, 1)
            for s in (0, 1)
        ]
        print(results["mse"])
    else:
        for v in (0, 1):
            results[f"isa/{v}"] = isa(v)
            results[f"kernels/{v}"] = run_child(["kernels", args.batch_sizes], v)
            print(v, results[f"kernels/{v}"], flush=True)
            if not args.ceilings:
                results[f"fit/{v}"] = run_child(
                    ["fit", args.batch_sizes, args.seconds, args.repeats], v
                )
                print(v, results[f"fit/{v}"], flush=True)
        results["tf"] = run_child(["version"], 1)
        if not args.ceilings:
            results["load"] = load + [os.getloadavg()[0]]
            results["args"] = {"repeats": args.repeats, "seconds": args.seconds}
    if not args.no_write:
        save_results(SECTION, results)
        report(results, args)


if __name__ == "__main__":
    main()
