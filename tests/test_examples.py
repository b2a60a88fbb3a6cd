"""Every example in examples/ runs end to end at tiny settings, so the examples never rot.

Each script runs in a subprocess with one epoch (`KERASAE_EXAMPLE_EPOCHS=1`) and its output
folder in a temporary directory, and is then held to what its header promises: the files
it writes and the figures it prints. examples/write_a_plugin.md is executed as a reader
would paste it, with a venv of its own layered over this one, so that its `pip install`
never adds a model to the shared venv that other processes are using.
"""

import ast
import glob
import math
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SCRIPTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(EXAMPLES, "*.py")))
NUMBER = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?)"


def run_example(name, tmp_path, **env):
    """Run examples/NAME at tiny settings in tmp_path; returns its stdout."""
    env = {
        **os.environ,
        "KERASAE_EXAMPLE_EPOCHS": "1",
        "KERASAE_EXAMPLE_OUT": str(tmp_path),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": ROOT,
        **env,
    }
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def numbers(pattern, text):
    """Every match of `pattern` (NUMBER groups) in `text`, as floats; at least one."""
    found = re.findall(pattern, text)
    assert found, f"no line matches {pattern!r} in:\n{text}"
    return [tuple(map(float, f)) if isinstance(f, tuple) else float(f) for f in found]


def pngs(folder):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.png")))


# ---------------------------------------------------------------------- cheap checks
def test_every_example_has_a_test():
    tested = {
        name[len("test_") :] + ".py"
        for name in globals()
        if name.startswith("test_") and name[len("test_") :] + ".py" in SCRIPTS
    }
    assert tested == set(SCRIPTS), f"examples without a test: {set(SCRIPTS) - tested}"


@pytest.mark.parametrize("name", SCRIPTS)
def test_header_and_settings(name):
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
        source = f.read()
    header = ast.get_docstring(ast.parse(source))
    assert header, f"{name} has no docstring header"
    for field in ("Title:", "Description:"):
        assert field in header, f"{name}: no {field} in its header"
    if name != "train_and_reload.py":  # the first example predates the full header
        for field in ("Expected output:", "Runtime:"):
            assert field in header, f"{name}: no {field} in its header"
    for var in ("KERASAE_EXAMPLE_EPOCHS", "KERASAE_EXAMPLE_OUT"):
        assert var in source, f"{name} does not read {var}"


def test_the_index_lists_every_example():
    with open(os.path.join(EXAMPLES, "README.md"), encoding="utf-8") as f:
        index = f.read()
    for name in [*SCRIPTS, "write_a_plugin.md"]:
        assert f"({name})" in index, f"examples/README.md does not link {name}"


# ---------------------------------------------------------------------- the scripts
@pytest.mark.slow
def test_train_and_reload(tmp_path):
    out = run_example("train_and_reload.py", tmp_path)
    for model in ("conv_ae", "pca"):
        (mse,) = numbers(rf"{model}: test MSE {NUMBER}", out)
        assert 0 < mse < 0.2
    assert (tmp_path / "conv_ae.keras").is_file()
    assert "reloaded from" in out


@pytest.mark.slow
def test_wae_fashion_mnist(tmp_path):
    # a dataset that is not there: the example says so in one line and uses digits
    out = run_example("wae_fashion_mnist.py", tmp_path, KERASAE_EXAMPLE_DATASET="no_such_data")
    notes = [line for line in out.splitlines() if "unavailable" in line]
    assert len(notes) == 1 and notes[0].endswith("using digits instead"), out
    assert out.count("\ndigits: 1437 training and 360 test images") == 1, out
    (mse,) = numbers(rf"test MSE: {NUMBER}", out)
    (gap,) = numbers(rf"MMD\(test codes, prior\): {NUMBER}", out)
    assert 0 < mse < 0.2 and math.isfinite(gap)
    assert pngs(tmp_path) == ["wae_reconstructions.png", "wae_samples.png"]


@pytest.mark.slow
def test_anomaly_tabular(tmp_path):
    out = run_example("anomaly_tabular.py", tmp_path)
    assert "214 benign training rows; test: 143 benign, 212 malignant; 30 features" in out
    rows = numbers(
        rf"(?m)^(?:ae|pca): AUROC {NUMBER}, average precision {NUMBER}; threshold "
        rf"{NUMBER} flags [0-9]+ rows: precision {NUMBER}, recall {NUMBER}$",
        out,
    )
    assert len(rows) == 2
    for auroc, ap, threshold, precision, recall in rows:
        assert 0 <= auroc <= 1 and 0 <= ap <= 1 and threshold > 0
        assert 0 <= precision <= 1 and 0 <= recall <= 1
    # PCA is fitted exactly, whatever the epochs: malignant rows reconstruct worse
    assert rows[1][0] > 0.8, rows
    assert (tmp_path / "ae_breast_cancer.keras").is_file()


@pytest.mark.slow
def test_deploy_onnx_decoder(tmp_path):
    out = run_example("deploy_onnx_decoder.py", tmp_path)
    assert "prior: standard_normal in 8 dimensions" in out
    assert "onnxruntime decoded 64 codes into images of shape (8, 8, 1)" in out
    (diff,) = numbers(rf"max \|onnx - keras\| over 64 samples: {NUMBER}", out)
    assert diff < 1e-4
    assert sorted(os.listdir(tmp_path / "export")) == [
        "decoder.onnx",
        "encoder.onnx",
        "manifest.json",
        "scorer.onnx",
    ]
    assert pngs(tmp_path) == ["onnx_samples.png"]


