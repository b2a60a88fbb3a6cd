"""Test helpers reused across test modules: running the CLI in-process and as a subprocess."""
import os
import subprocess
import sys


def run_cli(*args, cwd=None, env=None, timeout=300):
    """Run `python -m kerasae` as a user would; returns CompletedProcess with text output."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-m", "kerasae", *map(str, args)], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)
