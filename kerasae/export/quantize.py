"""`kerasae export --int8`: static int8 quantization of an exported ONNX part, calibrated on
the run's own training data, measured on its test split.

onnxruntime's `quantize_static` in QDQ format, the format its CPU kernels are built for:
the weights of every MatMul, Gemm and Conv as int8 with one scale per output channel, in 7
bits (`reduce_range`: x86 CPUs without VNNI add int8 products in 16 bits, and full 8-bit
weights saturate them), activations as uint8 with ranges calibrated (MinMax) on
CALIBRATION_EXAMPLES training inputs of the part (images for the encoder and scorer, their
codes for the decoder). Inputs and outputs stay float32, so callers never change dtype.

An int8 file ships only when it is both accurate and faster, and a refusal says which it
is not. Accuracy: the mean |int8 - float32| over EVALUATION_EXAMPLES test inputs, in the
output's units, at most TOLERANCE (integer outputs, a VQ encoder's indices: at most
INDEX_TOLERANCE of them changed). Speed: timed against float32 at batch 256 on the
exporting machine (`check_speed`). Both are in the manifest's verification entry.

TOLERANCE, from benchmarks/int8.py on ae, vae and conv_ae (digits, Fashion-MNIST;
BENCHMARKS.md): the decoder's mean error was 0.003-0.007 in [0, 1] data units, so 0.02
(five grey levels of 255) leaves it 3x room while a broken quantization (dynamic
quantization of a conv decoder: 0.013 mean, 0.38 worst) comes close or fails; the
encoder's 1-2.3% of the codes' standard deviation (bound 5%); the scorer's 0.9-4.9% of
the scores' standard deviation (bound 10%: a score moves a tenth of the spread between
examples at most, on average). The worst single errors are larger (a pixel off by 0.05-
0.27) and reported, not bounded: they are what calibration on a sample costs.
"""

import contextlib
import logging
import statistics
import time

import numpy as np

from kerasae.errors import KerasaeError

OPS = ("MatMul", "Gemm", "Conv")
CALIBRATION_EXAMPLES = 512
EVALUATION_EXAMPLES = 2000
#: part -> (bound, what it is relative to): the mean |int8 - float32| on the test split
TOLERANCE = {"decoder": (0.02, "data units"), "encoder": (0.05, "std"), "scorer": (0.1, "std")}
INDEX_TOLERANCE = 0.01  # the share of integer outputs (code indices) that may change
SPEED_BATCH = 256
#: int8 must take less than this share of the float32 time: a gain below the noise of a
#: shared machine would make the same export pass or fail by chance
MAX_TIME_RATIO = 0.95
REPEATS = 5
ROUNDS = 3
_log = logging.getLogger(__name__)


def weighted_nodes(proto):
    """The MatMul/Gemm/Conv nodes with a weight (an initializer input): what gets quantized."""
    weights = {t.name for t in proto.graph.initializer}
    return [n for n in proto.graph.node if n.op_type in OPS and set(n.input) & weights]


