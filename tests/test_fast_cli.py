"""`kerasae list`, `info`, `--help` without TensorFlow: the static read of a model's source.

`kerasae.models.introspect.read` must say exactly what the imported class says, for every
registered model; what it cannot read is imported instead (the fallback), and a plugin
whose entry point is broken is still named in one warning and left out of the listing.
"""

import importlib
import importlib.metadata
import inspect
import subprocess
import sys
import types

import pytest

from kerasae.cli import main
from kerasae.entry_points import warned
from kerasae.errors import KerasaeError
from kerasae.models import introspect, registry, source
from kerasae.params import signature_params

NO_TF = """
import sys
from kerasae.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help and --version exit from the parser
    code = exc.code
light = ("kerasae.models.registry", "kerasae.models.introspect", "kerasae.models.source",
         "kerasae.models.saving")
heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")
         or (m.startswith("kerasae.models.") and m not in light)]
if heavy:
    print("imported:", sorted(heavy)[:5], file=sys.stderr)
sys.exit(code or (3 if heavy else 0))
"""


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["list"], "vae "),
        (["info", "vae"], "generative: yes"),
        (["--help"], "usage: kerasae"),
        (["--version"], "kerasae "),
    ],
)
def test_commands_import_no_tensorflow(argv, expect):
    proc = subprocess.run(
        [sys.executable, "-c", NO_TF, *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert expect in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", registry.list_models())
def test_static_read_equals_the_imported_class(name):
    entry = registry.get_entry(name)
    try:
        static = introspect.read(entry.target)  # before the import: nothing to fall back on
    except introspect.StaticReadError as exc:
        static = exc
    try:
        cls = entry.load()
    except KerasaeError:  # a broken entry (its module is missing): not read either
        assert isinstance(static, introspect.StaticReadError), static
        return
    assert not isinstance(static, Exception), f"{name} would be imported by `list`: {static}"
    imported = introspect.from_class(cls)
    for field in ("module", "name", "doc", "module_doc", "params", "generative"):
        assert getattr(static, field) == getattr(imported, field), field
    assert repr(static.params) == repr(signature_params(cls))  # 16 vs 16.0 would print apart
    assert static.summary == cls.__doc__.strip().splitlines()[0]
    assert static.generative is cls.generative
    # Only shown, so they may be unknown (None) when not constants, but never wrong.
    assert static.loss_names in (None, tuple(cls.loss_names))
    assert static.metric_names in (None, tuple(cls.metric_names))


FAMILY = '''"""A plugin family that inherits through an aliased module and module constants."""
from kerasae.models import vae as family
from kerasae.models.ae import AE

LAM = 0.5
NAMES = {"tuned": ("loss", "extra")}


class Quiet(family.BetaVAE):
    pass


DEFAULT_LAM = LAM  # an alias of a constant


class Tuned(AE):
    """Its own constructor."""

    loss_names = NAMES["tuned"]
    LAM = 2.0  # the class body's own name shadows the module's in its defaults

    def __init__(self, lam=DEFAULT_LAM, *, scale=float("inf"), width=LAM, **kwargs):
        super().__init__(**kwargs)


Dynamic = type("Dynamic", (AE,), {"__doc__": "Built at run time: only importing sees it."})
'''


@pytest.fixture
def plugins(monkeypatch, tmp_path):
    """Write modules to an importable folder and install entry points naming them (after
    the real ones, as tests/test_registry.py's fake_plugins); restore everything after."""
    saved = (registry.MODELS.state(), set(warned))
    real, extra, written = list(registry.MODELS._entry_points()), [], []
    monkeypatch.setattr(registry.MODELS, "_entry_points", lambda: [*extra, *real])
    monkeypatch.delenv("KERASAE_DISABLE_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(modules, entry_points):
        for module, text in modules.items():
            (tmp_path / f"{module}.py").write_text(text)
            written.append(module)
        importlib.invalidate_caches()  # the folder's listing may be cached from before
        extra[:] = [
            types.SimpleNamespace(
                name=name,
                value=value,
                group=registry.GROUP,
                dist=types.SimpleNamespace(name=dist),
                load=importlib.metadata.EntryPoint(name, value, registry.GROUP).load,
            )
            for name, value, dist in entry_points
        ]
        registry._reset_for_tests()

    yield install
    for module in written:
        sys.modules.pop(module, None)
    source.module_source.cache_clear()
    registry.MODELS.restore(saved[0])
    warned.clear()
    warned.update(saved[1])


def test_inherited_members_aliases_and_constants(plugins):
    plugins({"kerasae_fast_family": FAMILY}, [])
    quiet = introspect.read("kerasae_fast_family:Quiet")
    tuned = introspect.read("kerasae_fast_family:Tuned")
    assert "kerasae_fast_family" not in sys.modules  # read, not imported
    module = importlib.import_module("kerasae_fast_family")
    # No docstring and no __init__ of its own: both come from BetaVAE, as inspect.getdoc says.
    assert quiet == introspect.from_class(module.Quiet)
    assert quiet.summary.startswith("beta-VAE") and quiet.params["beta"] == 4.0
    assert quiet.module_doc.startswith("A plugin family")
    assert tuned.params["lam"] == 0.5 and tuned.loss_names == ("loss", "extra")
    assert repr(tuned.params["scale"]) == "float('inf')"  # not a literal: shown as written
    assert repr(tuned.params["width"]) == "LAM"  # not the module's 0.5: shown as written
    assert signature_params(module.Tuned)["width"] == 2.0
    assert list(tuned.params) == list(signature_params(module.Tuned))
    assert tuned.generative is False and tuned.doc == "Its own constructor."


@pytest.mark.slow
def test_unreadable_class_is_described_by_importing_it(plugins, capsys):
    plugins(
        {"kerasae_fast_dynamic": FAMILY},
        [("dynamic", "kerasae_fast_dynamic:Dynamic", "dynamic-dist")],
    )
    with pytest.raises(introspect.StaticReadError):
        introspect.read("kerasae_fast_dynamic:Dynamic")
    assert main(["list", "dyn*"]) == 0
    out = capsys.readouterr().out
    assert out == "dynamic  Built at run time: only importing sees it.  [dynamic-dist]\n"
    assert main(["info", "dynamic"]) == 0
    info = capsys.readouterr().out
    assert "(kerasae_fast_dynamic.Dynamic, from dynamic-dist)" in info
    assert "hidden_units = (512, 256)" in info and "generative: no" in info


def test_broken_entry_points_warn_once_and_are_left_out(plugins, capsys):
    plugins(
        {"kerasae_fast_broken": FAMILY},
        [
            ("ghost", "kerasae_fast_no_such_module:Ghost", "ghost-dist"),
            ("absent", "kerasae_fast_broken:Absent", "absent-dist"),
        ],
    )
    with pytest.raises(introspect.StaticReadError):
        introspect.read("kerasae_fast_no_such_module:Ghost")
    assert main(["list"]) == 0
    captured = capsys.readouterr()
    listed = {line.split()[0] for line in captured.out.splitlines()}
    assert {"ae", "vae"} <= listed and not {"ghost", "absent"} & listed
    for dist, reason in [
        ("ghost-dist", "ModuleNotFoundError: No module named"),
        ("absent-dist", "AttributeError"),
    ]:
        lines = [line for line in captured.err.splitlines() if dist in line]
        assert len(lines) == 1, captured.err
        assert lines[0].startswith("kerasae: warning:") and reason in lines[0]


def test_from_class_matches_what_info_printed_before():
    """The fields `info` prints are those the imported class gives (inspect, as before)."""
    cls = registry.get_entry("ae").load()
    info = introspect.from_class(cls)
    assert info.doc == inspect.cleandoc(cls.__doc__)
    assert info.module_doc == inspect.cleandoc(inspect.getmodule(cls).__doc__)
    assert (info.module, info.name) == (cls.__module__, cls.__name__)


def test_list_says_when_nothing_matches(capsys):
    assert main(["list", "zzz"]) == 1
    assert "no model matches 'zzz'; `kerasae list` shows them all" in capsys.readouterr().err
    assert main(["list", "--kind", "samplers", "zzz"]) == 1
    assert "`kerasae list --kind samplers`" in capsys.readouterr().err


def test_every_listed_summary_is_a_whole_sentence(capsys):
    assert main(["list"]) == 0
    for line in capsys.readouterr().out.splitlines():
        summary = line.split("  ", 1)[1].rsplit("  [", 1)[0].strip()
        assert summary.endswith((".", ")")), line  # the docstring's first paragraph, whole
