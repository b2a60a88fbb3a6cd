"""The Open Inference Protocol on `kerasae-runtime serve`, spoken by Triton's own HTTP client
(`tritonclient.http`, unchanged), and the strict input checks of both APIs."""

import json
import socket

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
triton = pytest.importorskip("tritonclient.http")
from servers import FIXTURE, running_server  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from kerasae_runtime import Autoencoder, Decoder, Encoder  # noqa: E402


@pytest.fixture(scope="module")
def server():
    with running_server("--max-batch", "64") as (_, url):
        yield url


def _client(url):
    return triton.InferenceServerClient(url.removeprefix("http://"))


def _input(name, array, binary=True):
    tensor = triton.InferInput(
        name, list(array.shape), "FP32" if array.dtype == np.float32 else "INT64"
    )
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def test_tritonclient_infers_every_part_as_the_python_api(server):
    client = _client(server)
    assert client.is_server_live() and client.is_server_ready()
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("decoder")
    assert meta["inputs"] == [{"name": "z", "datatype": "FP32", "shape": [-1, 2]}]
    assert client.is_model_ready("decoder") and client.is_model_ready("scorer")
    assert client.get_model_config("decoder")["max_batch_size"] == 64
    dec, enc, ae = Decoder.load(FIXTURE), Encoder.load(FIXTURE), Autoencoder.load(FIXTURE)
    z = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    for binary in (True, False):  # the binary tensor extension, and JSON tensors
        out = triton.InferRequestedOutput("x_hat", binary_data=binary)
        result = client.infer("decoder", [_input("z", z, binary)], outputs=[out])
        np.testing.assert_allclose(result.as_numpy("x_hat"), dec.decode(z), atol=1e-5)
    result = client.infer("decoder", [_input("z", z)], model_version="1")
    np.testing.assert_allclose(result.as_numpy("x_hat"), dec.decode(z), atol=1e-5)
    x = np.random.default_rng(1).uniform(0, 1, (4, 8, 8, 1)).astype(np.float32)
    result = client.infer("encoder", [_input("x", x)])
    np.testing.assert_allclose(result.as_numpy("z_mean"), enc.encode(x), atol=1e-5)
    result = client.infer("scorer", [_input("x", x)])
    np.testing.assert_allclose(result.as_numpy("score"), ae.score(x), rtol=1e-4, atol=1e-5)
    if ae.threshold is not None:
        assert result.as_numpy("is_anomaly").dtype == bool
    n, seed = np.array([3], np.int64), np.array([7], np.int64)
    result = client.infer("sampler", [_input("n", n), _input("seed", seed)])
    np.testing.assert_allclose(result.as_numpy("z"), dec.sample_latent(3, 7), atol=1e-6)
    raw = x * 16  # the fixture's scaling divides by 16
    result = client.infer("encoder", [_input("x", raw)], parameters={"raw": True})
    np.testing.assert_allclose(result.as_numpy("z_mean"), enc.encode(x), atol=1e-4)


@pytest.mark.parametrize(
    "model, inputs, status, words",
    [
        ("nothing", {"z": np.zeros((1, 2), np.float32)}, 404, "no model 'nothing'"),
        ("decoder", {"z": np.zeros((1, 3), np.float32)}, 422, "shape (batch, 2)"),
        ("decoder", {"z": np.zeros((2,), np.float32)}, 422, "one row per example"),
        ("decoder", {"w": np.zeros((1, 2), np.float32)}, 400, "unknown w"),
        ("encoder", {"x": np.full((1, 8, 8, 1), 5.0, np.float32)}, 422, "--allow-out-of-range"),
        ("sampler", {"n": np.array([0], np.int64)}, 422, "n must be"),
    ],
)
def test_tritonclient_hears_the_reason_of_a_refusal(server, model, inputs, status, words):
    with pytest.raises(InferenceServerException) as info:
        _client(server).infer(model, [_input(k, v) for k, v in inputs.items()])
    assert words in info.value.message()
    assert info.value.status() == str(status)


BINARY_HEAD = (
    b'{"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32", '
    b'"parameters": {"binary_data_size": 8}}]}'
)


@pytest.mark.parametrize(
    "body, headers, words",
    [
        (b'{"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32"}]}', {}, "neither data"),
        (
            b'{"inputs": [{"name": "z", "shape": [1, 2], "datatype": "F32", "data": [1, 2]}]}',
            {},
            "datatype",
        ),
        (
            b'{"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32", "data": [1]}]}',
            {},
            "needs 2",
        ),
        (b'{"inputs": 3}', {}, "list of"),
        (
            BINARY_HEAD + b"xx",
            {"inference-header-content-length": str(len(BINARY_HEAD))},
            "ends before",
        ),
        (
            b'{"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}',
            {},
            "takes FP32",
        ),
    ],
)
def test_malformed_v2_bodies_are_400s_naming_the_problem(server, body, headers, words):
    r = httpx.post(f"{server}/v2/models/decoder/infer", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]


def test_strict_inputs_on_v1(server):
    r = httpx.post(f"{server}/v1/decode", json={"z": [0.5, -0.5]})  # 1-D: no longer one row
    assert r.status_code == 422 and "wrap one example" in r.json()["error"]
    x = np.full((1, 8, 8, 1), 128.0)  # raw units sent as model units
    r = httpx.post(f"{server}/v1/encode", json={"x": x.tolist()})
    assert r.status_code == 422 and "raw=true" in r.json()["error"]
    r = httpx.post(f"{server}/v1/encode", json={"x": x.tolist(), "raw": True})  # 128 / 16 = 8
    assert r.status_code == 422 and "after the export's scaling" in r.json()["error"]
    r = httpx.post(f"{server}/v1/encode", json={"x": (x / 128).tolist()})
    assert r.status_code == 200


def test_out_of_range_is_allowed_and_counted_with_the_flag():
    with running_server("--allow-out-of-range") as (_, url):
        x = np.full((2, 8, 8, 1), 5.0).tolist()
        assert httpx.post(f"{url}/v1/score", json={"x": x}).status_code == 200
        text = httpx.get(f"{url}/metrics").text
        assert 'kerasae_out_of_range_total{endpoint="score"} 1.0' in text


def test_a_bad_content_length_gets_a_json_400(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v1/decode HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert "Content-Length" in json.loads(body)["error"]


def test_serve_refuses_a_bad_start_in_one_line():
    import subprocess
    import sys

    from kerasae_runtime.session import CUDA, available_providers

    cases = [(["/nonexistent"], "no manifest.json"), ([FIXTURE, "--max-queue", "0"], "positive")]
    if CUDA not in available_providers():
        cases.append(([FIXTURE, "--device", "cuda"], "onnxruntime-gpu"))
    for args, words in cases:
        result = subprocess.run(
            [sys.executable, "-m", "kerasae_runtime", "serve", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
