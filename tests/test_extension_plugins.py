"""Every extension point through a real plugin: a sampler, data sources, an export format
and an architecture (tests/plugin_ext), used from the CLI end to end, checked by
kerasae.testing, and broken or clashing plugins of each kind handled as for models.

Each distribution is a real `.dist-info` folder next to its package in a temporary folder on
PYTHONPATH, so `importlib.metadata` finds it as it finds a pip-installed plugin, and the CLI
runs in a subprocess as a user runs it.
"""

import importlib
import json
import os
import shutil
import sys

import numpy as np
import pytest

from tests.helpers import run_cli

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = {
    "samplers": "kerasae.samplers",
    "datasets": "kerasae.datasets",
    "exporters": "kerasae.exporters",
    "architectures": "kerasae.architectures",
}
DEMO = {
    "kerasae.samplers": {"diag": "kerasae_ext_demo.sampler:DiagonalGaussian"},
    "kerasae.datasets": {
        "blobs": "kerasae_ext_demo.data:Blobs",
        "gauss": "kerasae_ext_demo.data:GaussianCloud",
    },
    "kerasae.exporters": {"keras_file": "kerasae_ext_demo.export:KerasFile"},
    "kerasae.architectures": {"resmlp": "kerasae_ext_demo.nets:ResidualMLP"},
}


def _distribution(site, dist, groups):
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{n} = {t}\n" for n, t in points.items())
            for group, points in groups.items()
        )
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(
        os.path.join(HERE, "plugin_ext", "kerasae_ext_demo"), site / "kerasae_ext_demo"
    )
    _distribution(site, "kerasae-ext-demo", DEMO)
    return site


def _env(*sites):
    return {"PYTHONPATH": os.pathsep.join([*map(str, sites), os.path.dirname(HERE)])}


def cli(site, *args, extra=()):
    return run_cli(*args, env=_env(site, *extra))


@pytest.fixture
def in_process(site):
    """The plugin's entry points seen by this process's registries, restored after."""
    from kerasae.data.sources import DATASETS
    from kerasae.export.registry import EXPORTERS
    from kerasae.nets.registry import ARCHITECTURES
    from kerasae.samplers.base import SAMPLERS

    registries = (SAMPLERS, DATASETS, EXPORTERS, ARCHITECTURES)
    saved = [r.state() for r in registries]
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    for registry in registries:
        registry.reset()
    yield
    sys.path.remove(str(site))
    importlib.invalidate_caches()
    for registry, state in zip(registries, saved):
        registry.restore(state)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, names",
    [
        ("samplers", ("diag", "gmm")),
        ("datasets", ("blobs", "gauss", "digits")),
        ("exporters", ("keras_file", "onnx", "triton")),
        ("architectures", ("resmlp", "mlp")),
    ],
)
def test_list_shows_a_plugin_of_every_kind(site, kind, names):
    result = cli(site, "list", "--kind", kind)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    for name in names:
        assert name in rows, result.stdout
    assert rows[names[0]].endswith("[kerasae-ext-demo]") and rows[names[-1]].endswith("[kerasae]")


