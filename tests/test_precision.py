"""Mixed precision and the fast path: layers compute in half precision, losses stay float32."""

import keras
import numpy as np
import pytest

import kerasae
from kerasae.data.pipeline import make_tf_dataset
from kerasae.distribute import precision_policy
from kerasae.models.fitting import STEPS_PER_EXECUTION
from kerasae.models.registry import get_model_class
from tests.helpers import registry_params


def _fit(name, x, policy, epochs=3):
    with precision_policy(policy):
        model = kerasae.create_model(
            name, input_shape=x.shape[1:], **get_model_class(name).tiny_config
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = model.fit(make_tf_dataset(x, 64), epochs=epochs, verbose=0).history
    return model, history


@pytest.mark.parametrize("name", registry_params(["ae", "vae", "wae"], fast=("ae",)))
def test_mixed_bfloat16_trains_with_float32_losses(name, digits):
    if name not in kerasae.list_models():
        pytest.skip(f"{name} is not registered")
    x = digits[0][:256]
    model, history = _fit(name, x, "mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    dense = next(layer for layer in model.encoder.layers if isinstance(layer, keras.layers.Dense))
    assert dense.compute_dtype == "bfloat16" and dense.variable_dtype == "float32"
    assert model.decoder.output.dtype == "float32"
    losses = model.compute_losses(x[:32], training=False)
    assert {keras.backend.standardize_dtype(v.dtype) for v in losses.values()} == {"float32"}
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]


def test_mixed_float16_scales_the_loss(digits):
    model, history = _fit("ae", digits[0][:256], "mixed_float16", epochs=2)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]


def test_precision_through_train_and_saved_run(tmp_path):
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.folder import load_run
    from kerasae.runs.training import train

    out, model, history = train(
        TrainConfig(
            model="ae",
            epochs=1,
            batch_size=256,
            latent_dim=2,
            params={"hidden_units": (16,)},
            out=str(tmp_path / "r"),
            precision="mixed_bfloat16",
        ),
        verbose=0,
    )
    config, loaded = load_run(out)
    assert config["precision"] == "mixed_bfloat16" and config["status"] == "finished"
    assert keras.config.dtype_policy().name == "float32"
    # variables are float32 under mixed precision: the saved model loads as a float32
    # model (what the exporters want) computing what the bfloat16 one did, to bf16 accuracy
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    assert loaded.encoder.layers[-1].compute_dtype == "float32"
    np.testing.assert_allclose(loaded.reconstruct(x), model.reconstruct(x), atol=0.05)


def test_fast_path_defaults():
    model = kerasae.create_model("ae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(16,))
    model.compile()
    assert model.steps_per_execution == STEPS_PER_EXECUTION > 1
    assert model.jit_compile is False  # "auto": XLA off on a CPU-only host (slower here)


def test_data_pipeline_shuffles_whole_epochs():
    x = np.arange(100, dtype="float32").reshape(100, 1)
    ds = make_tf_dataset(x, 32, seed=0)
    epochs = [np.concatenate(list(ds.as_numpy_iterator()))[:, 0] for _ in range(2)]
    for e in epochs:
        np.testing.assert_array_equal(np.sort(e), x[:, 0])  # each example once per epoch
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every epoch
    assert epochs[0][:32].max() > 50  # a full-epoch shuffle, not a small window
    ordered = np.concatenate(list(make_tf_dataset(x, 32, shuffle=False).as_numpy_iterator()))
    np.testing.assert_array_equal(ordered, x)


@pytest.mark.slow
def test_mixed_bfloat16_run_exports_float32_onnx_matching_keras(tmp_path):
    import onnxruntime as ort

    from kerasae.export.run import export_run
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.folder import load_run
    from kerasae.runs.training import train

    out, _, history = train(
        TrainConfig(
            model="ae",
            epochs=3,
            batch_size=64,
            latent_dim=4,
            params={"hidden_units": (32,)},
            out=str(tmp_path / "r"),
            precision="mixed_bfloat16",
        ),
        verbose=0,
    )
    assert history["loss"][-1] < history["loss"][0]
    export_run(out, formats=("onnx",))
    _, model = load_run(out)
    x = np.random.default_rng(0).random((8, 8, 8, 1), dtype=np.float32)
    z = model.encode(x)
    for part, feed, want in (("encoder", {"x": x}, z), ("decoder", {"z": z}, model.decode(z))):
        session = ort.InferenceSession(str(tmp_path / "r" / "export" / f"{part}.onnx"))
        assert {i.type for i in session.get_inputs() + session.get_outputs()} == {"tensor(float)"}
        got = session.run(None, feed)[0]
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-4)
