"""Starting `kerasae-runtime serve` under uvicorn: a check of the export before listening,
one process or `--workers N` sharing a metrics folder, and uvicorn's HTTP protocol with two
changes (`Protocol`):

- malformed HTTP is answered in JSON: uvicorn's parser refuses a request it cannot parse
  (`Content-Length: abc`) with a plain-text 400 before any application sees it; here the
  refusal is `{"error": ...}`, like every other client mistake;
- one send per response: uvicorn writes a response's headers and its body with a system
  call each; the transport here gathers what is written in one turn of the event loop and
  sends it at the end of the turn (py-spy: the two sends were 43% of the server's time when
  answering 503s at c=512, 12% at c=64).
"""

import dataclasses
import json
import os
import shutil
import tempfile

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kerasae_runtime import manifest as mf
from kerasae_runtime import session as sessions
from kerasae_runtime.metrics import MULTIPROCESS

ENV = "KERASAE_RUNTIME_SERVE"


class CoalescingTransport:
    """A transport whose writes within one event-loop turn go out as one send."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport, loop):
        self._transport, self._loop, self._pending = transport, loop, []

    def write(self, data):
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self):
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self):
        self._flush()
        self._transport.close()

    def __getattr__(self, name):  # everything else: the real transport
        return getattr(self._transport, name)


class Protocol(HttpToolsProtocol):
    def connection_made(self, transport):
        super().connection_made(CoalescingTransport(transport, self.loop))

    def send_400_response(self, msg):
        body = json.dumps(
            {
                "error": f"{msg} (malformed HTTP: check the request line and "
                "headers, e.g. Content-Length)"
            }
        ).encode()
        head = [
            b"HTTP/1.1 400 Bad Request\r\n",
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def preflight(settings):
    """What can fail in one line before the server listens: the manifest, each part's
    checksum, and the device. The sessions themselves load after it starts listening."""
    manifest = mf.read(settings.export_dir)
    present = manifest.get("parts", {})
    if "encoder" not in present and "decoder" not in present:
        raise mf.ExportError(f"{settings.export_dir} has neither an encoder nor a decoder")
    for part in present:
        precision = settings.precision if part != "scorer" else "fp32"
        if part == "scorer" and settings.precision == "int8":
            precision = "int8" if "onnx_int8" in present[part].get("files", {}) else "fp32"
        rel, _ = mf.part_file(manifest, part, precision)
        mf.verify_file(settings.export_dir, manifest, rel)
    sessions.requested_providers(settings.device)


def app_from_env():
    """The app factory each uvicorn worker process calls (--workers > 1)."""
    from kerasae_runtime.serve import Settings, create_app

    return create_app(Settings(**json.loads(os.environ[ENV])))


def run(settings, host="127.0.0.1", port=8000, workers=1):
    import uvicorn

    from kerasae_runtime.serve import create_app

    preflight(settings)
    settings = dataclasses.replace(settings, exit_on_load_failure=True, grpc_host=host)
    # keep-alive longer than a loaded server's worst latency: a connection the server
    # closes as the client reuses it is a failed request
    options = dict(
        host=host,
        port=port,
        access_log=False,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=60,
        http=Protocol,
        backlog=4096,  # a burst of connections waits in the kernel, not refused
        proxy_headers=False,  # no X-Forwarded-* rewriting: one middleware less per request
        server_header=False,
    )
    if workers == 1:
        return uvicorn.run(create_app(settings), **options)
    # the workers are new processes: they read the settings and the metrics folder here
    folder = tempfile.mkdtemp(prefix="kerasae-metrics-")
    os.environ[MULTIPROCESS] = folder
    os.environ[ENV] = json.dumps(dataclasses.asdict(settings))
    try:
        uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=workers, **options)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
