"""One-class anomaly detection on Fashion-MNIST (the protocol of Ruff et al., Deep SVDD, 2018).

    python benchmarks/oneclass_fashion.py [--models pca,ae,conv_ae,...] [--epochs 10]

For each of the 10 classes: train on that class's 6,000 training images only, score all
10,000 test images with the model's `score` (reconstruction error; negative ELBO for
VAEs), and measure AUROC with that class as normal and the other nine as anomalies.
Every registered family is included by default (`kerasae.list_models()`); one that fails
is skipped with a note. `--ensemble pca+ae+dae` adds the mean of the members' scores, each
standardised by its scores on the normal class's training images (no test labels used).

Rows are kept in benchmarks/results/oneclass_fashion.json, so re-running some `--models`
replaces only theirs; the `oneclass_fashion` section of BENCHMARKS.md shows the stored rows
trained with this run's epochs, latent size and batch size.
"""

import argparse
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.report import load_results, machine, markdown_table, save_results, update_section  # noqa: E402

CLASSES = (
    "T-shirt",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Boot",
)
PCA_REFERENCE, TARGET = 0.902, 0.93


def parse_params(items):
    """`model:key=value` items -> {model: {key: value}} (values parsed like --param)."""
    from kerasae.params import parse_assignments

    out = {}
    for item in items:
        model, _, assignment = item.partition(":")
        out.setdefault(model, {}).update(parse_assignments([assignment]))
    return out


def run_one(name, x_train, x_test, normal, args, params, keep=False):
    """(AUROC, train+score seconds, (test scores, training scores) when `keep`, else None)."""
    import keras

    import kerasae
    from kerasae.data.pipeline import make_tf_dataset

    keras.utils.set_random_seed(args.seed)
    model = kerasae.create_model(
        name, input_shape=x_train.shape[1:], **{"latent_dim": args.latent_dim, **params}
    )
    model.compile()
    start = time.perf_counter()
    model.fit(
        make_tf_dataset(x_train, args.batch_size, seed=args.seed), epochs=args.epochs, verbose=0
    )
    scores = model.score(x_test, batch_size=1000)
    seconds = time.perf_counter() - start
    if not keep:
        return auroc(scores, normal), seconds, None
    train_scores = model.score(x_train, batch_size=1000)  # for ensembles: not timed
    return auroc(scores, normal), seconds, (scores, train_scores)


def auroc(scores, normal):
    from kerasae.evaluation.anomaly import ranking_metrics

    return ranking_metrics(np.asarray(scores), (~normal).astype("int64"))["auroc"]


