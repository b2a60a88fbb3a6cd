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
    np.testing.assert_allclose(
        dec.decode(expected["z"], raw=True), expected["x_hat"] * 16, atol=2e-3
    )  # back in the digits' 0..16 units
    half = Decoder.load(FIXTURE, precision="fp16").decode(expected["z"])
    np.testing.assert_allclose(half, expected["x_hat"], atol=2e-2)
    ae = Autoencoder.load(FIXTURE)
    np.testing.assert_allclose(
        ae.score(expected["raw"], raw=True), expected["score"], rtol=1e-3, atol=1e-6
    )
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
    prior = {
        "kind": "gaussian",
        "dim": 2,
        "mean": [1.0, -2.0],
        "scale_tril": [[2.0, 0.0], [0.5, 0.3]],
    }
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
    assert (
        "on CPUExecutionProvider" in capsys.readouterr().err
        or "CUDAExecutionProvider" in available_providers()
    )
    np.save(tmp_path / "x.npy", expected["raw"])
    assert (
        main(
            [
                "encode",
                FIXTURE,
                "--data",
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "z.npy"),
            ]
        )
        == 0
    )
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), expected["z"], atol=1e-4)
    assert (
        main(
            ["score", FIXTURE, "--data", str(tmp_path / "x.npy"), "--out", str(tmp_path / "s.npy")]
        )
        == 0
    )
    assert np.load(tmp_path / "s.npy").shape == (16,)
    capsys.readouterr()
    assert main(["encode", FIXTURE, "--data", str(tmp_path / "nope.npy"), "--out", "z.npy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data" in err


def test_console_entry_point_runs_without_tensorflow(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from kerasae_runtime.cli import main; "
            "code = main(sys.argv[1:]); assert 'tensorflow' not in sys.modules; sys.exit(code)",
            "info",
            FIXTURE,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "model: vae" in result.stdout and "files verified" in result.stdout


# ------------------------------------------------------------------ latent samplers
GMM = {
    "kind": "gmm",
    "dim": 2,
    "sampler": "gmm",
    "weights": [0.2, 0.5, 0.3],
    "means": [[-8.0, 0.0], [0.0, 6.0], [8.0, -3.0]],
    "scale_tril": [[[0.5, 0.0], [0.2, 0.3]], [[1.0, 0.0], [0.0, 0.4]], [[0.3, 0.0], [-0.1, 0.6]]],
}


def test_gmm_prior_has_the_mixture_moments_and_repeats_per_seed():
    z = mf.sample_prior(GMM, 60000, seed=0)
    assert z.shape == (60000, 2) and z.dtype == np.float32
    w, mu = np.asarray(GMM["weights"]), np.asarray(GMM["means"])
    tril = np.asarray(GMM["scale_tril"])
    mean = w @ mu
    second = sum(wk * (t @ t.T + np.outer(m, m)) for wk, m, t in zip(w, mu, tril))
    # tolerances: a few standard errors of 60,000 draws (the variances are about 50)
    np.testing.assert_allclose(z.mean(axis=0), mean, atol=0.1)
    np.testing.assert_allclose(
        np.cov(z, rowvar=False), second - np.outer(mean, mean), rtol=0.03, atol=0.5
    )
    # each component's share: the nearest mean labels a draw (they are well apart)
    nearest = np.argmin(((z[:, None, :] - mu[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(np.bincount(nearest) / len(z), w, atol=0.01)
    assert np.array_equal(mf.sample_prior(GMM, 5, seed=9), mf.sample_prior(GMM, 5, seed=9))
    assert not np.array_equal(mf.sample_prior(GMM, 5, seed=9), mf.sample_prior(GMM, 5, seed=8))


def test_gmm_draw_order_is_the_one_kerasae_uses():
    """The seed semantics kerasae's samplers share: u = rng.random(n) picks the component
    by the weights' cumulative sum, then eps = rng.standard_normal((n, dim))."""
    rng = np.random.default_rng(4)
    u, eps = rng.random(3), rng.standard_normal((3, 2))
    k = np.searchsorted(np.cumsum(GMM["weights"]), u, side="right")
    tril = np.asarray(GMM["scale_tril"])
    expect = np.asarray(GMM["means"])[k] + np.einsum("nij,nj->ni", tril[k], eps)
    np.testing.assert_allclose(mf.sample_prior(GMM, 3, seed=4), expect, rtol=1e-6)
    # diagonal components may give just the diagonal (a VampPrior's): the same numbers
    diag = {**GMM, "scale_tril": [np.diag(np.diag(t)).tolist() for t in tril]}
    short = {k: v for k, v in GMM.items() if k != "scale_tril"}
    short["scale_diag"] = [np.diag(t).tolist() for t in tril]
    assert np.array_equal(mf.sample_prior(diag, 50, seed=1), mf.sample_prior(short, 50, seed=1))


def test_uniform_prior_and_damaged_or_unknown_entries():
    box = {"kind": "uniform", "dim": 3, "low": -1.5, "high": 2.0}
    z = mf.sample_prior(box, 20000, seed=0)
    assert z.min() >= -1.5 and z.max() <= 2.0
    np.testing.assert_allclose(z.mean(axis=0), 0.25, atol=0.03)
    for damaged, key in (
        ({**GMM, "weights": [0.5, 0.6, -0.1]}, "probability"),
        ({**GMM, "means": [[0.0, 0.0]]}, "'means' of shape"),
        ({**GMM, "scale_tril": None}, "scale_tril"),
    ):
        with pytest.raises(ExportError, match=key):
            mf.sample_prior(damaged, 2, seed=0)
    with pytest.raises(ExportError, match="upgrade kerasae-runtime"):
        mf.sample_prior({"kind": "flow", "dim": 2}, 2)


class _FakeSession:
    """onnxruntime's `run(names, feed)`, computed in numpy, and every feed recorded."""

    def __init__(self, fn):
        self.fn, self.feeds = fn, []

    def run(self, names, feed):
        self.feeds.append({k: v.copy() for k, v in feed.items()})
        out = self.fn(**feed)
        return [out[name] for name in names]


def test_two_stage_decodes_standard_normal_draws():
    from kerasae_runtime import samplers

    session = _FakeSession(lambda u: {"z": np.concatenate([2 * u + 1, u[:, :1]], axis=1)})
    prior = {"kind": "two_stage", "dim": 3, "second_latent_dim": 2, "file": "sampler.onnx"}
    z = samplers.Sampler(prior, session=session).sample(5, seed=3)
    u = np.random.default_rng(3).standard_normal((5, 2)).astype(np.float32)
    assert session.feeds[0]["u"].dtype == np.float32
    np.testing.assert_array_equal(z, np.concatenate([2 * u + 1, u[:, :1]], axis=1))


def test_pixelcnn_samples_positions_in_raster_order_by_inverse_cdf():
    """A fake causal network: at each position the logits favour (previous index + 1) % K
    overwhelmingly, so every row must read 0, 1, 2, ... whatever the uniforms are; and
    the final call gathers the codebook rows of the finished grid."""
    from kerasae_runtime import samplers

    k, h, w = 4, 2, 3
    codebook = np.arange(k, dtype=np.float32)[:, None] * 10

    def net(indices):
        n = len(indices)
        flat = indices.reshape(n, -1)
        prev = np.concatenate([np.full((n, 1), -1), flat[:, :-1]], axis=1)
        logits = np.where(np.arange(k) == ((prev + 1) % k)[..., None], 30.0, 0.0)
        return {
            "logits": logits.reshape(n, h, w, k).astype(np.float32),
            "z": codebook[indices].reshape(n, -1),
        }

    session = _FakeSession(net)
    prior = {"kind": "pixelcnn", "dim": h * w, "grid": [h, w], "num_embeddings": k}
    z = samplers.Sampler(prior, session=session).sample(6, seed=0)
    expect = (np.arange(h * w) % k * 10.0)[None].repeat(6, axis=0)
    np.testing.assert_array_equal(z, expect)
    assert len(session.feeds) == h * w + 1 and session.feeds[0]["indices"].dtype == np.int64
    # with flat logits the uniforms decide: index = floor(u * K), the spec's inverse CDF
    flat = _FakeSession(
        lambda indices: {
            "logits": np.zeros((len(indices), h, w, k), np.float32),
            "z": indices.reshape(len(indices), -1).astype(np.float32),
        }
    )
    got = samplers.Sampler(prior, session=flat).sample(50, seed=7)
    u = np.random.default_rng(7).random((50, h * w))
    np.testing.assert_array_equal(got, np.minimum(np.floor(u * k), k - 1))


def test_a_learned_sampler_needs_its_checksummed_file(tmp_path):
    import json

    copy = tmp_path / "export"
    shutil.copytree(FIXTURE, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["prior"] = {
        "kind": "two_stage",
        "dim": 2,
        "sampler": "two_stage",
        "second_latent_dim": 2,
        "file": "sampler.onnx",
    }
    (copy / "manifest.json").write_text(json.dumps(manifest))
    dec = Decoder.load(str(copy))
    with pytest.raises(ExportError, match="sampler.onnx is not listed"):
        dec.generate(2, seed=0)
    manifest["prior"]["file"] = "../elsewhere.onnx"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="outside the export folder"):
        Decoder.load(str(copy)).generate(2, seed=0)


def test_cli_generate_says_which_sampler(tmp_path, capsys):
    out = tmp_path / "g.npy"
    assert main(["generate", FIXTURE, "-n", "3", "--seed", "5", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "3 samples, seed 5, sampler prior (standard_normal): the model's prior" in said
    np.testing.assert_array_equal(np.load(out), Decoder.load(FIXTURE).generate(3, seed=5))


def _with_prior(tmp_path, prior, no_prior=None):
    """A copy of the fixture whose manifest names another prior (2-d, like the VAE's)."""
    import json

    copy = tmp_path / "export"
    shutil.copytree(FIXTURE, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["prior"] = prior
    if no_prior:
        manifest["no_prior"] = no_prior
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return str(copy)


def _serve_generate(export_dir, n, seed=None, sampler=None):
    """What /v1/generate computes, through the server's own path (no HTTP)."""
    import asyncio

    from kerasae_runtime import serve

    settings = serve.Settings(export_dir, batching=False)
    server = serve.Server(settings)
    server._install(serve.load_parts(settings))
    if sampler is not None:
        server.parts["decoder"]._sampler = sampler

    async def run():
        return await server.generate(n, seed, server.loop_time() + 30)

    return asyncio.run(run())


def test_serve_generate_draws_from_the_exports_sampler(tmp_path):
    """/v1/generate is Decoder.generate for every kind: an array sampler, a learned one
    (run off the event loop), and no prior (404 with the model's refusal)."""
    pytest.importorskip("uvicorn")
    from kerasae_runtime import samplers
    from kerasae_runtime.bodies import RequestError

    gmm = {**GMM, "means": [[-1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]}
    x_hat = _serve_generate(_with_prior(tmp_path / "g", gmm), 4, 2)
    dec = Decoder.load(str(tmp_path / "g" / "export"))
    np.testing.assert_allclose(x_hat, dec.generate(4, seed=2), atol=1e-6)
    np.testing.assert_allclose(x_hat, dec.decode(mf.sample_prior(gmm, 4, seed=2)), atol=1e-6)

    learned = {"kind": "two_stage", "dim": 2, "second_latent_dim": 2, "file": "sampler.onnx"}
    fake = samplers.Sampler(learned, session=_FakeSession(lambda u: {"z": 0.5 * u - 1}))
    x_hat = _serve_generate(str(tmp_path / "g" / "export"), 3, 5, sampler=fake)
    u = np.random.default_rng(5).standard_normal((3, 2)).astype(np.float32)
    np.testing.assert_allclose(x_hat, dec.decode(0.5 * u - 1), atol=1e-6)

    refusal = "model 'conv_ae' is not generative (...); fit a latent sampler: ..."
    with pytest.raises(RequestError) as info:
        _serve_generate(_with_prior(tmp_path / "n", None, refusal), 2)
    assert info.value.status == 404 and info.value.message == refusal
