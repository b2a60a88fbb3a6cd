"""A minimal ASGI application for `kerasae-runtime serve`: exact routes and a few prefixes,
the lifespan protocol, bodies read with a size limit, responses sent in one message.

A framework's middleware stack and regex routing cost more per request than a one-row
model call on the dense decoder (py-spy put 26% of the server's time in Starlette's
middleware and routing), so the server speaks ASGI (the spec at asgi.readthedocs.io)
directly: one dict lookup per request, no middleware, headers decoded once.
"""

import logging

import orjson

from kerasae_runtime.bodies import RequestError

log = logging.getLogger("kerasae_runtime.serve")
JSON = b"application/json"


class Request:
    __slots__ = ("scope", "receive", "method", "path", "headers", "params")

    def __init__(self, scope, receive, params=None):
        self.scope, self.receive = scope, receive
        self.method, self.path = scope["method"], scope["path"]
        self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.params = params or {}

    def query(self, name, default=None):
        from urllib.parse import parse_qs  # only the .npy bodies' ?raw= reads the query

        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get(name)
        return values[-1] if values else default

    async def body(self, limit):
        """The body, refused (413) past `limit` bytes before or while it is read."""
        length = self.headers.get("content-length")
        if length is not None and int(length) > limit:  # the protocol checked it is a number
            raise RequestError(
                413,
                f"the body has {length} bytes; this server takes at most "
                f"{limit} (--max-request-bytes)",
            )
        chunks, size = [], 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise RequestError(499, "the client closed the connection")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestError(413, f"the body exceeds {limit} bytes (--max-request-bytes)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Response:
    __slots__ = ("status", "body", "media_type", "headers")

    def __init__(self, body=b"", status=200, media_type=JSON, headers=()):
        self.status, self.body, self.media_type, self.headers = status, body, media_type, headers

    async def __call__(self, send):
        headers = [
            (b"content-type", self.media_type),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_response(content, status=200, headers=()):
    return Response(orjson.dumps(content), status, JSON, headers)


def error(status, message, headers=()):
    """A client or server error as JSON: {"error": "..."} (the body Triton's clients read)."""
    return json_response({"error": message}, status, headers)


class App:
    """Routes: `exact` {path: {method: handler}}; `prefixes` [(prefix, resolver)], where
    resolver(path) -> ({method: handler}, params) or None. A handler takes a Request and
    returns a Response. `startup` and `shutdown` are coroutines run by the lifespan."""

    def __init__(self, exact, prefixes, startup=None, shutdown=None):
        self.exact, self.prefixes = exact, prefixes
        self.startup, self.shutdown = startup, shutdown
        self.state = type("State", (), {})()

    def resolve(self, path):
        methods = self.exact.get(path)
        if methods is not None:
            return methods, None
        for prefix, resolver in self.prefixes:
            if path.startswith(prefix):
                found = resolver(path)
                if found is not None:
                    return found
        return None, None

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            methods, params = self.resolve(scope["path"])
            if methods is None:
                response = error(404, f"no endpoint {scope['path']}")
            elif scope["method"] not in methods:
                allowed = ", ".join(methods)
                response = error(
                    405, f"{scope['path']} takes {allowed}, not {scope['method']}", ()
                )
            else:
                response = await methods[scope["method"]](Request(scope, receive, params))
            await response(send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.startup:
                        await self.startup()
                except Exception as exc:  # uvicorn prints the message and exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.shutdown:
                    await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
