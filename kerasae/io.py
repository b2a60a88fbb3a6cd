"""Atomic file writes: a file another step reads is written to a temporary name and renamed.

A crash at any moment leaves either the old file or the new one, never a torn one. Also
the one safe reader of user .npy/.npz files (never unpickled).
"""

import contextlib
import json
import os
import shutil
import tempfile

import numpy as np

from kerasae.errors import KerasaeError


def cache_dir():
    """KERASAE_CACHE, else $XDG_CACHE_HOME/kerasae, else ~/.cache/kerasae."""
    if os.environ.get("KERASAE_CACHE"):
        return os.path.expanduser(os.environ["KERASAE_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "kerasae")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; on success it replaces `path` in one rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    # keep the suffix: keras decides the format from it (.keras, .weights.h5)
    suffix = base[base.index(".") :] if "." in base else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a run folder is shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_folder(path):
    """Yield a temporary folder next to `path`; on success it replaces `path` (a folder)
    whole: readers see the old folder or the new one, never a half-written one."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; exports are shared
        for attempt in range(3):  # another process may write the same folder meanwhile
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            try:
                os.replace(tmp, path)
                break
            except OSError:
                if attempt == 2:
                    raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


NUMPY_MAGIC = (b"\x93NUMPY", b"PK\x03\x04")  # .npy header; .npz is a zip archive


def load_numpy(path):
    """`np.load` of a .npy/.npz, never unpickling; a file that is not NumPy's (a text file
    named .npy) is refused as such rather than as "pickled data"."""

    with open(path, "rb") as f:
        head = f.read(6)
    if not head.startswith(NUMPY_MAGIC):
        raise KerasaeError(
            f"{path} is not a NumPy file (no .npy header or .npz archive); "
            "write it with numpy.save / numpy.savez, or pass a .csv"
        )
    return np.load(path, allow_pickle=False)
