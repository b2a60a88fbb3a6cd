"""Data at scale (issue 20): memory and throughput when training streams images from disk.

Writes a synthetic folder of 64x64 RGB PNGs (`benchmarks/synthetic_images.py`: shapes on
textures, nested so that every size is a folder of exactly that many images) and, with
`kerasae convert-tfrecord`, a TFRecord copy of each size. Then, for each source and size,
two fresh processes:

- the input pipeline alone: `kerasae.data.load_dataset(SOURCE, image_size=(64, 64))` and
  `--pipeline-batches` shuffled training batches of `--batch-size` from `batches("train")`
  after a few warm-up batches, in images/s;
- training: `kerasae train --model conv_ae --dataset SOURCE --image-size 64,64 --epochs 1`
  (its default filters for 64x64: four stages, 32 to 256), run by the CLI's own `main` in
  the child with one extra Keras callback that timestamps the training steps: images/s
  from the first step after the first compiled chunk (tracing excluded) to the last,
  so the validation pass and the anomaly threshold's scoring pass are not counted.

Each child reports its peak resident memory (`getrusage(RUSAGE_SELF).ru_maxrss`, the
kernel's high-water mark of the whole process). Targets: training on the largest size
below 3 GB, growing under 20% from the smallest size to the largest; the pipeline at least
3x the training throughput, from the folder and from TFRecord.

    nice -n 5 .venv/bin/python benchmarks/data_scale.py                  # 10k, 50k, 200k
    .venv/bin/python benchmarks/data_scale.py --sizes 1000,5000 --no-write  # a smoke run

Written files are kept in `--work` (default /tmp/kerasae-data-scale) and reused: a second
run, or one resumed after an interruption, writes only what is missing.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.report import load_results, machine, markdown_table, save_results, update_section  # noqa: E402
from benchmarks.synthetic_images import write_folder  # noqa: E402

KERASAE = os.path.join(os.path.dirname(sys.executable), "kerasae")
MAX_RSS_GB, MAX_GROWTH, MIN_RATIO = 3.0, 0.20, 3.0
WARMUP_BATCHES = 5


# ------------------------------------------------------------------ the two children
def child_pipeline(source, batch_size, batches):
    from kerasae.data.sources import load_dataset

    start = time.perf_counter()
    data = load_dataset(source, image_size=(64, 64))
    opened = time.perf_counter() - start
    it = iter(data.batches("train", batch_size, shuffle=True, repeat=True))
    for _ in range(WARMUP_BATCHES):
        next(it)
    start, images = time.perf_counter(), 0
    for _ in range(batches):
        images += int(next(it).shape[0])
    return {
        "images_per_s": images / (time.perf_counter() - start),
        "open_s": opened,
        "n_train": int(data.n_train),
        "images_timed": images,
    }


def child_train(source, batch_size, out):
    import keras

    from kerasae import runs
    from kerasae.cli import main

    marks = []  # (step index, time) at the end of each compiled chunk of steps

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            marks.append((batch, time.perf_counter()))

    real_train = runs.train  # `kerasae train` imports it when it runs: wrap it first

    def timed_train(config, callbacks=(), **kwargs):
        return real_train(config, callbacks=(*callbacks, StepTimer()), **kwargs)

    runs.train = timed_train
    start = time.perf_counter()
    code = main(
        [
            "train",
            "--model",
            "conv_ae",
            "--dataset",
            source,
            "--image-size",
            "64,64",
            "--epochs",
            "1",
            "--batch-size",
            str(batch_size),
            "--out",
            out,
        ]
    )
    wall = time.perf_counter() - start
    if code:
        raise SystemExit(f"kerasae train exited with {code}")
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    rate = None
    if len(marks) >= 2:  # the first chunk includes tracing: time from its end
        (b0, t0), (b1, t1) = marks[0], marks[-1]
        rate = (b1 - b0) * batch_size / (t1 - t0)
    return {
        "images_per_s": rate,
        "n_train": config["n_train"],
        "wall_s": wall,
        "train_seconds": config.get("train_seconds"),
        "filters": config["model_config"].get("filters"),
    }


def run_child(kind, source, args, log):
    """Run one measurement in a fresh process; its result dict plus its peak RSS."""
    result = os.path.join(args.work, f".result-{os.getpid()}.json")
    argv = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        kind,
        "--source",
        source,
        "--batch-size",
        str(args.batch_size),
        "--pipeline-batches",
        str(args.pipeline_batches),
        "--work",
        args.work,
        "--result",
        result,
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(log, "w") as f:
        code = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if code:
        raise SystemExit(f"the {kind} measurement of {source} failed (exit {code}); see {log}")
    with open(result) as f:
        out = json.load(f)
    os.remove(result)
    return out


def child_main(args):
    if args.child == "pipeline":
        out = child_pipeline(args.source, args.batch_size, args.pipeline_batches)
    else:
        run = os.path.join(args.work, "runs", os.path.basename(args.source.rstrip("/")))
        shutil.rmtree(run, ignore_errors=True)
        out = child_train(args.source, args.batch_size, run)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB
    with open(args.result, "w") as f:
        json.dump(out, f)


# ------------------------------------------------------------------ the data
def write_tfrecords(roots, work):
    """{size: folder of TFRecord shards}: `kerasae convert-tfrecord` of each size's folder
    (skipped where the shards exist: the command writes its folder atomically)."""
    out = {}
    for size, root in sorted(roots.items()):
        target = os.path.join(work, f"tfrecord-{size}")
        if not (
            os.path.isdir(target) and any(n.endswith(".tfrecord") for n in os.listdir(target))
        ):
            print(f"converting {size} images to TFRecord ...", flush=True)
            subprocess.run(
                [KERASAE, "convert-tfrecord", root, target],
                check=True,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
        out[size] = target
    return out


# ------------------------------------------------------------------ the report
def summarize(rows, sizes):
    """Per source: growth of the training peak RSS, smallest to largest size."""
    notes = []
    for source in ("folder", "tfrecord"):
        got = {
            r["size"]: r
            for r in rows
            if r["source"] == source and r["size"] in sizes and r.get("train_peak_rss_mb")
        }  # a --pipeline-only row has no training
        if len(got) < 2:
            continue
        lo, hi = got[min(got)], got[max(got)]
        growth = hi["train_peak_rss_mb"] / lo["train_peak_rss_mb"] - 1
        ratio = hi["ratio"]
        notes.append(
            f"- {source}: peak RSS {hi['train_peak_rss_mb'] / 1000:.2f} GB at {max(got):,} images "
            f"(target < {MAX_RSS_GB:g} GB: {_met(hi['train_peak_rss_mb'] < MAX_RSS_GB * 1000)}), "
            f"{growth:+.1%} from {min(got):,} (target < {MAX_GROWTH:.0%}: "
            f"{_met(growth < MAX_GROWTH)}); pipeline / training at {max(got):,}: "
            + (
                f"{ratio:.1f}x (target >= {MIN_RATIO:g}x: {_met(ratio >= MIN_RATIO)})"
                if ratio
                else "n/a"
            )
        )
    return notes


def _met(ok):
    return "met" if ok else "NOT met"


def _num(value, fmt):
    return "not run" if value is None else format(value, fmt)


def table(rows):
    body = [
        [
            r["source"],
            f"{r['size']:,}",
            _num(r["n_train"], ","),
            _num(r["train_peak_rss_mb"], ".0f"),
            f"{r['pipeline_peak_rss_mb']:.0f}",
            f"{r['pipeline_images_per_s']:.0f}",
            _num(r["train_images_per_s"], ".0f"),
            _num(r["ratio"], ".1f"),
            _num(r["train_wall_s"], ".0f"),
        ]
        for r in sorted(rows, key=lambda r: (r["source"], r["size"]))
    ]
    return markdown_table(
        [
            "source",
            "images",
            "train split",
            "peak RSS training (MB)",
            "peak RSS pipeline (MB)",
            "pipeline images/s",
            "training images/s",
            "pipeline / training",
            "`kerasae train` wall s",
        ],
        body,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--sizes",
        default="10000,50000,200000",
        help="comma-separated image counts (default 10000,50000,200000)",
    )
    p.add_argument(
        "--work",
        default="/tmp/kerasae-data-scale",
        help="where the images, TFRecords and runs go (kept and reused)",
    )
    p.add_argument("--sources", default="folder,tfrecord")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--pipeline-batches", type=int, default=200)
    p.add_argument("--processes", type=int, default=2, help="processes writing images")
    p.add_argument(
        "--no-write",
        action="store_true",
        help="print, do not update BENCHMARKS.md and benchmarks/results/",
    )
    p.add_argument(
        "--pipeline-only",
        action="store_true",
        help="measure the input pipeline only (no training run)",
    )
    p.add_argument(
        "--write-only",
        action="store_true",
        help="rebuild the BENCHMARKS.md section from the stored rows",
    )
    p.add_argument("--note", help="a note stored with the rows and printed under the table")
    p.add_argument("--child", choices=("pipeline", "train"), help=argparse.SUPPRESS)
    p.add_argument("--source", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child_main(args)
    stored = load_results("data_scale", {"rows": []})
    if args.note is not None:
        stored["note"] = args.note
        if not args.no_write:
            save_results("data_scale", stored)
    if args.write_only:
        return write(args, stored["rows"], stored.get("load_average", [0, 0]), stored.get("note"))
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    sources = args.sources.split(",")
    os.makedirs(args.work, exist_ok=True)
    start = time.perf_counter()
    roots, written = write_folder(args.work, sizes, args.processes)
    print(
        f"image folder: {written} files written in {time.perf_counter() - start:.0f} s "
        f"({max(sizes) - written} were there)",
        flush=True,
    )
    paths = {"folder": roots}
    if "tfrecord" in sources:
        paths["tfrecord"] = write_tfrecords(roots, args.work)
    load_before = os.getloadavg()[0]
    rows = []
    for source in sources:
        for size in sizes:
            path, logs = paths[source][size], os.path.join(args.work, "logs")
            os.makedirs(logs, exist_ok=True)
            print(f"{source} {size}: pipeline ...", flush=True)
            pipe = run_child(
                "pipeline", path, args, os.path.join(logs, f"pipeline-{source}-{size}.log")
            )
            fit = {
                "n_train": None,
                "peak_rss_mb": None,
                "images_per_s": None,
                "wall_s": None,
                "filters": None,
            }
            if not args.pipeline_only:
                print(f"{source} {size}: training ...", flush=True)
                fit = run_child(
                    "train", path, args, os.path.join(logs, f"train-{source}-{size}.log")
                )
            rate = fit["images_per_s"]
            rows.append(
                {
                    "source": source,
                    "size": size,
                    "n_train": fit["n_train"],
                    "train_peak_rss_mb": fit["peak_rss_mb"] and round(fit["peak_rss_mb"], 1),
                    "pipeline_peak_rss_mb": round(pipe["peak_rss_mb"], 1),
                    "pipeline_images_per_s": round(pipe["images_per_s"], 1),
                    "train_images_per_s": round(rate, 1) if rate else None,
                    "ratio": round(pipe["images_per_s"] / rate, 2) if rate else None,
                    "train_wall_s": fit["wall_s"] and round(fit["wall_s"], 1),
                    "filters": fit["filters"],
                    "pipeline_open_s": round(pipe["open_s"], 2),
                    "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                }
            )
            print(table(rows[-1:]).splitlines()[-1], flush=True)
            if not args.no_write:  # after each row: an interrupted run keeps what it measured
                if args.pipeline_only:  # keep a stored row's training figures
                    old = next(
                        (r for r in stored["rows"] if (r["source"], r["size"]) == (source, size)),
                        None,
                    )
                    if old and old.get("train_images_per_s"):
                        train = {
                            k: old[k]
                            for k in (
                                "n_train",
                                "train_peak_rss_mb",
                                "train_images_per_s",
                                "train_wall_s",
                                "filters",
                            )
                        }
                        rows[-1].update(
                            train,
                            ratio=round(
                                rows[-1]["pipeline_images_per_s"] / train["train_images_per_s"], 2
                            ),
                        )
                keep = [
                    r
                    for r in stored["rows"]
                    if (r["source"], r["size"]) not in {(q["source"], q["size"]) for q in rows}
                ]
                stored = {
                    **stored,
                    "machine": machine(),
                    "rows": keep + rows,
                    "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                }
                save_results("data_scale", stored)
    print(table(rows), *summarize(rows, sizes), sep="\n")
    if not args.no_write:
        write(args, stored["rows"], stored["load_average"], stored.get("note"))


def write(args, rows, load_average, note=None):
    text = table(rows)
    notes = summarize(rows, sorted({r["size"] for r in rows}))
    if any(not r.get("train_peak_rss_mb") for r in rows):
        notes.append(
            f'- Rows with training "not run" measured the input pipeline only '
            f"(`--pipeline-only`). The targets are for the largest size "
            f"({max(r['size'] for r in rows):,}); where it was not trained they are "
            "NOT established: the lines above judge the largest size trained."
        )
    sizes = sorted({r["size"] for r in rows})
    command = (
        f"nice -n 5 .venv/bin/python benchmarks/data_scale.py --sizes "
        f"{','.join(map(str, sizes))} --batch-size {args.batch_size}"
    )
    load_before, load_after = load_average
    filters = next((r["filters"] for r in rows if r.get("filters")), "(32, 64, 128, 256)")
    update_section(
        "data_scale",
        f"""## Streaming data at scale (`benchmarks/data_scale.py`)

