"""The module paths of kerasae 0.2 keep working for one release, each with a warning
(kerasae.moved): every name in the record of the move resolves to the object that now
lives at its new path."""

import importlib
import inspect
import warnings

import pytest

from kerasae import lazy, moved


def _pairs():
    for old, new in moved.MODULES.items():
        yield old, None, new
    for old, homes in moved.SPLIT.items():
        for new, names in homes.items():
            for name in names.split():
                yield old, name, new


@pytest.mark.parametrize(
    "old, name, new", list(_pairs()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_an_old_path_resolves_with_a_deprecation_warning(old, name, new):
    target = importlib.import_module(new)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
        if name is None:  # moved whole: any of its names
            name = next(
                n
                for n in vars(target)
                if not n.startswith("_") and getattr(getattr(target, n), "__module__", None) == new
            )
        value = getattr(module, name)
    assert value is getattr(target, name)
    if name not in dir(module):  # a package's public name needs no warning
        assert any(
            issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught
        ), [str(w.message) for w in caught]


def test_an_old_module_import_statement_works():
    with pytest.warns(DeprecationWarning, match="kerasae.evaluation.anomaly"):
        from kerasae.anomaly import detect  # noqa: F401
    with pytest.warns(DeprecationWarning, match="kerasae.export.triton"):
        from kerasae.exporters.triton import write_repository  # noqa: F401


def test_a_name_that_never_existed_is_still_an_attribute_error():
    import kerasae.anomaly

    with pytest.raises(AttributeError):
        kerasae.anomaly.no_such_name  # noqa: B018


def test_a_removed_name_says_what_replaces_it():
    import kerasae.distributions

    with pytest.raises(AttributeError, match="removed in kerasae 0.3; use tensorflow_probability"):
        kerasae.distributions.tfd  # noqa: B018


def test_a_facade_name_is_never_also_a_submodule_name():
    # `import kerasae.samplers.langevin` would rebind `kerasae.samplers.langevin` (the
    # function) to the module: a package may not export its own submodules' names
    with pytest.raises(ValueError, match=r"\['base'\]"):
        lazy.namespace("kerasae.samplers", "kerasae.samplers.base: base LatentSampler")


@pytest.mark.parametrize(
    "package, name",
    [("kerasae.samplers", "langevin"), ("kerasae.evaluation", "compare")],
)
def test_a_facade_function_stays_a_function_after_its_module_is_imported(package, name):
    module = importlib.import_module(package)
    importlib.import_module(getattr(module, name).__module__)
    assert callable(getattr(module, name)) and not inspect.ismodule(getattr(module, name))
