"""The Open Inference Protocol over gRPC (`serve --grpc-port`): the same models, batchers,
admission and metrics as the HTTP front end, on the protocol's own service
(`inference.GRPCInferenceService`, the proto Triton and KServe share).

The generated message and service classes come from tritonclient's package (the grpc
extra: `pip install 'kerasae-runtime[grpc]'`), so the server and Triton's client speak
one copy of the proto. Tensors arrive as `raw_input_contents` (what tritonclient sends)
or typed `contents`; outputs go back as `raw_output_contents`. Errors map to gRPC status
codes: 400/422 INVALID_ARGUMENT, 404 NOT_FOUND, 503 UNAVAILABLE, 500 INTERNAL.
"""

import grpc
import numpy as np
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pbg

from kerasae_runtime import tensors
from kerasae_runtime.bodies import RequestError
from kerasae_runtime.v2 import VERSION

CODES = {404: grpc.StatusCode.NOT_FOUND, 503: grpc.StatusCode.UNAVAILABLE}
CONTENTS = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT64": "int64_contents",
    "INT32": "int_contents",
    "BOOL": "bool_contents",
}


def _param(value):
    kind = value.WhichOneof("parameter_choice")
    return None if kind is None else getattr(value, kind)


def _inputs(request):
    inputs, raw = {}, list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise RequestError(400, "raw_input_contents must hold one entry per input")
    for i, tensor in enumerate(request.inputs):
        kind, shape = tensor.datatype, list(tensor.shape)
        if kind not in tensors.DATATYPES:
            raise RequestError(400, f"input {tensor.name!r} has datatype {kind!r}")
        dtype = np.dtype(tensors.DATATYPES[kind]).newbyteorder("<")
        count = int(np.prod(shape)) if shape else 1
        if raw:
            if len(raw[i]) != count * dtype.itemsize:
                raise RequestError(
                    400, f"input {tensor.name!r}: raw contents do not match {shape}"
                )
            array = np.frombuffer(raw[i], dtype).reshape(shape)
        else:
            values = getattr(tensor.contents, CONTENTS.get(kind, "bytes_contents"))
            if len(values) != count:
                raise RequestError(400, f"input {tensor.name!r}: {len(values)} values for {shape}")
            array = np.asarray(values, dtype=dtype).reshape(shape)
        inputs[tensor.name] = array
    return inputs


class Service(pbg.GRPCInferenceServiceServicer):
    def __init__(self, server):
        self.server = server

    async def _fail(self, context, status, message):
        code = CODES.get(status, grpc.StatusCode.INTERNAL if status >= 500 else None)
        await context.abort(code or grpc.StatusCode.INVALID_ARGUMENT, message)

    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.server.gate.ready)

    async def ModelReady(self, request, context):
        ready = self.server.gate.ready and request.name in self.server.v2.specs()
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(self, request, context):
        from kerasae_runtime import __version__  # the package's, read per call

        return pb.ServerMetadataResponse(
            name="kerasae-runtime", version=__version__, extensions=["binary_tensor_data"]
        )

    def _spec(self, name, version):
        specs = self.server.v2.specs()
        if name not in specs:
            raise RequestError(404, f"no model {name!r}; this server has {', '.join(specs)}")
        if version not in ("", VERSION):
            raise RequestError(404, f"model {name!r} has version {VERSION} only")
        return specs[name]

    async def ModelMetadata(self, request, context):
        try:
            ins, outs = self._spec(request.name, request.version)
        except RequestError as exc:
            return await self._fail(context, exc.status, exc.message)

        def meta(t):
            return pb.ModelMetadataResponse.TensorMetadata(
                name=t["name"], datatype=t["datatype"], shape=t["shape"]
            )

        return pb.ModelMetadataResponse(
            name=request.name,
            versions=[VERSION],
            platform="onnxruntime_onnx",
            inputs=[meta(t) for t in ins],
            outputs=[meta(t) for t in outs],
        )

    async def ModelInfer(self, request, context):
        async def work(deadline):
            self._spec(request.model_name, request.model_version)
            params = {k: _param(v) for k, v in request.parameters.items()}
            result = await self.server.v2.compute(
                request.model_name, _inputs(request), params, deadline
            )
            wanted = [o.name for o in request.outputs] or list(result)
            missing = [n for n in wanted if n not in result]
            if missing:
                raise RequestError(400, f"no output {missing[0]!r}; there are {', '.join(result)}")
            return result, wanted

        done, failure = await self.server.guarded(f"grpc/{request.model_name}", {}, work)
        if failure:
            return await self._fail(context, failure.status, failure.message)
        result, wanted = done
        response = pb.ModelInferResponse(
            model_name=request.model_name, model_version=VERSION, id=request.id
        )
        for name in wanted:
            value = np.ascontiguousarray(result[name])
            response.outputs.add(
                name=name, datatype=tensors.datatype(value.dtype), shape=list(value.shape)
            )
            response.raw_output_contents.append(
                value.astype(value.dtype.newbyteorder("<")).tobytes()
            )
        return response


async def start(server, host, port):
    """A grpc.aio server on the running event loop, serving `server`'s models."""
    grpc_server = grpc.aio.server()
    pbg.add_GRPCInferenceServiceServicer_to_server(Service(server), grpc_server)
    if grpc_server.add_insecure_port(f"{host}:{port}") == 0:
        raise RuntimeError(f"cannot listen for gRPC on {host}:{port}")
    await grpc_server.start()
    return grpc_server
