"""`kerasae-runtime serve`: an ASGI (starlette + uvicorn) server for an export.

    POST /v1/generate     {"n": 16, "seed": 0}   -> {"x_hat": [...]}
    POST /v1/encode       {"x": [[...]]}         -> the encoder's outputs (z, or z_mean, z_log_var)
    POST /v1/decode       {"z": [[...]]}         -> {"x_hat": [...]}
    POST /v1/reconstruct  {"x": [[...]]}         -> {"x_hat": [...]}
    POST /v1/score        {"x": [[...]]}         -> {"score": [...], "is_anomaly": [...] or null}
    GET  /healthz, /v1/model (manifest, active providers, batching), /metrics (Prometheus)

Inputs are in the model's [0, 1] units unless `"raw": true` (`?raw=true` for .npy bodies),
as in the Python API. A body may be `application/x-npy` (one array: x, or z for decode);
with `Accept: application/x-npy` the response is the endpoint's first output as .npy (its
name in the `X-Kerasae-Output` header; bodies are read and checked in `bodies.py`).
Concurrent requests to a part are batched (`batching.py`). Client mistakes are 4xx with `{"error":
"..."}`: 400 malformed body or
unknown field, 404 a part the export lacks, 413 a body over --max-request-bytes, 415 an
unsupported content type, 422 a wrong value (shape, dtype, NaN/inf, more rows than
--max-batch, n out of range).
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kerasae_runtime import manifest as mf
from kerasae_runtime import session as sessions
from kerasae_runtime.batching import Batcher, Direct
from kerasae_runtime.bodies import RequestError, parse, read_body, render
from kerasae_runtime.metrics import Metrics
from kerasae_runtime.parts import Autoencoder, Decoder, Encoder

ENV = "KERASAE_RUNTIME_SERVE"
log = logging.getLogger("kerasae_runtime.serve")
# endpoint: (the part it needs, its array field, the fields it accepts)
ENDPOINTS = {
    "generate": ("decoder", None, ("n", "seed", "raw")),
    "encode": ("encoder", "x", ("x", "raw")),
    "decode": ("decoder", "z", ("z", "raw")),
    "reconstruct": ("autoencoder", "x", ("x", "raw")),
    "score": ("autoencoder", "x", ("x", "raw")),
}


@dataclasses.dataclass
class Settings:
    export_dir: str
    device: str = "auto"
    precision: str = "fp32"
    threads: int = None
    max_batch: int = 256  # rows per onnxruntime call, and the most rows one request may send
    max_delay_ms: float = 5.0
    max_request_bytes: int = 16 << 20
    batching: bool = True


def load_parts(settings):
    """{"encoder", "decoder", "autoencoder"}: each loaded part, or None where the export
    lacks it. Both parts load through `Autoencoder.load`, so it sees the export's extras."""
    sessions.configure(spinning=False)  # see session.py: a server shares its cores
    options = dict(device=settings.device, precision=settings.precision, threads=settings.threads)
    present = mf.read(settings.export_dir).get("parts", {})
    if "encoder" in present and "decoder" in present:
        ae = Autoencoder.load(settings.export_dir, **options)
        parts = {"encoder": ae.encoder, "decoder": ae.decoder, "autoencoder": ae}
    else:
        enc = Encoder.load(settings.export_dir, **options) if "encoder" in present else None
        dec = Decoder.load(settings.export_dir, **options) if "decoder" in present else None
        if enc is None and dec is None:
            raise mf.ExportError(f"{settings.export_dir} has neither an encoder nor a decoder")
        parts = {"encoder": enc, "decoder": dec, "autoencoder": None}
    if parts["decoder"] is not None and parts["decoder"].prior:
        _ = parts["decoder"].sampler  # a learned sampler's sampler.onnx: checked and opened now
    return parts


def _threshold(ae):
    return None if ae is None else ae.threshold


