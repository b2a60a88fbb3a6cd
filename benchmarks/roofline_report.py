"""The roofline section of BENCHMARKS.md, from benchmarks/results/roofline.json (written by
benchmarks/roofline.py; `roofline.py --report` rewrites the section from the stored rows)."""

from benchmarks.report import machine, markdown_table, update_section

SECTION = "roofline"
ORDER = ("ae", "vae", "wae", "conv_ae", "vq_vae")


def _order(key):
    name, batch = key.split("/")
    return ORDER.index(name) if name in ORDER else len(ORDER), int(batch)


#: what `--profile conv_ae` (16 steps at batch 512, TensorFlow's profiler) showed
PROFILE_NOTE = """A profiler trace of 16 conv_ae steps at batch 512 (`roofline.py --profile
conv_ae`, TensorFlow's profiler, op time summed by op; taken without the lock while
another job ran, so read its shares, not its times) put nearly all the time in the
decoder's transposed convolutions and their gradients, and a quarter of it (24%) in the
3x3 output convolution to one channel, 1.7% of the FLOPs: its weight and input gradients
are GEMMs with N=1. Every convolution ran as Eigen's spatial convolution tiled over
oneDNN's sgemm (the `gemm_api` count above). With TensorFlow's oneDNN pass on, the same
ops run as oneDNN's own convolutions: op time -27%, the output convolution's share 17%.
Tried and not kept: one inter-op thread instead of two (within noise: 544 against 480-523
samples/s); more steps per execution (kerasae already runs 16 per call; a step is ~1 s,
the Python round trip well under 1% of it); the input pipeline is not the limit (it
delivers >100,000 samples/s, train_throughput below). XLA was not re-measured: it made
conv_ae ~5x slower on this CPU before (train_throughput's note), and XLA:CPU does not use
oneDNN's convolutions. What remains is in the kernels themselves, so in the ceiling: the
N=1 output convolution and oneDNN's weight gradients of the strided transposed
convolutions (~35 GFLOP/s in the trace, against ~85 for their forward pass)."""


def _kernels(found):
    return ", ".join(f"`{k}` x{n}" for k, n in found["kernels"].items())


