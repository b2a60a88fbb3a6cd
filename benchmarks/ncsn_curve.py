"""Annealed Langevin (Song and Ermon 2019) against training length: `ncsn`'s FID-C by epoch.

    python benchmarks/ncsn_curve.py [--curve 5,10,20] [--samples 1000]
        [--work /tmp/kerasae-ncsn-curve]

One `ncsn` run on Fashion-MNIST (the generation benchmark's settings: batch 128, seed 0,
Adam 1e-3 with the cosine schedule over the longest length) saves its weights at each
epoch of --curve. Each checkpoint then draws --samples images by annealed Langevin (the
sampler's defaults: T = 100 steps per level, epsilon 2e-5, the final denoising step),
scored by `kerasae.evaluation.quality` beside the `vae` prior's samples of the same count
(FID-C depends on the count), from the vae run of `generation_fashion.py` (trained here
under --work if missing). The cosine rate is still high at the early checkpoints, so those
are points on one long run, not runs of that length.

Rows go to benchmarks/results/ncsn_curve.json as each is scored; a rerun with the same
--work reuses the finished run and skips the scored checkpoints. The table is BENCHMARKS.md's
"ncsn: FID-C against training epochs". On a GPU: the same command; nothing else changes.
"""

import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.report import (  # noqa: E402
    base_parser,
    load_results,
    machine,
    markdown_table,
    save_results,
    store_note,
    update_section,
)

NAME = "ncsn_curve"
WITHIN = 2.0  # issue 22's target: ncsn's FID-C within 2x of the vae prior's


def checkpoint_scorer(curve, folder, score):
    """A Keras callback that, after each epoch in `curve` (1-based), saves the weights and
    that epoch's logs under `folder` and calls `score(model, epoch, logs)`: each point of a
    long run is kept as soon as it is reached."""
    import keras

    class ScoreAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 not in curve:
                return
            os.makedirs(folder, exist_ok=True)
            stem = os.path.join(folder, f"epoch_{epoch + 1}")
            self.model.save_weights(stem + ".weights.h5")
            logs = {k: float(v) for k, v in (logs or {}).items()}
            with open(stem + ".json", "w") as f:
                json.dump(logs, f)
            score(self.model, epoch + 1, logs)

    return ScoreAt()


def train_run(model, epochs, args, schedule="constant", callbacks=()):
    """The run folder of `model` on --dataset, trained unless finished."""
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.folder import is_finished
    from kerasae.runs.training import train

    out = os.path.join(args.work, f"{args.dataset}_{model}_epochs_{epochs}_{schedule}")
    if is_finished(out) and not callbacks:
        return out
    config = TrainConfig(
        model=model,
        dataset=args.dataset,
        epochs=epochs,
        latent_dim=args.latent_dim,
        batch_size=args.batch_size,
        seed=args.seed,
        out=out,
        lr_schedule=schedule,
        overwrite=True,
    )
    train(config, callbacks=callbacks, verbose=2)
    return out


def curve_points(args, curve, data, results):
    """Train the ncsn run (unless it is finished with every checkpoint), scoring each
    checkpoint of `curve` as it is reached; a rerun scores the saved checkpoints it lacks."""
    from kerasae.runs.folder import is_finished, load_run

    out = os.path.join(args.work, f"{args.dataset}_ncsn_epochs_{max(curve)}_cosine")
    folder = os.path.join(out, "curve")

    def score(model, epoch, logs):
        key = f"ncsn|epochs={epoch}/{max(curve)}|n={args.samples}"
        if key not in results:
            score_point(model, epoch, max(curve), logs, args, data, results, key)

    have = all(os.path.exists(os.path.join(folder, f"epoch_{e}.weights.h5")) for e in curve)
    if not (is_finished(out) and have):
        train_run("ncsn", max(curve), args, "cosine", [checkpoint_scorer(curve, folder, score)])
        return
    _, model = load_run(out)
    for epoch in curve:
        stem = os.path.join(folder, f"epoch_{epoch}")
        model.load_weights(stem + ".weights.h5")
        with open(stem + ".json") as f:
            score(model, epoch, json.load(f))


def vae_reference(args, data, results):
    """The vae prior's row at --samples (a 10-epoch vae run as generation_fashion.py's)."""
    from kerasae.evaluation.quality import generation_metrics
    from kerasae.runs.folder import load_run

    key = f"vae prior|n={args.samples}"
    if key not in results:
        out = train_run("vae", 10, args)
        _, vae = load_run(out)
        metrics = generation_metrics(vae.sample(args.samples, seed=args.seed), data, seed=0)
        results[key] = row(metrics, args.samples, epochs=10, model="vae", sampler="prior")
        save_results(args.name, results)
    return results[key]


def row(metrics, n, **extra):
    keep = ("fid_c", "precision", "recall", "classes_covered")
    return {**{k: metrics[k] for k in keep}, "n_samples": n, **extra}


