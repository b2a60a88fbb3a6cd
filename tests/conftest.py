"""Shared fixtures: tiny data, quiet TensorFlow, a fresh registry view per test that needs one."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits as (N, 8, 8, 1) float32 in [0, 1], with labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype("float32")[..., None], bunch.target


@pytest.fixture(scope="session", autouse=True)
def _kerasae_cache(tmp_path_factory):
    """kerasae's cache (the FID-C classifiers, the plugin record) in a temporary folder,
    never the user's home; subprocesses inherit it. Tests that need their own set
    KERASAE_CACHE again. Under pytest-xdist the workers of one run share it, so the plugin
    record and the classifiers are made once, not once per worker (kerasae writes each
    cache file atomically)."""
    mp = pytest.MonkeyPatch()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.getbasetemp().parent / "kerasae_cache"
        folder.mkdir(exist_ok=True)
    else:
        folder = tmp_path_factory.mktemp("kerasae_cache")
    mp.setenv("KERASAE_CACHE", str(folder))
    yield
    mp.undo()


@pytest.fixture
def tiny_images():
    rng = np.random.default_rng(0)
    return rng.random((64, 8, 8, 1), dtype=np.float32)


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(0)
