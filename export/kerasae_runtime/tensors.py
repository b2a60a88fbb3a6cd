"""Tensors of the Open Inference Protocol (KServe v2) over HTTP, with the binary tensor
data extension: the request and response bodies that Triton's and KServe's clients speak.

A request body is a JSON object `{"id", "parameters", "inputs": [{"name", "shape",
"datatype", "data"}], "outputs": [{"name", "parameters": {"binary_data": true}}]}`. With the
binary extension, the `Inference-Header-Content-Length` header gives the JSON's length,
and the tensors whose parameters carry `binary_data_size` follow it as raw little-endian
bytes, in input order. Responses mirror that: JSON `data` (flattened, row-major) or binary
bytes after the JSON header. Spec: kserve/open-inference-protocol, and Triton's
docs/protocol/extension_binary_data.md. Plain functions: `offload.py` may run them in a
helper process for large bodies.
"""

import math

import numpy as np
import orjson

from kerasae_runtime.bodies import RequestError, load_json

DATATYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
NAMES = {np.dtype(t): name for name, t in DATATYPES.items()}
HEADER = "inference-header-content-length"


def datatype(dtype):
    return NAMES[np.dtype(dtype)]


def _fail(message):
    raise RequestError(400, message)


def _shape(tensor, name):
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        _fail(f"input {name!r} needs a shape: a list of non-negative integers")
    return shape


def _tensor(tensor, binary, offset):
    """One input as an ndarray, and the binary offset after it."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        _fail("every input must be an object with a name, shape, datatype and data")
    name = tensor["name"]
    shape = _shape(tensor, name)
    kind = tensor.get("datatype")
    if kind not in DATATYPES:
        _fail(f"input {name!r} has datatype {kind!r}; use one of {', '.join(DATATYPES)}")
    dtype = np.dtype(DATATYPES[kind]).newbyteorder("<")
    count = math.prod(shape)
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != count * dtype.itemsize:
            _fail(
                f"input {name!r}: binary_data_size {size!r} does not match shape {shape} of "
                f"{kind} ({count * dtype.itemsize} bytes)"
            )
        if offset + size > len(binary):
            _fail(f"input {name!r}: the body ends before its {size} bytes of binary data")
        array = np.frombuffer(binary, dtype, count, offset).reshape(shape)
        return name, array, offset + size
    if "data" not in tensor:
        _fail(f"input {name!r} has neither data nor parameters.binary_data_size")
    try:
        array = np.asarray(tensor["data"], dtype=dtype)
    except (ValueError, TypeError):
        _fail(f"input {name!r}: data must be {kind} numbers of one shape")
    if array.size != count:
        _fail(f"input {name!r}: {array.size} values in data, but shape {shape} needs {count}")
    return name, array.reshape(shape), offset


def decode(body, header_length=None):
    """An infer request -> (inputs {name: ndarray}, outputs [(name, binary)] or None for
    every output, binary_data_output default, parameters, id)."""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            _fail(f"{HEADER} {header_length!r} is not a length within the body")
        split = int(header_length)
        head, binary = body[:split], memoryview(body)[split:]
    else:
        head, binary = body, memoryview(b"")
    doc = load_json(head)
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        _fail('the body must be a JSON object with a list of "inputs"')
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        _fail("parameters must be an object")
    inputs, offset = {}, 0
    for tensor in doc["inputs"]:
        name, array, offset = _tensor(tensor, binary, offset)
        if name in inputs:
            _fail(f"input {name!r} is given twice")
        inputs[name] = array
    if offset != len(binary):
        _fail(f"{len(binary) - offset} bytes of binary data follow the inputs unclaimed")
    outputs = doc.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
        ):
            _fail("outputs must be a list of objects with a name")
        outputs = [
            (o["name"], bool((o.get("parameters") or {}).get("binary_data"))) for o in outputs
        ]
    return inputs, outputs, bool(parameters.get("binary_data_output")), parameters, doc.get("id")


def encode(model, version, outputs, binary, request_id=None):
    """(body, headers) of an infer response: `outputs` {name: ndarray}, `binary` the names
    sent as binary data."""
    described, chunks = [], []
    for name, value in outputs.items():
        value = np.ascontiguousarray(value)
        tensor = {"name": name, "datatype": datatype(value.dtype), "shape": list(value.shape)}
        if name in binary:
            data = value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
            tensor["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        else:
            tensor["data"] = value.reshape(-1)
        described.append(tensor)
    doc = {"model_name": model, "model_version": version, "outputs": described}
    if request_id is not None:
        doc["id"] = request_id
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return head, ()
    return head + b"".join(chunks), ((HEADER.encode(), str(len(head)).encode()),)
