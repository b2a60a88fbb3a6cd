"""One self-contained HTML page about a finished run (`kerasae report RUN`).

The page shows the resolved config and model parameters, the history curves, the test
metrics of `kerasae.runs.evaluate`, the latest grid of each kind in `samples/`, the
anomaly threshold and the export manifest. Images are inlined as base64 data URIs and the
CSS is inline; a Content-Security-Policy forbids anything else, so the page opens the same
from a mail attachment as from the run folder. Nothing here imports TensorFlow except
`evaluate`, and every string that comes from the run folder goes through `html.escape`.
"""

import base64
import html
import io
import json
import math
import os
import re

from kerasae.errors import KerasaeError
from kerasae.io import atomic_path, read_json
from kerasae.plots import _pyplot
from kerasae.runs.folder import CONFIG, HISTORY, MODEL, read_history

SAMPLES, THRESHOLD, EXPORT, MANIFEST = "samples", "threshold.json", "export", "manifest.json"
_EPOCH = re.compile(r"^(?P<kind>.+?)_epoch(?P<epoch>\d+)$")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;
  background:#fff;max-width:1180px;margin:24px auto;padding:0 20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
  border-bottom:1px solid #d8dce4;padding-bottom:4px}h3{font-size:14px;margin:14px 0 6px}
