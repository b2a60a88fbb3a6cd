"""`kerasae list [PATTERN] [--kind KIND]` and `kerasae info NAME`, answered without TensorFlow.

Both print what the source says (`kerasae.models.introspect` reads it with `ast`); what
the source does not say for certain is imported instead: slower, the same answer. Every
extension kind has a registry (`--kind models|samplers|datasets|exporters|architectures`).
"""

import importlib
import inspect
import sys
import warnings

import kerasae.plugin_state as plugin_state
from kerasae.errors import KerasaeError
from kerasae.models import introspect
from kerasae.models.registry import MODELS
from kerasae.quiet import stderr_to_devnull

#: --kind -> the registry that holds it ("module:attribute"; none of them imports TF)
KINDS = {
    "models": "kerasae.models.registry:MODELS",
    "samplers": "kerasae.samplers.base:SAMPLERS",
    "datasets": "kerasae.data.sources:DATASETS",
    "exporters": "kerasae.export.registry:EXPORTERS",
    "architectures": "kerasae.nets.registry:ARCHITECTURES",
}


def register(sub):
    p = sub.add_parser(
        "list", help="list the registered models (or samplers, datasets, exporters, architectures)"
    )
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. '*vae*'")
    p.add_argument(
        "--kind", choices=tuple(KINDS), default="models", help="which extension point to list"
    )
    p.set_defaults(func=cmd_list, needs_tensorflow=False)
    p = sub.add_parser("info", help="a model's description and every parameter with its default")
    p.add_argument("name")
    p.add_argument(
        "--kind",
        choices=tuple(KINDS),
        default="models",
        help="the extension point NAME belongs to",
    )
    p.set_defaults(func=cmd_info, needs_tensorflow=False)


def registry(kind):
    module, _, attr = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), attr)


def describe(entry, debug=False):
    """The `introspect.ModelInfo` of a model entry: from its source, else by importing it."""
    try:
        return introspect.read(entry.target)
    except introspect.StaticReadError:
        return introspect.from_class(_load_quietly(MODELS, entry, debug))


def doc_of(reg, entry, debug=False):
    """(docstring, module docstring) of another kind's entry: read, else imported."""

    try:
        return introspect.read_doc(entry.target)
    except introspect.StaticReadError:
        obj = _load_quietly(reg, entry, debug)
        module = sys.modules.get(getattr(obj, "__module__", ""), None)
        return inspect.getdoc(obj) or "", inspect.cleandoc(getattr(module, "__doc__", "") or "")


def _load_quietly(reg, entry, debug):
    """`reg.load_entry(entry)` with fd 2 pointed away, since the import may start TensorFlow,
    whose native runtime logs there; the warnings it raises (a broken plugin) are shown after."""

    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught, stderr_to_devnull(not debug):
            return reg.load_entry(entry)
    finally:
        for w in caught:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def known_broken(reg, entry, warn=True):
    """True (and one warning) when the plugin entry is known not to import: the sources
    `list` and `info` read may belong to a module that raises (`kerasae.plugin_state`)."""
    if entry.builtin or entry.error is not None:
        return entry.error is not None
    error = plugin_state.import_errors().get(entry.target)
    if error is not None:
        reg.mark_broken(entry, error, warn)
    return error is not None


def cmd_list(args):
    reg = registry(args.kind)
    rows = []
    for name in reg.names(args.pattern):
        entry = reg.entry(name)
        if known_broken(reg, entry):
            continue
        try:
            if args.kind == "models":
                summary = describe(entry, args.debug).summary
            else:
                summary = introspect.summary_of(doc_of(reg, entry, args.debug)[0])
        except KerasaeError:
            continue  # a broken plugin: already reported by one warning
        rows.append((name, summary, entry.dist))
    if not rows:
        listing = "kerasae list" + ("" if args.kind == "models" else f" --kind {args.kind}")
        if args.pattern == "*":
            message = f"no {reg.kind} is installed"
        else:
            message = f"no {reg.kind} matches {args.pattern!r}; `{listing}` shows them all"
        print(f"kerasae: {message}", file=sys.stderr)
        return 1
    width = max(len(r[0]) for r in rows)
    for name, desc, dist in rows:
        print(f"{name:<{width}}  {desc}  [{dist}]")
    return 0


def cmd_info(args):
    reg = registry(args.kind)
    entry = reg.entry(args.name)
    if known_broken(reg, entry, warn=False):
        reg.load_entry(entry)  # the one-line error: which distribution, why, what to do
    if args.kind != "models":
        doc, module_doc = doc_of(reg, entry, args.debug)
        print(f"{args.name}  ({entry.target}, a {reg.kind} from {entry.dist})")
        for text in (doc, module_doc):
            if text:
                print()
                print(text)
        return
    info = describe(entry, args.debug)
    print(f"{args.name}  ({info.module}.{info.name}, from {entry.dist})")
    print()
    print(info.doc)
    if info.module_doc:
        print()
        print(info.module_doc)
    print()
    print("parameters (--param KEY=VALUE):")
    for key, default in info.params.items():
        print(f"  {key} = {default!r}")
    print(f"generative: {'yes' if info.generative else 'no'}")
