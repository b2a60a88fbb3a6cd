"""Export a model's encoder, decoder and scorer as ONNX and SavedModel, verified, with a manifest.

    from kerasae.exporters import export_model, export_run
    manifest = export_run("runs/vae-digits", formats=("onnx", "savedmodel"), fp16=True)

Files (in `RUN_DIR/export/` by default): `encoder.onnx`, `decoder.onnx`, `scorer.onnx`
(x -> the anomaly score `kerasae detect` computes; plus `*.fp16.onnx` with `fp16=True`,
`*.int8.onnx` with `int8=True`: see `quantize`),
`*_savedmodel/`, the run's `threshold.json` and `manifest.json`. Everything is written into a temporary folder, verified, and only then
moved into place, so a failed export never leaves a half-made or unverified folder.
"""
import json
import os
import shutil
import tempfile
import time
import warnings

from kerasae.errors import KerasaeError
from kerasae.exporters import manifest as mf
from kerasae.exporters import onnx_export, savedmodel, verify
from kerasae.exporters.signatures import PARTS, has_scorer, part_network, part_signature
from kerasae.io import _jsonable, atomic_folder, write_json

FORMATS = ("onnx", "savedmodel")
THRESHOLD = "threshold.json"  # the run's, copied: `is_anomaly` in the runtime

__all__ = ["export_model", "export_run", "export_layout", "FORMATS", "PARTS", "LAYOUTS"]


def _check_choice(values, allowed, flag):
    values = tuple(dict.fromkeys(values))
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise KerasaeError(f"{flag} must be a comma-separated subset of {', '.join(allowed)}, "
                           f"got {','.join(values) or 'nothing'}")
    return values


def _prepare_out(out, parts):
    """The final folder may be replaced only if it is empty or a previous kerasae export
    of no more parts than this one writes (a partial re-export must not delete the rest)."""
    if os.path.isfile(out):
        raise KerasaeError(f"--out {out} is a file; choose a folder")
    if not os.path.isdir(out) or not os.listdir(out):
        return
    path = os.path.join(out, mf.MANIFEST)
    if not os.path.isfile(path):
        raise KerasaeError(f"--out {out} is a non-empty folder that holds no kerasae export; "
                           "choose an empty or new folder")
    try:
        with open(path, encoding="utf-8") as f:
            held = list(json.load(f).get("parts", {}))
    except ValueError:
        held = []
    lost = [p for p in held if p not in parts]
    if lost:
        raise KerasaeError(f"--out {out} holds an export with {', '.join(held)}; exporting "
                           f"only {', '.join(parts)} would delete its {', '.join(lost)}: "
                           "export every part again or choose another --out")


