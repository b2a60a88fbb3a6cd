"""Conformance checks for the other extension points: latent samplers, data sources, export
formats and layouts, and network architectures (docs/plugins.md).

    from kerasae.testing import check_sampler, check_dataset, check_exporter, check_architecture

    check_sampler("diag")                      # fit, draw, repeat, save/load, runtime parity
    check_dataset("blobs")                     # splits, batches, head, arrays, scaling
    check_exporter("keras_file")               # writes and verifies a tiny model's parts
    check_architecture("resmlp")               # shapes, then a vae on it through check_model

Each builds what it checks from the registry (or takes the class), exercises it the way
kerasae uses it, and raises AssertionError naming the check that failed.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np

from kerasae.data.sources import resolve
from kerasae.export.registry import EXPORTERS
from kerasae.export.write import export_model
from kerasae.models.registry import create_model
from kerasae.nets.registry import ARCHITECTURES
from kerasae.samplers.base import SAMPLERS, LatentSampler
from kerasae.testing.contract import expect
from kerasae.testing.models import check_model
from kerasae.testing.own import own_name
from kerasae_runtime.manifest import ARRAY_KINDS, PRIOR_KINDS, sample_prior
from kerasae_runtime.manifest import scale as runtime_scale

if TYPE_CHECKING:  # type names only: never imported at run time
    from kerasae.data.memory import Dataset
    from kerasae.data.streams import StreamingDataset

__all__ = ["check_sampler", "check_dataset", "check_exporter", "check_architecture"]


def _class(registry, name_or_class):
    if not isinstance(name_or_class, str):
        return name_or_class
    return registry.get(own_name(registry, name_or_class))  # a plugin's own tests: its own


def sample_codes(n=600, dim=3, seed=0):
    """Codes with structure to fit: a correlated Gaussian, shifted off the origin."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim) + np.eye(dim)
    return rng.standard_normal((n, dim)) @ mixing + rng.normal(size=dim)


def check_sampler(
    name_or_class: str | type[LatentSampler],
    codes: np.ndarray | None = None,
    options: dict | None = None,
    seed: int = 0,
) -> LatentSampler:
    """Fit the sampler to codes (`fit_codes`) and check its draws: shape and dtype, the same
    draws for the same seed and others for another, roughly the codes' mean and spread, a
    save/load round trip that draws the same, and an export spec kerasae-runtime reads,
    drawing the same codes for an array prior. Returns the fitted sampler."""
    cls = _class(SAMPLERS, name_or_class)
    expect(
        isinstance(cls, type) and issubclass(cls, LatentSampler),
        f"{cls!r} is not a subclass of kerasae.samplers.LatentSampler",
    )
    codes = sample_codes() if codes is None else np.asarray(codes, "float64")
    sampler = cls(**{**getattr(cls, "tiny_options", {}), **(options or {})})
    sampler.latent_dim, sampler.n_codes, sampler.seed = codes.shape[1], len(codes), seed
    sampler.fit_codes(codes, seed)
    name = cls.__name__
    z = sampler.sample_latent(256, seed=1)
    expect(
        isinstance(z, np.ndarray) and z.shape == (256, codes.shape[1]) and z.dtype == np.float32,
        f"{name}.sample_latent must give float32 codes of shape (256, "
        f"{codes.shape[1]}), got {getattr(z, 'shape', z)} {getattr(z, 'dtype', '')}",
    )
    expect(
        np.array_equal(z, sampler.sample_latent(256, seed=1)),
        f"{name}.sample_latent gives other codes for the same seed",
    )
    expect(
        not np.array_equal(z, sampler.sample_latent(256, seed=2)),
        f"{name}.sample_latent gives the same codes for another seed",
    )
    spread = codes.std(axis=0)
    expect(
        np.all(np.abs(z.mean(axis=0) - codes.mean(axis=0)) < spread),
        f"{name}'s draws are centred far from the codes it was fitted to",
    )
    with tempfile.TemporaryDirectory() as tmp:
        sampler.save(os.path.join(tmp, "sampler"))
        loaded = LatentSampler.load(os.path.join(tmp, "sampler"))
        expect(
            np.allclose(
                loaded.sample_latent(64, seed=3), sampler.sample_latent(64, seed=3), atol=1e-6
            ),
            f"{name} draws other codes once saved and loaded",
        )
    spec = json.loads(json.dumps(sampler.export_spec()))  # what the manifest holds
    expect(
        spec.get("kind") in PRIOR_KINDS and int(spec.get("dim", -1)) == codes.shape[1],
        f"{name}.export_spec must give a kind kerasae-runtime draws "
        f"({', '.join(PRIOR_KINDS)}) of dim {codes.shape[1]}, got {spec}",
    )
    if spec["kind"] in ARRAY_KINDS:
        expect(
            np.allclose(
                sample_prior(spec, 64, seed=5), sampler.sample_latent(64, seed=5), atol=1e-5
            ),
            f"kerasae-runtime draws other codes from {name}'s export spec for one seed",
        )
    else:
        expect(
            sampler.export_graph() is not None and spec.get("file"),
            f"{name} exports a {spec['kind']} prior but no network (export_graph)",
        )
    return sampler


