"""`kerasae check NAME [--kind KIND]`: the conformance checks of `kerasae.testing` from the
command line, on an installed model (or sampler, data source, exporter, architecture).

What a plugin's own test suite runs (`check_model`, `check_sampler`, ...), for a user who
wants to know whether an installed plugin works before training with it.
"""

from kerasae.cli import add_verbosity, verbosity
from kerasae.cli.models import KINDS, known_broken, registry
from kerasae.errors import KerasaeError

#: --kind -> the kerasae.testing check that runs on one NAME
CHECKS = {
    "models": "check_model",
    "samplers": "check_sampler",
    "datasets": "check_dataset",
    "exporters": "check_exporter",
    "architectures": "check_architecture",
}


def register(sub):
    p = sub.add_parser(
        "check",
        help="run kerasae.testing's conformance checks on an installed model (or --kind)",
    )
    p.add_argument("name", help="the registered name, or DIST:NAME")
    p.add_argument(
        "--kind", choices=tuple(KINDS), default="models", help="the extension point NAME is"
    )
    add_verbosity(p)
    p.set_defaults(func=cmd_check, check=check)


def check(args):
    """The name must be registered (and its plugin importable), before TensorFlow."""
    reg = registry(args.kind)
    entry = reg.entry(args.name)
    if known_broken(reg, entry, warn=False):
        reg.load_entry(entry)  # the one-line error naming the distribution


def cmd_check(args):
    import kerasae.testing as testing  # imports TensorFlow: only once the name is known

    try:
        report = getattr(testing, CHECKS[args.kind])(args.name)
    except AssertionError as exc:
        raise KerasaeError(f"{args.name} failed a conformance check: {exc}") from None
    if verbosity(args):
        print(f"{args.name} passes kerasae.testing.{CHECKS[args.kind]}: {_summary(report)}")
    return 0


def _summary(report):
    if isinstance(report, dict):
        shown = {k: v for k, v in report.items() if isinstance(v, (int, float, str)) and v}
        return (
            ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()
            )
            or "ok"
        )
    return type(report).__name__
