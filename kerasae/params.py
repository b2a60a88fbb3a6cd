"""Model parameters: the merged constructor signature is the one source of truth.

A family declares only the arguments it adds or whose default it changes, and forwards
the rest with `**kwargs`: its config is its own `__init__`'s arguments merged with its
parents' (a subclass's default wins, in place), less the `fixed_params` it sets itself.
`get_config`, `kerasae info`, `--param key=value`, config files, `create_model(**kwargs)`,
`introspect` and the plugin scaffold all read this merged signature: unknown keys and wrong
types fail with a message that lists what is accepted.
"""

import ast
import difflib
import functools
import inspect

from kerasae.errors import KerasaeError

_SKIP = {"self", "args", "kwargs", "name", "trainable", "dtype"}


#: the base's arguments that close the list, wherever a family adds its own
TRAILING = ("loss", "encoder", "decoder")


def own_params(function):
    """({name: default} of a constructor's own arguments, whether it takes **kwargs)."""
    params, forwards = {}, False
    for p in inspect.signature(function).parameters.values():
        if p.kind == p.VAR_KEYWORD:
            forwards = True
        if p.name in _SKIP or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        params[p.name] = None if p.default is inspect.Parameter.empty else p.default
    return params, forwards


def merge_params(levels):
    """The merged signature of constructors [(own params, fixed names), ...], the class's
    own first: a changed default replaces the parent's in place, new arguments follow the
    parents', `fixed` names are dropped, and the TRAILING ones close the list."""
    merged = {}
    for own, fixed in reversed(levels):
        merged.update(own)
        for name in fixed:
            merged.pop(name, None)
    return {
        **{k: v for k, v in merged.items() if k not in TRAILING},
        **{k: merged[k] for k in TRAILING if k in merged},
    }


@functools.cache
def constructor_params(cls):
    """{name: default} of `cls`'s merged constructor signature (see the module docstring):
    its `__init__`, and while it forwards **kwargs its parents' (up to Keras's classes,
    whose **kwargs are name, trainable and dtype), in method resolution order."""
    levels = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass.__module__.split(".")[0] in (
            "keras",
            "builtins",
        ):
            continue
        own, forwards = own_params(klass.__init__)
        levels.append((own, tuple(vars(klass).get("fixed_params", ()))))
        if not forwards:
            break
    return merge_params(levels)


def signature_params(cls):
    """{name: default} for every argument of `cls`'s merged constructor signature: the
    model's whole config (`**kwargs` beyond it carries only Keras's name/trainable/dtype)."""
    return dict(constructor_params(cls))


def parse_value(text):
    """'3' -> 3, '0.5' -> 0.5, '(32,64)' -> (32, 64), 'true' -> True, 'gaussian' -> 'gaussian'."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def parse_assignments(items):
    """['a=1', 'b=x'] -> {'a': 1, 'b': 'x'}."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise KerasaeError(f"--param {item!r} is not KEY=VALUE; write e.g. --param beta=4")
        out[key.strip()] = parse_value(value)
    return out


def _coerce(model, key, value, default):
    def bad(kind):
        return KerasaeError(
            f"parameter {key!r} of model {model!r} "
            f"must be {kind}, got {value!r}; see `kerasae info` for its default ({default!r})"
        )

    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if isinstance(default, (tuple, list)):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = (value,)
        if not isinstance(value, (tuple, list)):
            raise bad("a list such as (64, 32)")
        return tuple(value)
    return value


def check_params(cls, kwargs):
    """Validate `kwargs` against `cls`'s constructor; returns them with types normalised."""
    name = getattr(cls, "registered_name", cls.__name__)
    return check_values(name, signature_params(cls), kwargs)


def check_values(model, known, kwargs):
    """Validate `kwargs` against the parameters `known` ({name: default}) of the model
    named `model`: from its class, or read from its source without importing it."""
    out = {}
    for key, value in kwargs.items():
        if key in ("name", "trainable", "dtype"):
            out[key] = value
            continue
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.5)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else f"accepted: {', '.join(sorted(known))}"
            )
            raise KerasaeError(f"unknown parameter {key!r} for model {model!r}; {hint}")
        out[key] = _coerce(model, key, value, known[key])
    return out
