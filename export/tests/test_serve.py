"""`kerasae-runtime serve` against the committed fixture export (tests/fixture).

The server runs as a subprocess (`python -m kerasae_runtime serve ...`), as in production,
and is always stopped. Runs without TensorFlow; needs the serve and test extras.
"""

import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("orjson")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from servers import FIXTURE, running_server  # noqa: E402

from kerasae_runtime import Autoencoder, Decoder, Encoder  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LIMIT = 200_000  # --max-request-bytes of the test server


@pytest.fixture(scope="module")
def server():
    with running_server(
        "--max-batch", "64", "--max-delay-ms", "20", "--max-request-bytes", str(LIMIT)
    ) as (_, url):
        yield url


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(os.path.join(HERE, "expected.npz")))


def test_every_endpoint_matches_the_python_api(server, expected):
    dec, enc, ae = Decoder.load(FIXTURE), Encoder.load(FIXTURE), Autoencoder.load(FIXTURE)
    r = httpx.post(f"{server}/v1/decode", json={"z": expected["z"].tolist()})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["x_hat"], expected["x_hat"], atol=1e-4)
    np.testing.assert_allclose(r.json()["x_hat"], dec.decode(expected["z"]), atol=1e-5)
    r = httpx.post(f"{server}/v1/generate", json={"n": 5, "seed": 3}).json()
    np.testing.assert_allclose(r["x_hat"], dec.generate(5, seed=3), atol=1e-5)
    r = httpx.post(f"{server}/v1/encode", json={"x": expected["raw"].tolist(), "raw": True})
    assert sorted(r.json()) == ["z_log_var", "z_mean"]  # the manifest's encoder outputs
    np.testing.assert_allclose(r.json()["z_mean"], expected["z"], atol=1e-4)
    x = expected["raw"] / 16.0
    r = httpx.post(f"{server}/v1/reconstruct", json={"x": x.tolist()}).json()
    np.testing.assert_allclose(r["x_hat"], ae.reconstruct(x), atol=1e-5)
    r = httpx.post(f"{server}/v1/score", json={"x": x.tolist()}).json()
    scores = ae.score(x)
    np.testing.assert_allclose(r["score"], scores, rtol=1e-4, atol=1e-5)
    threshold = getattr(ae, "threshold", None)
    if threshold is None:
        assert r["is_anomaly"] is None
    else:  # scores within float noise of the threshold could flip: compare the clear ones
        clear = np.abs(scores - threshold) > 1e-4 * max(1.0, abs(threshold))
        assert np.array_equal(np.asarray(r["is_anomaly"])[clear], (scores > threshold)[clear])
    # .npy in and out
    buffer = io.BytesIO()
    np.save(buffer, enc.encode(x))
    r = httpx.post(
        f"{server}/v1/decode",
        content=buffer.getvalue(),
        headers={"content-type": "application/x-npy", "accept": "application/x-npy"},
    )
    assert r.status_code == 200 and r.headers["x-kerasae-output"] == "x_hat"
    np.testing.assert_allclose(np.load(io.BytesIO(r.content)), ae.reconstruct(x), atol=1e-5)
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"
    info = httpx.get(f"{server}/v1/model").json()
    assert info["model"]["name"] == "vae" and info["parts"]["encoder"]["outputs"]
    assert info["serve"]["providers"]["decoder"] == dec.provider
    assert info["serve"]["batching"] == {"enabled": True, "max_batch": 64, "max_delay_ms": 20}
    assert info["serve"]["threshold"] == threshold
    if threshold is None:
        assert "no anomaly threshold" in info["serve"]["is_anomaly"]


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("decode", b'{"z": [[0.1, 0.2]', 400, "not valid JSON"),
        ("decode", b"[1, 2]", 400, "JSON object"),
        ("decode", b'{"z": [[0.1, 0.2]], "temperature": 1}', 400, "unknown field 'temperature'"),
        ("decode", b'{"x": [[0.1, 0.2]]}', 400, "unknown field 'x'"),
        ("decode", b"{}", 400, "missing field 'z'"),
        ("decode", b'{"z": [[0.1, 0.2, 0.3]]}', 422, "shape (batch, 2)"),
        ("decode", b'{"z": [[0.1, NaN]]}', 422, "NaN"),
        ("decode", b'{"z": [[0.1, 1e999]]}', 422, "infinite"),
        ("decode", b'{"z": [["0.1", "a"]]}', 422, "numbers only"),
        ("decode", b'{"z": [[0.1], [0.1, 0.2]]}', 422, "ragged"),
        ("decode", b'{"z": "0.1"}', 422, "list of numbers"),
        ("decode", json.dumps({"z": [[0.0, 0.0]] * 65}).encode(), 422, "--max-batch"),
        ("generate", b'{"n": 0}', 422, "n must be"),
        ("generate", b'{"n": 1000}', 422, "n must be"),
        ("generate", b'{"n": 2.5}', 422, "n must be"),
        ("generate", b'{"n": 2, "seed": -1}', 422, "seed"),
        ("encode", b'{"x": [[1]], "raw": "yes"}', 422, "raw must be"),
        ("nothing", b"{}", 404, "no endpoint /v1/nothing"),
    ],
)
def test_bad_requests_get_4xx_naming_the_problem(server, path, body, status, words):
    r = httpx.post(
        f"{server}/v1/{path}", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_bodies_over_the_limit_are_refused_with_413(server):
    big = json.dumps({"z": [[0.5, 0.5]] * 20000}).encode()
    assert len(big) > LIMIT
    r = httpx.post(
        f"{server}/v1/decode", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "--max-request-bytes" in r.json()["error"]

    def chunks():  # no Content-Length: refused while streaming
        for i in range(0, len(big), 16384):
            yield big[i : i + 16384]

    r = httpx.post(
        f"{server}/v1/decode", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "--max-request-bytes" in r.json()["error"]
    r = httpx.post(
        f"{server}/v1/decode", content=b"not npy", headers={"content-type": "application/x-npy"}
    )
    assert r.status_code == 400 and ".npy" in r.json()["error"]
    assert httpx.get(f"{server}/v1/decode").status_code == 405


def test_concurrent_mixed_requests_are_batched_and_none_is_lost(server):
    dec = Decoder.load(FIXTURE)
    rng = np.random.default_rng(0)
    zs = [rng.standard_normal((int(rng.integers(1, 4)), 2)).astype(np.float32) for _ in range(200)]

    async def one(client, i):
        if i % 10 == 3:
            return i, await client.post("/v1/decode", json={"z": [[1.0, 2.0, 3.0]]})
        if i % 10 == 7:
            return i, await client.post(
                "/v1/decode", content=b"{oops", headers={"content-type": "application/json"}
            )
        if i % 10 == 5:
            return i, await client.post("/v1/generate", json={"n": 2, "seed": i})
        return i, await client.post("/v1/decode", json={"z": zs[i].tolist()})

    async def burst():
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=server, limits=limits, timeout=60) as client:
            return await asyncio.gather(*(one(client, i) for i in range(200)))

    before = _batches(server)
    results = asyncio.run(burst())
    assert len(results) == 200
    for i, r in results:
        if i % 10 == 3:
            assert r.status_code == 422 and "shape" in r.json()["error"]
        elif i % 10 == 7:
            assert r.status_code == 400
        elif i % 10 == 5:
            np.testing.assert_allclose(r.json()["x_hat"], dec.generate(2, seed=i), atol=1e-5)
        else:
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(r.json()["x_hat"], dec.decode(zs[i]), atol=1e-5)
    batches, requests = (a - b for a, b in zip(_batches(server), before))
    assert requests == 160  # every good request ran once (generate shares the decoder)
    assert batches < requests  # coalesced: some onnxruntime calls served several requests


def _batches(url):
    """(onnxruntime calls, requests they served) of the decoder, from /metrics."""
    text = httpx.get(f"{url}/metrics").text
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("part") == "decoder"
    }
    return samples.get("kerasae_batch_requests_count", 0), samples.get(
        "kerasae_batch_requests_sum", 0
    )


def test_metrics_parse_and_count_requests(server):
    httpx.post(f"{server}/v1/decode", json={"z": [[0.0, 0.0]]})
    httpx.post(f"{server}/v1/decode", json={"z": [[0.0]]})
    families = {
        f.name: f for f in text_string_to_metric_families(httpx.get(f"{server}/metrics").text)
    }
    assert {
        "kerasae_requests",
        "kerasae_request_seconds",
        "kerasae_batch_rows",
        "kerasae_batch_requests",
        "kerasae_errors",
    } <= set(families)
    counts = {
        (s.labels["endpoint"], s.labels["status"]): s.value
        for s in families["kerasae_requests"].samples
        if s.name.endswith("_total")
    }
    assert counts[("decode", "200")] >= 1 and counts[("decode", "422")] >= 1


def test_a_missing_part_is_a_404_naming_it(tmp_path):
    copy = tmp_path / "decoder-only"
    shutil.copytree(FIXTURE, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["parts"]["encoder"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with running_server(export_dir=str(copy)) as (_, url):
        for path in ("encode", "reconstruct", "score"):
            r = httpx.post(f"{url}/v1/{path}", json={"x": np.zeros((1, 8, 8, 1)).tolist()})
            assert r.status_code == 404 and "no encoder" in r.json()["error"]
        assert httpx.post(f"{url}/v1/generate", json={"n": 2}).status_code == 200
        assert httpx.get(f"{url}/v1/model").json()["serve"]["endpoints"] == [
            "/v1/generate",
            "/v1/decode",
        ]


def test_sigterm_lets_in_flight_requests_finish():
    z = json.dumps({"z": [[0.5, -0.5]] * 3}).encode()

    async def scenario(proc, url):
        release = asyncio.Event()

        async def slow_body():  # the request is in flight (headers sent) until released
            yield z[:10]
            await release.wait()
            yield z[10:]

        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            tasks = [
                asyncio.create_task(
                    client.post(
                        "/v1/decode",
                        content=slow_body(),
                        headers={"content-type": "application/json"},
                    )
                )
                for _ in range(8)
            ]
            await asyncio.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert proc.poll() is None  # still draining
            release.set()
            return await asyncio.gather(*tasks)

    with running_server() as (proc, url):
        responses = asyncio.run(scenario(proc, url))
        assert [r.status_code for r in responses] == [200] * 8
        expected = Decoder.load(FIXTURE).decode(np.array([[0.5, -0.5]] * 3))
        for r in responses:
            np.testing.assert_allclose(r.json()["x_hat"], expected, atol=1e-5)
        # uvicorn re-raises the signal once it has shut down gracefully
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


def test_cli_without_the_serve_extra_says_so_in_one_line():
    code = (
        "import sys; sys.modules['uvicorn'] = None; from kerasae_runtime.cli import main; "
        f"sys.exit(main(['serve', {FIXTURE!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(HERE),
    )
    assert result.returncode == 2
    assert result.stderr == (
        "kerasae-runtime serve needs the serve extra: pip install 'kerasae-runtime[serve]'\n"
    )