def score_point(model, epoch, of_epochs, logs, args, data, results, key):
    from kerasae.evaluation.quality import generation_metrics
    from kerasae.samplers import annealed_langevin

    start = time.perf_counter()
    x = annealed_langevin(model, args.samples, seed=args.seed)
    seconds = time.perf_counter() - start
    results[key] = row(
        generation_metrics(x, data, seed=0),
        args.samples,
        model="ncsn",
        epoch=epoch,
        of_epochs=of_epochs,
        val_loss=logs.get("val_loss"),
        loss=logs.get("loss"),
        sampling_seconds=round(seconds, 1),
        machine=machine(),
    )
    save_results(args.name, results)
    print(key, results[key], flush=True)


def command(points):
    """The arguments that measured `points` (those of the longest run)."""
    if not points:
        return "--curve 5,10,20 --samples 1000"
    last = max(points, key=lambda r: (r["of_epochs"], r["n_samples"]))
    run = [
        r
        for r in points
        if (r["of_epochs"], r["n_samples"]) == (last["of_epochs"], last["n_samples"])
    ]
    epochs = ",".join(str(e) for e in sorted({r["epoch"] for r in run} | {last["of_epochs"]}))
    return f"--curve {epochs} --samples {last['n_samples']}"


def short_run_line():
    """The 5-epoch run of `generation_fashion.py` (cosine over its own 5 epochs), if scored."""
    rows = load_results("generation_fashion", {})
    ncsn, vae = (
        rows.get("ncsn[epochs=5,lr_schedule=cosine]|langevin"),
        rows.get("vae[samples=1000]|prior"),
    )
    if not (ncsn and vae):
        return []
    return [
        f"- for comparison, a run of 5 epochs with the cosine schedule over those 5 "
        f"(`generation_fashion.py`): FID-C {ncsn['fid_c']:.2f} against {vae['fid_c']:.2f} "
        f"for the vae prior, both from {ncsn['n_samples']:,} samples "
        f"({ncsn['fid_c'] / vae['fid_c']:.2f}x), {ncsn['classes_covered']}/10 classes."
    ]


def write(results, section=True):
    refs = {r["n_samples"]: r for k, r in results.items() if k.startswith("vae prior")}
    points = sorted(
        (r for k, r in results.items() if k.startswith("ncsn|")),
        key=lambda r: (r["of_epochs"], r["n_samples"], r["epoch"]),
    )
    rows, lines = [], []
    for r in points:
        ref = refs.get(r["n_samples"])
        ratio = r["fid_c"] / ref["fid_c"] if ref else None
        val = "-" if r.get("val_loss") is None else f"{r['val_loss']:.4f}"
        rows.append(
            [
                f"{r['epoch']} of {r['of_epochs']}",
                val,
                f"{r['fid_c']:.2f}",
                f"{ref['fid_c']:.2f}" if ref else "-",
                f"{ratio:.2f}x" if ratio else "-",
                f"{r['precision']:.3f}",
                f"{r['recall']:.3f}",
                f"{r['classes_covered']}/10",
                f"{r['n_samples']:,}",
            ]
        )
        if ratio:
            ok = r["classes_covered"] >= 8 and ratio <= WITHIN
            lines.append(
                f"- epoch {r['epoch']} of {r['of_epochs']}: {ratio:.2f}x the vae prior's FID-C, "
                f"{r['classes_covered']}/10 classes: {'met' if ok else 'NOT met'}."
            )
    table = markdown_table(
        [
            "epoch",
            "val loss",
            "ncsn FID-C",
            "vae prior FID-C",
            "ratio",
            "precision",
            "recall",
            "classes",
            "samples",
        ],
        rows,
    )
    body = "\n".join(
        [
            "## ncsn: FID-C against training epochs",
            "",
            f"Command: `python benchmarks/ncsn_curve.py {command(points)}` "
            "(rows in `benchmarks/results/ncsn_curve.json`)  ",
            f"Machine: {machine()}",
            "",
            table or "(no checkpoint scored yet)",
            "",
            "One run, cosine schedule over its whole length; each row is a checkpoint of it, "
            "sampled by annealed Langevin at the sampler's defaults and compared with the "
            "vae prior at the same sample count. The target (issue 22): within "
            f"{WITHIN:g}x of the vae prior's FID-C with at least 8 classes covered.",
            *([""] + lines if lines else []),
            *short_run_line(),
            *(["", f"Note: {results['_note']}"] if results.get("_note") else []),
        ]
    )
    if section:
        update_section(NAME, body)
    print(body)


def main(argv=None):
    parser = base_parser(__doc__)
    parser.add_argument("--curve", default="5,10,20", help="epochs to checkpoint and score")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--work", default="/tmp/kerasae-ncsn-curve")
    parser.add_argument("--report", action="store_true", help="rebuild the section only")
    parser.add_argument("--note", help="a note stored with the rows and printed under them")
    args = parser.parse_args(argv)
    fashion = args.dataset == "fashion_mnist"
    args.name = NAME if fashion else f"{NAME}_{args.dataset}"  # another dataset: a smoke run
    results = load_results(args.name, {})
    store_note(args.name, results, args.note)
    if args.report:
        return write(results, fashion)
    curve = sorted({int(e) for e in args.curve.split(",") if e.strip()})
    from kerasae.data.sources import load_dataset

    data = load_dataset(args.dataset)
    vae_reference(args, data, results)
    curve_points(args, curve, data, results)
    write(results, fashion)


if __name__ == "__main__":
    main()
