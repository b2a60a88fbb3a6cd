"""kerasae.nets.VectorQuantizer (van den Oord et al. 2017): lookup, straight-through
gradients, losses, EMA codebook, dead-code restarts, k-means init, saving and ONNX export."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasae.nets import VectorQuantizer


def _vq(k=7, d=3, **kwargs):
    vq = VectorQuantizer(k, d, **kwargs)
    vq.build((None, d))
    return vq


def _brute_force(z, codebook):
    d2 = np.sum((z[..., None, :] - codebook) ** 2, axis=-1)
    return np.argmin(d2, axis=-1)


def _clustered(rng, centers=8, d=4, n=256, noise=0.05):
    means = rng.normal(0.0, 3.0, (centers, d))
    return (means[rng.integers(0, centers, n)] + rng.normal(0.0, noise, (n, d))).astype("f4")


@pytest.mark.parametrize("shape", [(32, 3), (2, 3, 4, 3)], ids=["vectors", "grid"])
def test_nearest_neighbour_matches_numpy_brute_force(shape):
    rng = np.random.default_rng(0)
    vq = _vq()
    codebook = rng.normal(size=(7, 3)).astype("f4")
    vq.codebook.assign(codebook)
    z = rng.normal(size=shape).astype("f4")
    want = _brute_force(z, codebook)
    idx = vq.indices(z)
    assert idx.dtype == tf.int32 and idx.shape == shape[:-1]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(vq.lookup(idx), codebook[want])
    np.testing.assert_allclose(vq(z), codebook[want], atol=1e-6)


def test_straight_through_gradient_is_exactly_ones():
    z = tf.constant(np.random.default_rng(1).normal(size=(4, 2, 2, 3)), tf.float32)
    vq = _vq()
    with tf.GradientTape() as tape:
        tape.watch(z)
        out = tf.reduce_sum(vq(z, training=True))
    np.testing.assert_array_equal(tape.gradient(out, z), np.ones(z.shape, "f4"))


@pytest.mark.parametrize("ema", [False, True])
def test_losses_match_numpy(ema):
    rng = np.random.default_rng(2)
    vq = _vq(ema=ema, beta=0.3)
    codebook = rng.normal(size=(7, 3)).astype("f4")
    vq.codebook.assign(codebook)
    z = rng.normal(size=(5, 2, 2, 3)).astype("f4")
    out = vq.quantize(z)
    mse = np.mean((z - codebook[_brute_force(z, codebook)]) ** 2)
    codebook_loss = 0.0 if ema else mse
    for name in ("codebook_loss", "commitment_loss", "loss", "perplexity", "usage"):
        assert out[name].dtype == tf.float32 and out[name].shape == (), name
    np.testing.assert_allclose(out["codebook_loss"], codebook_loss, rtol=1e-5)
    np.testing.assert_allclose(out["commitment_loss"], mse, rtol=1e-5)
    np.testing.assert_allclose(out["loss"], codebook_loss + 0.3 * mse, rtol=1e-5)
    counts = np.bincount(_brute_force(z, codebook).ravel(), minlength=7)
    p = counts[counts > 0] / counts.sum()
    np.testing.assert_allclose(out["perplexity"], np.exp(-np.sum(p * np.log(p))), rtol=1e-5)
    np.testing.assert_allclose(out["usage"], np.mean(counts > 0), rtol=1e-6)


def test_perplexity_is_k_for_uniform_usage_and_one_for_a_single_code():
    vq = _vq(k=4, d=2)
    codebook = np.array([[0, 0], [5, 0], [0, 5], [5, 5]], "f4")
    vq.codebook.assign(codebook)
    uniform = vq.quantize(np.repeat(codebook, 3, axis=0))
    np.testing.assert_allclose(uniform["perplexity"], 4.0, rtol=1e-6)
    assert float(uniform["usage"]) == 1.0
    single = vq.quantize(np.repeat(codebook[2:3], 6, axis=0))
    np.testing.assert_allclose(single["perplexity"], 1.0, rtol=1e-6)
    assert float(single["usage"]) == 0.25


def test_codebook_loss_trains_the_codebook_and_commitment_loss_the_encoder():
    vq = _vq()
    z = tf.constant(np.random.default_rng(3).normal(size=(8, 3)), tf.float32)
    for name, moves_codebook in (("codebook_loss", True), ("commitment_loss", False)):
        with tf.GradientTape() as tape:
            tape.watch(z)
            loss = vq.quantize(z)[name]
        g_z, g_e = tape.gradient(
            loss, [z, vq.codebook.value], unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        assert bool(np.any(g_e != 0)) is moves_codebook, name
        assert bool(np.any(g_z != 0)) is not moves_codebook, name


def _numpy_ema(size, ema_sum, z, idx, k, decay, eps):
    counts = np.bincount(idx, minlength=k).astype("f8")
    sums = np.zeros_like(ema_sum)
    np.add.at(sums, idx, z)
    size = decay * size + (1 - decay) * counts
    ema_sum = decay * ema_sum + (1 - decay) * sums
    n = size.sum()
    return size, ema_sum, ema_sum / ((size + eps) / (n + k * eps) * n)[:, None]


@pytest.mark.parametrize("jit_compile", [False, True])  # Keras may jit the train step
def test_ema_update_in_tf_function_moves_codes_to_batch_means_like_numpy(jit_compile):
    rng = np.random.default_rng(4)
    k, d, decay, eps = 4, 2, 0.8, 1e-5
    vq = _vq(k=k, d=d, ema=True, decay=decay, epsilon=eps, restart_threshold=None)
    assert not vq.codebook.trainable and len(vq.trainable_weights) == 0
    np.testing.assert_array_equal(vq.ema_sum, vq.codebook)  # consistent from the start
    codebook = np.array([[0, 0], [4, 0], [0, 4], [9, 9]], "f8")
    vq.codebook.assign(codebook)
    vq.ema_sum.assign(codebook)
    z = np.concatenate(
        [rng.normal([1, 0.5], 0.3, (20, 2)), rng.normal([3.5, 1], 0.3, (12, 2))]
    ).astype("f4")
    step = tf.function(
        lambda z: (vq.quantize(z)["loss"], vq.ema_update(z)), jit_compile=jit_compile
    )
    size, ema_sum, want = np.ones(k), codebook.copy(), codebook
    for _ in range(3):
        idx = _brute_force(z, vq.codebook.numpy())
        before = vq.codebook.numpy()
        step(z)
        size, ema_sum, want = _numpy_ema(size, ema_sum, z, idx, k, decay, eps)
        for code in (0, 1):  # the used codes get closer to the mean of their vectors
            mean = z[idx == code].mean(axis=0)
            assert np.linalg.norm(vq.codebook[code] - mean) < np.linalg.norm(before[code] - mean)
    np.testing.assert_allclose(vq.cluster_size, size, rtol=1e-5)
    np.testing.assert_allclose(vq.ema_sum, ema_sum, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vq.codebook, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ema", [False, True])
def test_dead_code_restart_moves_an_unused_code_onto_a_batch_vector(ema):
    vq = _vq(k=3, d=2, ema=ema, decay=0.1, restart_threshold=0.5, seed=0)
    vq.codebook.assign(np.array([[0, 0], [1, 1], [50, 50]], "f4"))
    if ema:
        vq.ema_sum.assign(vq.codebook.value)
    z = np.random.default_rng(5).normal(0.5, 0.2, (16, 2)).astype("f4")
    restarted = tf.function(lambda z: vq.ema_update(z))(z)
    assert int(restarted) == 1
    assert np.any(np.all(z == vq.codebook.numpy()[2], axis=1))  # exactly a batch vector
    assert float(vq.cluster_size[2]) == 1.0
    if ema:
        np.testing.assert_array_equal(vq.ema_sum[2], vq.codebook[2])


def test_kmeans_init_lowers_quantisation_error_on_clustered_data():
    rng = np.random.default_rng(6)
    z = _clustered(rng)
    errors = {}
    for init in ("random-weights", "kmeans++", "random"):
        vq = _vq(k=8, d=4, ema=True, seed=0)
        if init != "random-weights":
            error = vq.kmeans_init(z, init=init, seed=1)
        errors[init] = float(vq.quantize(z)["commitment_loss"])
        if init != "random-weights":
            np.testing.assert_allclose(error, errors[init], rtol=1e-4)
            # the EMA statistics agree with the new codebook
            np.testing.assert_allclose(
                vq.ema_sum / vq.cluster_size[:, None], vq.codebook, rtol=1e-5, atol=1e-6
            )
    assert errors["kmeans++"] < 0.01 * errors["random-weights"], errors
    assert errors["random"] < 0.5 * errors["random-weights"], errors


def test_kmeans_init_with_fewer_vectors_than_codes():
    z = np.array([[0, 0], [3, 3], [6, 0]], "f4")
    vq = _vq(k=8, d=2)
    vq.kmeans_init(z, seed=0)
    nearest = np.min(np.linalg.norm(vq.codebook.numpy()[:, None] - z, axis=-1), axis=1)
    assert np.all(nearest < 0.5), nearest  # every code sits on (a noisy copy of) a vector
    np.testing.assert_array_equal(np.sort(np.unique(vq.indices(z))).size, 3)


def test_config_round_trip():
    vq = VectorQuantizer(
        5,
        3,
        beta=0.4,
        ema=True,
        decay=0.95,
        epsilon=1e-4,
        restart_threshold=None,
        seed=3,
        name="vq",
    )
    config = vq.get_config()
    for key in (
        "num_embeddings",
        "embedding_dim",
        "beta",
        "ema",
        "decay",
        "epsilon",
        "restart_threshold",
        "embeddings_initializer",
        "seed",
    ):
        assert key in config, key
    clone = VectorQuantizer.from_config(config)
    assert clone.get_config() == config
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(vq))
    assert type(again) is VectorQuantizer and again.get_config() == config


def _tiny_model(vq, d=3):
    inputs = keras.Input((4,), name="x")
    h = keras.layers.Reshape((2, 2, d))(keras.layers.Dense(4 * d, name="dense")(inputs))
    return keras.Model(inputs, vq(h)), keras.Model(inputs, h)


@pytest.mark.parametrize("ema", [False, True])
def test_keras_save_and_load_give_identical_outputs(ema, tmp_path):
    model, pre = _tiny_model(VectorQuantizer(6, 3, ema=ema, seed=0, name="vq"))
    x = np.random.default_rng(7).normal(size=(16, 4)).astype("f4")
    model.get_layer("vq").kmeans_init(pre(x))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(x), model(x))
    for a, b in zip(loaded.get_layer("vq").weights, model.get_layer("vq").weights):
        assert a.name == b.name
        np.testing.assert_array_equal(a, b)


def test_keras_int8_quantization_skips_the_layer():
    """Keras's own `Model.quantize("int8")` still works around a VectorQuantizer."""
    model, _ = _tiny_model(VectorQuantizer(6, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.quantize("int8")
    assert model.get_layer("dense").dtype_policy.quantization_mode == "int8"


def test_onnx_export_is_argmin_and_gather_and_matches_keras():
    tf2onnx = pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    vq = VectorQuantizer(5, 3, seed=0, name="vq")
    model, pre = _tiny_model(vq)
    x = np.random.default_rng(8).normal(size=(32, 4)).astype("f4")
    vq.kmeans_init(pre(x))
    spec = [tf.TensorSpec((None, 4), tf.float32, name="x")]
    fn = tf.function(
        lambda x: {"z_q": model(x), "indices": vq.indices(pre(x))}, input_signature=spec
    )
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
    ops = {n.op_type for n in proto.graph.node}
    assert {"ArgMin", "Gather"} <= ops and "Bitcast" not in ops, ops
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x[:9]})))
    want = fn(tf.constant(x[:9]))
    np.testing.assert_allclose(got["z_q"], want["z_q"], atol=1e-5)
    np.testing.assert_array_equal(got["indices"], want["indices"])
    assert len(np.unique(want["indices"])) > 1  # the check covers more than one code
