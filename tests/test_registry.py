"""The entry-point registry: laziness, fault-tolerant plugin discovery, duplicates, opt-out.

Fake entry points stand in for installed distributions (`kerasae.registry._entry_points`
is monkeypatched); the CLI tests put a real `.dist-info` folder on PYTHONPATH so
`importlib.metadata` finds a genuinely broken distribution, as a user would have it.
"""
import importlib.metadata
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest

import kerasae
from kerasae import registry
from kerasae.errors import KerasaeError, UnknownModelError
from tests.helpers import run_cli

BUILTINS = ("ae", "conv_ae", "pca")


class FakeEntryPoint:
    """What `importlib.metadata.entry_points` yields: name, value, dist, load()."""

    def __init__(self, name, value, dist, loader=None):
        self.name, self.value, self.group = name, value, registry.GROUP
        self.dist = types.SimpleNamespace(name=dist) if dist else None
        self._loader = loader
        self.loads = 0

    def load(self):
        self.loads += 1
        if self._loader is not None:
            return self._loader()
        return importlib.metadata.EntryPoint(self.name, self.value, self.group).load()


@pytest.fixture
def fake_plugins(monkeypatch):
    """Install fake entry points (after the real ones); restore the real registry after."""
    saved = (dict(registry._entries), registry._discovered, set(registry._warned))
    real = list(registry._entry_points())
    extra = []
    monkeypatch.setattr(registry, "_entry_points", lambda: [*extra, *real])
    monkeypatch.delenv("KERASAE_DISABLE_PLUGINS", raising=False)

    def install(*eps):
        extra[:] = eps  # seen before the built-ins, which must still win any duplicate
        registry._reset_for_tests()
        return eps

    yield install
    registry._entries.clear()
    registry._entries.update(saved[0])
    registry._discovered = saved[1]
    registry._warned.clear()
    registry._warned.update(saved[2])


def _boom():
    raise RuntimeError("boom at import")


def _ae_class():
    from kerasae.models.ae import AE
    return AE