def export_model(model, out, formats=FORMATS, parts=PARTS, fp16=False, opset=None,
                 real_x=None, metadata=None, seed=0, optimize=True, threshold=None,
                 version=1, int8=False, sampler=None):
    """Export, verify, and write the manifest; returns the manifest dict.

    real_x: a few real inputs for verification (random ones are always used as well);
    metadata: extra manifest entries (the run's scaling, dataset, ...);
    threshold: a threshold record (`kerasae.anomaly.fit_threshold`), written as
    threshold.json for the runtime's `is_anomaly`; version: the model version recorded;
    optimize: rewrite ConvTranspose + Conv pairs as exact per-phase Convs in the ONNX files;
    int8: also write dynamically quantized `PART.int8.onnx` files, or refuse the export
    (nothing is written) if a part does not quantize, match or run faster;
    sampler: what `kerasae-runtime generate` draws codes from: None or "prior" (the
    model's own prior; none for a model that is not generative, and the manifest's
    no_prior then says why), or a fitted `kerasae.samplers.LatentSampler` (its arrays
    in the manifest, a learned one's sampler.onnx beside the parts)."""
    formats = _check_choice(formats, FORMATS, "--format")
    parts = _check_choice(parts, PARTS, "--parts")
    if "scorer" in parts and not has_scorer(model):
        warnings.warn(f"{type(model).__name__} overrides score() without a traceable "
                      "score_tensor(); the export has no scorer")
        parts = tuple(p for p in parts if p != "scorer")
    opset = int(opset or onnx_export.DEFAULT_OPSET)
    if fp16 and "onnx" not in formats:
        raise KerasaeError("--fp16 applies to ONNX files; add onnx to --format")
    if int8 and "onnx" not in formats:
        raise KerasaeError("--int8 applies to ONNX files; add onnx to --format")
    out = os.path.abspath(out)
    _prepare_out(out, parts)
    signatures = {p: part_signature(model, p) for p in parts}
    probes = verify.probe_inputs(model, signatures, real_x, seed=seed)
    with atomic_folder(out) as tmp:
        files, report = _write_parts(model, tmp, signatures, probes, formats, fp16, opset,
                                     optimize, int8)
        run_name = ((metadata or {}).get("run") or {}).get("name")
        prior, no_prior = mf.sampler_prior(model, sampler, tmp, run_name)
        manifest = _manifest(model, signatures, files, report, formats, opset, metadata,
                             prior, no_prior)
        manifest["model"]["version"] = int(version)
        if threshold is not None:
            write_json(os.path.join(tmp, THRESHOLD), threshold)
            manifest["threshold"] = {"file": THRESHOLD, "threshold": threshold["threshold"],
                                     "percentile": threshold.get("percentile")}
        manifest["onnx_optimized"] = bool(optimize and "onnx" in formats)
        manifest["files"] = mf.file_table(tmp)
        # the folder as a whole is the atomic unit: a plain write inside it is enough
        with open(os.path.join(tmp, mf.MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=True, default=_jsonable)
            f.write("\n")
    return manifest


def _write_parts(model, root, signatures, probes, formats, fp16, opset, optimize,
                 int8=False):
    files, report = {}, {}
    for part, sig in signatures.items():
        net = part_network(model, part)
        files[part] = {}
        if "onnx" in formats:
            proto = onnx_export.to_onnx(net, sig, opset, optimize)
            variants = [("onnx", f"{part}.onnx", proto, "fp32")]
            if fp16 and part != "scorer":  # scores in nats need float32 (IsInf has none)
                variants.append(("onnx_fp16", f"{part}.fp16.onnx",
                                 onnx_export.to_fp16(proto), "fp16"))
            for key, name, p, precision in variants:
                path = onnx_export.save(p, os.path.join(root, name))
                sess = onnx_export.session(path)
                report[name] = verify.check(
                    name, sig, lambda x, s=sess: onnx_export.run(s, sig, x), net,
                    probes[part], precision)
                files[part][key] = name
                if int8 and precision == "fp32":
                    name = f"{part}.int8.onnx"
                    report[name] = _write_int8(path, os.path.join(root, name), sess, sig,
                                               net, probes[part])
                    files[part]["onnx_int8"] = name
        if "savedmodel" in formats:
            name = f"{part}_savedmodel"
            fn = savedmodel.load(savedmodel.save(net, sig, os.path.join(root, name)))
            report[name] = verify.check(name, sig, lambda x, f=fn: savedmodel.run(f, sig, x),
                                        net, probes[part], "fp32")
            files[part]["savedmodel"] = name
    return files, report


def _write_int8(fp32_path, path, fp32_session, sig, net, probes):
    """Quantize, verify against the Keras part, and time against float32 (`quantize`)."""
    from kerasae.exporters import quantize

    sess = onnx_export.session(quantize.quantize(fp32_path, path, sig.part))
    try:
        entry = verify.check(os.path.basename(path), sig,
                             lambda x: onnx_export.run(sess, sig, x), net, probes, "int8")
    except KerasaeError as exc:
        raise KerasaeError(f"--int8: {exc}; export without --int8") from None
    return {**entry, "speed": quantize.check_speed(sig.part, fp32_session, sess, sig, probes)}


def _manifest(model, signatures, files, report, formats, opset, metadata, prior, no_prior):
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
        **({} if prior else {"no_prior": no_prior}),
        "score": mf.score_spec(model, "scorer" in signatures),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "verification": report,
        "scaling": {"kind": "identity"},  # inputs already in the model's range
        **(metadata or {}),
    }


def export_run(run_dir, out=None, sampler=None, **options):
    """Export a finished `kerasae train` run (default out: RUN_DIR/export). sampler: the
    name of a sampler fitted in the run, or "prior"; None: the one `kerasae sample` uses
    (the run's default sampler, else the model's prior)."""
    import numpy as np

    from kerasae.rundata import open_data
    from kerasae.runs import load_run
    from kerasae.samplers import resolve_sampler

    config, model = load_run(run_dir)
    # as `kerasae sample` resolves it; fails before the slow part
    sampler = resolve_sampler(run_dir, config, model, sampler, required=False)
    real_x = None
    try:
        data = open_data(config, scaling=config.get("scaling"))  # read as the run read it
        real_x = data.head("test", 64)  # a few real inputs: the data is never loaded whole
    except KerasaeError as exc:  # the data moved: verification still runs on random inputs
        warnings.warn(f"the run's data is unavailable ({exc}); verifying on random inputs "
                      "only")
    if real_x is not None and tuple(real_x.shape[1:]) != tuple(model.data_shape):
        raise KerasaeError(f"the run's data has shape {real_x.shape[1:]} but the model "
                           f"expects {tuple(model.data_shape)}; the run folder is inconsistent")
    # the run folder's name only: no path of the training machine travels with a model
    metadata = {"run": {"dataset": config.get("dataset"),
                        "name": os.path.basename(os.path.normpath(run_dir))},
                "scaling": config.get("scaling") or {"kind": "identity"}}
    if real_x is not None:
        real_x = np.asarray(real_x, dtype="float32")
    from kerasae.anomaly import load_threshold

    threshold = load_threshold(run_dir, model, config)  # detect's, so the runtime agrees
    return export_model(model, out or os.path.join(run_dir, "export"), real_x=real_x,
                        metadata=metadata, threshold=threshold, sampler=sampler, **options)


