"""The Open Inference Protocol (KServe v2) on `kerasae-runtime serve`: the endpoints that
Triton's and KServe's clients, load tools and gateways speak, one model per exported part.

    GET  /v2                                   server metadata (extensions: binary_tensor_data)
    GET  /v2/health/live, /v2/health/ready     200, or 503 while loading or draining
    GET  /v2/models/{name}[/versions/1]        model metadata: inputs, outputs, datatypes
    GET  /v2/models/{name}[/versions/1]/ready  200 when it can infer
    GET  /v2/models/{name}[/versions/1]/config Triton's model configuration (max_batch_size)
    POST /v2/models/{name}[/versions/1]/infer  JSON tensors, or the binary tensor extension

Models: `encoder` (x -> its outputs), `decoder` (z -> x_hat), `scorer` (x -> score, and
is_anomaly where the export has a threshold), `sampler` (n, seed -> z, where the export
can draw). Inputs are in the model's [0, 1] units unless the request's parameters say
`"raw": true`. Tested with `tritonclient.http.InferenceServerClient` unchanged.
"""

import numpy as np

from kerasae_runtime import inputs as checks
from kerasae_runtime import manifest as mf
from kerasae_runtime import tensors
from kerasae_runtime.asgi import Response, error, json_response
from kerasae_runtime.bodies import RequestError

VERSION = "1"
OCTET = b"application/octet-stream"


def _io(name, kind, shape):
    return {"name": name, "datatype": kind, "shape": [-1, *shape]}