def report(results, args):
    on, off = results["kernels/1"], results["kernels/0"]
    peak = max(on["gemm_peak"], off["gemm_peak"])
    rows = []
    for key, fit in sorted(results["fit/1"].items(), key=lambda kv: _order(kv[0])):
        name, batch = key.split("/")
        ceiling = fit["flops"] * int(batch) / min(on["kernels"][key], off["kernels"][key])
        achieved = fit["flops"] * fit["samples_per_s"]
        rows.append(
            [
                name,
                batch,
                f"{fit['flops'] / 1e6:.1f}",
                f"{results['fit/0'][key]['samples_per_s']:,.0f}",
                f"{fit['samples_per_s']:,.0f}",
                f"{achieved / 1e9:.1f}",
                f"{ceiling / 1e9:.1f}",
                f"{achieved / ceiling:.0%}",
                f"{achieved / peak:.0%}",
            ]
        )
    table = markdown_table(
        [
            "family",
            "batch",
            "MFLOP per example (fwd+bwd)",
            "fit samples/s, oneDNN off (TF's default here)",
            "fit samples/s, oneDNN on (kerasae's default)",
            "achieved GFLOP/s (oneDNN on)",
            "its kernels' ceiling GFLOP/s",
            "fraction of its ceiling",
            "fraction of the GEMM peak",
        ],
        rows,
    )
    mse = results.get("mse", [])
    mse_line = "; ".join(
        f"oneDNN {'on' if r['onednn'] else 'off'}, seed {r['seed']}: {r['mse']:.4f} "
        f"({r['seconds']:.0f} s)"
        for r in mse
    )
    kernels = {v: results[f"isa/{v}"] for v in (0, 1)}
    at_512 = [(r[0], r[7]) for r in rows if r[1] == "512"]
    low = [f"{n} {f}" for n, f in at_512 if int(f[:-1]) < 50]
    goal = ("met: " if not low else "not met by " + ", ".join(low) + "; ") + ", ".join(
        f"{n} {f}" for n, f in at_512
    )
    fits = {v: results[f"fit/{v}"] for v in (0, 1)}
    before_after = markdown_table(
        [
            "family",
            "batch",
            "oneDNN off (before)",
            "oneDNN on (after)",
            "speed-up",
            "Fashion-MNIST epoch, before -> after",
        ],
        [
            [
                *key.split("/"),
                f"{fits[0][key]['samples_per_s']:,.0f}/s",
                f"{fits[1][key]['samples_per_s']:,.0f}/s",
                f"{fits[1][key]['samples_per_s'] / fits[0][key]['samples_per_s']:.2f}x",
                f"{60000 / fits[0][key]['samples_per_s']:.0f} s -> "
                f"{60000 / fits[1][key]['samples_per_s']:.0f} s",
            ]
            for key in sorted(fits[1], key=_order)
        ],
    )
    body = f"""## Roofline: fit against this machine's own ceilings (`benchmarks/roofline.py`)

Ceilings (TensorFlow {results.get("tf", "2.21")}, float32, CPU; measured by the same script
on the same day, last by `--ceilings`, after the fit rows):
- GEMM peak (2048x2048 `tf.matmul`, best of 3): **{on["gemm_peak"] / 1e9:.0f} GFLOP/s** with
  oneDNN's graph pass on, {off["gemm_peak"] / 1e9:.0f} GFLOP/s off. Two Zen 3 cores do 64
  FP32 FLOP per cycle (2 FMA units x 8 lanes x 2 each): 157 GFLOP/s at the 2.45 GHz
  /proc/cpuinfo reports, more at boost clocks.
- Memory bandwidth (`x += y` in place over two 128 MiB variables): {on["bandwidth"] / 1e9:.0f}
  GB/s, so the ridge point is ~3.5 FLOP per byte. Every counted layer is above it (the
  least, ae's 256x16 Dense at batch 128, ~7 FLOP per byte; the convolutions hundreds), so
  the ceilings are compute ceilings. The uncounted work (bias, ReLU and their gradients,
  the loss, Adam's update, the input pipeline's gather) is memory-bound and falls in the
  gap between a family's kernels and its fit.
- Each family's kernels alone: every Dense matmul and convolution on its own shapes at its
  batch, forward and both backward products, best of 3, the faster of oneDNN off and on;
  the ceiling column is the family's FLOPs over their summed time. Above 100%: `fit` ran
  the convolutions faster than they ran alone (in `fit` oneDNN fuses the bias into the
  weight gradient and the executor runs a layer's two gradients side by side).

{table}

Goal, every family at >= 50% of its own ceiling at batch 512: {goal}.

Achieved = FLOPs counted from the layers x samples/s of `fit` with kerasae's defaults
(oneDNN on, 16 steps per execution), median of {args.repeats} timed fits of at least
{args.seconds:.0f} s (and at least one execution) after two untimed ones.

**oneDNN on this CPU** (`ONEDNN_VERBOSE=1`, a conv_ae fit): TensorFlow 2.21 turns its
oneDNN graph pass on by default only on CPUs with AVX-512 VNNI/BF16 or AMX, so on this
AVX2+FMA AMD EPYC it was off. oneDNN reports `{kernels[0]["isa"]}` either way; off, the
kernels that run are {_kernels(kernels[0])} (Eigen's convolutions calling oneDNN's sgemm
once per small tile); with `TF_ENABLE_ONEDNN_OPTS=1`: {_kernels(kernels[1])} (oneDNN's
own AVX2 JIT and brgemm convolutions, `_MklNative*` ops). No AVX-512 kernel is used.

**Closing the gap** (the conv families: conv_ae, wae and vq_vae, 156-182 MFLOP per example
against ae's 5.6, were furthest from the machine's peak). {PROFILE_NOTE}

{before_after}

`import kerasae` now sets `TF_ENABLE_ONEDNN_OPTS=1` before TensorFlow loads, unless it is
already set or TensorFlow was imported first (`kerasae/onednn.py`; `=0` restores
TensorFlow's own choice). Same result: conv_ae trained 128 steps at batch 128 from seeds 0
and 1, test MSE over the 10,000 test images: {mse_line or "not measured (`--mse`)"}.

Machine: {machine()}; load average {" -> ".join(f"{x:.1f}" for x in results.get("load", []))}
(start -> end). Timed runs hold `flock /tmp/work/bench.lock`, which the serving benchmark
takes too, so no other benchmark ran alongside; the machine's other work did. No GPU here:
`benchmarks/gpu_suite.py` is ready for one. Reproduce: `flock /tmp/work/bench.lock
.venv/bin/python benchmarks/roofline.py --repeats {args.repeats} --seconds {args.seconds:g}`,
then `--mse`; `--profile conv_ae` prints where a step's time goes.
"""
    update_section(SECTION, body)
