"""`kerasae export RUN_DIR`: verified ONNX and SavedModel files plus manifest.json, or
(--format triton / tfserving) the same files laid out as a server loads them."""

import os

from kerasae.cli import add_verbosity, verbosity
from kerasae.errors import KerasaeError
from kerasae.export.registry import DEFAULT_FORMATS, exporter
from kerasae.export.registry import names as exporter_names
from kerasae.runs.folder import read_run_config
from kerasae.samplers.base import SAMPLERS


def register(sub):
    p = sub.add_parser(
        "export",
        help="export a run's encoder, decoder and scorer (ONNX, verified against the Keras model",
    )
    p.add_argument("run_dir")
    p.add_argument(
        "--format",
        default="all",
        metavar="FORMAT",
        help="what to write (default all: onnx and savedmodel): export formats, "
        "comma-separated (onnx, savedmodel, a plugin's), or one layout: "
        "triton, a Triton model repository (NAME_PART/config.pbtxt, "
        "NAME_PART/1/model.onnx), tfserving, TF Serving's versioned folders "
        "(NAME_PART/VERSION/saved_model.pb); see kerasae list --kind exporters",
    )
    p.add_argument(
        "--parts",
        default="encoder,decoder,scorer",
        help="comma-separated parts to export; scorer: x -> the anomaly score "
        "`kerasae detect` computes (default encoder,decoder,scorer)",
    )
    p.add_argument(
        "--fp16",
        action="store_true",
        help="also write *.fp16.onnx: float16 weights, float32 inputs and outputs",
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="also write *.int8.onnx: weights int8 per channel, activations calibrated on "
        "the run's training data (onnxruntime static QDQ quantization); refused, saying "
        "which, for a part it does not make faster or that is not accurate on the test "
        "data",
    )
    p.add_argument(
        "--sampler",
        default=None,
        metavar="NAME",
        help="the latent sampler kerasae-runtime generate draws from: one fitted "
        "in the run (kerasae fit-sampler) or 'prior' (default: the one "
        "`kerasae sample` uses, the run's sampler, else the model's prior)",
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    p.add_argument(
        "--no-optimize",
        dest="optimize",
        action="store_false",
        help="keep tf2onnx's graph as converted (by default a ConvTranspose that "
        "feeds a Conv becomes exact per-phase Convs, faster in onnxruntime)",
    )
    p.add_argument(
        "--out",
        help="output folder (default RUN_DIR/export, or RUN_DIR/triton, RUN_DIR/tfserving)",
    )
    p.add_argument(
        "--name",
        help="triton/tfserving: NAME of the served models NAME_encoder, "
        "NAME_decoder, ... (default the model's name)",
    )
    p.add_argument(
        "--version",
        dest="layout_version",
        type=int,
        default=None,
        metavar="N",
        help="the model version: in manifest.json, and the version folder of a "
        "triton or tfserving layout (default 1)",
    )
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        metavar="N",
        help="triton: max_batch_size of each config.pbtxt, 0 for no batching (default 256)",
    )

    add_verbosity(p)
    p.set_defaults(func=cmd_export, check=check)


def check(args):
    """--format against the exporter registry, the flags that apply to it, --opset, the
    sampler's name and the run folder, before TensorFlow."""
    if args.opset is not None and not 9 <= args.opset <= 21:
        raise KerasaeError(f"--opset must be between 9 and 21, got {args.opset}")
    args.formats, args.layout = _formats(args.format)
    args.settings = _layout_settings(args)
    if args.sampler:
        SAMPLERS.entry(args.sampler)
    read_run_config(args.run_dir)


