"""ONNX export through `tf2onnx.convert.from_function` (its `from_keras` fails on Keras 3).

The graph is traced from the same named `tf.function` the SavedModel uses; afterwards the
outputs are put back in the model's order (tf2onnx sorts dict outputs by name) and the
batch dimension gets one readable symbolic name, `batch`. Unless `optimize=False`, strided
ConvTranspose layers that feed a Conv are rewritten as exact per-phase Convs (see
`phase_conv`), which onnxruntime runs faster on CPU. `--fp16` stores the weights in
float16 with onnxconverter-common while keeping float32 inputs and outputs, so callers
never change their dtype.
"""
from kerasae.errors import KerasaeError
from kerasae.exporters.signatures import serving_function, tensor_spec

DEFAULT_OPSET = 17
BATCH_DIM = "batch"


def to_onnx(net, signature, opset=DEFAULT_OPSET, optimize=True):
    """An `onnx.ModelProto` of one part (float32); `optimize`: apply `phase_conv.rewrite`."""
    import tensorflow as tf
    import tf2onnx

    spec = [tensor_spec(signature)]
    fn = tf.function(serving_function(net, signature), input_signature=spec)
    try:
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=opset)
    except Exception as exc:  # tf2onnx raises bare ValueError/KeyError for unknown ops
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KerasaeError(
            f"the {signature.part} could not be converted to ONNX (opset {opset}): {first}; "
            "sampling and other random ops do not convert: export a deterministic part, "
            "or try another --opset") from None
    _order_and_name(proto, signature)
    proto.doc_string = f"kerasae {signature.part}"
    if optimize:
        from kerasae.exporters import phase_conv

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
        raise KerasaeError(f"the ONNX {signature.part} lacks outputs {missing}; got "
                           f"{sorted(by_name)}")
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


def to_fp16(proto):
    """Weights and arithmetic in float16; float32 at the inputs and outputs."""
    import warnings

    from onnxconverter_common import float16

    with warnings.catch_warnings():  # it warns once per weight below float16's range
        warnings.simplefilter("ignore", UserWarning)
        # max_finite_val: float16's true maximum, so large constants are not clipped early
        return float16.convert_float_to_float16(proto, keep_io_types=True,
                                                max_finite_val=65504.0)


def save(proto, path):
    import onnx

    onnx.save_model(proto, path)
    try:
        onnx.checker.check_model(path, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise KerasaeError(f"{path} fails the ONNX checker: {str(exc).splitlines()[0]}") from None
    return path


def session(path):
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def run(sess, signature, x):
    out = sess.run(list(signature.output_names), {signature.input_name: x})
    return dict(zip(signature.output_names, out))
