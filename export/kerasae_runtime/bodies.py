"""Request and response bodies of `kerasae-runtime serve`'s /v1 API: JSON or .npy in,
checked before any work (fields, types, finite numbers), and JSON (orjson) or .npy out.
Every client mistake is a `RequestError` with its 4xx status. These functions are plain
(no event loop): `offload.py` runs them in a helper process when a body is large.
"""

import io
import json

import numpy as np
import orjson

NPY = "application/x-npy"


class RequestError(Exception):
    """A request refused: `status`, `message`, the metric `kind` (request, overload,
    deadline, loading, draining) and `retry_after` seconds for 503s."""

    def __init__(self, status, message, kind="request", retry_after=None):
        super().__init__(status, message, kind, retry_after)
        self.status, self.message, self.kind, self.retry_after = (
            status,
            message,
            kind,
            retry_after,
        )


def _reject_constant(name):
    raise RequestError(422, f"the body contains {name}; send finite numbers only")


def load_json(body):
    """The JSON document (orjson); on a failure, the standard parser's precise message
    (NaN and Infinity are 422: the document is JSON-like but not finite numbers)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        raise RequestError(400, f"the body is not valid JSON ({exc})") from None


def to_array(value, field):
    """A request's nested list (or array) as a finite numeric ndarray, or a 422."""
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


def content_kind(headers):
    return headers.get("content-type", "application/json").split(";")[0].strip()


def parse(body, kind, raw_query, name, field, allowed):
    """The fields of a request to /v1/`name`, checked for names and types (shapes are
    checked by the server): `kind` the content type, `raw_query` the ?raw= of a .npy
    body, `field` its array (None for generate), `allowed` every field."""
    if kind == NPY:
        if field is None:
            raise RequestError(415, f"/v1/{name} takes a JSON body, not {NPY}")
        try:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except Exception as exc:
            raise RequestError(400, f"the body is not a .npy array ({exc})") from None
        raw = (raw_query or "false").lower()
        if raw not in ("true", "false", "1", "0"):
            raise RequestError(400, f"?raw must be true or false, got {raw!r}")
        return {field: to_array(array, field), "raw": raw in ("true", "1")}
    # curl -d sends its default form type; the body is still the JSON object it was given
    if kind not in ("application/json", "application/x-www-form-urlencoded", ""):
        raise RequestError(
            415, f"unsupported content type {kind!r}; send application/json or {NPY}"
        )
    fields = load_json(body)
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
        fields[field] = to_array(fields[field], field)
    return fields


def render(out, npy):
    """(body, media type, extra headers): the outputs as JSON, or the first as .npy."""
    if npy:
        name, value = next(iter(out.items()))
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value))
        return buffer.getvalue(), NPY.encode(), ((b"x-kerasae-output", name.encode()),)
    body = orjson.dumps(  # numpy straight to JSON: several times faster than tolist + json
        {k: None if v is None else np.ascontiguousarray(v) for k, v in out.items()},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    return body, b"application/json", ()
