"""Side-by-side comparison of families at one latent size, with PCA always as the reference.

Baldi and Hornik (1989): a linear autoencoder trained on squared error can do no better
than the principal subspace, so PCA at the same latent size is the bar every nonlinear
family has to clear (and the seeds' question "is it better than PCA?" is answered by the
`ratio to PCA` column: below 1 means fewer reconstruction errors than PCA).

    OUT/<model>/          one ordinary run folder per model (reused when it matches)
    OUT/comparison.csv    model, test MSE, PSNR, ratio to PCA, parameters, train seconds
    OUT/comparison.md     the same as a Markdown table
    OUT/comparison_mse.png          bar chart of test MSE
    OUT/reconstructions.png         the same test examples reconstructed by every model
"""

import csv
import io
import os
import time

import numpy as np

from kerasae.errors import KerasaeError
from kerasae.evaluation.reconstruction import reconstruction_mse
from kerasae.io import write_text
from kerasae.models.registry import models_matching
from kerasae.plots import _pyplot, grid_image, is_image_shape, save_figure
from kerasae.quiet import no_false_retracing_notices
from kerasae.runs.config import TrainConfig
from kerasae.runs.data import EVAL_BATCH, open_data
from kerasae.runs.folder import is_finished, load_run, settings_diff
from kerasae.runs.training import train

COLUMNS = (
    "model",
    "test_mse",
    "psnr_db",
    "ratio_to_pca",
    "parameters",
    "train_seconds",
    "epochs",
    "run_dir",
)


def resolve_models(spec):
    """'ae,*vae*' -> ['pca', 'ae', 'beta_vae', 'vae']: names or globs, pca always first."""
    return ["pca"] + [n for n in models_matching(spec) if n != "pca"]


def _run_for(name, config, out, retrain, verbose=1):
    """Reuse OUT/name when it is a finished run of the same settings; train it otherwise."""
    run_dir = os.path.join(out, name)
    wanted = TrainConfig(model=name, out=run_dir, overwrite=retrain, **config)
    if is_finished(run_dir) and not retrain:
        diff = settings_diff(run_dir, wanted)
        if diff:
            raise KerasaeError(
                f"{run_dir} was trained with other settings ({', '.join(diff)} differ); pass "
                "--retrain to replace it or choose another --out"
            )
        if verbose:
            print(f"{name}: reusing the finished run in {run_dir}", flush=True)
        return run_dir
    if verbose:
        print(f"{name}: training into {run_dir}", flush=True)
    train(wanted, verbose=2 if verbose == 2 else 0)
    return run_dir


