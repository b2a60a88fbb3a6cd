"""vq_vae (van den Oord et al. 2017): k-means init once, codebook in use after a short fit,
the straight-through gradient, EMA codebook updates without gradients, indices that are
the quantizer's nearest codes, decode(encode(x)) == reconstruct(x), the latent_dim
refusal, ONNX export parity of codes and indices, and the CLI end to end; the mlp
variant at pythae 0.1.2's shape (each code value quantised on its own, pythae's weight
count), its export parity and a pixelcnn prior over its 1 x latent_dim grid."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import kerasae
from kerasae import export, testing
from kerasae.errors import KerasaeError
from tests.helpers import run_cli


def small(**overrides):
    """8x8 digits, one strided conv less than the default: a 4x4 grid of 8-dim codes."""
    config = dict(input_shape=(8, 8, 1), latent_dim=128, filters=(32,), num_embeddings=64)
    return kerasae.create_model("vq_vae", **{**config, **overrides})


def nearest(z_e, codebook):
    d2 = np.sum((z_e[..., None, :] - codebook) ** 2, axis=-1)
    return np.argmin(d2, axis=-1)


@pytest.mark.slow
def test_kmeans_init_runs_once_and_the_codebook_is_used(digits):
    x = digits[0]
    model = small()
    calls = []
    init = model.initialize
    model.initialize = lambda batch: (calls.append(len(batch)), init(batch))
    model.compile()
    assert int(model.initialized.numpy()) == 0
    model.fit(x, epochs=2, batch_size=16, verbose=0)
    assert calls == [16] and int(model.initialized.numpy()) == 1
    # the codebook left its uniform(-1/K, 1/K) start for the encoder outputs' clusters
    assert float(np.max(np.abs(model.quantizer.codebook.numpy()))) > 1.0 / 64
    # small batches: enough steps (340) for unused codes' usage to decay and restart
    model.fit(x, epochs=1, batch_size=16, verbose=0)
    assert calls == [16]  # not initialized a second time
    used = np.unique(model.encode_indices(x)).size / model.num_embeddings
    assert used > 0.75, used  # far above the 1/64 of a collapsed codebook


@pytest.mark.parametrize("update", ["ema", "loss"])
def test_straight_through_gives_the_encoder_a_gradient(update, digits):
    # beta=0: the encoder's only gradient is the reconstruction's, straight through
    # the quantizer; check_gradients fails for a weight with none
    model = small(codebook_update=update, beta=0.0)
    testing.check_gradients(model, digits[0][:64])
    x = tf.constant(digits[0][:32])
    with tf.GradientTape() as tape:
        rec = model.compute_losses(x, training=True)["reconstruction"]
    kernel = model.encoder.get_layer("z_e").kernel
    assert np.any(tape.gradient(rec, kernel).numpy() != 0)


@pytest.mark.slow
def test_ema_updates_the_codebook_without_gradients(digits):
    model = small(codebook_update="ema", kmeans_init=False)
    codebook = model.quantizer.codebook
    assert not codebook.trainable
    assert not any(v is codebook for v in model.trainable_variables)
    x = tf.constant(digits[0][:32])
    with tf.GradientTape() as tape:
        loss = model.compute_losses(x, training=True)["loss"]
    assert tape.gradient(loss, codebook.value) is None
    before = codebook.numpy().copy()
    model.compile()
    model.fit(digits[0][:256], epochs=1, batch_size=64, verbose=0)
    assert not np.allclose(codebook.numpy(), before)  # moved by after_step's moving averages
    assert not [v.path for v in model.optimizer.variables if "codebook" in v.path]

    trained = small(codebook_update="loss")  # the other mode trains it by gradient
    assert any(v is trained.quantizer.codebook for v in trained.trainable_variables)
    assert "codebook" in trained.loss_names and "codebook" not in model.loss_names
    trained.compile()
    trained.fit(digits[0][:64], epochs=1, batch_size=64, verbose=0)
    assert [v.path for v in trained.optimizer.variables if "codebook" in v.path]


def test_indices_are_the_nearest_codes_and_decode_encode_is_reconstruct(digits):
    x = digits[0][:300]
    model = small()
    model.compile()
    model.fit(x, epochs=1, batch_size=64, verbose=0)
    z_e = model.pre_quantizer(x).numpy()
    codebook = model.quantizer.codebook.numpy()
    idx = model.encode_indices(x)
    assert idx.dtype == np.int32 and idx.shape == (300, 4, 4)
    np.testing.assert_array_equal(idx, nearest(z_e, codebook))
    np.testing.assert_array_equal(idx, model.quantizer.indices(z_e).numpy())
    z = model.encode(x)
    assert z.shape == (300, model.latent_dim)
    np.testing.assert_array_equal(z, codebook[idx].reshape(300, -1))  # exactly the codes
    np.testing.assert_array_equal(model.codes_of(idx), z)
    np.testing.assert_array_equal(model.decode(z), model.reconstruct(x))


def test_latent_dim_is_grid_times_embedding_dim_or_a_one_line_error():
    model = kerasae.create_model("vq_vae")  # 28x28: a 7x7 grid of 64-dim codes
    assert (model.latent_dim, model.embedding_dim, model.grid) == (3136, 64, (7, 7))
    assert small(latent_dim=64).embedding_dim == 4
    with pytest.raises(KerasaeError) as info:
        kerasae.create_model("vq_vae", input_shape=(28, 28, 1), latent_dim=16)
    message = str(info.value)
    assert "\n" not in message and "7x7" in message and "multiple of 49" in message
    assert "3136" in message  # a value that works
    kerasae.create_model("vq_vae", input_shape=(28, 28, 1), latent_dim=49 * 8)
    with pytest.raises(KerasaeError, match="architecture must be .conv. or .mlp."):
        kerasae.create_model("vq_vae", input_shape=(8, 8, 1), architecture="resnet")
    with pytest.raises(KerasaeError, match="codebook_update"):
        small(codebook_update="sgd")


def test_cli_latent_dim_refusal_is_one_line(capsys, tmp_path):
    from kerasae.cli import main

    assert (
        main(
            [
                "train",
                "--model",
                "vq_vae",
                "--dataset",
                "digits",
                "--latent-dim",
                "6",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "multiple of 4" in err[0] and "256" in err[0], err
    assert not (tmp_path / "run").exists()


def test_not_generative():
    from kerasae.errors import NotGenerativeError

    model = small()
    assert not model.generative
    with pytest.raises(NotGenerativeError):
        model.sample(4)


@pytest.mark.slow
def test_onnx_export_matches_codes_and_indices(digits, tmp_path):
    import onnx
    import onnxruntime as ort

    x = digits[0]
    model = small()
    model.compile()
    model.fit(x[:512], epochs=1, batch_size=64, verbose=0)
    manifest = export.export_model(model, tmp_path / "e", fp16=True, real_x=x[:7])
    outputs = manifest["parts"]["encoder"]["outputs"]
    assert [(o["name"], o["dtype"], o["shape"]) for o in outputs] == [
        ("z", "float32", [None, 128]),
        ("indices", "int32", [None, 4, 4]),
    ]
    batch = x[100:400]  # many real inputs: every index must agree, not most
    for name in ("encoder.onnx", "encoder.fp16.onnx"):
        sess = ort.InferenceSession(str(tmp_path / "e" / name), providers=["CPUExecutionProvider"])
        z, idx = sess.run(["z", "indices"], {"x": batch})
        assert idx.dtype == np.int32
        np.testing.assert_array_equal(idx, model.encode_indices(batch))
        np.testing.assert_allclose(z, model.encode(batch), atol=1e-6)
    meta = {
        p.key: p.value for p in onnx.load(str(tmp_path / "e" / "encoder.fp16.onnx")).metadata_props
    }
    assert meta["kerasae.fp16"] == "kept float32 (ArgMin)"  # near-ties must not flip
    ops = {n.op_type for n in onnx.load(str(tmp_path / "e" / "encoder.onnx")).graph.node}
    assert {"ArgMin", "Gather"} <= ops
    dec = ort.InferenceSession(
        str(tmp_path / "e" / "decoder.onnx"), providers=["CPUExecutionProvider"]
    )
    x_hat = dec.run(["x_hat"], {"z": model.encode(batch)})[0]
    np.testing.assert_allclose(x_hat, model.reconstruct(batch), atol=1e-5)


def test_verification_fails_on_one_wrong_index(digits, tmp_path, monkeypatch):
    from kerasae.export import onnx_export

    real_run = onnx_export.run

    def off_by_one(sess, signature, x):
        out = real_run(sess, signature, x)
        if "indices" in out:
            out["indices"] = out["indices"].copy()
            out["indices"].flat[0] = (out["indices"].flat[0] + 1) % 64
        return out

    monkeypatch.setattr(onnx_export, "run", off_by_one)
    with pytest.raises(KerasaeError, match=r"integer output 'indices' .* differs in 1 of"):
        export.export_model(small(), tmp_path / "bad", formats=("onnx",), real_x=digits[0][:7])


@pytest.mark.slow
def test_cli_trains_on_digits_and_exports(tmp_path):
    run = str(tmp_path / "run")
    result = run_cli(
        "train", "--model", "vq_vae", "--dataset", "digits", "--epochs", "2", "--out", run
    )
    assert result.returncode == 0, result.stderr
    header = open(os.path.join(run, "history.csv")).readline().strip().split(",")
    assert {"perplexity", "usage", "commitment", "val_usage"} <= set(header)
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["model_config"]["latent_dim"] == 16  # the CLI's default: 2x2 grid of 4
    result = run_cli("export", run)
    assert result.returncode == 0, result.stderr
    assert "encoder.onnx: verified" in result.stdout
    manifest = json.load(open(os.path.join(run, "export", "manifest.json")))
    assert [o["dtype"] for o in manifest["parts"]["encoder"]["outputs"]] == ["float32", "int32"]


# ---------------------------------------------------------------- the mlp variant (pythae's)
def small_mlp(**overrides):
    """8x8 digits, one hidden layer of 32: 6 codes, each 1-d, of a 16-entry codebook."""
    config = dict(
        input_shape=(8, 8, 1),
        latent_dim=6,
        architecture="mlp",
        hidden_units=(32,),
        num_embeddings=16,
    )
    return kerasae.create_model("vq_vae", **{**config, **overrides})


def pythae_mlp_params(inputs, hidden, codes, num_embeddings):
    """pythae 0.1.2's VQVAE at Encoder_AE_MLP / Decoder_AE_MLP (one hidden layer) with a
    codebook of 1-d codes: Linear(in, h), Linear(h, d); Linear(d, h), Linear(h, in); K x 1."""
    dense = (inputs * hidden + hidden) + (hidden * codes + codes)
    return dense + (codes * hidden + hidden) + (hidden * inputs + inputs) + num_embeddings


def test_mlp_variant_quantises_each_value_as_pythae_does(digits):
    x = digits[0][:300]
    model = small_mlp()
    assert (model.grid, model.embedding_dim) == ((1, 6), 1)
    assert tuple(model.quantizer.codebook.shape) == (16, 1)
    # pythae's shape and size: the same trainable weights, so the same compute
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert trainable == pythae_mlp_params(64, 32, 6, 16)
    big = kerasae.create_model("vq_vae", architecture="mlp", hidden_units=(512,))
    assert (big.latent_dim, big.grid, tuple(big.quantizer.codebook.shape)) == (
        16,
        (1, 16),
        (512, 1),
    )
    assert sum(int(np.prod(v.shape)) for v in big.trainable_weights) == 821_536
    model.compile()
    model.fit(x, epochs=1, batch_size=64, verbose=0)
    z_e = model.pre_quantizer(x).numpy()
    assert z_e.shape == (300, 1, 6, 1)
    codebook = model.quantizer.codebook.numpy()
    idx = model.encode_indices(x)
    assert idx.dtype == np.int32 and idx.shape == (300, 1, 6)
    # each value snapped to its nearest scalar code, independently
    np.testing.assert_array_equal(idx, np.argmin(np.abs(z_e - codebook[:, 0]), axis=-1))
    z = model.encode(x)
    np.testing.assert_array_equal(z, codebook[idx, 0].reshape(300, 6))
    np.testing.assert_array_equal(model.codes_of(idx), z)
    np.testing.assert_array_equal(model.decode(z), model.reconstruct(x))
    assert np.unique(idx).size > 1  # k-means spread the scalar codes


def test_mlp_variant_straight_through_and_round_trip(digits, tmp_path):
    model = small_mlp(beta=0.0)
    testing.check_gradients(model, digits[0][:64])  # every weight has a gradient
    config = model.get_config()
    assert (config["architecture"], tuple(config["hidden_units"])) == ("mlp", (32,))
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = kerasae.load_model(path)
    np.testing.assert_array_equal(
        again.encode_indices(digits[0][:50]), model.encode_indices(digits[0][:50])
    )


def test_architecture_refusal_names_both():
    with pytest.raises(KerasaeError) as info:
        kerasae.create_model("vq_vae", input_shape=(8, 8, 1), architecture="auto")
    message = str(info.value)
    assert "\n" not in message and "'conv' or 'mlp'" in message and "'auto'" in message


@pytest.mark.slow
def test_mlp_variant_exports_with_parity_and_pixelcnn_models_its_codes(digits, tmp_path):
    import onnxruntime as ort

    from kerasae.samplers.base import create_sampler
    from kerasae.samplers.pixelcnn import PixelCNNSampler

    x = digits[0]
    model = small_mlp()
    model.compile()
    model.fit(x[:512], epochs=2, batch_size=64, verbose=0)
    manifest = export.export_model(model, tmp_path / "e", formats=("onnx",), real_x=x[:7])
    outputs = manifest["parts"]["encoder"]["outputs"]
    assert [(o["name"], o["dtype"], o["shape"]) for o in outputs] == [
        ("z", "float32", [None, 6]),
        ("indices", "int32", [None, 1, 6]),
    ]
    batch = x[100:400]
    sess = ort.InferenceSession(
        str(tmp_path / "e" / "encoder.onnx"), providers=["CPUExecutionProvider"]
    )
    z, idx = sess.run(["z", "indices"], {"x": batch})
    np.testing.assert_array_equal(idx, model.encode_indices(batch))
    np.testing.assert_allclose(z, model.encode(batch), atol=1e-6)
    # the pixelcnn prior reads the 1 x 6 grid as a row: a causal model of the 6 codes
    sampler = create_sampler("pixelcnn", **PixelCNNSampler.tiny_config).fit(model, x, seed=0)
    assert sampler.grid == (1, 6) and sampler.latent_dim == 6
    assert sampler.history[-1] < sampler.history[0]  # it learns the codes' distribution
    drawn = sampler.sample_indices(32, seed=1)
    assert drawn.shape == (32, 1, 6) and drawn.min() >= 0 and drawn.max() < 16
    z = sampler.sample_latent(32, seed=1)
    np.testing.assert_array_equal(z, model.codes_of(drawn))
    assert model.decode(z).shape == (32, 8, 8, 1)
