"""The models written out in docs/plugins.md work as printed: each passes check_model.

The guide's python blocks that register a model are executed as they stand (a reader
copies them), then put through the same conformance checks as every built-in.
"""

import os
import re

import numpy as np
import pytest

from kerasae import testing
from kerasae.models import registry

DOC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "plugins.md"
)


def _model_blocks():
    text = open(DOC, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if "@register_model(" in b]


def test_the_guide_has_its_three_worked_models():
    names = [re.search(r'@register_model\("(\w+)"\)', b).group(1) for b in _model_blocks()]
    assert names == ["rae_l2", "tiny_vq", "dip_vae_i"]


@pytest.mark.parametrize(  # rae_l2 in the fast subset, the other two (5-9 s each) in the full
    "block",
    [
        b if i == 0 else pytest.param(b, marks=pytest.mark.slow)
        for i, b in enumerate(_model_blocks())
    ],
    ids=["rae_l2", "tiny_vq", "dip_vae_i"],
)
def test_each_worked_model_passes_check_model(block, tmp_path):
    name = re.search(r'@register_model\("(\w+)"\)', block).group(1)
    namespace = {"__name__": f"plugin_doc_{name}"}
    try:
        exec(compile(block, DOC, "exec"), namespace)
        report = testing.check_model(name, input_shape=(8, 8, 1), directory=tmp_path)
    finally:
        registry.MODELS.forget(name)
    assert report["loss_after"] < report["loss_before"]
    if report["export_skipped"] is None:
        assert report["export_max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_the_vq_example_initializes_its_codebook_and_uses_it(digits):
    block = _model_blocks()[1]
    namespace = {"__name__": "plugin_doc_tiny_vq"}
    try:
        exec(compile(block, DOC, "exec"), namespace)
        model = testing.build("tiny_vq", latent_dim=4, num_embeddings=16)
    finally:
        registry.MODELS.forget("tiny_vq")
    x = digits[0][:512]
    model.compile()
    history = model.fit(x, epochs=3, batch_size=64, verbose=0)
    assert int(model.initialized.numpy()) == 1
    # k-means from the first batch and EMA updates keep most codes in use (no collapse)
    assert history.history["usage"][-1] >= 0.5, history.history
    assert history.history["reconstruction"][-1] < history.history["reconstruction"][0]


def test_the_variant_example_is_short_and_its_penalty_falls(digits):
    block = _model_blocks()[2]
    assert len(block.strip().splitlines()) <= 30  # a variant is about 30 lines
    namespace = {"__name__": "plugin_doc_dip_vae_i"}
    try:
        exec(compile(block, DOC, "exec"), namespace)
        model = testing.build("dip_vae_i", latent_dim=4, hidden_units=(32,))
    finally:
        registry.MODELS.forget("dip_vae_i")
    assert model.get_config()["lambda_d"] == 100.0  # its own arguments, beside the VAE's
    model.compile()
    history = model.fit(digits[0][:512], epochs=4, batch_size=64, verbose=0).history
    assert history["dip"][-1] < history["dip"][0], history["dip"]
    loss = np.add(history["reconstruction"], history["kl"]) + history["dip"]
    np.testing.assert_allclose(history["loss"], loss, rtol=1e-4)  # beta = 1: ELBO + dip


EXTENSIONS = {
    "register_sampler": "check_sampler",
    "register_dataset": "check_dataset",
    "register_exporter": "check_exporter",
    "register_architecture": "check_architecture",
}


def _extension_blocks():
    text = open(DOC, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [
        (re.search(rf"@{kind}\(\"(\w+)\"\)", b).group(1), kind, b)
        for b in blocks
        for kind in EXTENSIONS
        if f"@{kind}(" in b
    ]


def test_the_guide_has_a_worked_example_of_every_other_kind():
    assert sorted(kind for _, kind, _ in _extension_blocks()) == sorted(EXTENSIONS)


@pytest.mark.parametrize(  # the architecture example trains a network: 5 s, in the full suite
    "name, kind, block",
    [
        pytest.param(*b, marks=pytest.mark.slow) if b[1] == "register_architecture" else b
        for b in _extension_blocks()
    ],
    ids=[n for n, _, _ in _extension_blocks()],
)
def test_each_worked_extension_passes_its_check(name, kind, block):
    from kerasae.data.sources import DATASETS
    from kerasae.export.registry import EXPORTERS
    from kerasae.nets.registry import ARCHITECTURES
    from kerasae.samplers.base import SAMPLERS

    registry_of = {
        "register_sampler": SAMPLERS,
        "register_dataset": DATASETS,
        "register_exporter": EXPORTERS,
        "register_architecture": ARCHITECTURES,
    }
    namespace = {"__name__": f"plugin_doc_{name}"}
    try:
        exec(compile(block, DOC, "exec"), namespace)
        check = getattr(testing, EXTENSIONS[kind])
        argument = "gauss:4" if kind == "register_dataset" else name
        if kind == "register_architecture":
            check(argument, hidden_units=(16, 16))
        else:
            check(argument)
    finally:
        registry_of[kind].forget(name)
