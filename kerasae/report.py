"""One self-contained HTML page about a finished run (`kerasae report RUN`).

The page shows the resolved config and model parameters, the history curves, the test
metrics of `kerasae.evaluation.evaluate`, the disentanglement metrics where `kerasae
evaluate --disentanglement` recorded them, the latest grid of each kind in `samples/`, the
anomaly threshold and the export manifest. Images are inlined as base64 data URIs and the
CSS is inline; a Content-Security-Policy forbids anything else, so the page opens the same
from a mail attachment as from the run folder. Nothing here imports TensorFlow except
`evaluate`, and every string that comes from the run folder goes through `html.escape`.
"""

import os

from kerasae.errors import KerasaeError
from kerasae.io import atomic_path
from kerasae.report_html import (
    CSP,
    CSS,
    escape,
    section,
)
from kerasae.report_sections import (
    config_section,
    disentanglement_section,
    export_section,
    grids_section,
    history_section,
    metrics_section,
    threshold_section,
)
from kerasae.runs.folder import read_run_config


def report_path(run_dir, out=None):
    """Where the page goes (default RUN_DIR/report.html), checked before any slow work."""
    out = out or os.path.join(run_dir, "report.html")
    if os.path.isdir(out):
        raise KerasaeError(f"--out {out} is a folder; pass a file name such as report.html")
    return out


def write_report(run_dir, out=None, metrics=None, note=None):
    """Build the page and write it atomically to `report_path(run_dir, out)`.

    metrics: what `kerasae.evaluation.evaluate` returned (None: shown as not evaluated, with
    `note` saying why). Returns the path written."""
    config = read_run_config(run_dir)
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
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(head)} &middot; '
        f"<code>{escape(os.path.abspath(run_dir))}</code></p>",
        section("metrics", "Test metrics", metrics_section(metrics, note)),
        section("history", "Training history", history_section(run_dir)),
        section("grids", "Grids", grids_section(run_dir)),
        section("threshold", "Anomaly threshold", threshold_section(run_dir)),
        section("export", "Export", export_section(run_dir)),
        section("config", "Configuration", config_section(config)),
    ]
    measured = disentanglement_section(run_dir)
    if measured is not None:  # a run on data with factors, measured
        body.insert(3, section("disentanglement", "Disentanglement", measured))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# ------------------------------------------------------------------ sections
