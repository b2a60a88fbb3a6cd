"""A Triton Inference Server model repository from a finished, verified ONNX export.

    from kerasae.export import triton
    triton.write_repository("runs/vae/export", "model_repository", max_batch_size=256)

Every ONNX part in the manifest (encoder, decoder, and any other part such as a scorer)
becomes one model of the onnxruntime backend:

    REPO/NAME_encoder/config.pbtxt
    REPO/NAME_encoder/1/model.onnx
    REPO/NAME_encoder/kerasae_manifest.json   the export's manifest.json, unchanged

Triton ignores files in a model folder other than its version folders and config.pbtxt,
so the manifest (scaling, prior, checksums of the export it came from) travels with each
model without changing what is served. `config.pbtxt` is built as the `ModelConfig`
protobuf that tritonclient ships and printed with `text_format`, so it cannot drift from
the schema; without tritonclient the same text is written by hand (`_text_by_hand`).
Tensor names, types and shapes are read from the ONNX graph itself: the batch dimension
is left out (Triton adds it) and other dynamic dimensions become -1. A per-example scalar
(a scorer's `score`, shape (batch,)) is declared as dims [1] with an empty reshape, the
form Triton requires for batched tensors of rank 1.
"""

import os
import shutil

from kerasae.errors import KerasaeError
from kerasae.export.layouts import layout_parts, write_layout_folder
from kerasae.export.registry import ExportLayout, register_exporter

KIND = "triton"
CONFIG, MODEL_FILE, MANIFEST_COPY = "config.pbtxt", "model.onnx", "kerasae_manifest.json"
DEFAULT_MAX_BATCH_SIZE, DEFAULT_QUEUE_DELAY_US = 256, 100
#: onnx.TensorProto data type name -> Triton DataType name
DTYPES = {
    "FLOAT": "TYPE_FP32",
    "FLOAT16": "TYPE_FP16",
    "DOUBLE": "TYPE_FP64",
    "BFLOAT16": "TYPE_BF16",
    "BOOL": "TYPE_BOOL",
    "STRING": "TYPE_STRING",
    **{
        t: f"TYPE_{t}"
        for t in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
    },
}


def write_repository(
    export_dir,
    out,
    name=None,
    max_batch_size=DEFAULT_MAX_BATCH_SIZE,
    max_queue_delay_us=DEFAULT_QUEUE_DELAY_US,
    version=1,
):
    """Write the repository at `out` (atomically), each model in its `version` folder;
    returns the model names written."""
    if int(max_batch_size) < 0:
        raise KerasaeError(
            f"--max-batch-size must be 0 (no batching) or more, got {max_batch_size}"
        )
    name, parts = layout_parts(
        export_dir,
        name,
        "onnx",
        "ONNX file; a Triton repository needs an export with --format onnx",
    )

    def fill(root):
        for part, filename in parts.items():
            model = f"{name}_{part}"
            os.makedirs(os.path.join(root, model, str(int(version))))
            onnx_path = os.path.join(root, model, str(int(version)), MODEL_FILE)
            shutil.copyfile(os.path.join(export_dir, filename), onnx_path)
            shutil.copyfile(
                os.path.join(export_dir, "manifest.json"), os.path.join(root, model, MANIFEST_COPY)
            )
            with open(os.path.join(root, model, CONFIG), "w", encoding="utf-8") as f:
                f.write(
                    config_text(model, onnx_path, int(max_batch_size), int(max_queue_delay_us))
                )
        return [f"{name}_{p}" for p in parts]

    return write_layout_folder(out, KIND, is_layout, fill)


def is_layout(path):
    """Whether `path` is a repository this module wrote (so it may be replaced)."""
    entries = os.listdir(path)
    return bool(entries) and all(
        os.path.isfile(os.path.join(path, e, CONFIG))
        and os.path.isfile(os.path.join(path, e, MANIFEST_COPY))
        for e in entries
    )


def tensors(onnx_path):
    """[(kind, name, Triton type, dims with the batch dimension)] of the graph's interface."""
    import onnx  # optional: the onnx extra

    graph = onnx.load(onnx_path, load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    out = []
    for kind, values in (("input", graph.input), ("output", graph.output)):
        for v in values:
            if v.name in initializers:  # old opsets list weights as inputs
                continue
            type_name = onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)
            if type_name not in DTYPES:
                raise KerasaeError(
                    f"{os.path.basename(onnx_path)} {kind} {v.name!r} has type "
                    f"{type_name}, which Triton cannot serve"
                )
            dims = [
                d.dim_value if d.HasField("dim_value") else -1
                for d in v.type.tensor_type.shape.dim
            ]
            out.append((kind, v.name, DTYPES[type_name], dims))
    return out


