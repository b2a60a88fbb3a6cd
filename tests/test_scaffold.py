"""`kerasae new-plugin`: what it writes, what it refuses, and that the result works.

The slow tests take the generated plugin the whole way a user would: install it (into a
folder of its own, so the shared venv is untouched), list it, train it, run its tests;
and build it with the setuptools a fresh venv starts with, without build isolation.
"""

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from kerasae.cli import main
from kerasae.scaffold import plugin_names, write_plugin
from tests.helpers import run_cli


def _refusal(argv, capsys):
    """The one stderr line of a refused `kerasae` command (which must exit 2)."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kerasae: error: "), captured.err
    return lines[0]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["new-plugin", "Bad Name!"], "plugin name 'Bad Name!' is not valid"),
        (["new-plugin", "MyVae"], "(e.g. 'myvae')"),
        (["new-plugin", "kerasae-foo"], "give only the part after it ('foo')"),
        (["new-plugin", "ae"], "model name 'ae' is already registered by distribution 'kerasae'"),
        (["new-plugin", "mine", "--model", "conv_ae"], "choose a different --model"),
        (["new-plugin", "mine", "--model", "my-model"], "(e.g. --model my_model)"),
    ],
)
def test_refusals_are_one_line_exit_2(argv, expected, tmp_path, capsys):
    out = tmp_path / "plugin"
    assert expected in _refusal([*argv, "--out", str(out)], capsys)
    assert not out.exists()


def test_a_non_empty_folder_is_refused_and_left_alone(tmp_path, capsys):
    out = tmp_path / "kerasae-mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    line = _refusal(["new-plugin", "mine", "--out", str(out)], capsys)
    assert "already exists and is not empty" in line and "--out" in line
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()  # an empty folder is fine
    assert main(["new-plugin", "mine", "--out", str(out)]) == 0
    assert "pip install --no-build-isolation -e" in capsys.readouterr().out


def test_names_are_normalised():
    names = plugin_names("my-vae.v2")
    assert (names.dist, names.package, names.model, names.class_name) == (
        "kerasae-my-vae.v2",
        "kerasae_my_vae_v2",
        "my_vae_v2",
        "MyVaeV2",
    )
    assert plugin_names("demo", model="demo_ae").class_name == "DemoAe"
    assert plugin_names("autoencoder").class_name == "AutoencoderModel"  # not the base's name


def test_generated_files(tmp_path, capsys):
    out = tmp_path / "kerasae-my-vae"
    assert main(["new-plugin", "my-vae", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "kerasae list my_vae" in printed and "pytest " in printed
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "src/kerasae_my_vae/__init__.py",
        "src/kerasae_my_vae/model.py",
        "tests/test_my_vae.py",
    ]

    with open(out / "pyproject.toml", "rb") as f:
        pyproject = tomllib.load(f)
    assert pyproject["build-system"]["requires"] == ["setuptools>=61"]
    project = pyproject["project"]
    # no license key: the SPDX string fails on setuptools < 77, the table is deprecated >= 77
    assert project["name"] == "kerasae-my-vae" and "license" not in project
    assert project["dependencies"] == ["kerasae>=0.3"]
    assert any(r.startswith("pytest") for r in project["optional-dependencies"]["test"])
    assert project["entry-points"]["kerasae.models"] == {"my_vae": "kerasae_my_vae.model:MyVae"}
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["where"] == ["src"]
    assert pyproject["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]

    for path in files:
        if path.endswith(".py"):
            compile((out / path).read_text(), str(out / path), "exec")
    model = (out / "src/kerasae_my_vae/model.py").read_text()
    assert '@register_model("my_vae")' in model and "class MyVae(NetworkAutoencoder)" in model
    assert "kerasae_api_version = 2" in model and "self.set_networks(" in model
    assert "import tensorflow" not in (out / "src/kerasae_my_vae/__init__.py").read_text()
    test = (out / "tests/test_my_vae.py").read_text()
    assert 'check_model("my_vae", input_shape=(8, 8, 1))' in test


def test_generated_model_trains_in_process(tmp_path):
    # The generated class, imported from its file: it follows the contract (every loss and
    # metric it declares, a fit step) without being installed.
    import keras
    import numpy as np

    from kerasae.models import registry

    out = write_plugin("inproc", out=tmp_path / "p")
    spec = importlib.util.spec_from_file_location(
        "kerasae_inproc_model", os.path.join(out, "src", "kerasae_inproc", "model.py")
    )
    module = importlib.util.module_from_spec(spec)
    registry.list_models()  # discovered first, so that restoring leaves a whole registry
    saved = registry.MODELS.state()
    try:
        spec.loader.exec_module(module)  # registers "inproc" in this process
    finally:
        registry.MODELS.restore(saved)
    model = module.Inproc(input_shape=(8, 8, 1), latent_dim=2, hidden_units=(16,))
    model.compile(keras.optimizers.Adam(1e-2))
    history = model.fit(
        np.random.default_rng(0).random((64, 8, 8, 1), dtype="float32"),
        epochs=2,
        batch_size=32,
        verbose=0,
    ).history
    assert {"loss", "reconstruction", "code_penalty", "code_norm"} <= set(history)
    assert {"activation", "code_weight", "hidden_units"} <= set(model.get_config())


def test_help_and_no_tensorflow(tmp_path):
    result = run_cli("new-plugin", "--help")
    assert result.returncode == 0, result.stderr
    assert "--model" in result.stdout and "--out" in result.stdout
    # writing text files needs no TensorFlow (seconds to import)
    code = (
        "import sys; from kerasae.cli import main; "
        f"rc = main(['new-plugin', 'light', '--out', {str(tmp_path / 'p')!r}]); "
        "sys.exit(rc or 3 * ('tensorflow' in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert result.returncode == 0, (result.returncode, result.stderr)


def _env(pythonpath=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def _run(*args, env=None, timeout=600):
    result = subprocess.run(
        [str(a) for a in args], env=env or _env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_a_new_plugin_installs_lists_trains_and_passes_its_tests(tmp_path):
    plugin, site = tmp_path / "kerasae-demo", tmp_path / "site"
    result = run_cli("new-plugin", "demo", "--out", plugin)
    assert result.returncode == 0, result.stderr
    assert str(plugin) in result.stdout and "kerasae list demo" in result.stdout

    _run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-build-isolation",
        "--no-deps",
        "--no-index",
        "--target",
        site,
        plugin,
    )
    env = _env(site)
    listed = run_cli("list", "demo", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("demo ") and listed.stdout.strip().endswith(
        "[kerasae-demo]"
    ), listed.stdout

    run = tmp_path / "run"
    trained = run_cli(
        "train", "--model", "demo", "--dataset", "digits", "--epochs", "1", "--out", run, env=env
    )
    assert trained.returncode == 0, trained.stderr
    assert (run / "model.keras").is_file()
    assert "code_norm" in (run / "history.csv").read_text().splitlines()[0]

    _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", plugin / "tests", env=env)


def _wheel_path_for(fresh_python, into):
    """A PYTHONPATH folder holding this environment's `wheel` package (and `packaging`, which
    it needs), or None when `fresh_python` can build wheels on its own.

    setuptools < 70.1 has no bdist_wheel of its own and a fresh venv has no `wheel`; every
    kerasae environment has it (tensorflow -> astunparse -> wheel), so this is the setup
    of a user who runs `pip install --no-build-isolation` next to kerasae."""
    probe = (
        "import importlib.util as u; print(u.find_spec('wheel') is not None or "
        "u.find_spec('setuptools.command.bdist_wheel') is not None)"
    )
    if _run(fresh_python, "-c", probe).stdout.strip() == "True":
        return None
    for name in ("wheel", "packaging"):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(
                f"setuptools < 70.1 needs `{name}` to build a wheel, and neither the "
                "fresh venv nor this one has it"
            )
        info = next(f for f in dist.files or () if f.parts[0].endswith(".dist-info"))
        info_dir = dist.locate_file(info).parent
        package_dir = os.path.dirname(importlib.util.find_spec(name).origin)
        for src in (info_dir, package_dir):
            shutil.copytree(
                src, into / os.path.basename(src), ignore=shutil.ignore_patterns("__pycache__")
            )
    return into


@pytest.mark.slow
def test_a_new_plugin_builds_offline_with_a_fresh_venvs_setuptools(tmp_path):
    plugin = write_plugin("demo", out=tmp_path / "kerasae-demo")
    fresh = tmp_path / "fresh"
    _run(sys.executable, "-m", "venv", fresh)
    python = fresh / "bin" / "python"
    found = subprocess.run(
        [python, "-c", "import setuptools; print(setuptools.__version__)"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    if found.returncode != 0:
        pytest.skip(
            f"a fresh venv on Python {sys.version.split()[0]} has no setuptools "
            "(ensurepip bundles it only up to Python 3.11)"
        )
    print(f"fresh venv: setuptools {found.stdout.strip()}")

    env = _env(_wheel_path_for(python, tmp_path / "wheel-path"))
    origin = _run(python, "-c", "import setuptools; print(setuptools.__file__)", env=env)
    assert origin.stdout.startswith(str(fresh)), origin.stdout  # the fresh one, no other
    _run(
        python,
        "-m",
        "pip",
        "wheel",
        "--no-build-isolation",
        "--no-deps",
        "--no-index",
        "-w",
        tmp_path / "wheels",
        plugin,
        env=env,
    )
    wheels = list((tmp_path / "wheels").glob("kerasae_demo-0.1.0-*.whl"))
    assert len(wheels) == 1, os.listdir(tmp_path / "wheels")
    with zipfile.ZipFile(wheels[0]) as zf:
        entry_points = zf.read("kerasae_demo-0.1.0.dist-info/entry_points.txt").decode()
        assert "demo = kerasae_demo.model:Demo" in entry_points
        assert "kerasae_demo/model.py" in zf.namelist()