class Server:
    def __init__(self, settings, parts=None):
        self.settings = settings
        self.parts = parts or load_parts(settings)
        self.manifest = next(p for p in self.parts.values() if p is not None).manifest
        self.threshold = _threshold(self.parts["autoencoder"])
        self.metrics = Metrics(settings.max_batch)
        enc, dec, ae = self.parts["encoder"], self.parts["decoder"], self.parts["autoencoder"]
        fns = {
            "encoder": enc and enc.encode_all,
            "decoder": dec and (lambda z: {"x_hat": dec.decode(z)}),
            "reconstruct": ae and (lambda x: {"x_hat": ae.reconstruct(x)}),
            "score": ae and (lambda x: {"score": ae.score(x)}),
        }
        # batching: one call in flight per batcher; without it, calls run side by side
        self.executor = ThreadPoolExecutor(
            len(fns) if settings.batching else max(4, os.cpu_count() or 1), "kerasae-serve"
        )
        self.batchers = {}
        for key, fn in fns.items():
            if fn is None:
                continue
            observe = self.metrics.observe_batch(key)
            self.batchers[key] = (
                Batcher(
                    fn, settings.max_batch, settings.max_delay_ms / 1000, self.executor, observe
                )
                if settings.batching
                else Direct(fn, self.executor, observe)
            )

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        for batcher in self.batchers.values():
            batcher.start()
        try:
            yield
        finally:  # uvicorn has let in-flight requests finish; drain what is still queued
            for batcher in self.batchers.values():
                await batcher.close()
            self.executor.shutdown(wait=True)

    def _rows(self, part, array, raw):
        if raw:
            array = mf.scale(array, self.manifest.get("scaling"))
        x = part._check(array)  # the runtime's own shape and finiteness checks
        if len(x) == 0:
            raise RequestError(422, "no examples given (the array is empty)")
        if len(x) > self.settings.max_batch:
            raise RequestError(
                422,
                f"{len(x)} examples in one request; this server takes at "
                f"most {self.settings.max_batch} (--max-batch)",
            )
        return x

    async def compute(self, name, fields):
        raw = fields.get("raw", False)
        enc, dec = self.parts["encoder"], self.parts["decoder"]
        if name == "generate":
            n, seed = fields.get("n", 16), fields.get("seed")
            if (
                not isinstance(n, int)
                or isinstance(n, bool)
                or not 1 <= n <= self.settings.max_batch
            ):
                raise RequestError(
                    422, f"n must be an integer from 1 to {self.settings.max_batch}, got {n!r}"
                )
            if seed is not None and (
                not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63
            ):
                raise RequestError(422, f"seed must be a non-negative integer, got {seed!r}")
            try:  # no prior (not generative) or one this runtime cannot draw: 404
                sampler = dec.sampler
                # a learned sampler runs a network per draw (pixelcnn: one per code
                # position): off the event loop; array samplers draw in place
                z = (
                    await asyncio.to_thread(sampler.sample, n, seed)
                    if sampler.learned
                    else sampler.sample(n, seed)
                )
            except mf.ExportError as exc:
                raise RequestError(404, str(exc)) from None
            out = await self.batchers["decoder"].submit(z)
        elif name == "encode":
            out = await self.batchers["encoder"].submit(self._rows(enc, fields["x"], raw))
        elif name == "decode":
            out = await self.batchers["decoder"].submit(self._rows(dec, fields["z"], False))
        else:
            out = await self.batchers[name].submit(self._rows(enc, fields["x"], raw))
        if raw and "x_hat" in out:
            out = {"x_hat": mf.unscale(out["x_hat"], self.manifest.get("scaling"))}
        if name == "score":
            out["is_anomaly"] = None if self.threshold is None else out["score"] > self.threshold
        return out

    def _missing(self, name):
        need = ENDPOINTS[name][0]
        if self.parts[need] is not None:
            return None
        lacking = [p for p in ("encoder", "decoder") if self.parts[p] is None]
        return (
            f"this export has no {' and no '.join(lacking)}: /v1/{name} needs "
            f"{'the encoder and the decoder' if need == 'autoencoder' else 'the ' + need}"
        )

    async def handle(self, request):
        name = request.path_params["name"]
        if name not in ENDPOINTS:
            return JSONResponse(
                {
                    "error": f"no endpoint /v1/{name}; there are "
                    f"{', '.join('/v1/' + e for e in ENDPOINTS)}"
                },
                404,
            )
        start, status, kind = time.perf_counter(), 200, None
        try:
            missing = self._missing(name)
            if missing:
                raise RequestError(404, missing)
            body = await read_body(request, self.settings.max_request_bytes)
            _, field, allowed = ENDPOINTS[name]
            out = await self.compute(name, parse(body, request, name, field, allowed))
            response = render(out, request.headers.get("accept", ""))
        except RequestError as exc:
            status, kind = exc.status, "request"
            response = JSONResponse({"error": exc.message}, status)
        except mf.ExportError as exc:  # the runtime's checks: shape, NaN, scaling
            status, kind = 422, "request"
            response = JSONResponse({"error": str(exc)}, status)
        except Exception as exc:  # a server fault, not the client's: logged, no traceback sent
            log.exception("/v1/%s failed", name)
            status, kind = 500, "internal"
            response = JSONResponse(
                {"error": f"internal error ({type(exc).__name__}); see the server's log"}, status
            )
        self.metrics.observe_request(name, status, time.perf_counter() - start, kind)
        return response

    async def model(self, request):
        info = dict(self.manifest)
        info["serve"] = {
            "providers": {p: part.provider for p, part in self._loaded().items()},
            "precision": self.settings.precision,
            "batching": {
                "enabled": self.settings.batching,
                "max_batch": self.settings.max_batch,
                "max_delay_ms": self.settings.max_delay_ms,
            },
            "max_rows_per_request": self.settings.max_batch,
            "max_request_bytes": self.settings.max_request_bytes,
            "endpoints": [f"/v1/{e}" for e in ENDPOINTS if not self._missing(e)],
            "threshold": self.threshold,
            "is_anomaly": (
                "score > threshold"
                if self.threshold is not None
                else "null: this export carries no anomaly threshold"
            ),
        }
        return JSONResponse(info)

    def _loaded(self):
        loaded = {p: self.parts[p] for p in ("encoder", "decoder") if self.parts[p]}
        scorer = getattr(self.parts["autoencoder"], "scorer", None)  # exports that carry one
        return {**loaded, "scorer": scorer} if scorer is not None else loaded

    async def healthz(self, request):
        return JSONResponse({"status": "ok", "parts": list(self._loaded())})

    async def prometheus(self, request):
        return Response(self.metrics.render(), media_type=self.metrics.content_type)


async def _http_error(request, exc):
    return JSONResponse({"error": exc.detail}, exc.status_code)


def create_app(settings, parts=None):
    server = Server(settings, parts)
    routes = [
        Route("/healthz", server.healthz),
        Route("/v1/model", server.model),
        Route("/metrics", server.prometheus),
        Route("/v1/{name}", server.handle, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes, lifespan=server.lifespan, exception_handlers={HTTPException: _http_error}
    )
    app.state.server = server
    return app


def app_from_env():
    """The app factory each uvicorn worker process calls (--workers > 1)."""
    return create_app(Settings(**json.loads(os.environ[ENV])))


def run(settings, host="127.0.0.1", port=8000, workers=1):
    import uvicorn

    # keep-alive longer than a loaded server's worst latency: a connection the server
    # closes as the client reuses it is a failed request
    options = dict(
        host=host, port=port, access_log=False, timeout_graceful_shutdown=30, timeout_keep_alive=60
    )
    if workers > 1:  # uvicorn's worker processes import the app by name
        load_parts(settings)  # fail here, once, with one line, not in every worker
        os.environ[ENV] = json.dumps(dataclasses.asdict(settings))
        uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)