class Models:
    """The v2 models of one server (its parts decide which exist)."""

    def __init__(self, server):
        self.server, self._specs = server, None

    def specs(self):
        """{name: (inputs, outputs)} with OIP tensor metadata; empty while loading. Built
        once, when the parts are there (they do not change afterwards)."""
        if self._specs is None:
            if self.server.parts is None:
                return {}
            self._specs = self._build()
        return self._specs

    def _build(self):
        s = self.server
        enc, dec, ae = s.parts["encoder"], s.parts["decoder"], s.parts["autoencoder"]
        out = {}
        if enc is not None:
            outs = [_io(o["name"], "FP32", o["shape"][1:]) for o in enc.info["outputs"]]
            out["encoder"] = ([_io(enc.info["inputs"][0]["name"], "FP32", enc.input_shape)], outs)
        if dec is not None:
            out["decoder"] = (
                [_io(dec.info["inputs"][0]["name"], "FP32", dec.input_shape)],
                [_io("x_hat", "FP32", dec.info["outputs"][0]["shape"][1:])],
            )
            if dec.prior:
                latent = list(dec.input_shape)
                ins = [
                    {"name": "n", "datatype": "INT64", "shape": [1]},
                    {"name": "seed", "datatype": "INT64", "shape": [1], "optional": True},
                ]
                out["sampler"] = (ins, [_io("z", "FP32", latent)])
        if ae is not None:
            outs = [_io("score", "FP32", [])]
            if s.threshold is not None:
                outs.append(_io("is_anomaly", "BOOL", []))
            out["scorer"] = ([_io("x", "FP32", ae.encoder.input_shape)], outs)
        return out

    def resolve(self, path):
        """/v2/models/{name}[/versions/{v}][/ready|/infer|/config] -> routes."""
        parts = path.split("/")[3:]  # after "", "v2", "models"
        if not parts or not parts[0]:
            return None
        name, rest, version = parts[0], parts[1:], None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        action = rest[0] if rest else "metadata"
        if len(rest) > 1 or action not in ("metadata", "ready", "infer", "config"):
            return None
        params = {"model": name, "version": version}
        if action == "infer":
            return {"POST": self.infer}, params
        return {"GET": getattr(self, action)}, params

    def _spec(self, request):
        name, version = request.params["model"], request.params["version"]
        specs = self.specs()
        if name not in specs:
            known = ", ".join(specs) or "none while the model loads"
            raise RequestError(404, f"no model {name!r}; this server has {known}")
        if version not in (None, VERSION):
            raise RequestError(404, f"model {name!r} has version {VERSION} only, not {version!r}")
        return name, specs[name]

    async def metadata(self, request):
        try:
            name, (ins, outs) = self._spec(request)
        except RequestError as exc:
            return error(exc.status, exc.message)
        return json_response(
            {
                "name": name,
                "versions": [VERSION],
                "platform": "onnxruntime_onnx",
                "inputs": ins,
                "outputs": outs,
            }
        )

    async def config(self, request):
        try:
            name, (ins, outs) = self._spec(request)
        except RequestError as exc:
            return error(exc.status, exc.message)

        def tensor(t):
            return {
                "name": t["name"],
                "data_type": "TYPE_" + t["datatype"],
                "dims": t["shape"][1:],
            }

        batch = 0 if name == "sampler" else self.server.settings.max_batch
        return json_response(
            {
                "name": name,
                "platform": "onnxruntime_onnx",
                "max_batch_size": batch,
                "input": [tensor(t) for t in ins],
                "output": [tensor(t) for t in outs],
                "dynamic_batching": {} if self.server.settings.batching else None,
            }
        )

    async def ready(self, request):
        try:
            self._spec(request)
        except RequestError as exc:
            return error(exc.status, exc.message)
        if not self.server.gate.ready:
            return error(503, f"not ready: {self.server.gate.reason}")
        return Response(b"", 200)

    async def infer(self, request):
        model = request.params["model"]
        return await self.server.serve(f"v2/{model}", request, self._infer)

    async def _infer(self, request, deadline):
        s = self.server
        name, _ = self._spec(request)
        body = await request.body(s.settings.max_request_bytes)
        header = request.headers.get(tensors.HEADER)
        inputs, wanted, binary_default, params, request_id = await s.offload.run(
            len(body), tensors.decode, body, header
        )
        result = await self.compute(name, inputs, params, deadline)
        if wanted is None:
            wanted = [(n, binary_default) for n in result]
        unknown = [n for n, _ in wanted if n not in result]
        if unknown:
            raise RequestError(
                400, f"model {name!r} has outputs {', '.join(result)}, not {unknown[0]!r}"
            )
        selected = {n: result[n] for n, _ in wanted}
        binary = {n for n, b in wanted if b}
        version = request.params["version"] or VERSION
        body, headers = await s.offload.run(
            sum(np.asarray(v).nbytes for v in selected.values()),
            tensors.encode,
            name,
            version,
            selected,
            binary,
            request_id,
        )
        return Response(body, 200, OCTET if headers else b"application/json", headers)

    async def compute(self, name, inputs, params, deadline):
        """Model `name` on decoded `inputs` {name: ndarray} with the request's parameters
        (raw, Triton's timeout in microseconds): its outputs, in the metadata's order.
        Shared by the HTTP and the gRPC front ends."""
        s = self.server
        ins, outs = self.specs()[name]
        timeout = params.get("timeout")  # Triton's per-request timeout, microseconds
        if timeout is not None:
            if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
                raise RequestError(400, f"parameters.timeout must be positive µs, got {timeout!r}")
            deadline = min(deadline, s.loop_time() + timeout / 1e6)
        raw = params.get("raw", False)
        if not isinstance(raw, bool):
            raise RequestError(400, "parameters.raw must be true or false")
        names = [t["name"] for t in ins]
        unknown = sorted(set(inputs) - set(names))
        missing = [t["name"] for t in ins if t["name"] not in inputs and not t.get("optional")]
        if unknown or missing:
            raise RequestError(
                400,
                f"model {name!r} takes inputs {', '.join(names)}"
                f"{'; unknown ' + ', '.join(unknown) if unknown else ''}"
                f"{'; missing ' + ', '.join(missing) if missing else ''}",
            )
        result = await self._run(name, ins[0], inputs, raw, deadline)
        return {t["name"]: result[t["name"]] for t in outs}

    async def _run(self, name, first, inputs, raw, deadline):
        s = self.server
        if name == "sampler":
            n, seed = (_scalar(inputs.get(k), k) for k in ("n", "seed"))
            return {"z": await s.sample(n, seed)}
        tensor = inputs[first["name"]]
        if tensor.dtype != np.float32:
            raise RequestError(
                400,
                f"input {first['name']!r} has datatype {tensors.datatype(tensor.dtype)}; "
                f"model {name!r} takes FP32",
            )
        shape = first["shape"][1:]
        if name == "decoder":
            x = checks.rows(tensor, tuple(shape), first["name"], s.settings.max_batch)
            out = await s.call("decoder", x, deadline)
            if raw:
                out = {"x_hat": mf.unscale(out["x_hat"], s.manifest.get("scaling"))}
            return out
        x = s.model_inputs(tensor, tuple(shape), first["name"], raw, f"v2/{name}")
        if name == "encoder":
            return await s.call("encoder", x, deadline)
        out = await s.call("score", x, deadline)
        if s.threshold is not None:
            out = {**out, "is_anomaly": out["score"] > s.threshold}
        return out


def _scalar(value, name):
    if value is None:
        return None
    if value.dtype.kind not in "iu" or value.size != 1:
        raise RequestError(400, f"input {name!r} must be one INT64 value")
    return int(value.reshape(-1)[0])
