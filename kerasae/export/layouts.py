"""What every server layout shares: reading a finished export, naming the served models,
and swapping a layout folder in atomically (`kerasae.export.triton`, `.tfserving`).
"""

import json
import os
import re

from kerasae.errors import KerasaeError
from kerasae.io import atomic_folder
from kerasae_runtime.manifest import FORMAT, MANIFEST


def read_export(export_dir):
    """The manifest of a finished export folder."""
    path = os.path.join(export_dir, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise KerasaeError(
            f"{export_dir} holds no kerasae export (no readable {MANIFEST}); "
            "pass a folder written by `kerasae export`"
        )
    return manifest


def layout_parts(export_dir, name, key, needs):
    """(NAME, {part: its file under `key`}) of a finished export, for a layout; `needs`
    says what is missing when no part has such a file."""
    manifest = read_export(export_dir)
    parts = {
        p: spec["files"][key]
        for p, spec in manifest["parts"].items()
        if spec.get("files", {}).get(key)
    }
    if not parts:
        raise KerasaeError(f"{export_dir} holds no {needs}")
    return layout_name(manifest, name), parts


def layout_name(manifest, name=None):
    """NAME in NAME_encoder, ...: --name, else the model's registered name."""
    return _check_name(name or str(manifest["model"]["name"]).replace(":", "_"))


def _check_name(name):
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise KerasaeError(
            f"--name {name!r} must be letters, digits, '_', '.' or '-' (it "
            "names folders and served models)"
        )
    return name


def _refuse_other_folder(out, kind, is_kind):
    if os.path.isfile(out):
        raise KerasaeError(f"--out {out} is a file; choose a folder")
    if os.path.isdir(out) and os.listdir(out) and not is_kind(out):
        raise KerasaeError(
            f"--out {out} is a non-empty folder that holds no {kind} layout "
            "written by kerasae; choose an empty or new folder"
        )


def write_layout_folder(out, kind, is_kind, fill):
    """Build a layout with `fill(tmp) -> result` in a temporary folder next to `out`, then
    swap it in: `out` is replaced only if it is empty or a `kind` layout (`is_kind`)."""
    out = os.path.abspath(out)
    _refuse_other_folder(out, kind, is_kind)
    with atomic_folder(out) as tmp:
        result = fill(tmp)
    return result
