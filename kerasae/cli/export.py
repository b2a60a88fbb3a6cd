"""`kerasae export RUN_DIR`: verified ONNX and SavedModel files plus manifest.json."""
import os


def register(sub):
    p = sub.add_parser("export", help="export a run's encoder and decoder (ONNX, SavedModel), "
                                      "verified against the Keras model")
    p.add_argument("run_dir")
    p.add_argument("--format", default="all", choices=("onnx", "savedmodel", "all"),
                   help="what to write (default all)")
    p.add_argument("--parts", default="encoder,decoder",
                   help="comma-separated parts to export (default encoder,decoder)")
    p.add_argument("--fp16", action="store_true",
                   help="also write *.fp16.onnx: float16 weights, float32 inputs and outputs")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    p.add_argument("--no-optimize", dest="optimize", action="store_false",
                   help="keep tf2onnx's graph as converted (by default a ConvTranspose that "
                        "feeds a Conv becomes exact per-phase Convs, faster in onnxruntime)")
    p.add_argument("--out", help="output folder (default RUN_DIR/export)")
    from kerasae.cli import add_verbosity

    add_verbosity(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args):
    from kerasae.errors import KerasaeError
    from kerasae.exporters import FORMATS, export_run

    if args.opset is not None and not 9 <= args.opset <= 21:
        raise KerasaeError(f"--opset must be between 9 and 21, got {args.opset}")
    formats = FORMATS if args.format == "all" else (args.format,)
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    manifest = export_run(args.run_dir, out=args.out, formats=formats, parts=parts,
                          fp16=args.fp16, opset=args.opset, optimize=args.optimize)
    from kerasae.cli import verbosity

    out = args.out or os.path.join(args.run_dir, "export")
    level = verbosity(args)
    for name, check in manifest["verification"].items() if level else ():
        print(f"{name}: verified, max |diff| {check['max_abs_diff']:.2e} "
              f"(tolerance {check['tolerance']:.0e}, {check['precision']})")
    if level == 2:
        for part, spec in manifest["parts"].items():
            tensors = [f"{t['name']} {t['shape']}" for t in spec["inputs"] + spec["outputs"]]
            print(f"{part}: {', '.join(tensors)}")
    print(f"wrote {out} ({len(manifest['files'])} files, manifest.json)")
    return 0
