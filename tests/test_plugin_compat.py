"""Plugins as users install them: an API-1 plugin unchanged, and a model-name clash.

Each distribution is a real `.dist-info` folder (with its entry points) next to its
package in a temporary folder on PYTHONPATH, so `importlib.metadata` finds it exactly as
it finds a pip-installed plugin, and the CLI runs in a subprocess as a user runs it.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import run_cli

HERE = os.path.dirname(os.path.abspath(__file__))

CLASH_MODULE = '''"""A plugin that also calls its model `ae` (its own variant, a tanh code)."""
import keras

from kerasae import nets, register_model
from kerasae.models.ae import AE


@register_model("ae")
class TanhAE(AE):
    """AE whose code is squashed by tanh (a plugin's own `ae`)."""

    def __init__(self, input_shape=(28, 28, 1), latent_dim=16, hidden_units=(64,), **kwargs):
        super().__init__(input_shape=input_shape, latent_dim=latent_dim,
                         hidden_units=hidden_units, **kwargs)
        code = keras.layers.Activation("tanh", name="tanh_code")(self.encoder.output)
        self.set_networks(keras.Model(self.encoder.input, code, name="encoder"), self.decoder)
'''


def _distribution(site, dist, version, entry_points):
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[kerasae.models]\n{lines}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(os.path.join(HERE, "plugin_v1", "kerasae_v1_demo"), site / "kerasae_v1_demo")
    _distribution(site, "kerasae-v1-demo", "0.1", {"v1_demo": "kerasae_v1_demo.model:V1Demo"})
    (site / "kerasae_clash").mkdir()
    (site / "kerasae_clash" / "__init__.py").write_text("")
    (site / "kerasae_clash" / "models.py").write_text(CLASH_MODULE)
    _distribution(site, "kerasae-clash", "0.2", {"ae": "kerasae_clash.models:TanhAE"})
    return site


def _env(site):
    return {"PYTHONPATH": os.pathsep.join([str(site), os.path.dirname(HERE)])}


def _python(site, code):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **_env(site)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_an_api1_plugin_passes_the_stricter_checks_unchanged(site):
    proc = _python(
        site,
        "import warnings\n"
        "from kerasae.testing import check_model\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    print(check_model('v1_demo', input_shape=(8, 8, 1), export=False))\n"
        "print([str(w.message) for w in caught if 'API' in str(w.message)])",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report, api_warnings = proc.stdout.strip().splitlines()[-2:]
    assert "'model': 'v1_demo'" in report
    assert api_warnings == "[]"  # API 1 is supported: no version warning


@pytest.mark.slow
def test_an_api1_plugin_trains_from_the_cli(site, tmp_path):
    run = tmp_path / "run"
    proc = run_cli(
        "train",
        "--model",
        "v1_demo",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--latent-dim",
        "4",
        "--out",
        run,
        env=_env(site),
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert {"reconstruction", "code_norm", "val_code_norm"} <= set(rows[0])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert "api version" not in proc.stderr.lower()  # API 1 is supported: no warning


@pytest.mark.slow
def test_a_name_clash_lists_both_qualified_with_one_warning(site, tmp_path):
    # a fresh cache: the clash is warned about the first time this set of plugins is seen
    proc = run_cli("list", "*ae", env={**_env(site), "KERASAE_CACHE": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert {"kerasae:ae", "kerasae-clash:ae", "conv_ae"} <= listed
    assert "ae" not in listed  # the bare name is ambiguous: listed qualified only
    warnings = [line for line in proc.stderr.splitlines() if "kerasae-clash" in line]
    assert len(warnings) == 1, proc.stderr
    assert "'kerasae' and 'kerasae-clash'" in warnings[0] and "kerasae-clash:ae" in warnings[0]


@pytest.mark.slow
def test_the_qualified_name_trains_exports_and_is_recorded(site, tmp_path):
    run = tmp_path / "run"
    proc = run_cli(
        "train",
        "--model",
        "kerasae-clash:ae",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--latent-dim",
        "4",
        "--out",
        run,
        env=_env(site),
    )
    assert proc.returncode == 0, proc.stderr
    config = json.load(open(run / "config.json"))
    assert config["model"] == "kerasae-clash:ae"
    proc = run_cli("export", run, "--format", "onnx", env=_env(site))
    assert proc.returncode == 0, proc.stderr
    manifest = json.load(open(run / "export" / "manifest.json"))
    assert manifest["model"]["name"] == "kerasae-clash:ae"
    assert manifest["model"]["class"].endswith("TanhAE")
    # the built-in under its qualified name; the bare name is refused, naming both
    proc = _python(
        site,
        "import kerasae; m = kerasae.create_model('kerasae:ae', input_shape=(8, 8, 1));"
        "print(type(m).__module__)",
    )
    assert proc.stdout.strip().splitlines()[-1] == "kerasae.models.ae", proc.stderr
    proc = _python(site, "import kerasae; kerasae.create_model('ae', input_shape=(8, 8, 1))")
    assert proc.returncode != 0
    assert "kerasae:ae" in proc.stderr and "kerasae-clash:ae" in proc.stderr
