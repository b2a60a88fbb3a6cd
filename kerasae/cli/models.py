"""`kerasae list [PATTERN]` and `kerasae info NAME`, answered without TensorFlow.

Both print what a model's source says (`kerasae.introspect` reads it with `ast`); a model
whose source does not say for certain is imported instead: slower, the same answer.
"""


def register(sub):
    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. '*vae*'")
    p.set_defaults(func=cmd_list, needs_tensorflow=False)
    p = sub.add_parser("info", help="a model's description and every parameter with its default")
    p.add_argument("name")
    p.set_defaults(func=cmd_info, needs_tensorflow=False)


def describe(entry, debug=False):
    """The `introspect.ModelInfo` of a registry entry: from its source, else by importing it."""
    from kerasae import introspect

    try:
        return introspect.read(entry.target)
    except introspect.StaticReadError:
        return introspect.from_class(_load_quietly(entry, debug))


def _load_quietly(entry, debug):
    """`entry.load()` with fd 2 pointed away, since the import may start TensorFlow, whose
    native runtime logs there; the warnings it raises (a broken plugin) are shown after."""
    import warnings

    from kerasae.quiet import stderr_to_devnull

    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught, stderr_to_devnull(not debug):
            return entry.load()
    finally:
        for w in caught:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def cmd_list(args):
    from kerasae.errors import KerasaeError
    from kerasae.registry import get_entry, list_models

    rows = []
    for name in list_models(args.pattern):
        entry = get_entry(name)
        try:
            info = describe(entry, args.debug)
        except KerasaeError:
            continue  # a broken plugin: already reported by one warning
        rows.append((name, info.summary, entry.dist))
    width = max((len(r[0]) for r in rows), default=0)
    for name, desc, dist in rows:
        print(f"{name:<{width}}  {desc}  [{dist}]")


def cmd_info(args):
    from kerasae.registry import get_entry

    entry = get_entry(args.name)
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
