"""What a deployer checks in an export: the same weights give byte-identical ONNX files,
a partial re-export never deletes the other parts, the manifest names files only inside
the folder and no path of the training machine, the scorer and threshold travel, and the
runtime's score and is_anomaly equal `kerasae detect`'s."""

import csv
import json
import os
import sys

import numpy as np
import pytest

from kerasae import export
from kerasae.errors import KerasaeError
from kerasae.runs.config import TrainConfig
from kerasae.runs.training import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("hygiene") / "vae")
    train(
        TrainConfig(model="vae", epochs=1, latent_dim=2, out=out, params={"hidden_units": [16]}),
        verbose=0,
    )
    return out


@pytest.fixture
def runtime():
    sys.path.insert(0, os.path.join(ROOT, "export"))
    import kerasae_runtime

    yield kerasae_runtime
    sys.path.remove(os.path.join(ROOT, "export"))


@pytest.mark.slow
def test_the_same_weights_give_byte_identical_onnx_files(run, tmp_path):
    first = export.export_run(run, out=str(tmp_path / "a"), formats=("onnx",), fp16=True)
    export.export_run(run, out=str(tmp_path / "b"), formats=("onnx",), fp16=True)
    onnx_files = [f for f in first["files"] if f.endswith(".onnx")]
    assert len(onnx_files) == 5  # encoder, decoder (each fp32 and fp16), scorer (fp32)
    for name in onnx_files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_manifest_records_version_time_and_no_machine_path(run, tmp_path):
    manifest = export.export_run(run, out=str(tmp_path / "e"), formats=("onnx",), version=3)
    assert manifest["model"]["version"] == 3 and manifest["created"].endswith("Z")
    assert manifest["versions"]["kerasae"] and manifest["run"] == {
        "dataset": "digits",
        "name": "vae",
    }
    text = (tmp_path / "e" / "manifest.json").read_text()
    assert os.path.abspath(run) not in text and str(tmp_path) not in text
    threshold = json.loads((tmp_path / "e" / "threshold.json").read_text())
    assert manifest["threshold"]["threshold"] == threshold["threshold"]
    assert manifest["score"] == {"part": "scorer", "description": threshold["score"]}


def test_a_partial_re_export_never_deletes_the_other_parts(run, tmp_path):
    out = str(tmp_path / "e")
    export.export_run(run, out=out, formats=("onnx",))
    before = sorted(os.listdir(out))
    with pytest.raises(KerasaeError, match="would delete its encoder, scorer"):
        export.export_run(run, out=out, formats=("onnx",), parts=("decoder",))
    assert sorted(os.listdir(out)) == before
    export.export_run(run, out=out, formats=("onnx",))  # every part again: fine


def test_runtime_refuses_paths_outside_the_export_and_non_numpy_data(
    run, tmp_path, runtime, capsys
):
    import shutil

    from kerasae_runtime.cli import main
    from kerasae_runtime.manifest import ExportError

    out = tmp_path / "e"
    export.export_run(run, out=str(out), formats=("onnx",))
    tampered = tmp_path / "t"
    shutil.copytree(out, tampered)
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["parts"]["decoder"]["files"]["onnx"] = "../e/decoder.onnx"
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="outside the export folder"):
        runtime.Decoder.load(str(tampered))

    np.save(tmp_path / "strings.npy", np.array([["a", "b"]]))
    (tmp_path / "text.npy").write_text("1,2,3\n")
    for bad, said in (("strings.npy", "has dtype <U1"), ("text.npy", "is not a NumPy")):
        assert (
            main(
                [
                    "score",
                    str(out),
                    "--data",
                    str(tmp_path / bad),
                    "--out",
                    str(tmp_path / "s.npy"),
                ]
            )
            == 2
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err


@pytest.mark.slow
@pytest.mark.parametrize("model", ["ae", "vae", "vamp"])
def test_runtime_score_and_is_anomaly_equal_detect(model, tmp_path, runtime):
    from kerasae.cli import main

    out = str(tmp_path / model)
    train(
        TrainConfig(model=model, epochs=1, latent_dim=2, out=out, params={"hidden_units": [16]}),
        verbose=0,
    )
    export.export_run(out, formats=("onnx",))
    from kerasae.data.sources import load_dataset

    raw = load_dataset("digits").x_test * 16.0  # raw units of the training data
    np.save(tmp_path / "x.npy", raw.astype("float32"))
    assert (
        main(
            [
                "detect",
                out,
                "--data",
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "scores.csv"),
                "-q",
            ]
        )
        == 0
    )
    with open(tmp_path / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    want = np.array([float(r["score"]) for r in rows])
    flagged = np.array([r["is_anomaly"] in ("1", "True", "true") for r in rows])
    ae = runtime.Autoencoder.load(os.path.join(out, "export"))
    got = ae.score(raw, raw=True)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)
    assert (ae.is_anomaly(got) == flagged).all()
