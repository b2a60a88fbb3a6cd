"""ONNX export through `tf2onnx.convert.from_function` (its `from_keras` fails on Keras 3).

The graph is traced from the same named `tf.function` the SavedModel uses; afterwards the
outputs are put back in the model's order (tf2onnx sorts dict outputs by name) and the
batch dimension gets one readable symbolic name, `batch`. Unless `optimize=False`, strided
ConvTranspose layers that feed a Conv are rewritten as exact per-phase Convs (see
`phase_conv`), which onnxruntime runs faster on CPU. `--fp16` stores the weights in
float16 with onnxconverter-common while keeping float32 inputs and outputs, so callers
never change their dtype.

A TensorFlow op tf2onnx cannot map does not always raise: tf2onnx logs "Tensorflow op
[name: Type] is not supported" and leaves the TF node in the graph, which only fails later
in the ONNX checker with no hint of where it came from. So tf2onnx's log is captured
(it would otherwise spill onto the user's terminal), the graph is checked against the
ONNX schemas of the opset, and a failure names the op types, the part and a known fix.
"""

import hashlib
import heapq
import re
import warnings

import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.export import phase_conv
from kerasae.export.onnx_errors import (
    DISCRETE_OPS,
    GENERIC_FIX,
    captured_tf2onnx_log,
    logged_unsupported,
    non_onnx_nodes,
    unsupported_message,
)
from kerasae.export.signatures import serving_function, tensor_spec

DEFAULT_OPSET = 17
BATCH_DIM = "batch"


def to_onnx(net, signature, opset=DEFAULT_OPSET, optimize=True):
    """An `onnx.ModelProto` of one part (float32); `optimize`: apply `phase_conv.rewrite`."""
    return function_to_onnx(
        serving_function(net, signature), tensor_spec(signature), signature, opset, optimize
    )


def function_to_onnx(function, spec, signature, opset=DEFAULT_OPSET, optimize=False, doc=None):
    """An `onnx.ModelProto` of `function` (one input tensor of `spec` -> {output name:
    tensor}), its outputs in `signature`'s order, with a "batch" dimension and names that
    do not change from export to export; `optimize`: apply `phase_conv.rewrite`."""
    import tf2onnx  # optional: the onnx extra

    fn = tf.function(function, input_signature=[spec])
    with captured_tf2onnx_log() as records:
        try:
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=[spec], opset=opset)
        except Exception as exc:  # tf2onnx raises bare ValueError/KeyError for unknown ops
            ops = logged_unsupported(records)
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise KerasaeError(
                unsupported_message(signature.part, opset, ops)
                if ops
                else f"the {signature.part} could not be converted to ONNX (opset "
                f"{opset}): {first}; {GENERIC_FIX}"
            ) from None
    ops = {**logged_unsupported(records), **non_onnx_nodes(proto.graph, opset)}
    if ops:
        raise KerasaeError(unsupported_message(signature.part, opset, ops))
    _order_and_name(proto, signature)
    # tf2onnx writes the traced function's name (`__inference_serve_367`), which changes
    # from export to export: the same weights must give byte-identical files
    proto.doc_string = proto.graph.doc_string = doc or f"kerasae {signature.part}"
    _stable_names(proto.graph)
    if optimize:
        rewritten = phase_conv.rewrite(proto)
        if rewritten:
            entry = proto.metadata_props.add()
            entry.key, entry.value = "kerasae.phase_conv", str(rewritten)
    return proto


def _order_and_name(proto, signature):
    graph = proto.graph
    by_name = {o.name: o for o in graph.output}
    missing = [n for n in signature.output_names if n not in by_name]
    if missing:
        raise KerasaeError(
            f"the ONNX {signature.part} lacks outputs {missing}; got {sorted(by_name)}"
        )
    ordered = [by_name[n] for n in signature.output_names]
    copies = [type(o)() for o in ordered]
    for copy, original in zip(copies, ordered):
        copy.CopyFrom(original)
    del graph.output[:]
    graph.output.extend(copies)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM


_COUNTER = re.compile(r"__(\d+)")


