"""The `kerasae` command line: parsing and printing only; the work lives in the modules.

One module per command group, each with `register(subparsers)` that adds its commands
and sets `func`, `check` (everything it can refuse without TensorFlow: flags, paths,
config files, run folders, names) and `needs_tensorflow=False` where the command never
builds or loads a model (TensorFlow takes seconds to import; a mistake answers at once).
A user error prints one line on stderr and exits 2 (no traceback unless --debug);
warnings print as one line each.

The top layer: May import every package; a command imports what needs TensorFlow only
once its arguments are checked, so --help, list, info and a bad flag answer at once.
"""

import argparse
import importlib
import os
import sys
import warnings

import kerasae.entry_points as entry_points
import kerasae.plugin_state as plugin_state
import kerasae.quiet as quiet
from kerasae.entry_points import blame
from kerasae.errors import KerasaeError
from kerasae.version import __version__

COMMAND_MODULES = (
    "models",
    "train",
    "evaluate",
    "sample",
    "detect",
    "compare",
    "export",
    "new_plugin",
    "report",
    "fit_sampler",
    "convert_tfrecord",
    "check",
)


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's default in --help (unless its help already says it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.default is None
            or action.default in (False, argparse.SUPPRESS, [])
        ):
            return text
        return f"{text} (default {action.default})".strip()


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, exit 2, as for every other user error
        self.exit(2, f"kerasae: error: {message} (see `{self.prog} --help`)\n")


def add_verbosity(parser):
    """--quiet / --verbose, the same on every long command (`verbosity(args)` reads them)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only the result (no header, progress or notes)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print details: model summaries, per-step progress",
    )


def verbosity(args):
    """0 with --quiet, 2 with --verbose, 1 otherwise."""
    return 0 if getattr(args, "quiet", False) else 2 if getattr(args, "verbose", False) else 1


def build_parser():
    parser = _Parser(prog="kerasae", description="A zoo of autoencoders for Keras 3.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"kerasae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"kerasae.cli.{name}").register(sub)
    for command in sub.choices.values():  # argparse hides an option without help text
        for action in command._actions:
            if action.help is None and action.option_strings:
                action.help = _HelpFormatter(command.prog)._get_help_string(action) or None
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"kerasae: warning: {message}", file=sys.stderr)


def _one_line_warnings():
    """Every command prints each warning as one line; the libraries' own are noise to a user."""
    warnings.showwarning = _one_line_warning
    for noisy in ("keras", "tensorflow", "absl", "tf2onnx", "google"):
        # a regex matched at the start: a bare "keras" would also silence kerasae's own
        warnings.filterwarnings("ignore", module=rf"{noisy}(\.|$)")


def _quiet_tensorflow(debug):
    """Import TensorFlow now, its start-up notices out of sight unless --debug."""
    if debug:
        quiet.uninstall()  # imported where first needed, notices and all
        return
    with quiet.stderr_to_devnull():
        import tensorflow  # noqa: F401


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # also for list/info's rare imports
    _one_line_warnings()
    # a plugin clash is news once per set of installed plugins, not on every command
    entry_points.remembered = plugin_state.shown_first_time
    try:
        if getattr(args, "check", None) is not None:
            args.check(args)  # before TensorFlow: a bad flag, path or run answers at once
        # A command declares whether it needs TensorFlow (list and info read the sources):
        # importing it takes seconds, so --help, --version, list and info never do.
        if getattr(args, "needs_tensorflow", True):
            _quiet_tensorflow(args.debug)
        return args.func(args) or 0
    except KerasaeError as exc:
        if args.debug:
            raise
        print(f"kerasae: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt as exc:
        print(file=sys.stdout, flush=True)  # end a progress bar's line
        resume = getattr(exc, "resume_command", None)  # kerasae.runs.RunInterrupted
        if resume:
            print(
                f"kerasae: interrupted after {exc.epochs_done} of {exc.epochs} epochs; "
                f"continue with: {resume}",
                file=sys.stderr,
            )
        else:
            print("kerasae: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, with the way to the traceback
        if args.debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        culprit = blame(exc)  # a plugin's own code raised it: say whose
        if culprit is not None:
            dist, where = culprit
            print(
                f"kerasae: error in plugin {dist!r}, {where}: {type(exc).__name__}: {first} "
                f"(the plugin's code, not kerasae's: report it to {dist}; rerun with --debug "
                "for the traceback)",
                file=sys.stderr,
            )
            return 1
        print(
            f"kerasae: internal error: {type(exc).__name__}: {first} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
