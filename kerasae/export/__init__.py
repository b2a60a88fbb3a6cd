"""Export (app layer): a trained model's parts as ONNX and SavedModel, verified, with a manifest.

    from kerasae.export import export_model, export_run
    manifest = export_run("runs/vae-digits", formats=("onnx", "savedmodel"), fp16=True)

    registry.py     the exporters: formats (formats.py: onnx, savedmodel) and layouts
                    (triton.py, tfserving.py), plugins' too (`kerasae.exporters`)
    write.py        export_model: parts written, verified against Keras, then the manifest
    run.py          export_run, and export_layout: a server's repository from it
    layouts.py      what the layouts share
    signatures.py   each part's network and tensor names; verify.py the parity check
    onnx_export.py, phase_conv.py, quantize.py, savedmodel.py: the formats
    manifest.py     manifest.json, with kerasae_runtime's schema

May import runs, the core and the base (and kerasae_runtime's schema); never evaluation,
report, tracking or the CLI.
"""

from kerasae.lazy import namespace

__getattr__, __dir__ = namespace(
    __name__,
    """
    kerasae.export.write: export_model FORMATS THRESHOLD
    kerasae.export.run: export_run export_layout
    kerasae.export.layouts: read_export layout_parts layout_name write_layout_folder
    kerasae.export.registry: ExportFormat ExportLayout EXPORTERS register_exporter exporter
    kerasae.export.signatures: PARTS
""",
)