def check_dataset(source: str | os.PathLike, **options: Any) -> Dataset | StreamingDataset:
    """Open the data source (a name, or a path its scheme claims) and check the dataset
    interface kerasae trains from: both splits non-empty, one pass of batches covering the
    training split in float32 values in [0, 1], `head`, `arrays`, a scaling the runtime can
    apply, and the same split when opened again. Returns the dataset."""
    reader = resolve(source)
    data = reader.open(str(source), **options)
    shape = tuple(data.input_shape)
    expect(
        data.n_train > 0 and data.n_test > 0,
        f"{source}: both splits need examples, got {data.n_train} and {data.n_test}",
    )
    seen = 0
    for batch in data.batches("train", 32).as_numpy_iterator():
        expect(
            batch.dtype == np.float32 and batch.shape[1:] == shape,
            f"{source}: batches must be float32 of shape (n, {shape}), got "
            f"{batch.dtype} {batch.shape}",
        )
        expect(
            batch.min() >= 0.0 and batch.max() <= 1.0,
            f"{source}: values must be scaled to [0, 1], got [{batch.min()}, {batch.max()}]",
        )
        seen += len(batch)
    expect(
        seen == data.n_train,
        f"{source}: one pass of batches gave {seen} examples, n_train is {data.n_train}",
    )
    head = data.head("test", 3)
    expect(
        np.asarray(head).shape == (min(3, data.n_test), *shape),
        f"{source}: head('test', 3) has shape {np.asarray(head).shape}",
    )
    expect(
        np.asarray(data.arrays("test")).shape == (data.n_test, *shape),
        f"{source}: arrays('test') must hold the whole test split",
    )
    scaling = json.loads(json.dumps(data.scaling or {"kind": "identity"}))
    runtime_scale(np.zeros((1, *shape), "float32"), scaling)  # an unknown kind raises
    again = reader.open(str(source), **options)
    expect(
        np.array_equal(np.asarray(again.head("test", 3)), np.asarray(head)),
        f"{source}: opened twice, its test split differs (the split must not be random)",
    )
    return data


def check_exporter(name: str, input_shape: tuple[int, ...] = (8, 8, 1)) -> dict:
    """Export a tiny untrained `ae` with the exporter: a format must write and verify
    the encoder and decoder (its files listed in the manifest); a layout must lay out an
    export of the formats it needs and recognise its own folder. Returns the manifest."""
    cls = _class(EXPORTERS, name)
    name = getattr(cls, "name", name)
    model = create_model("ae", input_shape=input_shape, latent_dim=2, hidden_units=(8,))
    x = np.random.default_rng(0).random((8, *input_shape)).astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        formats = cls.formats if cls.kind == "layout" else (name,)
        manifest = export_model(
            model,
            os.path.join(tmp, "export"),
            formats=formats,
            parts=("encoder", "decoder"),
            real_x=x,
        )
        for part in ("encoder", "decoder"):
            files = manifest["parts"][part]["files"]
            expect(files, f"{name} wrote no file for the {part}")
            for rel in files.values():
                expect(
                    rel in manifest["verification"],
                    f"{name}: {rel} was not verified against Keras",
                )
        if cls.kind == "layout":
            layout = cls()
            models = layout.write_repository(
                os.path.join(tmp, "export"), os.path.join(tmp, "layout")
            )
            expect(
                models and layout.is_layout(os.path.join(tmp, "layout")),
                f"{name}: write_repository wrote no models, or is_layout does not recognise them",
            )
    return manifest


def check_architecture(
    name: str, input_shape: tuple[int, ...] = (8, 8, 1), latent_dim: int = 3, **body: Any
) -> dict:
    """Build the architecture's encoder (one and two heads) and decoder and check their
    shapes, then run `check_model` on a tiny vae built on it (training, save/load, ONNX)."""
    cls = _class(ARCHITECTURES, name)
    name = getattr(cls, "name", name)
    arch = cls()
    body = {"hidden_units": (16,), "filters": (4, 8), **body}
    arch.check(tuple(input_shape))
    x = np.zeros((2, *input_shape), "float32")
    z = arch.encoder(input_shape, latent_dim, **body)(x)
    expect(tuple(z.shape) == (2, latent_dim), f"{name}: the encoder gives {z.shape}")
    heads = arch.encoder(input_shape, latent_dim, output_names=("z_mean", "z_log_var"), **body)(x)
    expect(
        len(heads) == 2 and all(tuple(h.shape) == (2, latent_dim) for h in heads),
        f"{name}: an encoder with two heads must give two codes",
    )
    decoder = arch.decoder(latent_dim, input_shape, **body)
    out = decoder(np.zeros((2, latent_dim), "float32"))
    expect(tuple(out.shape) == (2, *input_shape), f"{name}: the decoder gives {out.shape}")
    expect(
        decoder.layers[-1].name == "x_hat",
        f"{name}: the decoder must end in the output activation named x_hat",
    )
    return check_model(
        "vae", input_shape, config={"architecture": name, "latent_dim": latent_dim, **body}
    )
