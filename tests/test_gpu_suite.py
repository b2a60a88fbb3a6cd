"""benchmarks/gpu_suite.py on a machine without a GPU: its arguments are checked, then one
line says there is no GPU and it exits 0, before TensorFlow is imported (cheap, so the fast
subset runs it: a smoke test of the suite's arguments)."""

import subprocess
import sys

import pytest

from benchmarks import gpu_suite

pytestmark = pytest.mark.skipif(bool(gpu_suite.gpu_names()), reason="a GPU is here: it would run")


def test_no_gpu_is_one_line_and_exit_0():
    argv = ["--families", "ae", "conv_ae", "--precisions", "mixed_float16", "--steps", "8"]
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_suite.py", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == [
        "gpu_suite: no GPU on this machine (no NVIDIA device found); nothing measured"
    ]


@pytest.mark.parametrize(
    "argv", [["--steps", "0"], ["--families", "pca"], ["--precisions", "float8"]]
)
def test_bad_arguments_exit_2_before_the_gpu_check(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_suite.main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_main_does_not_import_tensorflow_without_a_gpu(capsys):
    before = "tensorflow" in sys.modules
    assert gpu_suite.main(["--skip-serve"]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    assert before or "tensorflow" not in sys.modules