@pytest.mark.slow
def test_beta_vae_traversal(tmp_path):
    out = run_example("beta_vae_traversal.py", tmp_path, KERASAE_EXAMPLE_DATASET="digits")
    table = numbers(rf"(?m)^ *[0-9]+ +{NUMBER} +{NUMBER}$", out)
    assert len(table) == 16 and all(a >= 0 and b >= 0 for a, b in table)
    (active,) = numbers(rf"beta_vae: {NUMBER} of 16 dimensions active", out)
    # the table is rounded to 3 decimals: a KL that prints as 0.010 may lie either side
    assert sum(b > 0.0105 for _, b in table) <= active <= sum(b >= 0.0095 for _, b in table)
    expected = ["beta_vae_traversal.png"] + ["beta_vae_traversal_active.png"] * (active > 0)
    assert pngs(tmp_path) == expected


@pytest.mark.slow
def test_denoise_and_langevin(tmp_path):
    out = run_example("denoise_and_langevin.py", tmp_path, KERASAE_EXAMPLE_STEPS="5")
    ((noisy, denoised),) = numbers(rf"noisy {NUMBER} dB, denoised {NUMBER} dB", out)
    assert 10 < noisy < 15 and denoised > 0  # sigma 0.3: about 12.9 dB
    (start,) = numbers(rf"uniform noise itself: {NUMBER}", out)
    chain = numbers(rf"after +([0-9]+) Langevin steps: {NUMBER}", out)
    assert [t for t, _ in chain] == [0, 1, 2, 5]  # 5 steps: the states shown
    assert start > 0 and all(math.isfinite(gap) for _, gap in chain)
    assert pngs(tmp_path) == ["denoising.png", "langevin.png", "langevin_chains.png"]


# ---------------------------------------------------------------------- the plugin walk-through
def walkthrough_steps(text):
    """[("bash", script) or ("file", path, listing)] in the order of the page."""
    steps, last = [], 0
    for match in re.finditer(r"```(bash|python)\n(.*?)```", text, flags=re.S):
        kind, body = match.groups()
        if kind == "bash":
            steps.append(("bash", body))
        else:  # a file listing: the last `path.py` named in the prose before it
            paths = re.findall(r"`(/[^`\s]+\.py)`", text[last : match.start()])
            assert paths, f"no file path before the python block at {match.start()}"
            steps.append(("file", paths[-1], body))
        last = match.end()
    return steps


def overlay_venv(root):
    """root/.venv: a venv of its own that also sees this one's packages (kerasae included),
    so the page's `.venv/bin/pip install -e` and `pip uninstall` run as written while the
    shared venv, which other processes are using, never changes."""
    import sysconfig

    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    purelib = subprocess.run(
        [
            venv / "bin" / "python",
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with open(os.path.join(purelib, "_shared_venv.pth"), "w", encoding="utf-8") as f:
        f.write(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    for tool, module in (("pip", "pip"), ("kerasae", "kerasae")):
        path = venv / "bin" / tool
        path.write_text(f'#!/bin/sh\nexec "$(dirname "$0")/python" -m {module} "$@"\n')
        path.chmod(0o755)
    return venv, purelib


@pytest.mark.slow
def test_write_a_plugin(tmp_path):
    with open(os.path.join(EXAMPLES, "write_a_plugin.md"), encoding="utf-8") as f:
        text = f.read()
    text = text.replace("/tmp/", f"{tmp_path}/")  # the page's /tmp paths, made private
    root = tmp_path / "root"  # stands in for the checkout: holds .venv only
    root.mkdir()
    _, purelib = overlay_venv(root)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "KERASAE_DISABLE_PLUGINS", "VIRTUAL_ENV")
    }
    env.update(PYTHONPATH=ROOT, PYTHONNOUSERSITE="1", PIP_NO_INDEX="1", TF_CPP_MIN_LOG_LEVEL="3")

    steps = walkthrough_steps(text)
    assert [s[0] for s in steps].count("file") == 2
    output = ""
    for step in steps:
        if step[0] == "file":
            _, path, listing = step
            assert os.path.isfile(path), f"the page replaces {path}, which the scaffold lacks"
            with open(path, "w", encoding="utf-8") as f:
                f.write(listing)
            continue
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", step[1]],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output += result.stdout
        assert result.returncode == 0, f"{step[1]}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"

    assert re.search(r"(?m)^sparse_code .*\[kerasae-sparse-code\]$", output), output
    run = tmp_path / "sparse-code-run"
    assert (run / "model.keras").is_file()
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "reconstruction", "l1_penalty", "active_fraction"} <= set(header)
    assert re.search(r"\b2 passed\b", output), output
    # the page's last step uninstalled it: nothing of the plugin is left in the venv
    assert not [f for f in os.listdir(purelib) if "sparse_code" in f or "sparse-code" in f]


@pytest.mark.slow
def test_own_networks(tmp_path):
    out = run_example("own_networks.py", tmp_path)
    assert "same codes: True" in out
    ((first, last),) = numbers(rf"loss {NUMBER} -> {NUMBER}", out)
    assert math.isfinite(last)
    (worst,) = numbers(rf"max \|diff\| {NUMBER}", out)
    assert worst < 1e-4
    assert os.path.isfile(tmp_path / "export" / "encoder.onnx")