def quantize(src, dst, part, calibration):
    """Write `dst`, the int8 version of the float32 ONNX file `src`, its activation ranges
    calibrated on `calibration` (the part's inputs); returns `dst`."""
    import onnx  # optional: the onnx extra
    from onnxruntime.quantization import (  # optional: the onnx extra
        QuantFormat,
        QuantType,
        quantize_static,
    )

    proto = onnx.load(src)
    if not weighted_nodes(proto):
        raise KerasaeError(
            f"--int8: the {part} has no MatMul, Gemm or Conv weights to quantize; "
            "export without --int8"
        )
    with _quiet_root_log():
        quantize_static(
            src,
            dst,
            _Batches(proto.graph.input[0].name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    return dst


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over an array, 64 rows at a time."""

    def __init__(self, name, x, batch=64):
        x = np.asarray(x, dtype="float32")
        self.feeds = iter([{name: x[i : i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self.feeds, None)


def check_accuracy(part, fp32_session, int8_session, x, batch=256):
    """The error report of the int8 part on its test inputs `x` against float32, or a
    KerasaeError saying it is not accurate enough (in the output's units)."""
    name = fp32_session.get_inputs()[0].name
    outputs = [o.name for o in fp32_session.get_outputs()]

    def run(session):
        rows = [session.run(outputs, {name: x[i : i + batch]}) for i in range(0, len(x), batch)]
        return [np.concatenate(parts) for parts in zip(*rows)]

    report = {"split": "test", "examples": int(len(x)), "outputs": {}}
    for out, want, got in zip(outputs, run(fp32_session), run(int8_session)):
        if np.issubdtype(want.dtype, np.integer):
            changed = float(np.mean(got != want))
            report["outputs"][out] = {"changed": changed, "tolerance": INDEX_TOLERANCE}
            if changed > INDEX_TOLERANCE:
                _inaccurate(part, out, f"{changed:.1%} of its indices change", len(x))
            continue
        diff = np.abs(got.astype("float64") - want)
        bound, unit = TOLERANCE[part]
        scale = 1.0 if unit == "data units" else float(np.std(want))
        entry = {
            "mean_abs_diff": float(diff.mean()),
            "p99_abs_diff": float(np.percentile(diff, 99)),
            "max_abs_diff": float(diff.max()),
            "tolerance": bound * scale,
            "tolerance_unit": unit if unit == "data units" else f"{bound:g} x std",
        }
        report["outputs"][out] = entry
        if not entry["mean_abs_diff"] <= entry["tolerance"]:  # NaN fails too
            said = "" if unit == "data units" else f" ({bound:g} x the outputs' std)"
            _inaccurate(
                part,
                out,
                f"mean |int8 - float32| is {entry['mean_abs_diff']:.3g}, above "
                f"{entry['tolerance']:.3g}{said}",
                len(x),
            )
    return report


def _inaccurate(part, output, what, n):
    raise KerasaeError(
        f"--int8: the {part} is not accurate enough quantized: output {output!r}: {what} "
        f"over {n:,} test examples; export without --int8"
    )


@contextlib.contextmanager
def _quiet_root_log():
    """onnxruntime's quantization logs through the root logger (and `logging.warning`
    would install a root handler if none exists): kept from the user's terminal, at DEBUG
    on this module's logger."""
    root = logging.getLogger()
    held = []

    def keep(record):
        if "onnxruntime" in record.pathname:
            held.append(record)
            return False
        return True

    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder:
        root.addHandler(placeholder)
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
        if placeholder:
            root.removeHandler(placeholder)
        for record in held:
            _log.debug("onnxruntime.quantization: %s", record.getMessage())


def speed_batch(probes):
    """SPEED_BATCH rows tiled from a part's verification inputs (real and random)."""
    x = np.concatenate(list(probes.values()))
    return np.resize(x, (SPEED_BATCH, *x.shape[1:])).astype("float32")


def timed(runners, x, repeats=REPEATS, clock=time.perf_counter):
    """Median milliseconds per runner, the runners timed in turn; each timed call follows
    an untimed one of the same runner (a thread pool still spinning from the other runner
    would otherwise take the CPU from it)."""
    for fn in runners.values():
        fn(x)
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, fn in runners.items():
            fn(x)
            start = clock()
            fn(x)
            times[name].append((clock() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def check_speed(part, fp32_session, int8_session, signature, probes, rounds=ROUNDS):
    """{"batch", "fp32_ms", "int8_ms"}: the medians of the first round in which int8 is
    faster; after `rounds` rounds without one, the part is refused. (A burst of load from
    another job can slow one round's int8 runs: one round alone refused a decoder that is
    3x faster quantized.)"""
    x = speed_batch(probes)
    run = {
        name: (lambda v, s=s: s.run(None, {signature.input_name: v}))
        for name, s in (("fp32", fp32_session), ("int8", int8_session))
    }
    best = None
    for _ in range(rounds):
        ms = timed(run, x)
        if ms["int8"] < MAX_TIME_RATIO * ms["fp32"]:
            return {
                "batch": SPEED_BATCH,
                "fp32_ms": round(ms["fp32"], 3),
                "int8_ms": round(ms["int8"], 3),
            }
        if best is None or ms["int8"] / ms["fp32"] < best["int8"] / best["fp32"]:
            best = ms
    verb = "slower" if best["int8"] > best["fp32"] else "no faster"
    raise KerasaeError(
        f"--int8: the {part} is not faster quantized: it runs {verb} ({best['int8']:.2f} ms vs "
        f"{best['fp32']:.2f} ms float32 at batch {SPEED_BATCH}, the best of "
        f"{rounds} timings); export without --int8"
    )