def cmd_export(args):
    from kerasae.export.run import (  # imports TensorFlow: only when used
        export_layout,
        export_run,
    )

    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    formats, layout, settings = args.formats, args.layout, args.settings
    if layout is not None:
        manifest = export_layout(
            args.run_dir,
            layout.name,
            out=args.out,
            name=args.name,
            settings=settings,
            parts=parts,
            opset=args.opset,
            optimize=args.optimize,
            version=settings.get("version", 1),
            sampler=args.sampler,
        )
    else:
        manifest = export_run(
            args.run_dir,
            out=args.out,
            formats=formats,
            parts=parts,
            fp16=args.fp16,
            int8=args.int8,
            opset=args.opset,
            optimize=args.optimize,
            version=args.layout_version or 1,
            sampler=args.sampler,
        )

    out = args.out or os.path.join(args.run_dir, "export")
    level = verbosity(args)
    for name, check in manifest["verification"].items() if level else ():
        print(
            f"{name}: verified, max |diff| {check['max_abs_diff']:.2e} "
            f"(tolerance {check['tolerance']:.0e}, {check['precision']})"
        )
    if level == 2:
        for part, spec in manifest["parts"].items():
            tensors = [f"{t['name']} {t['shape']}" for t in spec["inputs"] + spec["outputs"]]
            print(f"{part}: {', '.join(tensors)}")
    prior = manifest.get("prior")
    if level and prior:
        print(
            f"kerasae-runtime generate draws from sampler {prior.get('sampler', 'prior')} "
            f"({prior['kind']}): {prior.get('source', '')}"
        )
    elif level:
        print(f"no prior: {manifest.get('no_prior')}")
    if layout is not None:
        layout = manifest["layout"]
        print(f"wrote {layout['out']} ({args.format}: {', '.join(layout['models'])})")
    else:
        print(f"wrote {out} ({len(manifest['files'])} files, manifest.json)")
    return 0


def _formats(value):
    """(export formats, None) or ((), the layout) that --format names, checked against the
    exporter registry before anything slow runs."""
    names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if names == ("all",):
        return DEFAULT_FORMATS, None
    known = exporter_names("format") + exporter_names("layout")
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise KerasaeError(
            f"--format {value!r}: use all, export formats (comma-separated) "
            f"or one layout, from {', '.join(known)}"
        )
    layouts = [n for n in names if exporter(n).kind == "layout"]
    if layouts and len(names) > 1:
        raise KerasaeError(
            f"--format {layouts[0]} is a layout: give it alone (it chooses the formats it needs)"
        )
    return ((), exporter(layouts[0])) if layouts else (names, None)


def _layout_settings(args):
    """The layout's settings (None for a plain export); a flag that does not apply to
    --format is refused rather than ignored."""
    formats, layout = _formats(args.format)
    settings = layout.settings if layout is not None else {}
    applies = {
        "--name": layout is not None,
        "--max-batch-size": "max_batch_size" in settings,
        "--fp16": "onnx" in formats,
        "--int8": "onnx" in formats,
    }
    given = {
        "--name": args.name is not None,
        "--max-batch-size": args.max_batch_size is not None,
        "--fp16": args.fp16,
        "--int8": args.int8,
    }
    extra = [f for f, on in given.items() if on and not applies[f]]
    if extra:
        layouts = exporter_names("layout")
        where = {
            "--name": " or ".join(layouts),
            "--fp16": "onnx or all",
            "--int8": "onnx or all",
            "--max-batch-size": " or ".join(
                n for n in layouts if "max_batch_size" in _settings_of(n)
            ),
        }
        where = where[extra[0]]
        raise KerasaeError(f"{extra[0]} applies to --format {where}, not {args.format}")
    # checked now, not after the export has run for a minute
    if args.max_batch_size is not None and args.max_batch_size < 0:
        raise KerasaeError(
            f"--max-batch-size must be 0 (no batching) or more, got {args.max_batch_size}"
        )
    if args.layout_version is not None and args.layout_version < 1:
        raise KerasaeError(f"--version must be at least 1, got {args.layout_version}")
    out = dict(settings)
    if "version" in out:
        out["version"] = args.layout_version or 1
    if "max_batch_size" in out and args.max_batch_size is not None:
        out["max_batch_size"] = args.max_batch_size
    out.pop("max_queue_delay_us", None)  # the layout's own default
    return out if layout is not None else None


def _settings_of(name):
    return exporter(name).settings
