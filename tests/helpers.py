"""Test helpers reused across test modules: running the CLI in-process and as a subprocess."""

import os
import subprocess
import sys

import pytest


def run_cli(*args, cwd=None, env=None, timeout=300):
    """Run `python -m kerasae` as a user would; returns CompletedProcess with text output."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kerasae", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


#: one family of each kind (dense, conv, probabilistic, quantised, adversarial): the fast
#: subset runs the registry-wide training and export checks on these, CI on every model
REPRESENTATIVES = ("ae", "conv_ae", "vae", "vq_vae", "wae")


def registry_params(names, fast=REPRESENTATIVES):
    """Every name, those not in `fast` marked slow."""
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in names]
