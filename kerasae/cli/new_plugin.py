"""`kerasae new-plugin NAME`: write a plugin distribution ready to install (kerasae.scaffold)."""

import os
import shlex

from kerasae.scaffold import plugin_names, write_plugin


def register(sub):
    p = sub.add_parser(
        "new-plugin",
        help="write a new plugin distribution, ready to install and test (guide: docs/plugins.md)",
    )
    p.add_argument(
        "name",
        help="the distribution is kerasae-NAME, the package kerasae_NAME (lowercase, e.g. my-vae)",
    )
    p.add_argument("--model", help="the model's registered name (default: NAME with '-' as '_')")
    p.add_argument("--out", help="folder to write, new or empty (default ./kerasae-NAME)")
    p.set_defaults(func=cmd_new_plugin, needs_tensorflow=False)


def cmd_new_plugin(args):

    names = plugin_names(args.name, args.model)
    path = write_plugin(args.name, model=args.model, out=args.out)
    shown = os.path.relpath(path)
    # "./" so that pip reads it as a folder, not as a name to look up on an index
    shown = shlex.quote(path if shown.startswith("..") else os.path.join(".", shown))
    print(f"wrote {names.dist} (model {names.model!r}) to {path}")
    print("next:")
    print(f"  pip install --no-build-isolation -e {shown}")
    print(f"  kerasae list {names.model}")
    print(f"  pytest {shown}")