Synthetic 64x64 RGB PNGs (shapes on textures, `benchmarks/synthetic_images.py`) in nested
folders, and their TFRecord copies (`kerasae convert-tfrecord`). Training: `kerasae train
--model conv_ae --dataset SOURCE --image-size 64,64 --epochs 1 --batch-size
{args.batch_size}` (default filters {filters}), images/s over its training steps
after the first compiled chunk (no tracing, validation or threshold pass). Pipeline:
`load_dataset(SOURCE, image_size=(64, 64)).batches("train", {args.batch_size}, shuffle=True)`
alone, {args.pipeline_batches} batches after {WARMUP_BATCHES} warm-up ones. Peak RSS: each
fresh process's `ru_maxrss`. Targets: training peak RSS < {MAX_RSS_GB:g} GB at the largest
size and < {MAX_GROWTH:.0%} above the smallest size's; pipeline >= {MIN_RATIO:g}x training.

Reproduce: `{command}` (rows in `benchmarks/results/data_scale.json`).

{text}

{chr(10).join(notes)}
{f"{chr(10)}Note: {note}.{chr(10)}" if note else ""}
Machine: {machine()}, shared (load average {load_before:.1f} at the start of the
measurements, {load_after:.1f} at the end).""",
    )


if __name__ == "__main__":
    main()
