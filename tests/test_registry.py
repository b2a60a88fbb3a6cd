"""The entry-point registry: laziness, fault-tolerant plugin discovery, duplicates, opt-out.

Fake entry points stand in for installed distributions
(`kerasae.models.registry.MODELS._entry_points`
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
from kerasae.entry_points import warned
from kerasae.errors import KerasaeError, UnknownModelError
from kerasae.models import registry
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
    saved = (registry.MODELS.state(), set(warned))
    real = list(registry.MODELS._entry_points())
    extra = []
    monkeypatch.setattr(registry.MODELS, "_entry_points", lambda: [*extra, *real])
    monkeypatch.delenv("KERASAE_DISABLE_PLUGINS", raising=False)

    def install(*eps):
        extra[:] = eps  # seen before the built-ins, which must still win any duplicate
        registry._reset_for_tests()
        return eps

    yield install
    registry.MODELS.restore(saved[0])
    warned.clear()
    warned.update(saved[1])


def _boom():
    raise RuntimeError("boom at import")


def _ae_class():
    """A plugin's own class (a fresh subclass: binding it must not touch the built-in AE)."""
    from kerasae.models.ae import AE

    return type("PluginAE", (AE,), {"__module__": "plugin_pkg.models"})


def test_broken_plugins_warn_once_naming_the_distribution(fake_plugins):
    fake_plugins(
        FakeEntryPoint("ghost", "kerasae_test_no_such_module:Ghost", "ghost-dist"),
        FakeEntryPoint("bomb", "bomb_pkg:Bomb", "bomb-dist", loader=_boom),
        FakeEntryPoint("notmodel", "pkg:thing", "junk-dist", loader=lambda: dict),
    )
    # Listing imports nothing, so the broken names are listed; the rest is untouched.
    assert set(BUILTINS) | {"ghost", "bomb", "notmodel"} <= set(kerasae.list_models())
    cases = {
        "ghost": ("ghost-dist", "ModuleNotFoundError"),
        "bomb": ("bomb-dist", "RuntimeError: boom at import"),
        "notmodel": ("junk-dist", "not a subclass of kerasae.models.base.Autoencoder"),
    }
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
    code = (
        "import sys, kerasae; names = kerasae.list_models(); "
        "assert {'ae', 'conv_ae', 'pca'} <= set(names), names; "
        "light = ('kerasae.models', 'kerasae.models.registry', 'kerasae.models.saving'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras') "
        "or (m.startswith('kerasae.models') and m not in light)]; assert not bad, bad"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_a_clash_with_a_builtin_refuses_the_bare_name(fake_plugins, tmp_path):
    builtin_file = tmp_path / "b.keras"  # saved under the bare name before the clash
    kerasae.create_model("ae", input_shape=(8, 8, 1), latent_dim=2).save(builtin_file)
    with pytest.warns(
        RuntimeWarning,
        match="'ae' is provided by distributions 'kerasae' and "
        "'copycat'; 'ae' alone is refused, use kerasae:ae or copycat:ae",
    ):
        fake_plugins(
            FakeEntryPoint("ae", "plugin_pkg.models:PluginAE", "copycat", loader=_ae_class)
        )
        names = kerasae.list_models()
    assert "ae" not in names and {"kerasae:ae", "copycat:ae"} <= set(names)
    with pytest.raises(KerasaeError, match="choose one: kerasae:ae or copycat:ae"):
        kerasae.create_model("ae", input_shape=(8, 8, 1))  # neither runs by default
    assert registry.get_model_class("kerasae:ae").__module__ == "kerasae.models.ae"
    plugin = kerasae.create_model(
        "copycat:ae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,)
    )
    assert type(plugin).__name__ == "PluginAE" and plugin.registered_name == "copycat:ae"
    assert (
        kerasae.create_model("Copycat:ae", input_shape=(8, 8, 1)).registered_name == "copycat:ae"
    )  # distribution names compare normalised
    plugin.save(tmp_path / "p.keras")  # the saved file names the qualified model
    assert type(kerasae.load_model(str(tmp_path / "p.keras"))).__name__ == "PluginAE"
    builtin = kerasae.create_model("kerasae:ae", input_shape=(8, 8, 1))
    assert builtin.registered_name == "ae"  # kerasae's own keep the name they are saved under
    assert type(kerasae.load_model(str(builtin_file))).__module__ == "kerasae.models.ae"


def test_a_clash_between_plugins_refuses_the_bare_name(fake_plugins):
    with pytest.warns(
        RuntimeWarning,
        match="'twin' is provided by distributions 'first' and "
        "'second'; 'twin' alone is refused, use first:twin or second:twin",
    ):
        fake_plugins(
            FakeEntryPoint("twin", "a:A", "first", loader=_ae_class),
            FakeEntryPoint("twin", "b:B", "second", loader=_boom),
        )
        names = kerasae.list_models("*twin")
    assert names == ["first:twin", "second:twin"]
    with pytest.raises(
        KerasaeError,
        match="'twin' is provided by several distributions; choose one: first:twin or second:twin",
    ):
        kerasae.create_model("twin")
    assert registry.get_model_class("first:twin").registered_name == "first:twin"
    with pytest.raises(KerasaeError, match="second.*failed to load"):
        registry.get_model_class("second:twin")


def test_the_entry_point_name_wins_over_the_class_name(fake_plugins):
    def misnamed():
        from kerasae.models.ae import AE

        return kerasae.register_model("old_name")(
            type("Misnamed", (AE,), {"__module__": "misnamed_pkg"})
        )

    fake_plugins(
        FakeEntryPoint("new_name", "misnamed_pkg:Misnamed", "misnamed-dist", loader=misnamed)
    )
    with pytest.warns(
        RuntimeWarning,
        match="'misnamed-dist' lists kerasae model 'new_name' "
        "as entry point, but its class Misnamed registers itself as 'old_name'",
    ):
        cls = registry.get_model_class("new_name")
    assert cls.registered_name == "new_name"
    assert "old_name" not in kerasae.list_models()
    import keras

    assert keras.saving.get_registered_name(cls) == "kerasae>new_name"


def test_a_misspelled_class_in_an_entry_point_is_named(fake_plugins):
    def module_with_dip_vae():  # the entry point says DipVAE; the module defines DipVae
        from kerasae.models.vae import VAE

        return kerasae.register_model("dip_model")(
            type("DipVae", (VAE,), {"__module__": "dip_pkg.model"})
        )

    fake_plugins(
        FakeEntryPoint("dip_model", "dip_pkg.model:DipVAE", "dip-dist", loader=module_with_dip_vae)
    )
    with pytest.raises(KerasaeError) as caught, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        registry.get_model_class("dip_model")
    said = str(caught.value) + " ".join(str(w.message) for w in seen)
    assert "names dip_pkg.model:DipVAE, but dip_pkg.model registers its class DipVae" in said
    assert "correct the class name in the entry point" in said
    assert "choose another name" not in said


def test_a_plugin_cannot_list_a_builtin_class_under_another_name(fake_plugins):
    from kerasae.models.ae import AE

    registry.get_model_class("ae")
    fake_plugins(FakeEntryPoint("thief", "kerasae.models.ae:AE", "thief-dist", loader=lambda: AE))
    registry.get_model_class("ae")
    with pytest.warns(RuntimeWarning, match="thief-dist.*already registered as 'ae'"):
        with pytest.raises(KerasaeError, match="thief"):
            registry.get_model_class("thief")
    assert AE.registered_name == "ae"


@pytest.mark.parametrize(
    "value, hidden",
    [
        ("1", {"p1", "p2", "p3"}),
        ("true", {"p1", "p2", "p3"}),
        ("Plugin_One", {"p1"}),  # distribution names compare normalised (PEP 503)
        ("plugin-two, p3", {"p2", "p3"}),  # a list of distributions and/or model names
        ("0", set()),
    ],
)
def test_disable_plugins(fake_plugins, monkeypatch, value, hidden):
    fake_plugins(
        FakeEntryPoint("p1", "x:X", "plugin-one", loader=_ae_class),
        FakeEntryPoint("p2", "x:X", "plugin.two", loader=_ae_class),
        FakeEntryPoint("p3", "x:X", "plugin-three", loader=_ae_class),
    )
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
        "Metadata-Version: 2.1\nName: kerasae-broken-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[kerasae.models]\nghost = kerasae_broken_plugin_missing.models:Ghost\n"
    )
    return {"PYTHONPATH": str(tmp_path)}


@pytest.mark.slow
def test_cli_list_survives_a_broken_distribution(broken_distribution):
    proc = run_cli("list", env=broken_distribution)
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert set(BUILTINS) <= listed and "ghost" not in listed
    mentions = [line for line in proc.stderr.splitlines() if "kerasae-broken-plugin" in line]
    assert len(mentions) == 1, proc.stderr
    assert mentions[0].startswith("kerasae: warning:") and "ModuleNotFoundError" in mentions[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_builtin_training_survives_a_broken_distribution(broken_distribution, tmp_path):
    out = tmp_path / "run"
    proc = run_cli(
        "train",
        "--model",
        "ae",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--latent-dim",
        "2",
        "--param",
        "hidden_units=(16,)",
        "--out",
        out,
        env=broken_distribution,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "model.keras").is_file()
    assert "kerasae-broken-plugin" not in proc.stderr  # training ae never touches it
