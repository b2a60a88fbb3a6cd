"""The `kerasae` command line: the run folder, evaluate --json, list/info, one-line errors."""

import csv
import json

import pytest

from kerasae.cli import main
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(
        [
            "train",
            "--model",
            "conv_ae",
            "--dataset",
            "digits",
            "--epochs",
            "3",
            "--latent-dim",
            "8",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_train_writes_the_run_folder(trained_run):
    for name in ("config.json", "model.keras", "history.csv", "checkpoints", "tensorboard"):
        assert (trained_run / name).exists(), name
    config = json.loads((trained_run / "config.json").read_text())
    assert config["model"] == "conv_ae" and config["status"] == "finished"
    assert config["model_config"]["latent_dim"] == 8
    rows = list(csv.DictReader(open(trained_run / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]  # as the progress bar counts
    assert list(rows[0])[:2] == ["epoch", "loss"] and "val_loss" in rows[0]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])  # the loss fell


def test_evaluate_json_last_line(trained_run, capsys):
    assert main(["evaluate", str(trained_run), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    metrics = json.loads(last)
    assert 0 < metrics["test_mse"] < 0.1 and metrics["psnr"] > 10


def test_list_and_info(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert {"ae", "conv_ae", "pca"} <= set(names)
    assert all("[" in line for line in lines)  # the source distribution
    assert main(["list", "conv*"]) == 0
    assert capsys.readouterr().out.split()[0] == "conv_ae"
    assert main(["info", "ae"]) == 0
    info = capsys.readouterr().out
    assert "hidden_units = (512, 256)" in info and "latent_dim = 16" in info


def test_config_file_and_param(tmp_path, capsys):
    cfg = tmp_path / "ae.toml"
    cfg.write_text(
        'model = "ae"\nepochs = 2\nlatent_dim = 4\nbatch_size = 64\n'
        "[params]\nhidden_units = [32]\n"
    )
    out = tmp_path / "run"
    assert (
        main(["train", "--config", str(cfg), "--param", "activation=tanh", "--out", str(out)]) == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert config["model_config"]["hidden_units"] == [32]
    assert config["model_config"]["activation"] == "tanh" and config["epochs"] == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "convae"], "did you mean conv_ae"),
        (["train", "--model", "ae", "--param", "hidden=3"], "unknown parameter 'hidden'"),
        (["train", "--model", "ae", "--param", "hidden_units=abc"], "must be a list"),
        (["train", "--model", "ae", "--epochs", "0"], "--epochs must be a positive integer"),
        (["train", "--model", "ae", "--dataset", "nope"], "unknown dataset"),
        (["evaluate", "/nonexistent/run"], "not a kerasae run folder"),
        (["info", "vea_x"], "unknown model"),
    ],
)
def test_errors_are_one_line_exit_2(argv, message, capsys, tmp_path):
    assert main(argv + (["--out", str(tmp_path / "r")] if argv[0] == "train" else [])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "r" / "model.keras").exists()


@pytest.mark.slow
def test_real_process_error_has_no_traceback(tmp_path):
    result = run_cli("train", "--model", "nosuch", "--out", tmp_path / "r")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kerasae: error: unknown model")