# Deployment layouts (`kerasae.exporters.triton`, `.tfserving`): built from a finished,
# verified export, so a server only ever sees files that passed the parity check.
LAYOUTS = ("triton", "tfserving")


def export_layout(run_dir, layout, out=None, name=None, settings=None, **options):
    """Export a run as `export_run` does (into a temporary folder), then lay it out for a
    server at `out` (default RUN_DIR/LAYOUT). settings: the layout's own options
    (triton: max_batch_size, max_queue_delay_us; tfserving: version). Returns the
    manifest with "layout": {"kind", "out", "models"} added (not written to disk).
    Generation is kerasae-runtime's, not the server's: each model's copy of the manifest
    holds an array sampler (prior, gaussian, gmm) whole, but a learned sampler's
    sampler.onnx stays out of the layout (a warning says so)."""
    import importlib

    if layout not in LAYOUTS:
        raise KerasaeError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    module = importlib.import_module(f"kerasae.exporters.{layout}")
    settings = settings or {}
    unknown = sorted(set(settings) - set(module.SETTINGS))
    if unknown:
        raise KerasaeError(f"{', '.join(unknown)} does not apply to a {layout} layout")
    out = os.path.abspath(out or os.path.join(run_dir, layout))
    _refuse_other_folder(out, layout, module.is_layout)  # before the slow export
    if name is not None:
        _check_name(name)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", suffix=".export", dir=parent)
    try:
        export_dir = os.path.join(tmp, "export")
        manifest = export_run(run_dir, out=export_dir, formats=module.FORMATS, **options)
        models = module.write_repository(export_dir, out, name=name, **settings)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prior = manifest.get("prior") or {}
    if prior.get("file"):  # array samplers ride in each model's kerasae_manifest.json
        warnings.warn(f"the {layout} layout serves the parts only; the {prior['sampler']} "
                      f"sampler's {prior['file']} is not in it: generate with "
                      "kerasae-runtime from a plain export (kerasae export RUN --format onnx)")
    return {**manifest, "layout": {"kind": layout, "out": out, "models": models}}


def read_export(export_dir):
    """The manifest of a finished export folder."""
    path = os.path.join(export_dir, mf.MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != mf.FORMAT:
        raise KerasaeError(f"{export_dir} holds no kerasae export (no readable {mf.MANIFEST}); "
                           "pass a folder written by `kerasae export`")
    return manifest


def layout_parts(export_dir, name, key, needs):
    """(NAME, {part: its file under `key`}) of a finished export, for a layout; `needs`
    says what is missing when no part has such a file."""
    manifest = read_export(export_dir)
    parts = {p: spec["files"][key] for p, spec in manifest["parts"].items()
             if spec.get("files", {}).get(key)}
    if not parts:
        raise KerasaeError(f"{export_dir} holds no {needs}")
    return layout_name(manifest, name), parts


def layout_name(manifest, name=None):
    """NAME in NAME_encoder, ...: --name, else the model's registered name."""
    return _check_name(name or str(manifest["model"]["name"]).replace(":", "_"))


def _check_name(name):
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise KerasaeError(f"--name {name!r} must be letters, digits, '_', '.' or '-' (it "
                           "names folders and served models)")
    return name


def _refuse_other_folder(out, kind, is_kind):
    if os.path.isfile(out):
        raise KerasaeError(f"--out {out} is a file; choose a folder")
    if os.path.isdir(out) and os.listdir(out) and not is_kind(out):
        raise KerasaeError(f"--out {out} is a non-empty folder that holds no {kind} layout "
                           "written by kerasae; choose an empty or new folder")


def write_layout_folder(out, kind, is_kind, fill):
    """Build a layout with `fill(tmp) -> result` in a temporary folder next to `out`, then
    swap it in: `out` is replaced only if it is empty or a `kind` layout (`is_kind`)."""
    out = os.path.abspath(out)
    _refuse_other_folder(out, kind, is_kind)
    with atomic_folder(out) as tmp:
        result = fill(tmp)
    return result
