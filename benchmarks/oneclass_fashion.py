"""One-class anomaly detection on Fashion-MNIST (the protocol of Ruff et al., Deep SVDD, 2018).

    python benchmarks/oneclass_fashion.py [--models pca,ae,conv_ae,...] [--epochs 10]

For each of the 10 classes: train on that class's 6,000 training images only, score all
10,000 test images with the model's `score` (reconstruction error; negative ELBO for
VAEs), and measure AUROC with that class as normal and the other nine as anomalies.
Every registered family is included by default (`kerasae.list_models()`); one that fails
is skipped with a note. Writes the `oneclass_fashion` section of BENCHMARKS.md.
"""
import argparse
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.report import machine, markdown_table, update_section  # noqa: E402

CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Boot")
PCA_REFERENCE, TARGET = 0.902, 0.93


def parse_params(items):
    """`model:key=value` items -> {model: {key: value}} (values parsed like --param)."""
    from kerasae.params import parse_assignments

    out = {}
    for item in items:
        model, _, assignment = item.partition(":")
        out.setdefault(model, {}).update(parse_assignments([assignment]))
    return out


def run_one(name, x_train, x_test, normal, args, params):
    import keras

    import kerasae
    from kerasae.anomaly import ranking_metrics
    from kerasae.data import make_tf_dataset

    keras.utils.set_random_seed(args.seed)
    model = kerasae.create_model(name, input_shape=x_train.shape[1:],
                                 **{"latent_dim": args.latent_dim, **params})
    model.compile()
    start = time.perf_counter()
    model.fit(make_tf_dataset(x_train, args.batch_size, seed=args.seed),
              epochs=args.epochs, verbose=0)
    scores = model.score(x_test, batch_size=1000)
    seconds = time.perf_counter() - start
    return ranking_metrics(scores, (~normal).astype("int64"))["auroc"], seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated (default: every registered model)")
    parser.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--param", action="append", default=[], metavar="MODEL:KEY=VALUE",
                        help="a constructor argument for one model (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="print only (pilot runs)")
    args = parser.parse_args(argv)

    import kerasae
    from kerasae.data import load_dataset

    names = args.models.split(",") if args.models else kerasae.list_models()
    names = ["pca"] + [n for n in names if n != "pca"]
    params = parse_params(args.param)
    classes = [int(c) for c in args.classes.split(",")]
    data = load_dataset("fashion_mnist")
    results, notes, seconds = {n: {} for n in names}, [], {n: 0.0 for n in names}
    for c in classes:
        x_train = data.x_train[data.y_train == c]
        for name in names:
            if name in dict(notes):
                continue
            try:
                auroc, sec = run_one(name, x_train, data.x_test, data.y_test == c, args,
                                     params.get(name, {}))
            except Exception as exc:  # one broken family must not sink the benchmark
                traceback.print_exc()
                notes.append((name, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"))
                continue
            results[name][c], seconds[name] = auroc, seconds[name] + sec
            print(f"class {c} ({CLASSES[c]}) {name}: AUROC {auroc:.4f} ({sec:.0f} s)", flush=True)

        if not args.no_write:  # after every class, so a long run that stops keeps its figures
            update_section("oneclass_fashion", report(names, results, seconds, notes, args,
                                                      classes[:classes.index(c) + 1]))
    print(report(names, results, seconds, notes, args, classes))


def report(names, results, seconds, notes, args, classes):
    import kerasae

    left_out = [n for n in kerasae.list_models() if n not in names]
    done = [n for n in names if all(c in results[n] for c in classes)]
    means = {n: float(np.mean([results[n][c] for c in classes])) for n in done}
    best = max((n for n in done if n != "pca"), key=means.get, default=None)
    header = ["class"] + [f"`{n}`" for n in done]
    rows = [[f"{c} {CLASSES[c]}"] + [f"{results[n][c]:.3f}" for n in done] for c in classes]
    rows.append(["**mean**"] + [f"**{means[n]:.3f}**" for n in done])
    rows.append(["train+score s"] + [f"{seconds[n]:.0f}" for n in done])
    cmd = " ".join(["python benchmarks/oneclass_fashion.py", f"--models {','.join(names)}",
                    f"--epochs {args.epochs}", f"--latent-dim {args.latent_dim}",
                    f"--batch-size {args.batch_size}", *[f"--param {p}" for p in args.param]]
                   + ([f"--classes {args.classes}"] if len(args.classes.split(",")) < 10 else []))
    verdict = "-"
    if best:
        verdict = (f"Best kerasae model: `{best}` with mean AUROC {means[best]:.3f} "
                   f"(target >= {TARGET}: {'met' if means[best] >= TARGET else 'NOT met'}; "
                   f"PCA here {means.get('pca', float('nan')):.3f}, reference {PCA_REFERENCE})")
    if len(classes) < 10:
        verdict += f". Partial: {len(classes)} of 10 classes so far"
    return "\n".join([
        "## One-class anomaly detection: Fashion-MNIST, AUROC per normal class",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine()} (CPU only, shared with other jobs; GPU figures not measured).",
        "",
        "Each model is trained on the 6,000 training images of one class, then scores the "
        "10,000 test images with its `score` (mean squared reconstruction error; negative "
        "ELBO for VAEs); AUROC takes that class as normal and the nine others as anomalies. "
        f"Latent size {args.latent_dim}, {args.epochs} epochs, batch {args.batch_size}, "
        "default model settings unless a `--param` is shown.",
        "",
        markdown_table(header, rows),
        "",
        verdict + ".",
        *([""] + [f"Skipped `{n}`: {why}" for n, why in notes] if notes else []),
        *(["", "Registered but not in this run (CPU time; pass them in `--models`): "
           + ", ".join(f"`{n}`" for n in left_out) + "."] if left_out else []),
    ])


if __name__ == "__main__":
    main()
