"""`import kerasae` turns TensorFlow's oneDNN kernels on (kerasae.onednn) unless the user
chose: TF_ENABLE_ONEDNN_OPTS is read once, when TensorFlow is imported."""

import os
import subprocess
import sys

import pytest

SHOW = "import os, kerasae; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"


@pytest.mark.parametrize("given, expected", [(None, "1"), ("0", "0"), ("1", "1")])
def test_import_kerasae_sets_onednn_unless_given(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = given
    out = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


def test_nothing_changes_once_tensorflow_is_imported(monkeypatch):
    from kerasae import onednn

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow", object()))
    onednn.default_on()
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