def test_broken_plugins_warn_once_naming_the_distribution(fake_plugins):
    fake_plugins(
        FakeEntryPoint("ghost", "kerasae_test_no_such_module:Ghost", "ghost-dist"),
        FakeEntryPoint("bomb", "bomb_pkg:Bomb", "bomb-dist", loader=_boom),
        FakeEntryPoint("notmodel", "pkg:thing", "junk-dist", loader=lambda: dict))
    # Listing imports nothing, so the broken names are listed; the rest is untouched.
    assert set(BUILTINS) | {"ghost", "bomb", "notmodel"} <= set(kerasae.list_models())
    cases = {"ghost": ("ghost-dist", "ModuleNotFoundError"),
             "bomb": ("bomb-dist", "RuntimeError: boom at import"),
             "notmodel": ("junk-dist", "not a subclass of kerasae.models.base.Autoencoder")}
    for name, (dist, reason) in cases.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(KerasaeError, match=f"{name}.*{dist}.*failed to load"):
                registry.get_model_class(name)
            with pytest.raises(KerasaeError, match=dist):  # asked again: error, no new warning
                kerasae.create_model(name)
        messages = [str(w.message) for w in caught]
        assert len(messages) == 1, messages
        assert dist in messages[0] and reason in messages[0] and "\n" not in messages[0]
        assert issubclass(caught[0].category, RuntimeWarning)
    model = kerasae.create_model("ae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,))
    assert model.encode(np.zeros((2, 8, 8, 1), "float32")).shape == (2, 2)


def test_listing_does_not_load_plugins(fake_plugins):
    (ep,) = fake_plugins(FakeEntryPoint("lazy", "lazy_pkg:Lazy", "lazy-dist", loader=_ae_class))
    assert "lazy" in kerasae.list_models("la*")
    assert ep.loads == 0
    assert registry.get_entry("lazy").dist == "lazy-dist"
    assert ep.loads == 0
    registry.get_model_class("lazy")
    registry.get_model_class("lazy")
    assert ep.loads == 1


def test_list_models_imports_neither_models_nor_tensorflow():
    code = ("import sys, kerasae; names = kerasae.list_models(); "
            "assert {'ae', 'conv_ae', 'pca'} <= set(names), names; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras') "
            "or m.startswith('kerasae.models')]; assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_builtin_wins_a_duplicate_name_with_a_warning(fake_plugins):
    with pytest.warns(RuntimeWarning, match="'ae' from distribution 'copycat'.*'kerasae'"):
        fake_plugins(FakeEntryPoint("ae", "copycat:AE", "copycat", loader=_boom))
        names = kerasae.list_models()
    assert names.count("ae") == 1
    entry = registry.get_entry("ae")
    assert entry.dist == "kerasae"
    assert registry.get_model_class("ae").__module__ == "kerasae.models.ae"


def test_first_plugin_wins_between_two_plugins(fake_plugins):
    with pytest.warns(RuntimeWarning, match="'twin' from distribution 'second'.*'first'"):
        fake_plugins(FakeEntryPoint("twin", "a:A", "first", loader=_ae_class),
                     FakeEntryPoint("twin", "b:B", "second", loader=_boom))
        kerasae.list_models()
    assert registry.get_entry("twin").dist == "first"


@pytest.mark.parametrize("value, hidden", [
    ("1", {"p1", "p2", "p3"}),
    ("true", {"p1", "p2", "p3"}),
    ("Plugin_One", {"p1"}),               # distribution names compare normalised (PEP 503)
    ("plugin-two, p3", {"p2", "p3"}),     # a list of distributions and/or model names
    ("0", set()),
])
def test_disable_plugins(fake_plugins, monkeypatch, value, hidden):
    fake_plugins(FakeEntryPoint("p1", "x:X", "plugin-one", loader=_ae_class),
                 FakeEntryPoint("p2", "x:X", "plugin.two", loader=_ae_class),
                 FakeEntryPoint("p3", "x:X", "plugin-three", loader=_ae_class))
    monkeypatch.setenv("KERASAE_DISABLE_PLUGINS", value)
    names = set(kerasae.list_models())
    assert set(BUILTINS) <= names  # built-ins are never disabled
    assert names & {"p1", "p2", "p3"} == {"p1", "p2", "p3"} - hidden


def test_api_version_mismatch_is_a_warning(fake_plugins):
    def future():
        from kerasae.models.ae import AE
        return type("FutureAE", (AE,), {"kerasae_api_version": 99})

    fake_plugins(FakeEntryPoint("future", "f:F", "future-dist", loader=future))
    with pytest.warns(RuntimeWarning, match="future-dist.*API version 99.*upgrade kerasae"):
        cls = registry.get_model_class("future")
    assert cls.__name__ == "FutureAE"  # still usable


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownModelError, match="did you mean conv_ae"):
        kerasae.create_model("conv_aee")
    with pytest.raises(UnknownModelError, match="kerasae list"):
        registry.get_model_class("qqqqqqqq")


def test_register_model_refuses_to_hijack_a_distributions_name(fake_plugins):
    from kerasae.models.ae import AE

    fake_plugins()
    with pytest.raises(KerasaeError, match="'kerasae' already provides"):
        kerasae.register_model("ae")(type("MyAE", (AE,), {}))
    assert registry.get_model_class("ae") is AE

    first = kerasae.register_model("scratch_ae")(type("ScratchAE", (AE,), {}))
    second = kerasae.register_model("scratch_ae")(type("ScratchAE", (AE,), {}))
    assert registry.get_model_class("scratch_ae") is second is not first  # notebook re-run


@pytest.fixture
def broken_distribution(tmp_path):
    """A real installed-looking distribution whose entry point names a missing module."""
    info = tmp_path / "kerasae_broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kerasae-broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[kerasae.models]\nghost = kerasae_broken_plugin_missing.models:Ghost\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_cli_list_survives_a_broken_distribution(broken_distribution):
    proc = run_cli("list", env=broken_distribution)
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert set(BUILTINS) <= listed and "ghost" not in listed
    mentions = [line for line in proc.stderr.splitlines() if "kerasae-broken-plugin" in line]
    assert len(mentions) == 1, proc.stderr
    assert mentions[0].startswith("kerasae: warning:") and "ModuleNotFoundError" in mentions[0]
    assert "Traceback" not in proc.stderr


def test_cli_builtin_training_survives_a_broken_distribution(broken_distribution, tmp_path):
    out = tmp_path / "run"
    proc = run_cli("train", "--model", "ae", "--dataset", "digits", "--epochs", "1",
                   "--latent-dim", "2", "--param", "hidden_units=(16,)", "--out", out,
                   env=broken_distribution)
    assert proc.returncode == 0, proc.stderr
    assert (out / "model.keras").is_file()
    assert "kerasae-broken-plugin" not in proc.stderr  # training ae never touches it
