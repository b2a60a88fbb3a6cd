"""`kerasae-runtime serve`: an ASGI server (uvicorn) for an export, with two APIs over one set
of batched onnxruntime sessions: kerasae's own /v1 (`v1.py`) and the Open Inference
Protocol (`v2.py`), plus

    GET /healthz   200 when ready (503 while loading or draining), as /v2/health/ready
    GET /metrics   Prometheus, added up over every worker (`metrics.py`)

The parts load in the background after the server starts listening: liveness answers at
once, readiness once they are loaded. Concurrent requests to a part are batched
(`batching.py`); at most --max-queue requests are inside, each with a deadline
(`admission.py`); large bodies are parsed and written in a helper process (`offload.py`).
Client mistakes are 4xx with `{"error": "..."}`: 400 malformed body or unknown field, 404 a
part or model the export lacks, 413 a body over --max-request-bytes, 415 an unsupported
content type, 422 a wrong value (shape, rank, dtype, NaN/inf, outside the training range,
more rows than --max-batch, n out of range); 503 with Retry-After when full, late, loading
or draining.
"""

import asyncio
import dataclasses
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from kerasae_runtime import inputs as checks
from kerasae_runtime import manifest as mf
from kerasae_runtime import session as sessions
from kerasae_runtime.admission import FAILED, READY, Gate, late
from kerasae_runtime.asgi import App, Response, error, json_response
from kerasae_runtime.batching import Batcher, Direct
from kerasae_runtime.bodies import RequestError
from kerasae_runtime.metrics import Metrics
from kerasae_runtime.offload import Offload
from kerasae_runtime.parts import Autoencoder, Decoder, Encoder
from kerasae_runtime.v1 import V1
from kerasae_runtime.v2 import Models

log = logging.getLogger("kerasae_runtime.serve")


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
    max_queue: int = 512  # requests inside the server at once; the next gets a 503
    timeout_ms: float = 10_000.0  # a request still waiting for its model call then: 503
    drain_seconds: float = 2.0  # readiness false, still serving, after SIGTERM
    allow_out_of_range: bool = False
    instances: int = 1  # model calls in flight per part (with --threads 1: one core each)
    grpc_port: int = None  # the Open Inference Protocol over gRPC too (the grpc extra)
    grpc_host: str = "127.0.0.1"
    exit_on_load_failure: bool = False  # the CLI's server: a model that cannot load exits 2


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


