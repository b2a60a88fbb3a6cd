"""`manifest.json`: everything a runtime needs to use an export without TensorFlow.

Model name and config, library versions and opset, each part's input/output names and
shapes, the latent size, the input scaling of the run, the prior `generate` samples from,
the score the runtime computes, verification figures, and a SHA-256 of every file so a
runtime can refuse a corrupted or tampered artifact before loading it.

The prior is the latent sampler `kerasae sample` draws from (`kerasae.samplers`): the
run's fitted one (a Gaussian or Gaussian mixture as arrays, a learned one as
sampler.onnx), else the model's own prior, so both sides give the same samples for the
same seed. A model with neither exports no prior, and `no_prior` holds the refusal
`kerasae sample` gives, so `kerasae sample` and `kerasae-runtime generate` refuse alike.
"""

import os

import keras
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.export import onnx_export
from kerasae.export.signatures import PartSignature
from kerasae.runs.threshold import score_description
from kerasae.samplers.arrays import model_prior
from kerasae.samplers.base import LatentSampler, no_sampler_message
from kerasae.version import __version__
from kerasae_runtime.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PRIOR_KINDS,
    file_table,
    sha256,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "PRIOR_KINDS",
    "file_table",
    "sha256",
    "versions",
    "sampler_prior",
    "score_spec",
    "write_graph",
]


def versions(opset):

    out = {
        "kerasae": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "opset": opset,
    }
    for module in ("tf2onnx", "onnx", "onnxruntime", "onnxconverter_common"):
        try:
            out[module] = __import__(module).__version__
        except ImportError:
            pass
    return out


def sampler_prior(model, sampler, folder, run_name=None):
    """(the manifest's "prior" entry, its "no_prior" message) for `sampler`: None or
    "prior" (the model's own prior), or a fitted `kerasae.samplers.LatentSampler`, whose
    `export_graph` (if any) is written into `folder` as its spec's "file" (sampler.onnx). A model
    with neither a
    prior nor a sampler gets no prior, and no_prior holds what `kerasae sample` says
    (`samplers.no_sampler_message`), naming the run by its folder name only."""
    if sampler is None or sampler == "prior":
        spec = model_prior(model)
        if spec is None:
            return None, no_sampler_message(model, run_name or "RUN")
        return {**spec, "sampler": "prior"}, None
    if not isinstance(sampler, LatentSampler):
        raise KerasaeError(
            f"sampler must be 'prior', None or a fitted latent sampler, got "
            f"{sampler!r}; a sampler by name comes from a run: export_run("
            "RUN, sampler=NAME)"
        )
    spec = dict(sampler.export_spec())
    if spec.get("kind") not in PRIOR_KINDS or int(spec.get("dim", -1)) != model.latent_dim:
        raise KerasaeError(
            f"the {sampler.name} sampler exports a {spec.get('kind')!r} prior "
            f"of dimension {spec.get('dim')}, but the model's decoder takes "
            f"{model.latent_dim}; fit it again: kerasae fit-sampler RUN "
            f"--sampler {sampler.name}"
        )
    graph = sampler.export_graph()
    if graph is not None:
        write_graph(graph, folder)
    for rel in sorted({spec.get("file")} - {None}):
        if (
            os.path.isabs(rel)
            or os.path.normpath(rel).startswith("..")
            or not os.path.isfile(os.path.join(folder, rel))
        ):
            raise KerasaeError(
                f"the {sampler.name} sampler names {rel} but did not write it into the export"
            )
    spec.setdefault("sampler", sampler.name)
    return spec, None


def score_spec(model, scorer):
    """What `score` computes; `scorer`: whether scorer.onnx holds it (else the runtime
    falls back to the reconstruction error of decoder(encoder(x)))."""
    return {"description": score_description(model), "part": "scorer" if scorer else None}


def write_graph(graph, folder):
    """A learned sampler's network (`kerasae.samplers.base.SamplerGraph`) as ONNX in `folder`."""

    signature = PartSignature(
        "sampler",
        graph.input_name,
        tuple(graph.input_shape),
        tuple(graph.output_names),
        tuple(graph.output_shapes),
    )
    spec = tf.TensorSpec(graph.input_shape, graph.input_dtype, name=graph.input_name)
    proto = onnx_export.function_to_onnx(
        graph.function, spec, signature, doc=f"kerasae {graph.file} sampler"
    )
    os.makedirs(folder, exist_ok=True)
    return onnx_export.save(proto, os.path.join(folder, graph.file))
