"""Request and response bodies of `kerasae-runtime serve`: JSON or .npy in, checked
before any work (size, fields, types, finite numbers), and JSON (orjson) or .npy out.
Every client mistake is a `RequestError` with its 4xx status."""

import io
import json

import numpy as np
from starlette.responses import Response

NPY = "application/x-npy"


class RequestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


async def read_body(request, limit):
    """The body, refused (413) past `limit` bytes before or while it is read."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise RequestError(400, f"invalid Content-Length {length!r}")
        if int(length) > limit:
            raise RequestError(
                413,
                f"the body has {length} bytes; this server takes at most "
                f"{limit} (--max-request-bytes)",
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body exceeds {limit} bytes (--max-request-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _array(value, field):
    if isinstance(value, np.ndarray):
        array = value
    elif not isinstance(value, list):
        raise RequestError(
            422, f"{field} must be a (nested) list of numbers, got {type(value).__name__}"
        )
    else:
        try:
            array = np.asarray(value)
        except ValueError:
            raise RequestError(
                422, f"{field} is ragged: every example must have the same shape"
            ) from None
    if array.dtype.kind not in "iuf":
        raise RequestError(422, f"{field} must hold numbers only (got {array.dtype} values)")
    if array.size and not np.isfinite(array).all():
        raise RequestError(422, f"{field} contains NaN or infinite values")
    return array


def _reject_constant(name):
    raise RequestError(422, f"the body contains {name}; send finite numbers only")


def parse(body, request, name, field, allowed):
    """The fields of a request to /v1/`name`, checked for names and types (shapes are
    checked by the part): `field` its array (None for generate), `allowed` every field."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if kind == NPY:
        if field is None:
            raise RequestError(415, f"/v1/{name} takes a JSON body, not {NPY}")
        try:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except Exception as exc:
            raise RequestError(400, f"the body is not a .npy array ({exc})") from None
        raw = request.query_params.get("raw", "false").lower()
        if raw not in ("true", "false", "1", "0"):
            raise RequestError(400, f"?raw must be true or false, got {raw!r}")
        return {field: _array(array, field), "raw": raw in ("true", "1")}
    # curl -d sends its default form type; the body is still the JSON object it was given
    if kind not in ("application/json", "application/x-www-form-urlencoded", ""):
        raise RequestError(
            415, f"unsupported content type {kind!r}; send application/json or {NPY}"
        )
    try:
        fields = json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        raise RequestError(400, f"the body is not valid JSON ({exc})") from None
    if not isinstance(fields, dict):
        raise RequestError(400, "the body must be a JSON object")
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise RequestError(
            400,
            f"unknown field {', '.join(map(repr, unknown))}; /v1/{name} "
            f"takes {', '.join(allowed)}",
        )
    if not isinstance(fields.get("raw", False), bool):
        raise RequestError(422, "raw must be true or false")
    if field is not None:
        if field not in fields:
            raise RequestError(400, f"missing field {field!r}")
        fields[field] = _array(fields[field], field)
    return fields


def render(out, accept):
    """The outputs as JSON, or the first one as .npy when `accept` asks for it."""
    if NPY in accept:
        name, value = next(iter(out.items()))
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value))
        return Response(buffer.getvalue(), media_type=NPY, headers={"X-Kerasae-Output": name})
    import orjson  # numpy straight to JSON: several times faster than tolist + json

    body = orjson.dumps(
        {k: None if v is None else np.ascontiguousarray(v) for k, v in out.items()},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    return Response(body, media_type="application/json")
