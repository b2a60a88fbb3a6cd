"""Overload control for `kerasae-runtime serve`: a bounded number of requests in the
server, a deadline per request, and the server's state (loading, ready, draining).

A server that queues without limit answers every request eventually, later and later:
under load its p99 grew to seconds with no error reported, and a client cannot tell a slow
server from a dead one. Here at most `max_queue` requests are inside at once; the next one
is answered `503` with `Retry-After` at once, without reading its body. A request that is
still waiting for its model call when its deadline passes (`--timeout-ms`, lowered per
request by the `X-Kerasae-Timeout-Ms` header or the Open Inference Protocol's `timeout`
parameter, in microseconds) is dropped from its batch and answered `503` too. Readiness is
false while the model loads and while the server drains after SIGTERM (`--drain-seconds`:
the load balancer stops sending, requests still arriving are served, then uvicorn's
graceful shutdown finishes what is in flight).
"""

import asyncio
import logging
import signal
import threading

from kerasae_runtime.bodies import RequestError

TIMEOUT_HEADER = "x-kerasae-timeout-ms"
LOADING, READY, DRAINING, FAILED = "loading", "ready", "draining", "failed"
log = logging.getLogger("kerasae_runtime.serve")


class Gate:
    def __init__(self, max_queue, timeout_ms, drain_seconds=0.0):
        self.max_queue, self.timeout = int(max_queue), float(timeout_ms) / 1000
        self.drain_seconds = float(drain_seconds)
        self.state, self.inside, self.reason = LOADING, 0, "the model is loading"

    @property
    def ready(self):
        return self.state == READY

    def enter(self, headers):
        """Admit a request: its deadline (event-loop time), or a 503 / 400."""
        if self.state not in (READY, DRAINING):
            raise RequestError(503, f"not ready: {self.reason}", self.state, retry_after=1)
        if self.inside >= self.max_queue:
            raise RequestError(
                503,
                f"the server is full ({self.inside} requests in progress, --max-queue "
                f"{self.max_queue}); retry after a moment",
                "overload",
                retry_after=1,
            )
        timeout = self.timeout
        asked = headers.get(TIMEOUT_HEADER)
        if asked is not None:
            timeout = min(timeout, _milliseconds(asked) / 1000)
        self.inside += 1
        return asyncio.get_running_loop().time() + timeout

    def leave(self):
        self.inside -= 1

    def drain_on_sigterm(self):
        """Readiness false at SIGTERM; uvicorn's own handler runs `drain_seconds` later.
        Only in the main thread (where uvicorn installed its handler)."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return
        loop = asyncio.get_running_loop()

        def on_sigterm(sig, frame):
            if self.state == DRAINING:  # a second SIGTERM: stop now
                return previous(sig, frame)
            self.state, self.reason = DRAINING, "draining: the server is shutting down"
            log.info("SIGTERM: draining for %.1f s", self.drain_seconds)
            loop.call_later(self.drain_seconds, previous, sig, frame)

        signal.signal(signal.SIGTERM, on_sigterm)


def late():
    return RequestError(
        503, "the request waited past its deadline (--timeout-ms)", "deadline", retry_after=1
    )


def _milliseconds(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise RequestError(
            400, f"{TIMEOUT_HEADER} must be a positive number of milliseconds, got {text!r}"
        )
    return value