def _stable_names(graph):
    """Name and order the graph by its structure alone, so the same weights give
    byte-identical files: tf2onnx numbers the names it makes up with a counter that runs
    on across conversions in one process (`Reshape_shape__47`), and when it merges equal
    constants or subgraphs it keeps either name. Every node becomes `OpType_k` (k its
    place in a canonical topological order), its outputs `OpType_k:i`, every constant and
    weight `const_j` by first use; only the interface names (x, z, x_hat, ...) stay."""

    def digest(*parts):
        return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()

    sig = {value.name: "input:" + value.name for value in graph.input}
    for tensor in graph.initializer:
        anonymous = type(tensor)()
        anonymous.CopyFrom(tensor)
        anonymous.name = ""
        sig[tensor.name] = hashlib.sha1(anonymous.SerializeToString()).hexdigest()
    nodes = list(graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    waiting = [{producer[x] for x in n.input if x in producer} for n in nodes]
    users = [[] for _ in nodes]
    for i, deps in enumerate(waiting):
        for d in deps:
            users[d].append(i)

    def node_sig(i):
        n = nodes[i]
        attrs = [a.SerializeToString().hex() for a in sorted(n.attribute, key=lambda a: a.name)]
        return digest(n.op_type, n.domain, *attrs, *[sig.get(x, "?" + x) for x in n.input])

    ready = [(node_sig(i), i) for i, deps in enumerate(waiting) if not deps]
    heapq.heapify(ready)
    order = []
    while ready:
        key, i = heapq.heappop(ready)
        order.append(i)
        for k, out in enumerate(nodes[i].output):
            sig[out] = f"{key}:{k}"
        for u in users[i]:
            waiting[u].discard(i)
            if not waiting[u]:
                heapq.heappush(ready, (node_sig(u), u))
    if len(order) != len(nodes):  # not a DAG: leave it as converted
        return
    # weights are renamed too: of two equal ones (zero biases) tf2onnx keeps either name
    keep = {v.name for v in [*graph.input, *graph.output]}
    names = {}
    for place, i in enumerate(order):
        node = nodes[i]
        for k, out in enumerate(node.output):
            if out not in keep:
                names[out] = f"{node.op_type}_{place}:{k}"
        node.name = f"{node.op_type}_{place}"
        for x in node.input:
            if x not in keep and x not in names and x not in producer:  # an initializer
                names[x] = f"const_{len(names)}"
    for node in nodes:
        node.input[:] = [names.get(x, x) for x in node.input]
        node.output[:] = [names.get(x, x) for x in node.output]
        for field in ("domain", "doc_string"):  # set-but-empty is serialized, unset is not
            if not getattr(node, field):
                node.ClearField(field)
    for value in [*graph.value_info, *graph.initializer]:
        value.name = names.get(value.name, value.name)
    _replace(graph.node, [nodes[i] for i in order])
    _replace(graph.initializer, sorted(graph.initializer, key=lambda t: t.name))


def _replace(field, items):
    copies = [type(item)() for item in items]
    for copy, item in zip(copies, items):
        copy.CopyFrom(item)
    del field[:]
    field.extend(copies)


def to_fp16(proto):
    """Weights and arithmetic in float16; float32 at the inputs and outputs.

    A part that makes a discrete choice (ArgMin/ArgMax: a VQ encoder's nearest code) stays
    float32, marked in its metadata: float16 rounding flips near-ties, so its integer
    outputs would not match exactly. (Blocking only the nodes that feed the choice is not
    enough: onnxconverter-common then rounds the shared tensors through float16.)"""
    from onnxconverter_common import float16  # optional: the onnx extra

    discrete = sorted({n.op_type for n in proto.graph.node if n.op_type in DISCRETE_OPS})
    if discrete:
        kept = type(proto)()
        kept.CopyFrom(proto)
        entry = kept.metadata_props.add()
        entry.key, entry.value = "kerasae.fp16", f"kept float32 ({', '.join(discrete)})"
        return kept
    with warnings.catch_warnings():  # it warns once per weight below float16's range
        warnings.simplefilter("ignore", UserWarning)
        # max_finite_val: float16's true maximum, so large constants are not clipped early
        return float16.convert_float_to_float16(
            _outputs_read_once(proto), keep_io_types=True, max_finite_val=65504.0
        )


def _outputs_read_once(proto):
    """A copy where no node reads a graph output: each output that other nodes also read
    (a flow encoder's z_mean, which its flow takes) becomes an Identity of an inner tensor.
    keep_io_types casts a graph output back to float32 but leaves its readers on that
    float32 name, which the checker then refuses (MatMul: inconsistent type)."""
    from onnx import helper  # optional: the onnx extra

    out = type(proto)()
    out.CopyFrom(proto)
    read = {i for node in out.graph.node for i in node.input}
    for name in [o.name for o in out.graph.output if o.name in read]:
        inner = f"{name}__inner"
        for node in out.graph.node:
            node.input[:] = [inner if i == name else i for i in node.input]
            node.output[:] = [inner if o == name else o for o in node.output]
        out.graph.node.append(helper.make_node("Identity", [inner], [name]))
    return out


def save(proto, path):
    import onnx  # optional: the onnx extra

    onnx.save_model(proto, path)
    try:
        onnx.checker.check_model(path, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise KerasaeError(f"{path} fails the ONNX checker: {str(exc).splitlines()[0]}") from None
    return path


def session(path):
    import onnxruntime as ort  # optional: the onnx extra

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def run(sess, signature, x):
    out = sess.run(list(signature.output_names), {signature.input_name: x})
    return dict(zip(signature.output_names, out))