class Server:
    def __init__(self, settings, parts=None, loader=load_parts):
        self.settings, self.loader = settings, loader
        self.parts, self.manifest, self.threshold, self.training_range = None, None, None, None
        self.gate = Gate(settings.max_queue, settings.timeout_ms, settings.drain_seconds)
        self.metrics = Metrics(settings.max_batch)
        self.offload = Offload()
        self.batchers, self.executor, self._given, self._grpc = {}, None, parts, None
        self.v1, self.v2 = V1(self), Models(self)

    # lifecycle -------------------------------------------------------------------------
    async def startup(self):
        self.gate.drain_on_sigterm()
        await self.offload.start()
        if self.settings.grpc_port:
            from kerasae_runtime import grpc_v2  # grpcio: only with --grpc-port (grpc extra)

            s = self.settings
            self._grpc = await grpc_v2.start(self, s.grpc_host, s.grpc_port)
        if self._given is not None:
            self._install(self._given)
        else:
            self._loading = asyncio.get_running_loop().create_task(self._load())

    async def _load(self):
        try:
            self._install(await asyncio.to_thread(self.loader, self.settings))
        except Exception as exc:  # readiness stays false, with the reason
            self.gate.state, self.gate.reason = FAILED, f"the model failed to load: {exc}"
            log.error("kerasae-runtime: error: %s", exc)
            if self.settings.exit_on_load_failure:
                os._exit(2)  # nothing was admitted: a supervisor restarts or reports it

    def _install(self, parts):
        s = self.settings
        self.parts = parts
        self.manifest = next(p for p in parts.values() if p is not None).manifest
        ae = parts["autoencoder"]
        self.threshold = None if ae is None else ae.threshold
        self.training_range = checks.training_range(self.manifest)
        enc, dec = parts["encoder"], parts["decoder"]
        fns = {
            "encoder": enc and enc.encode_all,
            "decoder": dec and (lambda z: {"x_hat": dec.decode(z)}),
            "reconstruct": ae and (lambda x: {"x_hat": ae.reconstruct(x)}),
            "score": ae and (lambda x: {"score": ae.score(x)}),
        }
        # batching: one call in flight per batcher; without it, calls run side by side
        workers = len(fns) * s.instances if s.batching else max(4, os.cpu_count() or 1)
        self.executor = ThreadPoolExecutor(workers, "kerasae-serve")
        for key, fn in fns.items():
            if fn is None:
                continue
            observe = self.metrics.observe_batch(key)
            self.batchers[key] = (
                Batcher(
                    fn, s.max_batch, s.max_delay_ms / 1000, self.executor, observe, s.instances
                )
                if s.batching
                else Direct(fn, self.executor, observe)
            )
            self.batchers[key].start()
        self.gate.state = READY

    async def shutdown(self):  # uvicorn has let in-flight requests finish
        if self._grpc is not None:
            await self._grpc.stop(grace=5)
        for batcher in self.batchers.values():
            await batcher.close()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
        self.offload.close()

    # the work --------------------------------------------------------------------------
    @staticmethod
    def loop_time():
        return asyncio.get_running_loop().time()

    async def serve(self, endpoint, request, work):
        """Admit, run `work(request, deadline)`, answer errors as JSON, count the status."""
        response, failure = await self.guarded(
            endpoint, request.headers, lambda deadline: work(request, deadline)
        )
        return _refusal(failure) if failure else response

    async def guarded(self, endpoint, headers, work):
        """The one wrapper of every inference request, HTTP (`serve`) and gRPC
        (`grpc_v2`): admit it, await `work(deadline)`, map what it raises to a
        `RequestError` (the runtime's own checks 422, a server fault 500, logged), and
        count the status. Returns (result, None) or (None, the RequestError to answer)."""
        start, result, failure = time.perf_counter(), None, None
        try:
            deadline = self.gate.enter(headers)
        except RequestError as exc:
            failure = exc
        else:
            try:
                result = await work(deadline)
            except RequestError as exc:
                failure = exc
            except mf.ExportError as exc:  # the runtime's checks: shape, NaN, scaling
                failure = RequestError(422, str(exc))
            except Exception as exc:  # a server fault: logged, no traceback sent
                log.exception("%s failed", endpoint)
                failure = RequestError(
                    500, f"internal error ({type(exc).__name__}); see the log", "internal"
                )
            finally:
                self.gate.leave()
        status = failure.status if failure else getattr(result, "status", 200)
        kind = failure.kind if failure else None
        self.metrics.observe_request(endpoint, status, time.perf_counter() - start, kind)
        return result, failure

    async def call(self, key, x, deadline):
        return await self.batchers[key].submit(x, deadline, late)

    def model_inputs(self, array, shape, name, raw, endpoint):
        """An encoder's x in model units: scaled if raw, strict shape, training range."""
        if raw:
            array = mf.scale(array, self.manifest.get("scaling"))
        x = checks.rows(array, shape, name, self.settings.max_batch)
        problem = checks.outside(x, self.training_range, name, raw)
        if problem and not self.settings.allow_out_of_range:
            raise RequestError(422, problem)
        if problem:
            self.metrics.observe_out_of_range(endpoint)
        return x

    async def sample(self, n, seed):
        top = self.settings.max_batch
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= top:
            raise RequestError(422, f"n must be an integer from 1 to {top}, got {n!r}")
        if seed is not None and (
            not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63
        ):
            raise RequestError(422, f"seed must be a non-negative integer, got {seed!r}")
        try:  # no prior (not generative) or one this runtime cannot draw: 404
            sampler = self.parts["decoder"].sampler
            # a learned sampler runs a network per draw: off the event loop
            if sampler.learned:
                return await asyncio.to_thread(sampler.sample, n, seed)
            return sampler.sample(n, seed)
        except mf.ExportError as exc:
            raise RequestError(404, str(exc)) from None

    async def generate(self, n, seed, deadline):
        z = await self.sample(n, seed)
        return (await self.call("decoder", z, deadline))["x_hat"]

    def loaded(self):
        parts = self.parts or {}
        loaded = {p: parts[p] for p in ("encoder", "decoder") if parts.get(p)}
        scorer = getattr(parts.get("autoencoder"), "scorer", None)  # exports that carry one
        return {**loaded, "scorer": scorer} if scorer is not None else loaded

    # health and metrics ----------------------------------------------------------------
    def not_ready(self):
        """503 with the reason (loading, draining, failed) and Retry-After."""
        return error(503, f"not ready: {self.gate.reason}", ((b"retry-after", b"1"),))

    async def live(self, request):
        return Response(b"", 200)

    async def ready(self, request):
        if not self.gate.ready:
            return self.not_ready()
        return Response(b"", 200)

    async def healthz(self, request):
        if not self.gate.ready:
            return self.not_ready()
        return json_response({"status": "ok", "parts": list(self.loaded())})

    async def server_metadata(self, request):
        from kerasae_runtime import __version__  # the package's, read once per call

        return json_response(
            {
                "name": "kerasae-runtime",
                "version": __version__,
                "extensions": ["binary_tensor_data"],
            }
        )

    async def prometheus(self, request):
        return Response(self.metrics.render(), 200, self.metrics.content_type.encode())


def _refusal(exc):
    headers = ((b"retry-after", str(exc.retry_after).encode()),) if exc.retry_after else ()
    return error(exc.status, exc.message, headers)


def create_app(settings, parts=None, loader=load_parts):
    server = Server(settings, parts, loader)
    get = lambda fn: {"GET": fn}  # noqa: E731
    exact = {
        "/healthz": get(server.healthz),
        "/metrics": get(server.prometheus),
        "/v1/model": get(server.v1.model),
        "/v2": get(server.server_metadata),
        "/v2/health/live": get(server.live),
        "/v2/health/ready": get(server.ready),
    }
    prefixes = [("/v1/", server.v1.resolve), ("/v2/models/", server.v2.resolve)]
    app = App(exact, prefixes, server.startup, server.shutdown)
    app.state.server = server
    return app
