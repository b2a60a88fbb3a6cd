"""How long `kerasae list`, `info`, `--help` and a bad argument take, from spawn to exit.

Each run is a fresh process, as a user starts it (the venv's `kerasae` executable), timed
by wall clock. The commands take turns, N rounds of one run each, so a change in the
shared machine's load hits all of them alike; one untimed round first warms the file
cache. `python -c "import tensorflow"` is the contrast: what every command paid before
these three stopped importing TensorFlow (`kerasae.models.introspect` reads the model sources).
The bad-argument rows (issue 28) are commands that must fail with their one-line message and
exit 2 before TensorFlow is imported: every command's `check(args)` runs first.

    .venv/bin/python benchmarks/cli_latency.py [--repeats 7] [--no-write]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.report import machine, markdown_table, save_results, update_section  # noqa: E402

KERASAE = os.path.join(os.path.dirname(sys.executable), "kerasae")
COMMANDS = {
    "kerasae list": [KERASAE, "list"],
    "kerasae info vae": [KERASAE, "info", "vae"],
    "kerasae --help": [KERASAE, "--help"],
    'python -c "import tensorflow"': [sys.executable, "-c", "import tensorflow"],
}
TRAIN = [KERASAE, "train", "--model", "vae", "--dataset", "digits"]
MISSING = "/nonexistent/run"
BAD_ARGUMENTS = {  # each exits 2 with a one-line message
    "train --epochs -1": [*TRAIN, "--epochs", "-1"],
    "train --latent-dim 0": [*TRAIN, "--latent-dim", "0"],
    "train --batch-size 0": [*TRAIN, "--batch-size", "0"],
    "train --config (missing file)": [KERASAE, "train", "--config", f"{MISSING}.toml"],
    "train --data (missing path)": [KERASAE, "train", "--model", "vae", "--data", "/no/x.npy"],
    "export (missing run)": [KERASAE, "export", MISSING, "--format", "onnx"],
    "sample (missing run)": [KERASAE, "sample", MISSING, "-n", "4", "--out", "/tmp/g.png"],
    "evaluate (missing run)": [KERASAE, "evaluate", MISSING],
}
TARGET_S = 1.5
BAD_ARGUMENT_TARGET_S = 0.5


def run_once(argv, expect):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    proc = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=300
    )
    seconds = time.perf_counter() - start
    if proc.returncode != expect:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}, not {expect}: {proc.stderr[-500:]}")
    return seconds


def measure(repeats):
    commands = {n: (a, 0) for n, a in COMMANDS.items()}
    commands.update({f"kerasae {n}": (a, 2) for n, a in BAD_ARGUMENTS.items()})
    times = {name: [] for name in commands}
    for round_ in range(repeats + 1):
        for name, (argv, expect) in commands.items():
            seconds = run_once(argv, expect)
            if round_:  # round 0 only warms the file cache
                times[name].append(seconds)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="print, do not update BENCHMARKS.md and benchmarks/results/",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    times = measure(args.repeats)
    load_after = os.getloadavg()[0]
    rows = [
        [f"`{name}`", f"{statistics.median(t):.2f}", f"{min(t):.2f}", f"{max(t):.2f}"]
        for name, t in times.items()
    ]
    table = markdown_table(["command", "median s", "min s", "max s"], rows)
    print(table)
    if args.no_write:
        return
    command = f".venv/bin/python benchmarks/cli_latency.py --repeats {args.repeats}"
    save_results(
        "cli_latency",
        {
            "command": command,
            "machine": machine(),
            "repeats": args.repeats,
            "load_average": [round(load_before, 2), round(load_after, 2)],
            "seconds": {name: [round(s, 3) for s in t] for name, t in times.items()},
        },
    )
    fast = [name for name in COMMANDS if name.startswith("kerasae")]
    slowest = max(statistics.median(times[name]) for name in fast)
    bad = [f"kerasae {name}" for name in BAD_ARGUMENTS]
    slowest_bad = max(statistics.median(times[name]) for name in bad)
    update_section(
        "cli_latency",
        f"""## CLI latency: `list`, `info`, `--help` and argument errors without TensorFlow

Wall seconds from spawn to exit of a fresh process, {args.repeats} runs each, the commands
taking turns after one untimed round that warms the file cache. `list` and `info` read the
models' sources (`kerasae.models.introspect`) instead of importing them and `--help` only builds
the parser, so none imports TensorFlow; importing it alone, the last row, is what each of
them paid before. Target: under {TARGET_S} s each; the slowest median is {slowest:.2f} s.
The `kerasae train --epochs -1` … rows are bad arguments, paths and run folders: each must
print its one-line error and exit 2 before TensorFlow is imported (issue 28). Target: under
{BAD_ARGUMENT_TARGET_S} s each; the slowest median is {slowest_bad:.2f} s.

Reproduce: `{command}` (rows in `benchmarks/results/cli_latency.json`).

{table}

Machine: {machine()}, shared: other jobs were running throughout (load average
{load_before:.1f} at the start, {load_after:.1f} at the end), so the maxima are noisy.""",
    )


if __name__ == "__main__":
    main()
