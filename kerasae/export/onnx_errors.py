"""Why an ONNX conversion failed, in words: the TensorFlow ops tf2onnx could not map, each with
the known fix (sampling ops, Keras's argmin/argmax, bitwise ops before opset 18).

tf2onnx does not always raise on an op it cannot map: it logs "Tensorflow op [name: Type]
is not supported" and leaves the TF node in the graph, which only fails later in the ONNX
checker. So its log is captured (kept off the user's terminal) and the graph is checked
against the ONNX schemas of the opset.
"""

import contextlib
import fnmatch
import logging

_SAMPLING = "sampling ops do not convert: export a deterministic part (e.g. the posterior mean)"
_BITWISE = "ONNX has bitwise ops from opset 18: try --opset 18"
#: TensorFlow op type (fnmatch pattern) -> the known fix, checked in order
KNOWN_FIXES = {
    "Bitcast": "keras.ops.argmin/argmax lower to Bitcast; use tf.argmin/tf.argmax, "
    "or kerasae.nets.VectorQuantizer",
    "Bitwise*": _BITWISE,
    "Invert": _BITWISE,
    "Random*": _SAMPLING,  # RandomStandardNormal, RandomGamma, RandomPoisson, ...
    "StatelessRandom*": _SAMPLING,  # keras.random.* with a seed
    "*TruncatedNormal*": _SAMPLING,
    "*Multinomial": _SAMPLING,
}
GENERIC_FIX = "try another --opset or replace the op"
#: ops whose output is a discrete choice: a part with one is not converted to float16
DISCRETE_OPS = ("ArgMin", "ArgMax")
#: op -> the op whose fix also removes it: keras.ops.argmin's NaN test is a Bitcast and a
#: BitwiseAnd, and "--opset 18" would only leave the Bitcast
EXPLAINED_BY = {"BitwiseAnd": "Bitcast"}
_UNSUPPORTED_MSG = "Tensorflow op [%s: %s] is not supported"  # tf2onnx/tfonnx.py's format
_log = logging.getLogger(__name__)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def captured_tf2onnx_log():
    """tf2onnx's log records while converting, kept from the terminal (they are at DEBUG
    on this module's logger for whoever wants them)."""
    logger = logging.getLogger("tf2onnx")
    handler = _Records()
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers[:], logger.propagate = [handler], False
    if logger.getEffectiveLevel() > logging.WARNING:  # the unsupported-op lines are ERRORs
        logger.setLevel(logging.WARNING)
    try:
        yield handler.records
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
        for record in handler.records:
            _log.debug("tf2onnx: %s", record.getMessage())


def logged_unsupported(records):
    """{op type: a node name} from tf2onnx's "Tensorflow op [...] is not supported" lines."""
    ops = {}
    for record in records:
        if record.msg == _UNSUPPORTED_MSG and len(record.args or ()) == 2:
            name, op = record.args
            ops.setdefault(str(op), str(name))
    return ops


def non_onnx_nodes(graph, opset):
    """{op type: a node name} of default-domain nodes (subgraphs too) with no ONNX schema at
    `opset`: TensorFlow nodes tf2onnx left in place."""
    import onnx  # optional: the onnx extra

    ops = {}
    for node in graph.node:
        if node.domain in ("", "ai.onnx"):
            try:
                onnx.defs.get_schema(node.op_type, opset, "")
            except onnx.defs.SchemaError:
                ops.setdefault(node.op_type, node.name)
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                for op, name in non_onnx_nodes(sub, opset).items():
                    ops.setdefault(op, name)
    return ops


def known_fix(op_type):
    """The fix for a TensorFlow op type that does not convert (GENERIC_FIX if none known)."""
    for pattern, fix in KNOWN_FIXES.items():
        if fnmatch.fnmatchcase(op_type, pattern):
            return fix
    return GENERIC_FIX


def unsupported_message(part, opset, ops):
    """One line: the op types (with a node that has each: it names the layer), then the fixes,
    each said once."""
    found = ", ".join(f"{op} (at {name})" for op, name in ops.items())
    fixes = list(dict.fromkeys(known_fix(op) for op in ops if EXPLAINED_BY.get(op) not in ops))
    return (
        f"the {part} could not be converted to ONNX (opset {opset}): TensorFlow "
        f"op{'s' if len(ops) > 1 else ''} {found} did not convert; {'; '.join(fixes)}"
    )
