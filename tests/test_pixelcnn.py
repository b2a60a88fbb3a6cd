"""pixelcnn sampler (van den Oord et al. 2016, 2017): a causal prior over a vq_vae's index
grid that learns (its loss falls, it beats the codes' own frequencies), draws the spec's
numbers (same seed, same codes; codebook rows), survives save/load, refuses a model with no
codebook, and its sampler.onnx driven by the spec's loop in onnxruntime gives the same z."""

import json
import os

import keras
import numpy as np
import pytest

import kerasae
from kerasae.errors import KerasaeError
from kerasae.export.manifest import write_graph
from kerasae.samplers.base import LatentSampler, create_sampler
from kerasae.samplers.pixelcnn import PixelCNNSampler
from kerasae.samplers.pixelcnn_net import causal_mask


def train_vq_vae(x, input_shape=(8, 8, 1), **config):
    keras.utils.set_random_seed(0)
    model = kerasae.create_model("vq_vae", input_shape=input_shape, **config)
    model.compile()
    model.fit(x, epochs=2, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def fitted(digits):
    """A vq_vae on 8x8 digits with a 4x4 grid of 16 codes, and a tiny pixelcnn fitted to it."""
    model = train_vq_vae(digits[0], latent_dim=128, filters=(32,), num_embeddings=16)
    sampler = create_sampler("pixelcnn", **PixelCNNSampler.tiny_config)
    return model, sampler.fit(model, digits[0], seed=0)


def spec_draw(logits_of, n, grid, k, seed):
    """samplers_spec's pixelcnn loop, written out literally (what kerasae-runtime does)."""
    h, w = grid
    rng = np.random.default_rng(seed)
    u = rng.random((n, h * w))
    indices = np.zeros((n, h, w), dtype=np.int64)
    for p in range(h * w):
        i, j = divmod(p, w)
        logits = logits_of(indices)[:, i, j, :].astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
        pick = [np.searchsorted(cdf[r], u[r, p], side="right") for r in range(n)]
        indices[:, i, j] = np.minimum(pick, k - 1)
    return indices


def test_masks_see_only_earlier_positions():
    a, b = causal_mask(3, "A"), causal_mask(3, "B")
    np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


@pytest.mark.slow  # a trained vq_vae and sampler: ~30 s
def test_fit_lowers_the_loss_and_uses_the_context(fitted, digits):
    model, sampler = fitted
    history = sampler.history
    assert len(history) == PixelCNNSampler.tiny_config["epochs"]
    assert history[-1] < 0.8 * history[0], history
    # below the entropy of the codes' frequencies: the earlier positions inform the next
    indices = model.encode_indices(digits[0])
    freq = np.bincount(indices.ravel(), minlength=16) / indices.size
    unigram = -np.sum(freq[freq > 0] * np.log(freq[freq > 0]))
    assert history[-1] < unigram, (history, unigram)
    # and its draws follow the training frequencies (uniform draws would be far off)
    drawn = np.bincount(sampler.sample_indices(1000, seed=0).ravel(), minlength=16)
    tv = 0.5 * np.abs(drawn / drawn.sum() - freq).sum()
    assert tv < 0.12 < 0.5 * np.abs(1 / 16 - freq).sum(), tv


@pytest.mark.slow  # a trained vq_vae and sampler: ~30 s
def test_the_network_is_causal(fitted):
    _, sampler = fitted
    h, w = sampler.grid
    rng = np.random.default_rng(0)
    base = rng.integers(0, 16, (8, h, w)).astype("int32")
    logits = sampler.network(base).numpy()
    changed_by_past = False
    for p in range(h * w):
        i, j = divmod(p, w)
        later = base.copy().reshape(8, -1)
        later[:, p:] = rng.integers(0, 16, later[:, p:].shape)
        np.testing.assert_allclose(
            sampler.network(later.reshape(base.shape)).numpy()[:, i, j], logits[:, i, j], atol=1e-5
        )
        if p:
            earlier = base.copy().reshape(8, -1)
            earlier[:, :p] = (earlier[:, :p] + 1) % 16
            changed_by_past |= not np.allclose(
                sampler.network(earlier.reshape(base.shape)).numpy()[:, i, j], logits[:, i, j]
            )
    assert changed_by_past


@pytest.mark.slow  # a trained vq_vae and sampler: ~30 s
def test_draws_are_seeded_codebook_rows_the_decoder_takes(fitted):
    model, sampler = fitted
    z = sampler.sample_latent(40, seed=3)
    assert z.shape == (40, model.latent_dim) and z.dtype == np.float32
    np.testing.assert_array_equal(z, sampler.sample_latent(40, seed=3))
    assert not np.array_equal(z, sampler.sample_latent(40, seed=4))
    # U is drawn up front, row by row: more draws (in two chunks) begin with the same ones
    np.testing.assert_array_equal(sampler.sample_latent(1100, seed=3)[:40], z)
    # the spec's loop on the Keras network gives the same indices, and z is their codes
    indices = spec_draw(
        lambda idx: sampler.network(idx.astype("int32")).numpy(), 40, sampler.grid, 16, seed=3
    )
    np.testing.assert_array_equal(z, model.codes_of(indices))
    assert sampler.generate(model, 5, seed=1).shape == (5, 8, 8, 1)
    with pytest.raises(KerasaeError, match="positive integer"):
        sampler.sample_latent(0)


@pytest.mark.slow  # a trained vq_vae and sampler: ~30 s
def test_save_load_round_trip_without_pickles(fitted, tmp_path):
    _, sampler = fitted
    folder = tmp_path / "pixelcnn"
    sampler.save(folder)
    assert {"sampler.json", "arrays.npz", "model.weights.h5"} <= set(os.listdir(folder))
    meta = json.loads((folder / "sampler.json").read_text())
    assert meta["name"] == "pixelcnn" and meta["grid"] == [4, 4]
    with np.load(folder / "arrays.npz", allow_pickle=False) as f:
        np.testing.assert_array_equal(f["codebook"], sampler.codebook)
    loaded = LatentSampler.load(folder)
    assert isinstance(loaded, PixelCNNSampler) and loaded.history == sampler.history
    np.testing.assert_array_equal(
        loaded.sample_latent(30, seed=7), sampler.sample_latent(30, seed=7)
    )


def test_refuses_models_without_a_codebook_and_bad_options():
    model = kerasae.create_model("conv_ae", input_shape=(8, 8, 1), latent_dim=4)
    with pytest.raises(KerasaeError, match="vq_vae") as err:
        create_sampler("pixelcnn").fit(model, np.zeros((4, 8, 8, 1), "float32"))
    assert "\n" not in str(err.value)
    with pytest.raises(KerasaeError, match="filters"):
        create_sampler("pixelcnn", filters=0)
    with pytest.raises(KerasaeError, match="not fitted"):
        create_sampler("pixelcnn").sample_latent(3)


@pytest.mark.slow  # a trained vq_vae and sampler: ~30 s
def test_onnx_driven_by_the_spec_loop_gives_the_same_z(fitted, tmp_path):
    import onnxruntime as ort

    _, sampler = fitted
    spec = sampler.export_spec()
    write_graph(sampler.export_graph(), str(tmp_path))
    assert spec["kind"] == "pixelcnn" and spec["sampler"] == "pixelcnn"
    assert spec["grid"] == [4, 4] and spec["num_embeddings"] == 16
    assert spec["dim"] == sampler.latent_dim and spec["file"] == "sampler.onnx"
    sess = ort.InferenceSession(str(tmp_path / spec["file"]), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in sess.get_inputs()] == [("indices", "tensor(int64)")]
    assert [o.name for o in sess.get_outputs()] == ["logits", "z"]

    def logits_of(indices):
        return sess.run(["logits"], {"indices": indices})[0]

    n, seed = 200, 11
    indices = spec_draw(logits_of, n, tuple(spec["grid"]), spec["num_embeddings"], seed)
    z = sess.run(["z"], {"indices": indices})[0]
    assert z.shape == (n, spec["dim"]) and z.dtype == np.float32
    np.testing.assert_allclose(z, sampler.sample_latent(n, seed=seed), atol=1e-5)
    np.testing.assert_allclose(
        logits_of(indices), sampler.network(indices.astype("int32")).numpy(), atol=1e-4
    )
    # the same weights give the same bytes (the manifest lists the file's sha256)
    again = tmp_path / "again"
    write_graph(sampler.export_graph(), str(again))
    assert (again / "sampler.onnx").read_bytes() == (tmp_path / "sampler.onnx").read_bytes()


@pytest.mark.slow
def test_a_7x7_grid_fits_and_exports(digits, tmp_path):
    """28x28 inputs (the digits upscaled): the 7x7 grid and its 7x7 mask-A kernel."""
    import onnxruntime as ort

    x = np.kron(digits[0][:600], np.ones((1, 3, 3, 1), "float32"))
    x = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    model = train_vq_vae(
        x, input_shape=(28, 28, 1), latent_dim=49 * 4, filters=(8, 16), num_embeddings=16
    )
    sampler = create_sampler("pixelcnn", filters=32, blocks=2, epochs=6).fit(model, x, seed=1)
    assert sampler.grid == (7, 7) and sampler.history[-1] < 0.8 * sampler.history[0]
    assert sampler.network.get_layer("mask_a").kernel.shape[:2] == (7, 7)
    spec = sampler.export_spec()
    write_graph(sampler.export_graph(), str(tmp_path))
    sess = ort.InferenceSession(str(tmp_path / "sampler.onnx"), providers=["CPUExecutionProvider"])
    indices = spec_draw(
        lambda idx: sess.run(["logits"], {"indices": idx})[0],
        64,
        tuple(spec["grid"]),
        spec["num_embeddings"],
        seed=2,
    )
    np.testing.assert_allclose(
        sess.run(["z"], {"indices": indices})[0], sampler.sample_latent(64, seed=2), atol=1e-5
    )
    assert model.decode(sampler.sample_latent(4, seed=0)).shape == (4, 28, 28, 1)
