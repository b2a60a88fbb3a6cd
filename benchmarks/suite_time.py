"""How long the README's fast test subset takes: wall seconds and CPU seconds (issue 28).

Runs `python -m pytest -q -p no:cacheprovider -m "not slow" -n 2` in a fresh process, as
the README says to, `--repeats` times, and measures each run's wall time and the CPU time
of the whole process tree (user + system, from `resource.getrusage(RUSAGE_CHILDREN)`).
The load average before and after says whether another job shared the cores. Targets:
at most 180 s wall and 300 CPU-seconds on two cores.

    .venv/bin/python benchmarks/suite_time.py [--repeats 2] [--no-write]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.report import ROOT, machine, markdown_table, save_results, update_section  # noqa: E402

COMMAND = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"]
WORKERS = ["-n", "2"]
TARGET_WALL_S, TARGET_CPU_S = 180, 300


def cpu_of_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once():
    cpu_before, start = cpu_of_children(), time.perf_counter()
    proc = subprocess.run(
        COMMAND + WORKERS, cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    wall, cpu = time.perf_counter() - start, cpu_of_children() - cpu_before
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    if proc.returncode != 0:
        failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
        sys.exit("the fast subset failed:\n" + "\n".join([*failed, summary]))
    return wall, cpu, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows, runs = [], []
    for i in range(args.repeats):
        load = os.getloadavg()[0]
        wall, cpu, summary = run_once()
        runs.append({"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_before": load})
        rows.append([str(i + 1), f"{wall:.0f}", f"{cpu:.0f}", f"{load:.1f}", summary])
        print(rows[-1], flush=True)
    table = markdown_table(["run", "wall s", "CPU s", "load before", "pytest says"], rows)
    print(table)
    if args.no_write:
        return
    command = f".venv/bin/python benchmarks/suite_time.py --repeats {args.repeats}"
    save_results("suite_time", {"command": command, "machine": machine(), "runs": runs})
    wall = statistics.median(r["wall_s"] for r in runs)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    update_section(
        "suite_time",
        f"""## The fast test subset: wall and CPU time

`python -m pytest -q -p no:cacheprovider -m "not slow" -n 2` (the README's command), each
run a fresh process tree; CPU is user + system time of every process it started (pytest's two
workers and the CLI subprocesses the tests spawn). Targets: at most {TARGET_WALL_S} s wall
and {TARGET_CPU_S} CPU-seconds on two cores. Median: {wall:.0f} s wall, {cpu:.0f} CPU-s.

Reproduce: `{command}` (rows in `benchmarks/results/suite_time.json`).

{table}

Machine: {machine()}. The 1-minute load average before a run still counts the run
before it (about 2 after a run); well above 2 means another job shared the cores.""",
    )


if __name__ == "__main__":
    main()