def ensemble_scores(members):
    """Mean of the members' test scores, each standardised by its training scores."""
    return np.mean(
        [(test - train.mean()) / (train.std() + 1e-12) for test, train in members], axis=0
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated (default: every registered model)")
    parser.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="MODEL:KEY=VALUE",
        help="a constructor argument for one model (repeatable)",
    )
    parser.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="A+B+...",
        help="also score the mean of these models' standardised scores "
        "(repeatable; the members must be in --models)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only (pilot runs)")
    args = parser.parse_args(argv)

    import kerasae
    from kerasae.data.sources import load_dataset

    names = args.models.split(",") if args.models else kerasae.list_models()
    names = ["pca"] + [n for n in names if n != "pca"]
    ensembles = [e for e in args.ensemble if e]
    for e in ensembles:
        missing = [m for m in e.split("+") if m not in names]
        if missing:
            parser.error(f"--ensemble {e}: {', '.join(missing)} not in --models")
    in_ensembles = {m for e in ensembles for m in e.split("+")}
    params = parse_params(args.param)
    classes = [int(c) for c in args.classes.split(",")]
    data = load_dataset("fashion_mnist")
    stored = {} if args.no_write else load_results("oneclass_fashion", {})
    settings = {
        "epochs": args.epochs,
        "latent_dim": args.latent_dim,
        "batch_size": args.batch_size,
    }
    cmd = " ".join(
        [
            "python benchmarks/oneclass_fashion.py",
            f"--models {','.join(names)}",
            *[f"--ensemble {e}" for e in ensembles],
            f"--epochs {args.epochs}",
            f"--latent-dim {args.latent_dim}",
            f"--batch-size {args.batch_size}",
            *[f"--param {p}" for p in args.param],
        ]
        + ([f"--classes {args.classes}"] if len(classes) < 10 else [])
    )
    for name in names + ensembles:
        stored[name] = {
            **settings,
            "auroc": {},
            "seconds": 0.0,
            "command": cmd,
            "machine": machine(),
            "params": params.get(name, {}),
        }
    notes = []
    for c in classes:
        x_train = data.x_train[data.y_train == c]
        normal = data.y_test == c
        kept = {}
        for name in names:
            if name in dict(notes):
                continue
            try:
                result, sec, kept[name] = run_one(
                    name,
                    x_train,
                    data.x_test,
                    normal,
                    args,
                    params.get(name, {}),
                    name in in_ensembles,
                )
            except Exception as exc:  # one broken family must not sink the benchmark
                traceback.print_exc()
                notes.append((name, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"))
                continue
            stored[name]["auroc"][str(c)] = result
            stored[name]["seconds"] += sec
            print(f"class {c} ({CLASSES[c]}) {name}: AUROC {result:.4f} ({sec:.0f} s)", flush=True)
        for e in ensembles:
            members = e.split("+")
            if all(m in kept for m in members):
                stored[e]["auroc"][str(c)] = auroc(
                    ensemble_scores([kept[m] for m in members]), normal
                )
                stored[e]["seconds"] = sum(stored[m]["seconds"] for m in members)
                print(f"class {c} ({CLASSES[c]}) {e}: AUROC {stored[e]['auroc'][str(c)]:.4f}")
        if not args.no_write:  # after every class, so a long run that stops keeps its figures
            stored["_notes"] = dict(notes)
            save_results("oneclass_fashion", stored)
            update_section("oneclass_fashion", report(stored, settings, classes))
    print(report(stored, settings, classes))


def report(stored, settings, classes):
    """The section text: every stored row trained with `settings`, over `classes`."""
    import kerasae

    rows_at = {
        n: r
        for n, r in stored.items()
        if not n.startswith("_") and all(r.get(k) == v for k, v in settings.items())
    }
    done = [n for n, r in rows_at.items() if all(str(c) in r["auroc"] for c in classes)]
    done.sort(key=lambda n: (n != "pca", "+" in n))  # pca first, ensembles last
    means = {n: float(np.mean([rows_at[n]["auroc"][str(c)] for c in classes])) for n in done}
    single = [n for n in done if n != "pca" and "+" not in n]
    best = max(single, key=means.get, default=None)
    header = ["class"] + [f"`{n}`" for n in done]
    rows = [
        [f"{c} {CLASSES[c]}"] + [f"{rows_at[n]['auroc'][str(c)]:.3f}" for n in done]
        for c in classes
    ]
    rows.append(["**mean**"] + [f"**{means[n]:.3f}**" for n in done])
    rows.append(["train+score s"] + [f"{rows_at[n]['seconds']:.0f}" for n in done])
    verdict = "-"
    if best:
        verdict = (
            f"Best kerasae model: `{best}` with mean AUROC {means[best]:.3f} "
            f"(target >= {TARGET}: {'met' if means[best] >= TARGET else 'NOT met'}; "
            f"PCA here {means.get('pca', float('nan')):.3f}, reference {PCA_REFERENCE})"
        )
    for e in (n for n in done if "+" in n):
        verdict += (
            f". Ensemble `{e}` (mean of the members' scores, each standardised by "
            f"its training scores): {means[e]:.3f}"
        )
    if len(classes) < 10:
        verdict += f". Partial: {len(classes)} of 10 classes so far"
    commands = sorted({f"`{rows_at[n]['command']}` ({rows_at[n]['machine']})" for n in done})
    params = [f"`{n}`: {rows_at[n]['params']}" for n in done if rows_at[n].get("params")]
    notes = stored.get("_notes", {})
    left_out = [n for n in kerasae.list_models() if n not in done]
    return "\n".join(
        [
            "## One-class anomaly detection: Fashion-MNIST, AUROC per normal class",
            "",
            "Commands (rows are stored in `benchmarks/results/oneclass_fashion.json`; each "
            "run replaces its own): " + "; ".join(commands) + "  ",
            "CPU only, shared with other jobs; GPU figures not measured.",
            "",
            "Each model is trained on the 6,000 training images of one class, then scores the "
            "10,000 test images with its `score` (mean squared reconstruction error; negative "
            "ELBO for VAEs); AUROC takes that class as normal and the nine others as anomalies. "
            f"Latent size {settings['latent_dim']}, {settings['epochs']} epochs, batch "
            f"{settings['batch_size']}, default model settings"
            + (f" except {'; '.join(params)}" if params else "")
            + ".",
            "",
            markdown_table(header, rows),
            "",
            verdict + ".",
            *([""] + [f"Skipped `{n}`: {why}" for n, why in notes.items()] if notes else []),
            *(
                [
                    "",
                    "Registered but not in the table (CPU time; pass them in `--models`): "
                    + ", ".join(f"`{n}`" for n in left_out)
                    + ".",
                ]
                if left_out
                else []
            ),
        ]
    )


if __name__ == "__main__":
    main()
