"""No command runs a model the user did not mean: a name two distributions provide is
refused bare, everywhere, with both qualified names; the clash is warned about once per set
of installed plugins; inside the plugin's own tests its checks resolve its own model; a
plugin whose module raises is named by `list` and `info`, from a record kept until the
installed plugins change.

A real installed-looking distribution (a .dist-info on PYTHONPATH), `kerasae-oldzoo`,
provides `sparse_ae` again, as an older plugin did.
"""

import os
import subprocess
import sys

import pytest
from helpers import run_cli

OLDZOO = '''
from kerasae.models.sparse_ae import SparseAE


class OldSparse(SparseAE):
    """An older plugin's sparse autoencoder."""
'''


def _dist(site, name, package, entry_points, files):
    (site / package).mkdir()
    (site / package / "__init__.py").write_text("")
    for file, text in files.items():
        (site / package / file).write_text(text)
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "top_level.txt").write_text(f"{package}\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def oldzoo(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _dist(
        site,
        "kerasae-oldzoo",
        "oldzoo",
        "[kerasae.models]\nsparse_ae = oldzoo.models:OldSparse\n",
        {"models.py": OLDZOO},
    )
    return {"PYTHONPATH": str(site), "KERASAE_CACHE": str(tmp_path / "cache")}


@pytest.mark.slow
def test_a_clashing_name_is_refused_bare_with_both_qualified_names(oldzoo, tmp_path):
    proc = run_cli("train", "--model", "sparse_ae", "--out", tmp_path / "run", env=oldzoo)
    assert proc.returncode == 2
    assert (
        "model name 'sparse_ae' is provided by several distributions; choose one: "
        "kerasae:sparse_ae or kerasae-oldzoo:sparse_ae" in proc.stderr
    )
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written
    listed = run_cli("list", "sparse*", env=oldzoo)
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == ["kerasae-oldzoo:sparse_ae", "kerasae:sparse_ae"], listed.stdout


@pytest.mark.slow
def test_the_clash_is_warned_about_once_per_set_of_installed_plugins(oldzoo):
    clash = "'sparse_ae' is provided by distributions 'kerasae' and 'kerasae-oldzoo'"
    first = run_cli("list", env=oldzoo)
    assert first.returncode == 0 and clash in first.stderr, first.stderr
    assert "'sparse_ae' alone is refused, use kerasae:sparse_ae or" in first.stderr
    again = run_cli("list", "ae", env=oldzoo)
    assert again.returncode == 0 and clash not in again.stderr, again.stderr


OWN_TEST = """
from kerasae.models.registry import MODELS
from kerasae.testing.own import own_name
print(own_name(MODELS, "sparse_ae"))
"""


def test_a_plugins_own_tests_resolve_its_own_name(oldzoo, tmp_path):
    project = tmp_path / "kerasae-oldzoo-src"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "kerasae-oldzoo"\n')
    for where, expected in (
        (project / "tests", "kerasae-oldzoo:sparse_ae"),
        (tmp_path, "sparse_ae"),
    ):
        script = where / "test_own.py"
        script.write_text(OWN_TEST)
        proc = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            env={**os.environ, **oldzoo},
        )
        assert proc.stdout.strip().splitlines()[-1] == expected, proc.stderr


BROKEN = """
import os

with open(os.environ["BOOM_MARKER"], "a") as f:  # one line per import of this module
    f.write("imported\\n")
raise RuntimeError("boom at import")
"""


@pytest.mark.slow
def test_list_and_info_name_a_plugin_that_fails_at_import(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _dist(
        site,
        "kerasae-boom",
        "boom",
        "[kerasae.models]\nboom = boom.model:Boom\n",
        {"model.py": BROKEN},
    )
    marker = tmp_path / "imports.txt"
    env = {
        "PYTHONPATH": str(site),
        "KERASAE_CACHE": str(tmp_path / "cache"),
        "BOOM_MARKER": str(marker),
    }
    said = (
        "plugin distribution 'kerasae-boom' could not provide kerasae model 'boom' "
        "(RuntimeError: boom at import)"
    )
    for _ in range(2):  # checked once, in a subprocess; the second listing reads the record
        listed = run_cli("list", env=env)
        assert listed.returncode == 0 and said in listed.stderr, listed.stderr
        assert "boom" not in [line.split()[0] for line in listed.stdout.splitlines()]
    assert marker.read_text().count("imported") == 1
    info = run_cli("info", "boom", env=env)
    assert info.returncode == 2 and "'kerasae-boom' failed to load: RuntimeError" in info.stderr
    assert marker.read_text().count("imported") == 1


@pytest.mark.slow
def test_kerasae_check_runs_the_conformance_checks():
    passed = run_cli("check", "--kind", "samplers", "gaussian")
    assert passed.returncode == 0, passed.stderr
    assert "gaussian passes kerasae.testing.check_sampler" in passed.stdout
    unknown = run_cli("check", "gausian", "--kind", "samplers")
    assert unknown.returncode == 2 and "did you mean gaussian" in unknown.stderr


def test_alternating_plugin_sets_are_each_checked_once(monkeypatch, tmp_path):
    """Two venvs sharing one cache (or a plugin tried and removed) do not re-run the import
    check each time they alternate: the record keeps several plugin sets."""
    from kerasae import plugin_state

    monkeypatch.setenv("KERASAE_CACHE", str(tmp_path))
    checks = []
    monkeypatch.setattr(plugin_state, "_check_in_subprocess", lambda: checks.append(1) or {})
    monkeypatch.setattr(plugin_state, "plugin_entry_points", lambda: iter([("g", None, "d")]))
    for key in ["venv-a", "venv-b", "venv-a", "venv-b", "venv-a"]:
        monkeypatch.setattr(plugin_state, "installed_key", lambda key=key: key)
        assert plugin_state.import_errors() == {}
    assert len(checks) == 2
