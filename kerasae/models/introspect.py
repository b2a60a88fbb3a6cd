"""What `kerasae list` and `kerasae info` print, read from a model's source with `ast`.

Importing a model's module imports Keras and TensorFlow: seconds, for a docstring. Every
thing those two commands print (the docstrings, the constructor's parameters and their
defaults, `generative`) is written in the source, so `read("pkg.module:Class")` parses it
instead. Modules are located package by package with importlib's path finder, so not
even their packages are imported (`importlib.util.find_spec` would import them, and a
package may import TensorFlow). Base classes are followed through the module's own classes
and imports up to `kerasae.models.base.Autoencoder`, for an inherited `__init__`,
`generative` or docstring (in method resolution order, as Python would).

Whatever the source does not fix for certain (a class built at run time, a decorator other
than `register_model`, a metaclass, a name bound twice or only under an `if`) raises
`StaticReadError`: the caller imports the class instead, slower but never wrong, and
`from_class` describes it the same way. This module never imports TensorFlow or Keras.
"""

import ast
import dataclasses
import inspect
import sys

from kerasae.models.source import (
    MAX_DEPTH,
    UNSURE,
    Source,
    StaticReadError,
    bindings,
    dotted,
    lookup,
    module_source,
    value_of,
)
from kerasae.params import _SKIP, merge_params, signature_params

BASE = ("kerasae.models.base", "Autoencoder")  # where base classes stop being followed
REGISTER = (
    "kerasae.models.registry",
    "register_model",
)  # the one decorator known to keep the class


@dataclasses.dataclass
class ModelInfo:
    module: str  # where the class is defined (a re-exported class: its own module)
    name: str
    doc: str  # cleaned; inherited when the class has none, as `inspect.getdoc` does
    module_doc: str
    params: dict  # {name: default}, the rules of `kerasae.params.signature_params`
    generative: bool
    loss_names: tuple = None  # None where the source does not fix them
    metric_names: tuple = None

    @property
    def summary(self):
        return summary_of(self.doc)


def summary_of(doc):
    """A docstring's first paragraph on one line (a sentence may wrap in the source)."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def from_class(cls):
    """The same description, from an imported class (the fallback)."""
    module = sys.modules.get(cls.__module__)
    return ModelInfo(
        cls.__module__,
        cls.__name__,
        inspect.getdoc(cls) or "",
        inspect.cleandoc(getattr(module, "__doc__", None) or ""),
        signature_params(cls),
        bool(cls.generative),
        _names(getattr(cls, "loss_names", None)),
        _names(getattr(cls, "metric_names", None)),
    )


def read(target):
    """ModelInfo of the class an entry point's "package.module:Class" names, from source."""
    modname, _, attr = (part.strip() for part in target.partition(":"))
    if not modname or not attr.isidentifier():
        raise StaticReadError(f"{target!r} does not name a top-level class as module:Class")
    found = lookup(modname, [attr], 0)
    mro = _mro(found, 0)
    if BASE not in [(m, node.name) for m, node in mro]:
        raise StaticReadError(f"{target} does not derive from kerasae's Autoencoder")
    if any(bindings(node.body).get("__doc__") is not None for _, node in mro):
        raise StaticReadError(f"{target}: a class in its bases assigns __doc__")
    init, generative = _member(mro, "__init__"), _member(mro, "generative")
    if init is None or generative is None:
        raise StaticReadError(f"{target}: no __init__ or generative in its bases")
    if not isinstance(init[1], ast.FunctionDef) or init[1].decorator_list:
        raise StaticReadError(f"{target}: __init__ is not a plain method")
    doc = next((d for d in (ast.get_docstring(node) for _, node in mro) if d is not None), "")
    return ModelInfo(
        found[0],
        found[1].name,
        doc,
        ast.get_docstring(module_source(found[0])[1]) or "",
        _merged_params(mro),
        bool(value_of(*generative)),
        _optional(mro, "loss_names"),
        _optional(mro, "metric_names"),
    )


