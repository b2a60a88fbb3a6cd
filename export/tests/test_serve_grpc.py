"""The Open Inference Protocol over gRPC (`serve --grpc-port`), spoken by Triton's own gRPC
client (`tritonclient.grpc`, unchanged). Skips where the grpc extra is not installed."""

import numpy as np
import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("grpc")
triton = pytest.importorskip("tritonclient.grpc")
from servers import FIXTURE, free_port, running_server  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from kerasae_runtime import Decoder, Encoder  # noqa: E402


def _input(name, array):
    kind = "FP32" if array.dtype == np.float32 else "INT64"
    tensor = triton.InferInput(name, list(array.shape), kind)
    tensor.set_data_from_numpy(array)
    return tensor


def test_tritonclient_grpc_infers_and_hears_refusals():
    port = free_port()
    with running_server("--grpc-port", str(port)):
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("decoder") and not client.is_model_ready("nothing")
        meta = client.get_model_metadata("decoder", as_json=True)
        assert meta["inputs"][0]["name"] == "z" and meta["inputs"][0]["shape"] == ["-1", "2"]
        z = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
        result = client.infer("decoder", [_input("z", z)])
        np.testing.assert_allclose(
            result.as_numpy("x_hat"), Decoder.load(FIXTURE).decode(z), atol=1e-5
        )
        x = np.random.default_rng(1).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
        result = client.infer("encoder", [_input("x", x)])
        np.testing.assert_allclose(
            result.as_numpy("z_mean"), Encoder.load(FIXTURE).encode(x), atol=1e-5
        )
        n, seed = np.array([4], np.int64), np.array([1], np.int64)
        result = client.infer("sampler", [_input("n", n), _input("seed", seed)])
        np.testing.assert_allclose(
            result.as_numpy("z"), Decoder.load(FIXTURE).sample_latent(4, 1), atol=1e-6
        )
        with pytest.raises(InferenceServerException) as info:
            client.infer("encoder", [_input("x", x * 5)])
        assert "--allow-out-of-range" in info.value.message()
        assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
        with pytest.raises(InferenceServerException) as info:
            client.infer("nothing", [_input("z", z)])
        assert info.value.status() == "StatusCode.NOT_FOUND"