@pytest.mark.slow
def test_a_plugin_data_source_sampler_and_format_end_to_end(site, tmp_path):
    from kerasae_runtime import Decoder

    run = tmp_path / "run"
    result = cli(
        site,
        "train",
        "--model",
        "ae",
        "--dataset",
        "blobs",
        "--epochs",
        "2",
        "--latent-dim",
        "2",
        "--param",
        "hidden_units=(16,)",
        "--out",
        run,
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["n_train"] == 480
    result = cli(site, "fit-sampler", run, "--sampler", "diag")
    assert result.returncode == 0 and "diag sampler" in result.stdout, result.stderr
    result = cli(site, "sample", run, "-n", "8", "--seed", "3", "--out", tmp_path / "s.npy")
    assert result.returncode == 0, result.stderr
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (8, 8) and np.isfinite(samples).all()
    result = cli(site, "export", run, "--format", "onnx,keras_file", "--parts", "encoder,decoder")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((run / "export" / "manifest.json").read_text())
    assert manifest["parts"]["decoder"]["files"] == {
        "onnx": "decoder.onnx",
        "keras_file": "decoder.keras",
    }
    assert "decoder.keras" in manifest["verification"] and manifest["prior"]["kind"] == "gmm"
    # the runtime draws the plugin sampler's codes as kerasae does, for the same seed
    np.testing.assert_allclose(
        Decoder.load(run / "export").generate(8, seed=3), samples, atol=1e-5
    )


@pytest.mark.slow
def test_a_plugin_path_scheme_and_architecture_train_and_reopen(site, tmp_path):
    run = tmp_path / "run"
    result = cli(
        site,
        "train",
        "--model",
        "vae",
        "--dataset",
        "gauss:6",
        "--epochs",
        "2",
        "--latent-dim",
        "2",
        "--param",
        "architecture=resmlp",
        "--param",
        "hidden_units=(16,16)",
        "--param",
        "likelihood=gaussian",
        "--out",
        run,
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "gauss:6" and config["model_config"]["architecture"] == "resmlp"
    result = cli(site, "evaluate", run, "--json")  # the data reopened through the scheme
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["n_test"] == 80


def test_unknown_name_of_each_kind_is_refused_with_the_listing(site):
    result = cli(site, "train", "--model", "ae", "--sampler", "nope", "--out", "x")
    assert result.returncode == 2 and "unknown sampler 'nope'" in result.stderr
    assert "diag" in result.stderr


def test_the_plugin_passes_the_conformance_checks(in_process):
    from kerasae.testing import check_dataset, check_exporter, check_sampler

    sampler = check_sampler("diag")
    assert sampler.export_spec()["kind"] == "gmm"
    assert check_dataset("blobs").n_train == 480
    assert check_dataset("gauss:5").input_shape == (5,)
    manifest = check_exporter("keras_file")
    assert set(manifest["verification"]) == {"encoder.keras", "decoder.keras"}


@pytest.mark.slow
def test_the_plugin_architecture_passes_its_conformance_check(in_process):
    from kerasae.testing import check_architecture

    report = check_architecture("resmlp", hidden_units=(16, 16))
    assert report["loss_after"] < report["loss_before"]


BROKEN = """raise RuntimeError("boom at import")\n"""


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    """A distribution whose every extension fails at import, and one that provides the
    demo's names again."""
    site = tmp_path_factory.mktemp("broken_site")
    (site / "kerasae_ext_broken").mkdir()
    (site / "kerasae_ext_broken" / "__init__.py").write_text("")
    (site / "kerasae_ext_broken" / "mod.py").write_text(BROKEN)
    _distribution(
        site,
        "kerasae-ext-broken",
        {
            group: {f"broken_{kind}": "kerasae_ext_broken.mod:Thing"}
            for kind, group in KINDS.items()
        },
    )
    shutil.copytree(
        os.path.join(HERE, "plugin_ext", "kerasae_ext_demo"), site / "kerasae_ext_clash"
    )
    for path in (site / "kerasae_ext_clash").glob("*.py"):
        path.write_text(path.read_text().replace("kerasae_ext_demo", "kerasae_ext_clash"))
    _distribution(
        site,
        "kerasae-ext-clash",
        {
            group: {
                name: target.replace("kerasae_ext_demo", "kerasae_ext_clash")
                for name, target in points.items()
            }
            for group, points in DEMO.items()
        },
    )
    return site


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, name",
    [
        ("samplers", "diag"),
        ("datasets", "blobs"),
        ("exporters", "keras_file"),
        ("architectures", "resmlp"),
    ],
)
def test_broken_and_clashing_plugins_of_every_kind(site, broken_site, kind, name):
    result = cli(site, "list", "--kind", kind, extra=(broken_site,))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    singular = {
        "samplers": "sampler",
        "datasets": "data source",
        "exporters": "exporter",
        "architectures": "architecture",
    }[kind]
    assert any(
        f"'kerasae-ext-broken' could not provide kerasae {singular} 'broken_{kind}'" in w
        and "boom at import" in w
        for w in warnings
    ), result.stderr
    assert any(f"name '{name}' is provided by distributions" in w for w in warnings)
    assert len(warnings) == len(set(warnings))  # each problem once
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert f"kerasae-ext-demo:{name}" in listed and f"kerasae-ext-clash:{name}" in listed
    assert f"broken_{kind}" not in listed


def test_a_clashing_sampler_name_is_refused_until_qualified(site, broken_site, tmp_path):
    result = cli(
        site,
        "train",
        "--model",
        "ae",
        "--sampler",
        "diag",
        "--out",
        tmp_path / "r",
        extra=(broken_site,),
    )
    assert result.returncode == 2
    assert (
        "sampler name 'diag' is provided by several distributions; choose one: "
        "kerasae-ext-demo:diag or kerasae-ext-clash:diag" in result.stderr
    )
