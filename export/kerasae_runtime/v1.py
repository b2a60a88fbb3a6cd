"""kerasae's own /v1 API on `kerasae-runtime serve`:

    POST /v1/generate     {"n": 16, "seed": 0}   -> {"x_hat": [...]}
    POST /v1/encode       {"x": [[...]]}         -> the encoder's outputs (z, or z_mean, z_log_var)
    POST /v1/decode       {"z": [[...]]}         -> {"x_hat": [...]}
    POST /v1/reconstruct  {"x": [[...]]}         -> {"x_hat": [...]}
    POST /v1/score        {"x": [[...]]}         -> {"score": [...], "is_anomaly": [...] or null}
    GET  /v1/model        the manifest, active providers, batching and limits

Inputs are in the model's [0, 1] units unless `"raw": true` (`?raw=true` for .npy bodies),
as in the Python API. A body may be `application/x-npy` (one array: x, or z for decode);
with `Accept: application/x-npy` the response is the endpoint's first output as .npy (its
name in the `X-Kerasae-Output` header).
"""

from kerasae_runtime import bodies
from kerasae_runtime import manifest as mf
from kerasae_runtime.asgi import Response, error, json_response
from kerasae_runtime.bodies import RequestError
from kerasae_runtime.inputs import rows

# endpoint: (the part it needs, its array field, the fields it accepts)
ENDPOINTS = {
    "generate": ("decoder", None, ("n", "seed", "raw")),
    "encode": ("encoder", "x", ("x", "raw")),
    "decode": ("decoder", "z", ("z", "raw")),
    "reconstruct": ("autoencoder", "x", ("x", "raw")),
    "score": ("autoencoder", "x", ("x", "raw")),
}


class V1:
    def __init__(self, server):
        self.server = server

    def resolve(self, path):
        name = path[len("/v1/") :]
        if name in ENDPOINTS:
            return {"POST": self.handle}, {"name": name}
        if "/" in name or name == "model":
            return None
        return {"POST": self.unknown}, {"name": name}

    async def unknown(self, request):
        known = ", ".join("/v1/" + e for e in ENDPOINTS)
        return error(404, f"no endpoint /v1/{request.params['name']}; there are {known}")

    def missing(self, name):
        """Why this export cannot serve /v1/`name`, or None."""
        need = ENDPOINTS[name][0]
        parts = self.server.parts
        if parts is None or parts[need] is not None:
            return None
        lacking = [p for p in ("encoder", "decoder") if parts[p] is None]
        return (
            f"this export has no {' and no '.join(lacking)}: /v1/{name} needs "
            f"{'the encoder and the decoder' if need == 'autoencoder' else 'the ' + need}"
        )

    async def handle(self, request):
        return await self.server.serve(request.params["name"], request, self._compute)

    async def _compute(self, request, deadline):
        s, name = self.server, request.params["name"]
        missing = self.missing(name)
        if missing:
            raise RequestError(404, missing)
        body = await request.body(s.settings.max_request_bytes)
        _, field, allowed = ENDPOINTS[name]
        kind = bodies.content_kind(request.headers)
        raw_query = request.query("raw") if kind == bodies.NPY else None
        fields = await s.offload.run(
            len(body), bodies.parse, body, kind, raw_query, name, field, allowed
        )
        raw = fields.get("raw", False)
        if name == "generate":
            out = {"x_hat": await s.generate(fields.get("n", 16), fields.get("seed"), deadline)}
        elif name == "decode":
            dec = s.parts["decoder"]
            z = rows(fields["z"], dec.input_shape, "z", s.settings.max_batch)
            out = await s.call("decoder", z, deadline)
        else:
            enc = s.parts["encoder"]
            x = s.model_inputs(fields["x"], enc.input_shape, "x", raw, name)
            out = await s.call("encoder" if name == "encode" else name, x, deadline)
        if raw and "x_hat" in out:
            out = {"x_hat": mf.unscale(out["x_hat"], s.manifest.get("scaling"))}
        if name == "score":
            out = {
                **out,
                "is_anomaly": None if s.threshold is None else out["score"] > s.threshold,
            }
        npy = bodies.NPY in request.headers.get("accept", "")
        size = sum(getattr(v, "nbytes", 0) for v in out.values())
        content, media, headers = await s.offload.run(size, bodies.render, out, npy)
        return Response(content, 200, media, headers)

    async def model(self, request):
        s = self.server
        if s.parts is None:
            return s.not_ready()
        info = dict(s.manifest)
        info["serve"] = {
            "providers": {p: part.provider for p, part in s.loaded().items()},
            "precision": s.settings.precision,
            "batching": {
                "enabled": s.settings.batching,
                "max_batch": s.settings.max_batch,
                "max_delay_ms": s.settings.max_delay_ms,
            },
            "max_rows_per_request": s.settings.max_batch,
            "max_request_bytes": s.settings.max_request_bytes,
            "max_queue": s.settings.max_queue,
            "timeout_ms": s.settings.timeout_ms,
            "allow_out_of_range": s.settings.allow_out_of_range,
            "endpoints": [f"/v1/{e}" for e in ENDPOINTS if not self.missing(e)],
            "v2_models": list(s.v2.specs()),
            "threshold": s.threshold,
            "is_anomaly": (
                "score > threshold"
                if s.threshold is not None
                else "null: this export carries no anomaly threshold"
            ),
        }
        return json_response(info)
