"""Export a model's encoder and decoder as ONNX and SavedModel, verified, with a manifest.

    from kerasae.exporters import export_model, export_run
    manifest = export_run("runs/vae-digits", formats=("onnx", "savedmodel"), fp16=True)

Files (in `RUN_DIR/export/` by default): `encoder.onnx`, `decoder.onnx` (plus
`*.fp16.onnx` with `fp16=True`), `encoder_savedmodel/`, `decoder_savedmodel/` and
`manifest.json`. Everything is written into a temporary folder, verified, and only then
moved into place, so a failed export never leaves a half-made or unverified folder.
"""
import json
import os
import shutil
import tempfile

from kerasae.errors import KerasaeError
from kerasae.exporters import manifest as mf
from kerasae.exporters import onnx_export, savedmodel, verify
from kerasae.exporters.signatures import PARTS, part_signature
from kerasae.io import _jsonable

FORMATS = ("onnx", "savedmodel")

__all__ = ["export_model", "export_run", "FORMATS", "PARTS"]


def _check_choice(values, allowed, flag):
    values = tuple(dict.fromkeys(values))
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise KerasaeError(f"{flag} must be a comma-separated subset of {', '.join(allowed)}, "
                           f"got {','.join(values) or 'nothing'}")
    return values


def _prepare_out(out):
    """The final folder may be replaced only if it is empty or a previous kerasae export."""
    if os.path.isfile(out):
        raise KerasaeError(f"--out {out} is a file; choose a folder")
    if os.path.isdir(out) and os.listdir(out) and \
            not os.path.isfile(os.path.join(out, mf.MANIFEST)):
        raise KerasaeError(f"--out {out} is a non-empty folder that holds no kerasae export; "
                           "choose an empty or new folder")


def export_model(model, out, formats=FORMATS, parts=PARTS, fp16=False, opset=None,
                 real_x=None, metadata=None, seed=0, optimize=True):
    """Export, verify, and write the manifest; returns the manifest dict.

    real_x: a few real inputs for verification (random ones are always used as well);
    metadata: extra manifest entries (the run's scaling, dataset, ...);
    optimize: rewrite ConvTranspose + Conv pairs as exact per-phase Convs in the ONNX files."""
    formats = _check_choice(formats, FORMATS, "--format")
    parts = _check_choice(parts, PARTS, "--parts")
    opset = int(opset or onnx_export.DEFAULT_OPSET)
    if fp16 and "onnx" not in formats:
        raise KerasaeError("--fp16 applies to ONNX files; add onnx to --format")
    out = os.path.abspath(out)
    _prepare_out(out)
    signatures = {p: part_signature(model, p) for p in parts}
    probes = verify.probe_inputs(model, signatures, real_x, seed=seed)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", suffix=".tmp", dir=parent)
    try:
        files, report = _write_parts(model, tmp, signatures, probes, formats, fp16, opset,
                                     optimize)
        manifest = _manifest(model, signatures, files, report, formats, opset, metadata)
        manifest["onnx_optimized"] = bool(optimize and "onnx" in formats)
        manifest["files"] = mf.file_table(tmp)
        # the folder as a whole is the atomic unit: a plain write inside it is enough
        with open(os.path.join(tmp, mf.MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=True, default=_jsonable)
            f.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp made it private; an export is for sharing
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
    return manifest


def _write_parts(model, root, signatures, probes, formats, fp16, opset, optimize):
    files, report = {}, {}
    for part, sig in signatures.items():
        net = getattr(model, part)
        files[part] = {}
        if "onnx" in formats:
            proto = onnx_export.to_onnx(net, sig, opset, optimize)
            variants = [("onnx", f"{part}.onnx", proto, "fp32")]
            if fp16:
                variants.append(("onnx_fp16", f"{part}.fp16.onnx",
                                 onnx_export.to_fp16(proto), "fp16"))
            for key, name, p, precision in variants:
                path = onnx_export.save(p, os.path.join(root, name))
                sess = onnx_export.session(path)
                report[name] = verify.check(
                    name, sig, lambda x, s=sess: onnx_export.run(s, sig, x), net,
                    probes[part], precision)
                files[part][key] = name
        if "savedmodel" in formats:
            name = f"{part}_savedmodel"
            fn = savedmodel.load(savedmodel.save(net, sig, os.path.join(root, name)))
            report[name] = verify.check(name, sig, lambda x, f=fn: savedmodel.run(f, sig, x),
                                        net, probes[part], "fp32")
            files[part]["savedmodel"] = name
    return files, report


def _manifest(model, signatures, files, report, formats, opset, metadata):
    prior = mf.prior(model)
    return {
        "format": mf.FORMAT, "format_version": mf.FORMAT_VERSION,
        "model": {"name": getattr(model, "registered_name", type(model).__name__),
                  "class": f"{type(model).__module__}.{type(model).__qualname__}",
                  "config": model.get_config(), "generative": bool(model.generative),
                  "latent_dim": int(model.latent_dim),
                  "input_shape": [int(d) for d in model.data_shape]},
        "versions": mf.versions(opset),
        "formats": list(formats),
        "parts": {p: {**sig.describe(), "files": files[p]} for p, sig in signatures.items()},
        "prior": prior,
        **({} if prior else {"no_prior": _no_prior_reason(model)}),
        "score": mf.score_spec(model),
        "verification": report,
        "scaling": {"kind": "identity"},  # inputs already in the model's range
        **(metadata or {}),
    }


def _no_prior_reason(model):
    reason = getattr(model, "not_generative_reason", None)  # API-1 plugins lack it
    return reason() if reason else f"model {type(model).__name__} is not generative"


def export_run(run_dir, out=None, **options):
    """Export a finished `kerasae train` run (default out: RUN_DIR/export)."""
    import numpy as np

    from kerasae.data import load_dataset
    from kerasae.runs import load_run

    config, model = load_run(run_dir)
    real_x = None
    try:
        data = load_dataset(config["dataset"], scaling=config.get("scaling"))
        real_x = data.x_test
    except KerasaeError as exc:  # the data moved: verification still runs on random inputs
        import warnings

        warnings.warn(f"the run's data is unavailable ({exc}); verifying on random inputs "
                      "only")
    if real_x is not None and tuple(real_x.shape[1:]) != tuple(model.data_shape):
        raise KerasaeError(f"the run's data has shape {real_x.shape[1:]} but the model "
                           f"expects {tuple(model.data_shape)}; the run folder is inconsistent")
    metadata = {"run": {"dataset": config.get("dataset"), "dir": os.path.abspath(run_dir)},
                "scaling": config.get("scaling") or {"kind": "identity"}}
    if real_x is not None:
        real_x = np.asarray(real_x, dtype="float32")
    return export_model(model, out or os.path.join(run_dir, "export"), real_x=real_x,
                        metadata=metadata, **options)
