"""Export a model's encoder, decoder and scorer as ONNX and SavedModel, verified, with a manifest.

Files: `encoder.onnx`, `decoder.onnx`, `scorer.onnx` (x -> the anomaly score `kerasae detect`
computes; plus `*.fp16.onnx` with `fp16=True`, `*.int8.onnx` with `int8=True`: see
`quantize`), `*_savedmodel/`, the run's `threshold.json` and `manifest.json`. Everything is
written into a temporary folder, verified, and only then moved into place, so a failed
export never leaves a half-made or unverified folder.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from kerasae.errors import KerasaeError
from kerasae.export import manifest as mf
from kerasae.export import onnx_export, quantize, verify
from kerasae.export.registry import DEFAULT_FORMATS, exporter
from kerasae.export.registry import names as exporter_names
from kerasae.export.signatures import PARTS, has_scorer, part_network, part_signature
from kerasae.io import _jsonable, atomic_folder, write_json

if TYPE_CHECKING:  # type names only: never imported at run time
    from kerasae.models.base import Autoencoder
    from kerasae.samplers.base import LatentSampler

FORMATS = DEFAULT_FORMATS  # what `--format all` writes; plugins add more by name


THRESHOLD = "threshold.json"  # the run's, copied: `is_anomaly` in the runtime


def format_names():
    """Every registered export format (onnx, savedmodel, and plugins')."""
    return exporter_names("format")


def _check_choice(values, allowed, flag):
    values = tuple(dict.fromkeys(values))
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise KerasaeError(
            f"{flag} must be a comma-separated subset of {', '.join(allowed)}, "
            f"got {','.join(values) or 'nothing'}"
        )
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
        raise KerasaeError(
            f"--out {out} is a non-empty folder that holds no kerasae export; "
            "choose an empty or new folder"
        )
    try:
        with open(path, encoding="utf-8") as f:
            held = list(json.load(f).get("parts", {}))
    except ValueError:
        held = []
    lost = [p for p in held if p not in parts]
    if lost:
        raise KerasaeError(
            f"--out {out} holds an export with {', '.join(held)}; exporting "
            f"only {', '.join(parts)} would delete its {', '.join(lost)}: "
            "export every part again or choose another --out"
        )


def export_model(
    model: Autoencoder,
    out: str | os.PathLike,
    formats: Sequence[str] = FORMATS,
    parts: Sequence[str] = PARTS,
    fp16: bool = False,
    opset: int | None = None,
    real_x: np.ndarray | None = None,
    metadata: dict | None = None,
    seed: int = 0,
    optimize: bool = True,
    threshold: dict | None = None,
    version: int = 1,
    int8: bool = False,
    sampler: LatentSampler | None = None,
    int8_data: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Export, verify, and write the manifest; returns the manifest dict.

    real_x: a few real inputs for verification (random ones are always used as well);
    metadata: extra manifest entries (the run's scaling, dataset, ...);
    threshold: a threshold record (`kerasae.runs.threshold.fit_threshold`), written as
    threshold.json for the runtime's `is_anomaly`; version: the model version recorded;
    optimize: rewrite ConvTranspose + Conv pairs as exact per-phase Convs in the ONNX files;
    int8: also write statically quantized `PART.int8.onnx` files, or refuse the export
    (nothing is written) if a part does not quantize, is not accurate or not faster
    (`kerasae.export.quantize`); int8_data: (training inputs, test inputs) it calibrates
    on and is measured on (`kerasae export --int8` passes the run's own);
    sampler: what `kerasae-runtime generate` draws codes from: None or "prior" (the
    model's own prior; none for a model that is not generative, and the manifest's
    no_prior then says why), or a fitted `kerasae.samplers.LatentSampler` (its arrays
    in the manifest, a learned one's sampler.onnx beside the parts)."""
    formats = _check_choice(formats, format_names(), "--format")
    parts = _check_choice(parts, PARTS, "--parts")
    if "scorer" in parts and not has_scorer(model):
        warnings.warn(
            f"{type(model).__name__} overrides score() without a traceable "
            "score_tensor(); the export has no scorer",
            stacklevel=2,
        )
        parts = tuple(p for p in parts if p != "scorer")
    opset = int(opset or onnx_export.DEFAULT_OPSET)
    if fp16 and "onnx" not in formats:
        raise KerasaeError("--fp16 applies to ONNX files; add onnx to --format")
    if int8 and "onnx" not in formats:
        raise KerasaeError("--int8 applies to ONNX files; add onnx to --format")
    if int8 and int8_data is None:
        raise KerasaeError(
            "int8 needs data to calibrate on and to measure the error on: pass "
            "int8_data=(training inputs, test inputs) (`kerasae export RUN --int8` passes "
            "the run's own)"
        )
    out = os.path.abspath(out)
    _prepare_out(out, parts)
    signatures = {p: part_signature(model, p) for p in parts}
    probes = verify.probe_inputs(model, signatures, real_x, seed=seed)
    with atomic_folder(out) as tmp:
        files, report = _write_parts(
            model,
            tmp,
            signatures,
            probes,
            formats,
            {
                "opset": opset,
                "optimize": optimize,
                "fp16": fp16,
                "int8": int8,
                "int8_data": int8_inputs(model, parts, int8_data) if int8 else None,
            },
        )
        run_name = ((metadata or {}).get("run") or {}).get("name")
        prior, no_prior = mf.sampler_prior(model, sampler, tmp, run_name)
        manifest = _manifest(
            model, signatures, files, report, formats, opset, metadata, prior, no_prior
        )
        manifest["model"]["version"] = int(version)
        if threshold is not None:
            write_json(os.path.join(tmp, THRESHOLD), threshold)
            manifest["threshold"] = {
                "file": THRESHOLD,
                "threshold": threshold["threshold"],
                "percentile": threshold.get("percentile"),
            }
        manifest["onnx_optimized"] = bool(optimize and "onnx" in formats)
        manifest["files"] = mf.file_table(tmp)
        # the folder as a whole is the atomic unit: a plain write inside it is enough
        with open(os.path.join(tmp, mf.MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=True, default=_jsonable)
            f.write("\n")
    return manifest


def int8_inputs(model, parts, data):
    """{part: (calibration inputs, test inputs)}: images for the encoder and scorer, their
    codes for the decoder, at most CALIBRATION_EXAMPLES and EVALUATION_EXAMPLES of each."""
    train, test = (np.asarray(x, dtype="float32") for x in data)
    train, test = train[: quantize.CALIBRATION_EXAMPLES], test[: quantize.EVALUATION_EXAMPLES]
    codes = [verify.latent_codes(model, x) for x in (train, test)] if "decoder" in parts else None
    return {p: tuple(codes) if p == "decoder" else (train, test) for p in parts}


def _write_parts(model, root, signatures, probes, formats, options):
    """Every part in every format, each verified: ({part: {key: file}}, {file: check})."""
    files, report = {}, {}
    writers = [exporter(name) for name in formats]
    for part, sig in signatures.items():
        net = part_network(model, part)
        files[part] = {}
        for writer in writers:
            written, checks = writer.export_part(net, sig, root, probes[part], options)
            files[part].update(written)
            report.update(checks)
    return files, report


def _manifest(model, signatures, files, report, formats, opset, metadata, prior, no_prior):
    return {
        "format": mf.FORMAT,
        "format_version": mf.FORMAT_VERSION,
        "model": {
            "name": getattr(model, "registered_name", type(model).__name__),
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "config": model.get_config(),
            "generative": bool(model.generative),
            "latent_dim": int(model.latent_dim),
            "input_shape": [int(d) for d in model.data_shape],
        },
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
