"""The `kerasae` command line: parsing and printing only; the work lives in the modules.

One module per command group, each with `register(subparsers)` that adds its commands
and sets `func`. A user error prints one line on stderr and exits 2 (no traceback
unless --debug); warnings print as one line each.
"""
import argparse
import os
import sys
import warnings

COMMAND_MODULES = ("models", "train", "evaluate", "sample", "detect", "compare", "export")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for every other user error
        self.exit(2, f"kerasae: error: {message} (see `{self.prog} --help`)\n")


def build_parser():
    import importlib

    parser = _Parser(prog="kerasae", description="A zoo of autoencoders for Keras 3.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    from kerasae import __version__
    parser.add_argument("--version", action="version", version=f"kerasae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"kerasae.cli.{name}").register(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"kerasae: warning: {message}", file=sys.stderr)


def _quiet_tensorflow(debug):
    """TensorFlow's native runtime logs start-up notices to fd 2 before absl logging is set
    up (TF_CPP_MIN_LOG_LEVEL does not reach them), so import it with fd 2 pointed away."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.showwarning = _one_line_warning
    for noisy in ("keras", "tensorflow", "absl", "tf2onnx", "google"):
        # a regex matched at the start: a bare "keras" would also silence kerasae's own
        warnings.filterwarnings("ignore", module=rf"{noisy}(\.|$)")
    if debug:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv=None):
    args = build_parser().parse_args(argv)
    _quiet_tensorflow(args.debug)  # even `list` imports the models, hence TensorFlow
    from kerasae.errors import KerasaeError

    try:
        return args.func(args) or 0
    except KerasaeError as exc:
        if args.debug:
            raise
        print(f"kerasae: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("kerasae: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, with the way to the traceback
        if args.debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"kerasae: internal error: {type(exc).__name__}: {first} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return 1
