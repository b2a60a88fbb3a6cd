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

from benchmarks.report import (  # noqa: E402
    base_parser,
    load_results,
    machine,
    markdown_table,
    save_results,
    store_note,
    update_section,
)

NAME = "pythae_side_by_side"
FAMILIES = "vae_iaf,miwae,vaegan,svae,rhvae"
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


def _ll(row):
    if row.get("ll") is None:
        return "-"
    return f"{row['ll']:.2f} ± {row['ll_se']:.2f}"


def _forward(row, test_images=10_000):
    """pythae's one-draw MSE, with the number of images where it is not all of them."""
    if "mse_forward" not in row:
        return "-"
    n = row.get("mse_forward_examples", test_images)
    return f"{row['mse_forward']:.5f}" + (f" (first {n:,} images)" if n < test_images else "")


def _paired(a, b):
    """'+d ± se' over the images both rows scored (the first n test images: a side run
    with a smaller --ll-examples scored a prefix of the other's), and that n."""
    from benchmarks.zoo_fashion import paired

    n = min(len(a["ll_per_example"]), len(b["ll_per_example"]))
    a, b = ({"ll_per_example": r["ll_per_example"][:n]} for r in (a, b))
    return paired(a, b).replace(" (paired on the same images: ", "").rstrip(")"), n


def write(results):
    note = results.get("_note")
    results = {k: v for k, v in results.items() if not k.startswith("_")}
    rows, notes, paired = [], [], []
    for family in sorted(results):
        sides = results[family]
        for side in ("kerasae", "pythae"):
            r = sides.get(side)
            if not r:
                continue
            if "error" in r:
                notes.append(f"- `{family}`, {side}: not measured ({r['error']}).")
                continue
            if "stopped" in r:
                notes.append(
                    f"- `{family}`, {side}: log p(x) on the first {r.get('ll_examples', 0)} "
                    f"test images only; the worker was stopped {r['stopped']}."
                )
            rows.append(
                [
                    f"`{family}`",
                    side,
                    f"{r['mse']:.5f}",
                    _ll(r),
                    f"{r['params']:,}",
                    f"{r['seconds']:.0f}",
                    f"{r['samples_per_cpu_second']:.0f}",
                    _forward(r),
                ]
            )
        k, p = sides.get("kerasae", {}), sides.get("pythae", {})
        if "ll_per_example" in k and "ll_per_example" in p:
            diff, n = _paired(k, p)
            common = np.mean(k["ll_per_example"][:n]), np.mean(p["ll_per_example"][:n])
            prefix = (
                f" (the first {n} test images; on them kerasae {common[0]:.2f}, "
                f"pythae {common[1]:.2f})"
                if n < max(len(k["ll_per_example"]), len(p["ll_per_example"]))
                else ""
            )
            paired.append(
                f"- `{family}`: kerasae minus pythae log p(x), paired on the same images"
                f"{prefix}: {diff} nats."
            )
    measured = [r for sides in results.values() for r in sides.values() if r and "error" not in r]
    settings = {(r["epochs"], r.get("ll_k"), r.get("ll_examples")) for r in measured}
    if len(settings) > 1:
        notes.append(
            "- the rows were not all measured at the same settings (epochs, k, images): "
            + ", ".join(str(s) for s in sorted(settings, key=str))
            + "."
        )
    table = markdown_table(
        [
            "family",
            "library",
            "test MSE",
            "test log p(x) (nats)",
            "parameters",
            "train s (wall)",
            "train samples / CPU s",
            "pythae one-draw MSE",
        ],
        rows,
    )
    body = "\n".join(
        [
            "## kerasae and pythae 0.1.2 side by side (MLP (512,), Fashion-MNIST)",
            "",
            f"Command: `python benchmarks/pythae_side_by_side.py --families {FAMILIES}` "
            "(pythae in its own venv: `--pythae-python`; rows in "
            "`benchmarks/results/pythae_side_by_side.json`)  ",
            f"Machine: {machine()} (CPU only, shared with other jobs: the CPU-time column "
            "is the fairer speed figure).",
            "",
            table,
            "",
            "Latent 16, 10 epochs, batch 128, one hidden layer of 512 in encoder and decoder, "
            "Adam 1e-3 (kerasae: the family's default learning rate), pythae at its family "
            "defaults with reconstruction_loss='bce' (kerasae's Bernoulli likelihood; pythae's "
            "own default is a pixel-summed MSE). Test MSE: per pixel over the 10,000 test "
            "images, computed by the script from the decoder's output at the deterministic "
            "code (the posterior mean; through the flow for vae_iaf; normalised for svae), on "
            "both sides; 'pythae one-draw MSE' is pythae's own `reconstruct` (a forward pass "
            "with one posterior draw). log p(x): importance-sampled, k = 1000, first 1000 test "
            "images, ± one standard error; kerasae's `kerasae.evaluation.likelihood`, "
            "pythae's `get_nll` one image at a time. Samples / CPU s: training examples "
            "seen (epochs x 60,000) per second of the training process's CPU time (pythae: "
            "torch's threads; kerasae: TensorFlow's).",
            *(["", "Paired differences:", "", *paired] if paired else []),
            *(["", "What could not be compared:", "", *notes] if notes else []),
            *(["", f"Note: {note}"] if note else []),
        ]
    )
    update_section(NAME, body)
    print(body)


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
