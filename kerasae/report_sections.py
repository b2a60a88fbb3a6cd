"""The sections of `kerasae report`'s page: metrics, disentanglement (where measured),
history curves, grids, the anomaly threshold, the export manifest and the config, each
from what the run folder holds."""

import io
import math
import os
import re

from kerasae.evaluation.factor_labels import RECORD, is_current
from kerasae.io import read_json
from kerasae.plots import _pyplot
from kerasae.report_html import data_uri, escape, figure, number, shown, table, text
from kerasae.runs.folder import CONFIG, HISTORY, read_history

SAMPLES, THRESHOLD, EXPORT, MANIFEST = "samples", "threshold.json", "export", "manifest.json"
_EPOCH = re.compile(r"^(?P<kind>.+?)_epoch(?P<epoch>\d+)$")


def metrics_section(metrics, note):
    if metrics is None:
        return f'<p class="note">{escape(note or "not evaluated")}</p>'
    rows = [
        ("test MSE", number(metrics.get("test_mse"))),
        ("PSNR (dB)", number(metrics.get("psnr"), ".2f")),
        ("test loss (the model's own)", number(metrics.get("test_loss"))),
        ("test examples", text(metrics.get("n_test"))),
        ("dataset", text(metrics.get("dataset"))),
    ]
    return table(rows, numeric=True)


def disentanglement_section(run_dir):
    """What `kerasae evaluate --disentanglement` recorded: the metrics, what they used and
    the factor of each code dimension; None when the run has no record."""
    path = os.path.join(run_dir, RECORD)
    if not os.path.isfile(path):
        return None
    record = _read_object(path)
    if isinstance(record, str):
        return record
    used = (
        f"{record.get('dataset')}: codes of {record.get('n_train')} train and "
        f"{record.get('n_test')} test examples, seed {record.get('seed')}, DCI with "
        f"{record.get('dci_trees')} trees (kerasae evaluate --disentanglement)"
    )
    out = [f'<p class="note">{escape(used)}</p>']
    if not is_current(record, run_dir):
        out.append(
            '<p class="bad">measured on an earlier model of this run; measure again with '
            f"<code>kerasae evaluate {escape(run_dir)} --disentanglement</code></p>"
        )
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    out.append(table([(escape(k), number(v, ".3f")) for k, v in metrics.items()], numeric=True))
    importance = record.get("importance_matrix") or []
    rows = [
        (f"z{d}", text(name), number(max(importance[d]), ".3f") if d < len(importance) else "-")
        for d, name in enumerate(record.get("dimensions") or [])
    ]
    if rows:
        header = ("dimension", "factor captured most", "its DCI importance")
        out.append("<h3>Factor of each code dimension</h3>" + table(rows, header))
    return "".join(out)


def history_section(run_dir):
    path = os.path.join(run_dir, HISTORY)
    if not os.path.isfile(path):
        return f'<p class="note">no {HISTORY} in this run</p>'
    columns = read_history(run_dir)
    epochs = columns.pop("epoch", [])
    if not epochs:
        return f'<p class="note">{HISTORY} holds no epochs</p>'
    figures = [
        figure(data_uri(_curve_png(term, epochs, columns, pair)), term, " and ".join(pair))
        for term, pair in history_terms(columns)
    ]
    return f'<div class="grid">{"".join(figures)}</div>'


def grids_section(run_dir):
    latest = latest_grids(os.path.join(run_dir, SAMPLES))
    if not latest:
        return f'<p class="note">no PNG grids in {SAMPLES}/ (non-image data, or none written)</p>'
    figures = []
    for kind, path in latest.items():
        with open(path, "rb") as f:
            png = f.read()
        figures.append(figure(data_uri(png), kind, f"{SAMPLES}/{os.path.basename(path)}"))
    return f'<div class="grid">{"".join(figures)}</div>'


def threshold_section(run_dir):
    path = os.path.join(run_dir, THRESHOLD)
    if not os.path.isfile(path):
        return f'<p class="note">no {THRESHOLD} in this run</p>'
    record = _read_object(path)
    if isinstance(record, str):
        return record
    rows = [
        ("threshold", number(record.get("threshold"))),
        ("percentile of training scores", text(record.get("percentile"))),
        ("training examples", text(record.get("n_train"))),
        ("training score mean", number(record.get("train_mean"))),
        ("training score std", number(record.get("train_std"))),
        ("score", text(record.get("score"))),
    ]
    return table(rows, numeric=True)