def _entries(onnx_path, max_batch_size):
    """Input/output entries as plain dicts: name, data_type, dims, reshape (None or [])."""
    entries = []
    for kind, name, dtype, dims in tensors(onnx_path):
        reshape = None
        if max_batch_size > 0:
            if not dims or dims[0] != -1:
                raise KerasaeError(
                    f"{os.path.basename(onnx_path)} {kind} {name!r} has no "
                    "dynamic batch dimension; use --max-batch-size 0"
                )
            dims = dims[1:]
            if not dims:  # one value per example: Triton wants dims [1] reshaped to []
                dims, reshape = [1], []
        entries.append(
            {"kind": kind, "name": name, "data_type": dtype, "dims": dims, "reshape": reshape}
        )
    return entries


def model_config(
    name,
    onnx_path,
    max_batch_size=DEFAULT_MAX_BATCH_SIZE,
    max_queue_delay_us=DEFAULT_QUEUE_DELAY_US,
):
    """The `inference.ModelConfig` protobuf of one model (needs tritonclient)."""
    from tritonclient.grpc import model_config_pb2 as pb  # optional: the triton extra

    config = pb.ModelConfig(
        name=name,
        platform="onnxruntime_onnx",
        backend="onnxruntime",
        max_batch_size=max_batch_size,
    )
    for e in _entries(onnx_path, max_batch_size):
        tensor = (config.input if e["kind"] == "input" else config.output).add()
        tensor.name, tensor.data_type = e["name"], pb.DataType.Value(e["data_type"])
        tensor.dims.extend(e["dims"])
        if e["reshape"] is not None:
            tensor.reshape.shape.extend(e["reshape"])
            tensor.reshape.SetInParent()
    if max_batch_size > 0:
        config.dynamic_batching.max_queue_delay_microseconds = max_queue_delay_us
    return config


def config_text(
    name,
    onnx_path,
    max_batch_size=DEFAULT_MAX_BATCH_SIZE,
    max_queue_delay_us=DEFAULT_QUEUE_DELAY_US,
):
    """config.pbtxt's text: from the protobuf when tritonclient is installed."""
    try:
        from google.protobuf import text_format  # TensorFlow's protobuf: only here
        from tritonclient.grpc import model_config_pb2  # noqa: F401
    except ImportError:  # the same fields, printed the way text_format prints them
        return _text_by_hand(name, onnx_path, max_batch_size, max_queue_delay_us)
    return text_format.MessageToString(
        model_config(name, onnx_path, max_batch_size, max_queue_delay_us)
    )


def _text_by_hand(name, onnx_path, max_batch_size, max_queue_delay_us):
    lines = [
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch_size}",
    ]
    for e in _entries(onnx_path, max_batch_size):
        lines += [f"{e['kind']} {{", f'  name: "{e["name"]}"', f"  data_type: {e['data_type']}"]
        lines += [f"  dims: {d}" for d in e["dims"]]
        if e["reshape"] is not None:
            lines += ["  reshape {"] + [f"    shape: {d}" for d in e["reshape"]] + ["  }"]
        lines.append("}")
    if max_batch_size > 0:
        lines += [
            "dynamic_batching {",
            f"  max_queue_delay_microseconds: {max_queue_delay_us}",
            "}",
        ]
    lines.append('backend: "onnxruntime"')
    return "\n".join(lines) + "\n"


@register_exporter("triton")
class TritonLayout(ExportLayout):
    """A Triton Inference Server model repository: NAME_PART/config.pbtxt and
    NAME_PART/VERSION/model.onnx per part, with dynamic batching."""

    order = 1

    formats = ("onnx",)
    settings = {
        "max_batch_size": DEFAULT_MAX_BATCH_SIZE,
        "max_queue_delay_us": DEFAULT_QUEUE_DELAY_US,
        "version": 1,
    }
    write_repository = staticmethod(write_repository)
    is_layout = staticmethod(is_layout)
