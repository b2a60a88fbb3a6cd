"""kerasae and pythae 0.1.2 side by side on the same MLP networks and Fashion-MNIST.

    python benchmarks/pythae_side_by_side.py [--families vae_iaf,miwae,vaegan,svae,rhvae]
        [--side both|pythae|kerasae] [--pythae-python /tmp/work/pythae-venv/bin/python]

For each family (latent 16, 10 epochs, batch 128, one hidden layer of 512 in encoder and
decoder, Adam 1e-3): test MSE per pixel over the 10,000 test images, computed here from
each side's reconstructions (pythae sums its MSE over pixels; neither library's loss is
used), the importance-sampled test log p(x) (k = 1000 on the first 1000 test images:
kerasae's `kerasae.evaluation.likelihood`, pythae's own `get_nll`), parameters, training
seconds and training samples per process-CPU second (the machine is shared, so the wall
time says less than the CPU time).

The kerasae side is `benchmarks/zoo_fashion.py`'s `run` at its `--mlp` networks, so its
figures are measured the way the zoo table's are. The pythae side runs
`benchmarks/pythae_worker.py` under pythae's own interpreter (CPU PyTorch), given the same
images as .npy files. pythae runs with reconstruction_loss="bce" (its default is a
pixel-summed MSE): kerasae's default likelihood is Bernoulli, and the two log p(x) are only
comparable under the same likelihood. Rows go to benchmarks/results/pythae_side_by_side.json
as {family: {"kerasae": {...}, "pythae": {...}}}; each run replaces only the sides it ran.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.pythae_report import FAMILIES, NAME, write  # noqa: E402
from benchmarks.report import base_parser, load_results, save_results, store_note  # noqa: E402

PYTHAE_PYTHON = "/tmp/work/pythae-venv/bin/python"
WORKER = os.path.join(ROOT, "benchmarks", "pythae_worker.py")
INSTALL = (
    "python3 -m venv /tmp/work/pythae-venv && /tmp/work/pythae-venv/bin/pip install "
    "torch pythae==0.1.2"
)


def pythae_missing(python):
    """None when `python` imports pythae 0.1.2 and torch, else the reason (one line)."""
    if not os.path.exists(python):
        return f"{python} does not exist"
    probe = "import pythae, torch, importlib.metadata as m; print(m.version('pythae'))"
    try:
        out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} cannot run ({exc})"
    if out.returncode:
        return f"{python} cannot import pythae and torch"
    if out.stdout.strip() != "0.1.2":
        return f"{python} has pythae {out.stdout.strip()}, not 0.1.2"
    return None


def run_pythae(family, data_dir, args):
    """pythae's row for `family` (the worker's JSON), or a row saying why it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "row.json")
        cmd = [args.pythae_python, WORKER, "--family", family, "--data", data_dir, "--out", out]
        for flag in ("epochs", "batch_size", "latent_dim", "seed", "ll_k", "ll_examples"):
            cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        cmd += ["--lr", str(args.lr)]
        if args.pythae_threads:
            cmd += ["--threads", str(args.pythae_threads)]
        try:
            result = subprocess.run(
                cmd, capture_output=True, text=True, timeout=args.pythae_timeout
            )
        except subprocess.TimeoutExpired:
            # the worker writes its row after training and again after each log p(x)
            # image, so what it had measured is kept: log p(x) on the first n images
            if not os.path.exists(out):
                return {"error": "pythae worker stopped by --pythae-timeout before its row"}
            with open(out) as f:
                row = json.load(f)
            row["stopped"] = f"after {args.pythae_timeout} s (--pythae-timeout)"
            return row
        if result.returncode or not os.path.exists(out):
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            return {"error": f"pythae worker exited {result.returncode}: {tail[:300]}"}
        with open(out) as f:
            return json.load(f)


