"""`kerasae export --int8`: dynamic int8 quantization of an exported ONNX part.

onnxruntime's `quantize_dynamic` stores the weights of MatMul and Gemm nodes (the Dense
layers) as signed int8, one scale per output unit, and quantizes their activations per
call (DynamicQuantizeLinear + MatMulInteger); every other op, Conv and ConvTranspose
included, stays float32, and so do the inputs and outputs, so callers never change dtype.
An int8 file is only worth shipping when it is faster, so each part is timed against its
float32 file at batch 256 on the exporting machine; a part that has no Dense weights, runs
no faster, or (checked by `verify`, with its own tolerance) does not match the Keras part
refuses the whole export in one line. Choices, from Fashion-MNIST `ae`/`vae` decoders
(BENCHMARKS.md): QInt8 weights ran faster than QUInt8 and matched as well; per-channel
scales cut the worst pixel error of a 5-epoch `ae` from 0.069 to 0.049 (mean 0.0032 to
0.0024) at the same speed, while reduce_range (7-bit weights) made it worse (0.082-0.116).
verify.TOLERANCE["int8"], 0.1, is 1.4x the worst pixel error over all 10,000 test codes of
a 10-epoch `ae` (0.071) and 3.5x what the export's own probes saw on it (0.028).
"""

import contextlib
import logging
import statistics
import time

import numpy as np

from kerasae.errors import KerasaeError

OPS = ("MatMul", "Gemm")
SPEED_BATCH = 256
#: int8 must take less than this share of the float32 time: a gain below the noise of a
#: shared machine would make the same export pass or fail by chance
MAX_TIME_RATIO = 0.95
REPEATS = 5
ROUNDS = 3
_log = logging.getLogger(__name__)


def weighted_nodes(proto):
    """The MatMul/Gemm nodes with a weight (an initializer input): what gets quantized."""
    weights = {t.name for t in proto.graph.initializer}
    return [n for n in proto.graph.node if n.op_type in OPS and set(n.input) & weights]


def quantize(src, dst, part):
    """Write `dst`, the int8 version of the float32 ONNX file `src`; returns `dst`."""
    import onnx  # optional: the onnx extra
    from onnxruntime.quantization import (  # optional: the onnx extra
        QuantType,
        quantize_dynamic,
    )

    if not weighted_nodes(onnx.load(src)):
        raise KerasaeError(
            f"--int8: the {part} has no MatMul/Gemm weights to quantize "
            "(Conv layers stay float32 in dynamic quantization); export "
            "without --int8"
        )
    with _quiet_root_log():
        quantize_dynamic(
            src, dst, op_types_to_quantize=list(OPS), per_channel=True, weight_type=QuantType.QInt8
        )
    return dst


@contextlib.contextmanager
def _quiet_root_log():
    """quantize_dynamic logs "consider pre-processing" through the root logger (and
    `logging.warning` would install a root handler if none exists): kept from the user's
    terminal, at DEBUG on this module's logger."""
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
        f"--int8: the {part} runs {verb} quantized ({best['int8']:.2f} ms vs "
        f"{best['fp32']:.2f} ms float32 at batch {SPEED_BATCH}, the best of "
        f"{rounds} timings); export without --int8"
    )
