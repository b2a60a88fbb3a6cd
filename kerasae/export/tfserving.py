"""TensorFlow Serving's versioned layout from a finished, verified SavedModel export.

    from kerasae.export import tfserving
    tfserving.write_repository("runs/vae/export", "serving", version=1)

Every SavedModel part in the manifest becomes one servable with one version folder:

    OUT/NAME_decoder/1/saved_model.pb, variables/   (copied from decoder_savedmodel/)
    OUT/NAME_decoder/kerasae_manifest.json          the export's manifest.json, unchanged

`tensorflow_model_server --model_name=NAME_decoder --model_base_path=OUT/NAME_decoder`
serves it as is: TF Serving only looks at the numeric folders of a base path. The
SavedModels are copied byte for byte, so the `serving_default` signature, its input `x`
or `z` and its named outputs are those the export verified against the Keras model.
"""

import os
import shutil

from kerasae.errors import KerasaeError
from kerasae.export.layouts import layout_parts, write_layout_folder
from kerasae.export.registry import ExportLayout, register_exporter

KIND = "tfserving"
MANIFEST_COPY = "kerasae_manifest.json"


def write_repository(export_dir, out, name=None, version=1):
    """Write the layout at `out` (atomically); returns the servable names written."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise KerasaeError(f"--version must be a whole number of at least 1, got {version}")
    name, parts = layout_parts(
        export_dir,
        name,
        "savedmodel",
        "SavedModel; a TF Serving layout needs an export with --format savedmodel",
    )

    def fill(root):
        for part, folder in parts.items():
            servable = os.path.join(root, f"{name}_{part}")
            shutil.copytree(os.path.join(export_dir, folder), os.path.join(servable, str(version)))
            shutil.copyfile(
                os.path.join(export_dir, "manifest.json"), os.path.join(servable, MANIFEST_COPY)
            )
        return [f"{name}_{p}" for p in parts]

    return write_layout_folder(out, KIND, is_layout, fill)


def is_layout(path):
    """Whether `path` is a layout this module wrote (so it may be replaced)."""
    entries = os.listdir(path)
    return bool(entries) and all(
        os.path.isfile(os.path.join(path, e, MANIFEST_COPY))
        and any(
            v.isdigit() and os.path.isfile(os.path.join(path, e, v, "saved_model.pb"))
            for v in os.listdir(os.path.join(path, e))
        )
        for e in entries
    )


@register_exporter("tfserving")
class TFServingLayout(ExportLayout):
    """TensorFlow Serving's versioned folders: NAME_PART/VERSION/saved_model.pb
    per part."""

    order = 2

    formats = ("savedmodel",)
    settings = {"version": 1}
    write_repository = staticmethod(write_repository)
    is_layout = staticmethod(is_layout)