.sub{color:#5b6475;margin:0 0 12px}.note{color:#5b6475;font-style:italic}
table{border-collapse:collapse;margin:4px 0 10px}
th,td{border:1px solid #d8dce4;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f8;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.grid{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0}
figcaption{color:#5b6475;font-size:12px}img{max-width:100%;height:auto}
.ok{color:#18794e}.bad{color:#c4320a;font-weight:600}
"""
# Nothing may load from elsewhere: images are data URIs, the style is inline, no script.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def check_run(run_dir):
    """The run's config dict, or a KerasaeError when `run_dir` is not a finished run."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isdir(run_dir) or not os.path.isfile(path):
        raise KerasaeError(
            f"{run_dir} is not a kerasae run folder (no {CONFIG}); pass the "
            "--out folder of `kerasae train`"
        )
    if not os.path.isfile(os.path.join(run_dir, MODEL)):
        raise KerasaeError(
            f"{run_dir} holds no trained model yet ({MODEL} missing); finish "
            "or resume its training first"
        )
    try:
        config = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KerasaeError(
            f"{path} is not valid JSON ({exc}); the run folder is damaged"
        ) from None
    if not isinstance(config, dict):
        raise KerasaeError(f"{path} holds no JSON object; the run folder is damaged")
    return config


def report_path(run_dir, out=None):
    """Where the page goes (default RUN_DIR/report.html), checked before any slow work."""
    out = out or os.path.join(run_dir, "report.html")
    if os.path.isdir(out):
        raise KerasaeError(f"--out {out} is a folder; pass a file name such as report.html")
    return out


def write_report(run_dir, out=None, metrics=None, note=None):
    """Build the page and write it atomically to `report_path(run_dir, out)`.

    metrics: what `kerasae.runs.evaluate` returned (None: shown as not evaluated, with
    `note` saying why). Returns the path written."""
    config = check_run(run_dir)
    out = report_path(run_dir, out)
    page = build_page(run_dir, config, metrics, note)
    try:
        with atomic_path(out) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(page)
    except OSError as exc:
        raise KerasaeError(
            f"cannot write --out {out} ({exc.strerror}); choose a writable path"
        ) from None
    return out


def build_page(run_dir, config, metrics=None, note=None):
    name = os.path.basename(os.path.normpath(os.path.abspath(run_dir)))
    title = f"kerasae report: {name}"
    model, dataset, epochs, latent, status = (
        "-" if config.get(k) is None else config[k]
        for k in ("model", "dataset", "epochs", "latent_dim", "status")
    )
    head = f"{model} on {dataset}, {epochs} epochs, latent_dim {latent}, status {status}"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(head)} &middot; <code>{_e(os.path.abspath(run_dir))}</code></p>',
        _section("metrics", "Test metrics", _metrics(metrics, note)),
        _section("history", "Training history", _history(run_dir)),
        _section("grids", "Grids", _grids(run_dir)),
        _section("threshold", "Anomaly threshold", _threshold(run_dir)),
        _section("export", "Export", _export(run_dir)),
        _section("config", "Configuration", _config(config)),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# ------------------------------------------------------------------ sections


def _metrics(metrics, note):
    if metrics is None:
        return f'<p class="note">{_e(note or "not evaluated")}</p>'
    rows = [
        ("test MSE", _num(metrics.get("test_mse"))),
        ("PSNR (dB)", _num(metrics.get("psnr"), ".2f")),
        ("test loss (the model's own)", _num(metrics.get("test_loss"))),
        ("test examples", _s(metrics.get("n_test"))),
        ("dataset", _s(metrics.get("dataset"))),
    ]
    return _table(rows, numeric=True)


def _history(run_dir):
    path = os.path.join(run_dir, HISTORY)
    if not os.path.isfile(path):
        return f'<p class="note">no {HISTORY} in this run</p>'
    columns = read_history(run_dir)
    epochs = columns.pop("epoch", [])
    if not epochs:
        return f'<p class="note">{HISTORY} holds no epochs</p>'
    figures = [
        _figure(_data_uri(_curve_png(term, epochs, columns, pair)), term, " and ".join(pair))
        for term, pair in history_terms(columns)
    ]
    return f'<div class="grid">{"".join(figures)}</div>'


def _grids(run_dir):
    latest = latest_grids(os.path.join(run_dir, SAMPLES))
    if not latest:
        return f'<p class="note">no PNG grids in {SAMPLES}/ (non-image data, or none written)</p>'
    figures = []
    for kind, path in latest.items():
        with open(path, "rb") as f:
            png = f.read()
        figures.append(_figure(_data_uri(png), kind, f"{SAMPLES}/{os.path.basename(path)}"))
    return f'<div class="grid">{"".join(figures)}</div>'


def _threshold(run_dir):
    path = os.path.join(run_dir, THRESHOLD)
    if not os.path.isfile(path):
        return f'<p class="note">no {THRESHOLD} in this run</p>'
    record = _read_object(path)
    if isinstance(record, str):
        return record
    rows = [
        ("threshold", _num(record.get("threshold"))),
        ("percentile of training scores", _s(record.get("percentile"))),
        ("training examples", _s(record.get("n_train"))),
        ("training score mean", _num(record.get("train_mean"))),
        ("training score std", _num(record.get("train_std"))),
        ("score", _s(record.get("score"))),
    ]
    return _table(rows, numeric=True)


def _export(run_dir):
    folder = os.path.join(run_dir, EXPORT)
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        return (
            f'<p class="note">no export in {EXPORT}/ (write one with '
            f"<code>kerasae export {_e(run_dir)}</code>)</p>"
        )
    manifest = _read_object(path)
    if isinstance(manifest, str):
        return manifest
    model = manifest.get("model") or {}
    versions = manifest.get("versions") or {}
    out = [
        _table(
            [
                ("model", _s(model.get("name"))),
                ("formats", _s(", ".join(map(str, manifest.get("formats") or ())))),
                ("prior", _s((manifest.get("prior") or {}).get("kind"))),
                ("versions", _s(", ".join(f"{k} {v}" for k, v in sorted(versions.items())))),
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
                    (_e(part), io_kind[:-1], _s(t.get("name")), _e(shape), _s(t.get("dtype")))
                )
    if parts:
        out.append("<h3>Parts</h3>" + _table(parts, ("part", "", "tensor", "shape", "dtype")))
    files = []
    for rel, info in sorted((manifest.get("files") or {}).items()):
        # present with the recorded size; the runtime checks the SHA-256 before loading
        full = os.path.join(folder, *rel.split("/"))
        ok = os.path.isfile(full) and os.path.getsize(full) == info.get("bytes")
        state = '<span class="ok">present</span>' if ok else '<span class="bad">missing</span>'
        files.append(
            (
                _e(rel),
                _s(info.get("bytes")),
                f"<code>{_e(str(info.get('sha256', ''))[:16])}…</code>",
                state,
            )
        )
    if files:
        out.append("<h3>Files</h3>" + _table(files, ("file", "bytes", "sha256", "")))
    checks = [
        (
            _s(name),
            _num(c.get("max_abs_diff"), ".2e"),
            _num(c.get("tolerance"), ".0e"),
            _s(c.get("precision")),
            _s(", ".join(map(str, c.get("inputs") or ()))),
        )
        for name, c in sorted((manifest.get("verification") or {}).items())
    ]
    if checks:
        out.append(
            "<h3>Parity with the Keras model</h3>"
            + _table(checks, ("artifact", "max |diff|", "tolerance", "precision", "inputs"))
        )
    return "".join(out)


def _config(config):
    model_config = config.get("model_config")
    model_config = model_config if isinstance(model_config, dict) else {}
    rows = [(_e(k), _value(v)) for k, v in sorted(config.items()) if k != "model_config"]
    params = [(_e(k), _value(v)) for k, v in sorted(model_config.items())]
    return (
        f"<h3>Resolved {CONFIG}</h3>"
        + _table(rows)
        + "<h3>Model parameters</h3>"
        + (_table(params) if params else '<p class="note">none recorded</p>')
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


def _read_object(path):
    """The JSON object in `path`, or the HTML of a note saying why there is none."""
    try:
        record = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        return f'<p class="bad">{_e(os.path.basename(path))} is not valid JSON ({_e(exc)})</p>'
    if not isinstance(record, dict):
        return f'<p class="bad">{_e(os.path.basename(path))} holds no JSON object</p>'
    return record


def _e(text):
    return html.escape(str(text), quote=True)


def _s(value):
    """Escaped text of a scalar; '-' for a missing one."""
    return "-" if value is None else _e(value)


def _value(value):
    if isinstance(value, (dict, list)):
        return f"<code>{_e(json.dumps(value, sort_keys=True))}</code>"
    return _s(value)


def _num(value, fmt=".6g"):
    try:
        return _e(format(float(value), fmt))
    except (TypeError, ValueError):
        return _s(value)


def _data_uri(png):
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(uri, caption, alt):
    return (
        f'<figure><img src="{uri}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}: {_e(alt)}</figcaption></figure>"
    )


def _section(anchor, heading, content):
    return f'<section id="{anchor}"><h2>{_e(heading)}</h2>\n{content}\n</section>'


def _table(rows, header=None, numeric=False):
    """A table of already escaped cells; without `header`, each row's first cell heads it."""
    head = ("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>") if header else ""
    first_tag = "th" if header is None else "td"
    cls = ' class="num"' if numeric else ""
    body = "".join(
        f"<tr><{first_tag}>{first}</{first_tag}>"
        + "".join(f"<td{cls}>{c}</td>" for c in rest)
        + "</tr>"
        for first, *rest in rows
    )
    return f"<table>{head}{body}</table>"