def export_section(run_dir):
    folder = os.path.join(run_dir, EXPORT)
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        return (
            f'<p class="note">no export in {EXPORT}/ (write one with '
            f"<code>kerasae export {escape(run_dir)}</code>)</p>"
        )
    manifest = _read_object(path)
    if isinstance(manifest, str):
        return manifest
    model = manifest.get("model") or {}
    versions = manifest.get("versions") or {}
    out = [
        table(
            [
                ("model", text(model.get("name"))),
                ("formats", text(", ".join(map(str, manifest.get("formats") or ())))),
                ("prior", text((manifest.get("prior") or {}).get("kind"))),
                ("versions", text(", ".join(f"{k} {v}" for k, v in sorted(versions.items())))),
            ]
        )
    ]
    parts = []
    for part, spec in sorted((manifest.get("parts") or {}).items()):
        for io_kind in ("inputs", "outputs"):
            for t in spec.get(io_kind) or ():
                shape = (
                    "("
                    + ", ".join("N" if d is None else str(d) for d in t.get("shape") or ())
                    + ")"
                )
                parts.append(
                    (
                        escape(part),
                        io_kind[:-1],
                        text(t.get("name")),
                        escape(shape),
                        text(t.get("dtype")),
                    )
                )
    if parts:
        out.append("<h3>Parts</h3>" + table(parts, ("part", "", "tensor", "shape", "dtype")))
    files = []
    for rel, info in sorted((manifest.get("files") or {}).items()):
        # present with the recorded size; the runtime checks the SHA-256 before loading
        full = os.path.join(folder, *rel.split("/"))
        ok = os.path.isfile(full) and os.path.getsize(full) == info.get("bytes")
        state = '<span class="ok">present</span>' if ok else '<span class="bad">missing</span>'
        files.append(
            (
                escape(rel),
                text(info.get("bytes")),
                f"<code>{escape(str(info.get('sha256', ''))[:16])}…</code>",
                state,
            )
        )
    if files:
        out.append("<h3>Files</h3>" + table(files, ("file", "bytes", "sha256", "")))
    checks = [
        (
            text(name),
            number(c.get("max_abs_diff"), ".2e"),
            number(c.get("tolerance"), ".0e"),
            text(c.get("precision")),
            text(", ".join(map(str, c.get("inputs") or ()))),
        )
        for name, c in sorted((manifest.get("verification") or {}).items())
    ]
    if checks:
        out.append(
            "<h3>Parity with the Keras model</h3>"
            + table(checks, ("artifact", "max |diff|", "tolerance", "precision", "inputs"))
        )
    return "".join(out)


def config_section(config):
    model_config = config.get("model_config")
    model_config = model_config if isinstance(model_config, dict) else {}
    rows = [(escape(k), shown(v)) for k, v in sorted(config.items()) if k != "model_config"]
    params = [(escape(k), shown(v)) for k, v in sorted(model_config.items())]
    return (
        f"<h3>Resolved {CONFIG}</h3>"
        + table(rows)
        + "<h3>Model parameters</h3>"
        + (table(params) if params else '<p class="note">none recorded</p>')
    )


# ------------------------------------------------------------------ data


def history_terms(columns):
    """[(term, columns plotted together)]: `loss` first, each term with its `val_` twin."""
    terms = []
    for c in columns:
        term = c[4:] if c.startswith("val_") else c
        if term not in terms:
            terms.append(term)
    terms.sort(key=lambda t: t != "loss")  # stable: the rest keep the file's order
    return [(t, [c for c in (t, f"val_{t}") if c in columns]) for t in terms]


def latest_grids(folder):
    """{kind: path} of the newest PNG of each kind in `folder` ("samples_epoch005.png" is
    kind "samples" at epoch 5). A name without an epoch (`kerasae sample`'s samples.png) is
    written after training, so it counts as newer than any epoch's grid."""
    if not os.path.isdir(folder):
        return {}
    best = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() != ".png" or not os.path.isfile(os.path.join(folder, name)):
            continue
        match = _EPOCH.match(stem)
        kind, epoch = (match["kind"], int(match["epoch"])) if match else (stem, math.inf)
        if kind not in best or epoch >= best[kind][0]:
            best[kind] = (epoch, os.path.join(folder, name))
    return {kind: path for kind, (_, path) in best.items()}


def _read_object(path):
    """The JSON object in `path`, or the HTML of a note saying why there is none."""
    try:
        record = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        name = escape(os.path.basename(path))
        return f'<p class="bad">{name} is not valid JSON ({escape(exc)})</p>'
    if not isinstance(record, dict):
        return f'<p class="bad">{escape(os.path.basename(path))} holds no JSON object</p>'
    return record


def _curve_png(term, epochs, columns, pair):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.4, 2.3))
    for column, style in zip(pair, ("-", "--")):
        ax.plot(
            epochs,
            columns[column],
            style,
            marker="o" if len(epochs) <= 30 else None,
            markersize=3,
            label="val" if column.startswith("val_") else "train",
        )
    ax.set_title(term, fontsize=10)
    ax.xaxis.get_major_locator().set_params(integer=True)  # no epoch 1.5
    ax.set_xlabel("epoch", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(pair) > 1:
        ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=100)
    plt.close(fig)
    return buf.getvalue()


# ------------------------------------------------------------------ html helpers
