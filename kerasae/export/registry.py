"""The exporter registry: export formats and server layouts, fed by `kerasae.exporters`.

A format (`onnx`, `savedmodel`, a plugin's own) writes one part's network and checks what
it wrote against the Keras part (`kerasae.export.verify.check`); `kerasae export --format
NAME` and `export_model(formats=(NAME,))` use it, and the manifest lists its files under
its `key`. A layout (`triton`, `tfserving`) lays a finished, verified export out as a server
loads it. Importing this module imports neither TensorFlow nor the exporters.
"""

from kerasae.errors import KerasaeError
from kerasae.registry import Registry

#: the formats `--format all` (and `export_model`'s default) writes
DEFAULT_FORMATS = ("onnx", "savedmodel")


class ExportFormat:
    """A file format for a model's parts (subclass it and list it under `kerasae.exporters`).

    `export_part` writes `part` of the model into `folder` and verifies it: it returns
    ({manifest file key: path relative to folder}, {that path: `verify.check`'s entry}).
    `options`: opset, optimize, fp16, int8 (each format takes what applies to it)."""

    name = None  # set by the registry
    kind = "format"
    order = 100  # where it is listed (kerasae's own first)

    def export_part(self, net, signature, folder, probes, options):
        raise NotImplementedError


class ExportLayout:
    """A server's repository layout, built from a finished export (subclass it and list it
    under `kerasae.exporters`): `formats` the export needs, `settings` its options with
    their defaults; `write_repository(export_dir, out, name, **settings)` returns the
    served models' names; `is_layout(path)`: a folder it wrote (and may replace)."""

    name = None
    kind = "layout"
    order = 100
    formats = ()
    settings = {}

    def write_repository(self, export_dir, out, name=None, **settings):
        raise NotImplementedError

    def is_layout(self, path):
        raise NotImplementedError


def _check_exporter(cls, dist):
    if not (isinstance(cls, type) and issubclass(cls, (ExportFormat, ExportLayout))):
        raise TypeError(
            f"{cls!r} is not a subclass of kerasae.export.ExportFormat or ExportLayout"
        )


#: name -> ExportFormat or ExportLayout subclass
EXPORTERS = Registry("exporter", "kerasae.exporters", accept=_check_exporter)
register_exporter = EXPORTERS.register


def exporter(name):
    """A new instance of the exporter registered as `name`."""
    return EXPORTERS.get(name)()


def names(kind):
    """The registered names of one kind ("format" or "layout"), kerasae's own first."""
    found = []
    for entry in EXPORTERS.entries():
        try:
            cls = EXPORTERS.load_entry(entry)
        except KerasaeError:  # a broken plugin: already warned about
            continue
        if cls.kind == kind:
            found.append((not entry.builtin, cls.order, entry.name, entry.listed))
    return [f[-1] for f in sorted(found)]
