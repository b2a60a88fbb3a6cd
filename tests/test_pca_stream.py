"""`pca` on a stream larger than it may hold: incremental PCA in bounded memory, which
spans the same subspace as the exact SVD."""

import numpy as np
import pytest

import kerasae
from kerasae.data.pipeline import make_tf_dataset
from kerasae.models import pca as pca_module


def _data():
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((4, 64))
    x = rng.standard_normal((3000, 4)) @ basis * 0.2 + 0.01 * rng.standard_normal((3000, 64))
    return (x - x.min()) / (x.max() - x.min())


@pytest.mark.slow  # ~10 s
def test_a_large_stream_is_fitted_incrementally_to_the_exact_subspace(monkeypatch):
    x = _data().astype("float32")
    exact = kerasae.create_model("pca", input_shape=(64,), latent_dim=4)
    exact.fit(x, verbose=0)
    monkeypatch.setattr(pca_module, "EXACT_BYTES", 64 * 4 * 500)  # "memory" of 500 rows
    monkeypatch.setattr(pca_module, "CHUNK_ROWS", 600)
    seen = []
    real = pca_module.IncrementalPCA.partial_fit
    monkeypatch.setattr(
        pca_module.IncrementalPCA,
        "partial_fit",
        lambda self, rows, *a, **k: seen.append(len(rows)) or real(self, rows),
    )
    streamed = kerasae.create_model("pca", input_shape=(64,), latent_dim=4)
    history = streamed.fit(make_tf_dataset(x, 100, shuffle=False), verbose=0)
    assert len(seen) >= 3 and max(seen) <= 700  # chunks, never the whole stream at once
    mse = [float(np.mean((m.reconstruct(x) - x) ** 2)) for m in (exact, streamed)]
    assert mse[1] <= mse[0] * 1.01 + 1e-7
    assert abs(history.history["loss"][0] - float(np.mean(streamed.score(x)))) < 1e-6


def test_a_small_stream_gets_the_exact_svd():
    x = _data().astype("float32")
    exact = kerasae.create_model("pca", input_shape=(64,), latent_dim=4)
    exact.fit(x, verbose=0)
    streamed = kerasae.create_model("pca", input_shape=(64,), latent_dim=4)
    streamed.fit(make_tf_dataset(x, 128, shuffle=False), verbose=0)
    np.testing.assert_allclose(streamed.reconstruct(x), exact.reconstruct(x), atol=1e-5)
