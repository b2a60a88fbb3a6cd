"""kerasae-runtime against a committed export (tests/fixture, from make_fixture.py).

These tests run in a venv without TensorFlow (CI makes one): parity with what Keras
computed (expected.npz), checksums, providers, the prior, and the CLI.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from kerasae_runtime import Autoencoder, Decoder, Encoder, ExportError
from kerasae_runtime import manifest as mf
from kerasae_runtime.cli import main
from kerasae_runtime.session import available_providers

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixture")


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(os.path.join(HERE, "expected.npz")))


def test_encoder_matches_keras_on_raw_inputs(expected):
    enc = Encoder.load(FIXTURE)
    assert enc.provider in available_providers()
    outs = enc.encode_all(expected["raw"], raw=True)
    assert list(outs) == ["z_mean", "z_log_var"]  # the VAE's heads, in the model's order
    np.testing.assert_allclose(enc.encode(expected["raw"], raw=True), expected["z"], atol=1e-4)
    np.testing.assert_allclose(enc.encode(expected["raw"] / 16.0), expected["z"], atol=1e-4)


def test_decoder_and_score_match_keras(expected):
    dec = Decoder.load(FIXTURE)
    np.testing.assert_allclose(dec.decode(expected["z"]), expected["x_hat"], atol=1e-4)
    np.testing.assert_allclose(dec.decode(expected["z"], raw=True), expected["x_hat"] * 16,
                               atol=2e-3)  # back in the digits' 0..16 units
    half = Decoder.load(FIXTURE, precision="fp16").decode(expected["z"])
    np.testing.assert_allclose(half, expected["x_hat"], atol=2e-2)
    ae = Autoencoder.load(FIXTURE)
    np.testing.assert_allclose(ae.score(expected["raw"], raw=True), expected["score"],
                               rtol=1e-3, atol=1e-6)
    # a digit scores lower than noise it never saw
    noise = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    assert np.median(ae.score(noise)) > np.median(expected["score"])


def test_generate_is_seeded_and_in_range():
    dec = Decoder.load(FIXTURE, device="cpu")
    assert dec.provider == "CPUExecutionProvider"
    a, b = dec.generate(10, seed=3), dec.generate(10, seed=3)
    assert a.shape == (10, 8, 8, 1) and np.array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and not np.array_equal(a, dec.generate(10, seed=4))
    assert dec.prior["kind"] == "standard_normal"


def test_fitted_gaussian_prior_has_its_moments():
    prior = {"kind": "gaussian", "dim": 2, "mean": [1.0, -2.0],
             "scale_tril": [[2.0, 0.0], [0.5, 0.3]]}
    z = mf.sample_prior(prior, 40000, seed=0)
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.05)
    tril = np.asarray(prior["scale_tril"])
    np.testing.assert_allclose(np.cov(z, rowvar=False), tril @ tril.T, atol=0.06)
    with pytest.raises(ExportError, match="no prior"):
        mf.sample_prior(None, 3)
    refusal = "model 'conv_ae' is not generative (it has no prior to sample from); train ..."
    with pytest.raises(ExportError) as info:  # the model's own words, from the manifest
        mf.sample_prior(None, 3, no_prior=refusal)
    assert str(info.value) == refusal


def test_tampered_or_missing_files_are_refused(tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(FIXTURE, copy)
    path = copy / "decoder.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="SHA-256"):
        Decoder.load(str(copy))
    Encoder.load(str(copy))  # the untouched part still loads
    (copy / "encoder.onnx").unlink()
    with pytest.raises(ExportError, match="missing"):
        Encoder.load(str(copy))
    with pytest.raises(ExportError, match="no manifest.json"):
        Encoder.load(str(tmp_path))


def test_input_shape_and_device_errors():
    enc = Encoder.load(FIXTURE)
    with pytest.raises(ExportError, match=r"expects x of shape \(batch, 8, 8, 1\)"):
        enc.encode(np.zeros((2, 28, 28, 1)))
    assert enc.encode(np.zeros((8, 8, 1))).shape == (1, 2)  # one example, no batch axis
    if "CUDAExecutionProvider" not in available_providers():
        with pytest.raises(ExportError, match="no CUDAExecutionProvider"):
            Encoder.load(FIXTURE, device="cuda")


def test_cli_generate_encode_score(tmp_path, expected, capsys):
    from PIL import Image

    grid = tmp_path / "grid.png"
    assert main(["generate", FIXTURE, "-n", "9", "--out", str(grid)]) == 0
    assert Image.open(grid).size == (3 * 32 + 2, 3 * 32 + 2)  # 8x8 tiles shown at 32x32
    assert "on CPUExecutionProvider" in capsys.readouterr().err or \
        "CUDAExecutionProvider" in available_providers()
    np.save(tmp_path / "x.npy", expected["raw"])
    assert main(["encode", FIXTURE, "--data", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "z.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), expected["z"], atol=1e-4)
    assert main(["score", FIXTURE, "--data", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (16,)
    capsys.readouterr()
    assert main(["encode", FIXTURE, "--data", str(tmp_path / "nope.npy"), "--out", "z.npy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data" in err


def test_console_entry_point_runs_without_tensorflow(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from kerasae_runtime.cli import main; "
         "code = main(sys.argv[1:]); assert 'tensorflow' not in sys.modules; sys.exit(code)",
         "info", FIXTURE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "model: vae" in result.stdout and "files verified" in result.stdout
