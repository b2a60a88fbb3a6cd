"""`kerasae-runtime`: generate, encode, score and inspect an export without TensorFlow.

    kerasae-runtime generate EXPORT_DIR -n 64 --out grid.png      (or --out samples.npy)
    kerasae-runtime encode EXPORT_DIR --data x.npy --out z.npy
    kerasae-runtime score EXPORT_DIR --data x.npy --out scores.npy
    kerasae-runtime info EXPORT_DIR
    kerasae-runtime serve EXPORT_DIR --port 8000          (needs the serve extra)

`--data` holds examples in the training data's units (the run's scaling is applied) unless
`--scaled`. The active execution provider is printed on stderr. User errors: one line on
stderr, exit 2.
"""

import argparse
import os
import sys
import warnings

from kerasae_runtime.serve_cli import add_serve_parser


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"kerasae-runtime: error: {message} (see `{self.prog} --help`)\n")


def _common(p):
    p.add_argument("export_dir")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "fp16", "int8"),
        help="the ONNX files to load: fp16/int8 need an export made with --fp16/--int8",
    )


def build_parser():
    from kerasae_runtime import __version__

    parser = _Parser(prog="kerasae-runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kerasae-runtime {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    p = sub.add_parser(
        "generate",
        help="decode draws from the export's latent sampler (the "
        "run's, or the model's prior) to a PNG grid or .npy",
    )
    _common(p)
    p.add_argument("-n", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="grid.png", help=".png grid or .npy array")
    p.set_defaults(func=cmd_generate)
    for name, what in (("encode", "latent codes"), ("score", "per-example anomaly scores")):
        p = sub.add_parser(name, help=f"{what} of a .npy array")
        _common(p)
        p.add_argument("--data", required=True, help=".npy array of examples")
        p.add_argument("--out", required=True, help=".npy file to write")
        p.add_argument(
            "--scaled", action="store_true", help="the data is already in the model's [0, 1] units"
        )
        p.set_defaults(func=globals()[f"cmd_{name}"])
    p = sub.add_parser("info", help="the manifest summary, checksums and providers")
    p.add_argument("export_dir")
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cuda", "cpu"),
        help="the device whose active provider is reported",
    )
    p.set_defaults(func=cmd_info)
    add_serve_parser(sub, _common)
    return parser


def _note(part):
    print(f"kerasae-runtime: {part.part} on {part.provider} ({part.precision})", file=sys.stderr)


def _load_npy(path):
    import numpy as np

    from kerasae_runtime.manifest import ExportError

    if not path.endswith(".npy") or not os.path.isfile(path):
        raise ExportError(f"--data {path} must be an existing .npy file")
    with open(path, "rb") as f:
        if not f.read(6).startswith(b"\x93NUMPY"):
            raise ExportError(
                f"--data {path} is not a NumPy .npy file (no .npy header); "
                "write it with numpy.save"
            )
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays: they would need unpickling
        raise ExportError(
            f"--data {path} cannot be read without unpickling ({exc}); save a numeric array"
        ) from None
    if x.dtype.kind not in "biuf":
        raise ExportError(
            f"--data {path} has dtype {x.dtype}; save a numeric array "
            "(float32 as the manifest says)"
        )
    return x


def _save(path, array):
    import numpy as np

    from kerasae_runtime.manifest import ExportError

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if path.lower().endswith(".png"):
        from kerasae_runtime.images import save_png

        return save_png(array, path)
    if not path.endswith(".npy"):
        raise ExportError(f"--out {path} must end in .png or .npy")
    np.save(path, array)
    return path


def cmd_generate(args):
    from kerasae_runtime import Decoder

    dec = Decoder.load(args.export_dir, device=args.device, precision=args.precision)
    _note(dec)
    images = dec.generate(args.n, seed=args.seed)  # no prior: the model's refusal, exit 2
    print(
        f"wrote {_save(args.out, images)} ({args.n} samples, seed {args.seed}, sampler "
        f"{dec.sampler.describe()})"
    )


def cmd_encode(args):
    from kerasae_runtime import Encoder

    data = _load_npy(args.data)
    enc = Encoder.load(args.export_dir, device=args.device, precision=args.precision)
    _note(enc)
    z = enc.encode(data, raw=not args.scaled)
    print(f"wrote {_save(args.out, z)} (shape {z.shape})")


def cmd_score(args):
    from kerasae_runtime import Autoencoder

    data = _load_npy(args.data)
    ae = Autoencoder.load(args.export_dir, device=args.device, precision=args.precision)
    _note(ae.encoder)
    scores = ae.score(data, raw=not args.scaled)
    flagged = ""
    if ae.threshold is not None:  # detect's default decision: above the run's threshold
        flagged = (
            f"; {int(ae.is_anomaly(scores).sum())} above the threshold "
            f"{ae.threshold:.6g} (is_anomaly)"
        )
    print(
        f"wrote {_save(args.out, scores)} ({len(scores)} scores, mean {scores.mean():.5g}"
        f"{flagged})"
    )


def cmd_info(args):
    from kerasae_runtime import manifest as mf
    from kerasae_runtime.session import Session, available_providers

    m = mf.read(args.export_dir)
    for rel in m.get("files", {}):
        mf.verify_file(args.export_dir, m, rel)
    model = m["model"]
    print(
        f"model: {model['name']} (latent_dim {model['latent_dim']}, input "
        f"{tuple(model['input_shape'])}, generative {model['generative']})"
    )
    for part, info in m["parts"].items():
        ins = ", ".join(f"{i['name']}{tuple(i['shape'])}" for i in info["inputs"])
        outs = ", ".join(f"{o['name']}{tuple(o['shape'])}" for o in info["outputs"])
        print(f"{part}: {ins} -> {outs}; files {', '.join(info['files'].values())}")
    prior = m.get("prior") or {}
    print(
        f"prior: {prior.get('kind', 'none')}"
        f"{' (sampler ' + prior['sampler'] + ')' if prior.get('sampler') else ''}; scaling: "
        f"{(m.get('scaling') or {}).get('kind', 'identity')}"
    )
    print(f"checksums: {len(m.get('files', {}))} files verified")
    print(f"onnxruntime providers available: {', '.join(available_providers())}")
    for part in m["parts"]:
        rel, info = mf.part_file(m, part, "fp32")
        active = Session(
            os.path.join(args.export_dir, rel),
            info["inputs"][0]["name"],
            [o["name"] for o in info["outputs"]],
            device=args.device,
            warmup=False,
        ).provider
        print(f"{part}: active provider {active} (device {args.device})")


def main(argv=None):
    args = build_parser().parse_args(argv)
    from kerasae_runtime.manifest import ExportError

    warnings.showwarning = lambda msg, *a, **k: print(
        f"kerasae-runtime: warning: {msg}", file=sys.stderr
    )
    try:
        return args.func(args) or 0
    except ExportError as exc:
        print(f"kerasae-runtime: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"kerasae-runtime: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
