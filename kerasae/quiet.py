"""Quiet TensorFlow start-up for `import kerasae` and the CLI.

TensorFlow's native runtime writes its start-up notices (absl's "All log messages before
absl::InitializeLog()", oneDNN, CUDA stubs, CPU features) straight to fd 2 while it is
imported, before `TF_CPP_MIN_LOG_LEVEL` is read, and a failed `cuInit` logs an error on
the first op. `import kerasae` installs an import hook that points fd 2 away while the
`tensorflow` package is first imported and defaults `TF_CPP_MIN_LOG_LEVEL` to 3, so a
user sees only kerasae's own output. `KERASAE_LOG_LEVEL=debug` (or `kerasae --debug`)
keeps every line.
"""

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys

LOG_LEVEL_ENV = "KERASAE_LOG_LEVEL"


def verbose_logs():
    """True when the user asked for TensorFlow's own logs (KERASAE_LOG_LEVEL=debug/info)."""
    return os.environ.get(LOG_LEVEL_ENV, "").strip().lower() in ("debug", "info")


@contextlib.contextmanager
def stderr_to_devnull(enabled=True):
    """fd 2 pointed away for the block: native code writes there, not to sys.stderr."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    """Delegates to the real loader, with fd 2 pointed away while the module executes."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with stderr_to_devnull():
            self.loader.exec_module(module)

    def __getattr__(self, name):  # get_resource_reader, is_package, ...
        return getattr(self.loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` through the other finders and wraps its loader, once."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        uninstall()  # one import only; also keeps find_spec below from recursing
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _QuietTensorFlowFinder()


def install():
    """Quiet the first `import tensorflow` unless the user asked for its logs."""
    if verbose_logs() or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the cuInit error on the first op
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall():
    """Let TensorFlow log as it likes (`kerasae --debug`)."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


class _DropRetracingNotices:
    """A logging filter for TensorFlow's "N out of the last M calls to <function> triggered
    tf.function retracing". TensorFlow counts traces by a function's code object, so
    several models in one process (each with its own compiled train step, traced once)
    look like one function retracing."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def no_false_retracing_notices():
    """Drop that notice for the block (`kerasae compare` trains model after model)."""
    logger = logging.getLogger("tensorflow")
    notice_filter = _DropRetracingNotices()
    logger.addFilter(notice_filter)
    try:
        yield
    finally:
        logger.removeFilter(notice_filter)
