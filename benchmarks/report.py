"""Write a benchmark's results into its own section of BENCHMARKS.md.

Each benchmark owns the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`, so
scripts can be re-run in any order without touching each other's figures. Benchmarks that
are re-run a few rows at a time keep every row in `benchmarks/results/NAME.json`
(`load_results` / `save_results`) and rebuild their section from it.
"""

import os
import platform
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = os.path.join(ROOT, "BENCHMARKS.md")
HEADER = (
    "# Benchmarks\n\nEvery figure here is written by a script in `benchmarks/`; each "
    "section names the command that reproduces it.\n"
)


def machine():
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"


def results_path(name):
    return os.path.join(ROOT, "benchmarks", "results", f"{name}.json")


def load_results(name, empty):
    """The stored rows of benchmark `name`, or `empty` when it has none yet."""
    from kerasae.io import read_json

    path = results_path(name)
    return read_json(path) if os.path.exists(path) else empty


def save_results(name, results):
    from kerasae.io import write_json  # atomic: a run stopped mid-write keeps the old rows

    write_json(results_path(name), results)


def store_note(name, results, note):
    """Keep `note` with the rows of `name` (under "_note"); None leaves the stored one."""
    if note is not None:
        results["_note"] = note
        save_results(name, results)


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def update_section(name, body):
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = open(PATH, encoding="utf-8").read() if os.path.exists(PATH) else HEADER
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = PATH + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, PATH)


def base_parser(doc, epochs=10, latent_dim=16, batch_size=128):
    """The options every training benchmark shares: --epochs, --latent-dim, --batch-size,
    --seed."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--latent-dim", type=int, default=latent_dim)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--seed", type=int, default=0)
    return parser
