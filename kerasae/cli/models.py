"""`kerasae list [PATTERN]` and `kerasae info NAME`."""
import inspect


def register(sub):
    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. '*vae*'")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("info", help="a model's description and every parameter with its default")
    p.add_argument("name")
    p.set_defaults(func=cmd_info)


def cmd_list(args):
    from kerasae.errors import KerasaeError
    from kerasae.registry import describe, list_models

    rows = []
    for name in list_models(args.pattern):
        try:
            desc, dist = describe(name)
        except KerasaeError:
            continue  # a broken plugin: already reported by one warning
        rows.append((name, desc, dist))
    width = max((len(r[0]) for r in rows), default=0)
    for name, desc, dist in rows:
        print(f"{name:<{width}}  {desc}  [{dist}]")


def cmd_info(args):
    from kerasae.params import signature_params
    from kerasae.registry import get_entry

    entry = get_entry(args.name)
    cls = entry.load()
    print(f"{args.name}  ({cls.__module__}.{cls.__name__}, from {entry.dist})")
    print()
    print(inspect.cleandoc(cls.__doc__ or ""))
    module_doc = inspect.getmodule(cls).__doc__
    if module_doc:
        print()
        print(inspect.cleandoc(module_doc))
    print()
    print("parameters (--param KEY=VALUE):")
    for key, default in signature_params(cls).items():
        print(f"  {key} = {default!r}")
    print(f"generative: {'yes' if cls.generative else 'no'}")