def read_doc(target):
    """(docstring, module docstring) of the class or function an entry point's
    "package.module:name" names, from source (any extension kind); StaticReadError where
    the source does not say."""
    modname, _, attr = (part.strip() for part in target.partition(":"))
    if not modname or not attr.isidentifier():
        raise StaticReadError(f"{target!r} does not name a top-level object as module:name")
    where, node = lookup(modname, [attr], 0)
    if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
        raise StaticReadError(f"{target} is not a class or function defined in the source")
    doc = ast.get_docstring(node)
    if doc is None and isinstance(node, ast.ClassDef) and node.bases:
        raise StaticReadError(f"{target}: no docstring of its own (maybe inherited)")
    return doc or "", ast.get_docstring(module_source(where)[1]) or ""


def _names(value):
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _optional(mro, name):
    """A tuple of names the source fixes, else None (only shown, never needed)."""
    try:
        member = _member(mro, name)
        return _names(value_of(*member)) if member else None
    except StaticReadError:
        return None


def _mro(ref, depth):
    """The classes `ref` (module, ClassDef) looks attributes up in, by C3 as Python does;
    Autoencoder ends it (its own attributes are read, not those of keras.Model)."""
    modname, node = ref
    if not isinstance(node, ast.ClassDef):
        raise StaticReadError(
            f"{modname}: {getattr(node, 'name', 'it')} is not a class defined in the source"
        )
    if (modname, node.name) == BASE:
        return [ref]
    if depth > MAX_DEPTH or node.keywords:
        raise StaticReadError(f"{modname}.{node.name}: a metaclass or too deep a hierarchy")
    for decorator in node.decorator_list:
        func = decorator.func if isinstance(decorator, ast.Call) else decorator
        found = lookup(modname, dotted(func), 0)
        if (found[0], getattr(found[1], "name", None)) != REGISTER:
            raise StaticReadError(f"{modname}.{node.name}: decorator {ast.unparse(func)}")
    bases = []
    for base in node.bases:
        parts = dotted(base)
        if parts == ["object"] and "object" not in module_source(modname)[2]:
            continue
        bases.append(lookup(modname, parts, 0))
    heads = [_mro(base, depth + 1) for base in bases]
    if any("__init_subclass__" in bindings(b.body) for h in heads for _, b in h):
        raise StaticReadError(f"{modname}.{node.name}: a base changes its subclasses")
    return [ref, *_c3([*heads, bases])]


def _c3(sequences):
    out, sequences = [], [list(s) for s in sequences if s]
    while sequences:
        for seq in sequences:
            head = seq[0]
            if not any(head in s[1:] for s in sequences):
                break
        else:
            raise StaticReadError("no consistent method resolution order")
        out.append(head)
        sequences = [s for s in ([x for x in s if x != head] for s in sequences) if s]
    return out


def _member(mro, name):
    """(module, statement, names the class body binds) of the first class in `mro` whose
    body binds `name`; those names are not the module's where the statement uses them."""
    for modname, node in mro:
        names = bindings(node.body)
        what = names.get(name)
        if what is UNSURE or isinstance(what, tuple):
            raise StaticReadError(f"{modname}.{node.name}.{name} is not bound for certain")
        if what is not None:
            return modname, what, frozenset(names)
    return None


def _merged_params(mro):
    """The merged constructor signature (`kerasae.params.merge_params`): each class's own
    `__init__` in method resolution order while it forwards **kwargs, less the constant
    `fixed_params` of its body; Autoencoder's is the last (its **kwargs are Keras's)."""
    levels = []
    for modname, node in mro:
        names = bindings(node.body)
        init = names.get("__init__")
        if init is None:
            continue
        if init is UNSURE or not isinstance(init, ast.FunctionDef) or init.decorator_list:
            raise StaticReadError(f"{modname}.{node.name}.__init__ is not a plain method")
        fixed = names.get("fixed_params")
        fixed = () if fixed is None else value_of(modname, fixed, frozenset(names))
        if not (isinstance(fixed, (tuple, list)) and all(isinstance(f, str) for f in fixed)):
            raise StaticReadError(f"{modname}.{node.name}.fixed_params is not a tuple of names")
        levels.append((_params(modname, init, frozenset(names)), tuple(fixed)))
        if init.args.kwarg is None or (modname, node.name) == BASE:
            break
    return merge_params(levels)


def _params(modname, init, local):
    args = init.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = {}
    for arg, default in [*zip(positional, defaults), *zip(args.kwonlyargs, args.kw_defaults)]:
        if arg.arg in _SKIP:
            continue
        try:
            params[arg.arg] = None if default is None else value_of(modname, default, local)
        except StaticReadError:
            params[arg.arg] = Source(ast.unparse(default))
    return params