@contextlib.contextmanager
def cpu_timed_fit(record):
    """Patch `kerasae.create_model` so the model's `fit` records its process-CPU seconds in
    `record` (zoo_fashion.run times the wall clock only)."""
    import kerasae

    create = kerasae.create_model

    def create_timed(*a, **kw):
        model = create(*a, **kw)
        fit = model.fit

        def timed_fit(*fa, **fkw):
            start = time.process_time()
            try:
                return fit(*fa, **fkw)
            finally:
                record["cpu_seconds"] = time.process_time() - start

        model.fit = timed_fit
        return model

    kerasae.create_model = create_timed
    try:
        yield
    finally:
        kerasae.create_model = create


def run_kerasae(family, data, args):
    """zoo_fashion's row at its --mlp networks, with training CPU seconds added."""
    from benchmarks import zoo_fashion
    from kerasae.models.registry import list_models

    if family not in list_models():
        return {"error": f"kerasae has no model {family!r} registered (yet)"}
    zoo_args = argparse.Namespace(
        mlp=True,
        epochs=args.epochs,
        batch_size=args.batch_size,
        latent_dim=args.latent_dim,
        seed=args.seed,
        ll_k=args.ll_k,
        ll_examples=args.ll_examples,
    )
    record = {}
    with cpu_timed_fit(record):
        row = zoo_fashion.run(family, data, zoo_args)
    row["cpu_seconds"] = round(record["cpu_seconds"], 1)
    row["samples_per_cpu_second"] = round(
        args.epochs * len(data.x_train) / record["cpu_seconds"], 1
    )
    row["library"] = "kerasae"
    return row


def main(argv=None):
    parser = base_parser(__doc__)
    parser.add_argument("--families", default=FAMILIES)
    parser.add_argument("--side", choices=("both", "pythae", "kerasae"), default="both")
    parser.add_argument("--pythae-python", default=PYTHAE_PYTHON)
    parser.add_argument("--lr", type=float, default=1e-3, help="pythae's Adam learning rate")
    parser.add_argument(
        "--pythae-threads",
        type=int,
        help="torch's threads in the pythae worker (1 beside another job: two threads on "
        "a shared 2-core machine spin at torch's barriers)",
    )
    parser.add_argument(
        "--pythae-timeout",
        type=float,
        help="stop a pythae worker after this many seconds, keeping its row so far "
        "(log p(x) on the images it had scored)",
    )
    parser.add_argument("--ll-k", type=int, default=1000)
    parser.add_argument("--ll-examples", type=int, default=1000)
    parser.add_argument(
        "--report", action="store_true", help="rebuild the BENCHMARKS.md section only"
    )
    parser.add_argument("--note", help="a note stored with the rows and printed under them")
    args = parser.parse_args(argv)
    results = load_results(NAME, {})
    store_note(NAME, results, args.note)
    if args.report:
        return write(results)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    sides = ("pythae", "kerasae") if args.side == "both" else (args.side,)
    if "pythae" in sides:
        why = pythae_missing(args.pythae_python)
        if why:
            print(f"pythae side skipped: {why}; install it with: {INSTALL}")
            sides = tuple(s for s in sides if s != "pythae")

    from kerasae.data.sources import load_dataset

    data = load_dataset("fashion_mnist")
    with tempfile.TemporaryDirectory() as data_dir:
        if "pythae" in sides:
            np.save(os.path.join(data_dir, "x_train.npy"), np.asarray(data.x_train, "float32"))
            np.save(os.path.join(data_dir, "x_test.npy"), np.asarray(data.x_test, "float32"))
        for family in families:
            for side in sides:
                row = (
                    run_pythae(family, data_dir, args)
                    if side == "pythae"
                    else run_kerasae(family, data, args)
                )
                print(family, side, {k: v for k, v in row.items() if "per_example" not in k})
                results = load_results(NAME, {})  # another run may have added rows meanwhile
                results.setdefault(family, {})[side] = row
                save_results(NAME, results)
    write(load_results(NAME, {}))


if __name__ == "__main__":
    main()