def compare(
    dataset="digits",
    latent_dim=16,
    models="ae",
    epochs=10,
    out=None,
    batch_size=128,
    seed=0,
    retrain=False,
    n_show=8,
    verbose=1,
    image_size=None,
    channels=None,
    feature=None,
):
    """Train (or reuse) each model, evaluate on the test split, write tables and figures.
    verbose: 0 silent, 1 one line per model, 2 also Keras's line per epoch.
    `image_size`, `channels`, `feature`: how streamed images are read (as for train)."""
    names = resolve_models(models)
    config = dict(
        dataset=dataset,
        latent_dim=latent_dim,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        image_size=image_size,
        channels=channels,
        feature=feature,
    )
    TrainConfig(model="pca", **config).check()  # bad numbers fail before any training
    data_name = os.path.splitext(os.path.basename(os.path.normpath(str(dataset))))[0]
    out = out or os.path.join("runs", f"compare-{data_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if os.path.exists(out) and not os.path.isdir(out):
        raise KerasaeError(f"--out {out} is a file, not a folder; choose another --out")

    with no_false_retracing_notices():
        rows, recons, data, show = _evaluate_all(
            names, config, out, retrain, dataset, n_show, verbose
        )
    pca_mse = rows[0]["test_mse"]
    for row in rows:
        row["ratio_to_pca"] = row["test_mse"] / pca_mse if pca_mse > 0 else float("nan")

    write_text(os.path.join(out, "comparison.csv"), _csv(rows))
    write_text(
        os.path.join(out, "comparison.md"), _markdown(rows, data.name, latent_dim, data.n_test)
    )
    figures = [
        plot_bars(rows, os.path.join(out, "comparison_mse.png"), latent_dim),
        plot_panel(show, recons, os.path.join(out, "reconstructions.png")),
    ]
    return {"out": out, "rows": rows, "figures": figures}


def _evaluate_all(names, config, out, retrain, dataset, n_show, verbose):
    """Train or reuse each run; its test MSE (streamed over the test split) and
    reconstructions of the first test examples."""
    rows, recons, data, show = [], {}, None, None
    for name in names:
        run_dir = _run_for(name, config, out, retrain, verbose)
        run_config, model = load_run(run_dir)
        if data is None:  # the runs share their data and its scaling
            data = open_data(run_config, dataset, scaling=run_config.get("scaling"))
            show = data.head("test", n_show)
        mse = reconstruction_mse(model, data.batches("test", EVAL_BATCH))
        rows.append(
            {
                "model": name,
                "test_mse": mse,
                "psnr_db": float(10 * np.log10(1.0 / max(mse, 1e-12))),
                "parameters": int(model.count_params()),
                "train_seconds": run_config.get("train_seconds"),
                "epochs": run_config.get("epochs"),
                "run_dir": run_dir,
            }
        )
        recons[name] = model.reconstruct(show)
    return rows, recons, data, show


def _csv(rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row.get(k) for k in COLUMNS} for row in rows)
    return buf.getvalue()


def _markdown(rows, data_name, latent_dim, n_test):
    lines = [
        f"# {data_name}: latent size {latent_dim}, {n_test} test examples",
        "",
        "| model | test MSE | PSNR (dB) | ratio to PCA | parameters | train s |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["test_mse"]):
        secs = "-" if r["train_seconds"] is None else f"{r['train_seconds']:.1f}"
        lines.append(
            f"| {r['model']} | {r['test_mse']:.5f} | {r['psnr_db']:.2f} | "
            f"{r['ratio_to_pca']:.3f} | {r['parameters']:,} | {secs} |"
        )
    lines += [
        "",
        "Ratio to PCA below 1: fewer squared reconstruction errors than the "
        "principal subspace of the same size.",
    ]
    return "\n".join(lines) + "\n"


def plot_bars(rows, path, latent_dim):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(rows) + 1.5), 3.5))
    colors = ["tab:grey" if r["model"] == "pca" else "tab:blue" for r in rows]
    bars = ax.bar([r["model"] for r in rows], [r["test_mse"] for r in rows], color=colors)
    ax.axhline(rows[0]["test_mse"], color="black", linestyle=":", linewidth=1, label="pca")
    for bar, r in zip(bars, rows):
        ax.annotate(
            f"{r['ratio_to_pca']:.2f}x",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_ylabel("test MSE (lower is better)")
    ax.set_title(f"reconstruction at latent size {latent_dim} (labels: ratio to PCA)", fontsize=9)
    ax.tick_params(axis="x", rotation=30)
    return save_figure(fig, path)


def plot_panel(originals, recons, path):
    """Row 0: the test examples; one row per model below, the same columns."""
    plt = _pyplot()
    rows = [("original", originals)] + list(recons.items())
    image = is_image_shape(originals.shape[1:])
    fig, axes = plt.subplots(
        len(rows),
        1,
        squeeze=False,
        figsize=(max(3.0, 0.9 * len(originals)), 1.1 * len(rows) + 0.3),
    )
    for ax, (label, x) in zip(axes[:, 0], rows):
        if image:
            strip = grid_image(x, rows=1)
        else:  # tabular: one heat-map row per example
            strip = np.clip(np.asarray(x).reshape(len(x), -1), 0, 1)
        ax.imshow(
            strip,
            cmap="gray" if strip.ndim == 2 else None,
            vmin=0,
            vmax=1,
            interpolation="nearest",
            aspect="auto" if not image else None,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return save_figure(fig, path)
