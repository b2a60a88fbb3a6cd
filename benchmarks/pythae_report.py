"""The BENCHMARKS.md section of `benchmarks/pythae_side_by_side.py`: kerasae and pythae
0.1.2 side by side, from benchmarks/results/pythae_side_by_side.json (its rows, the paired
log p(x) differences, and what could not be compared)."""

import numpy as np

from benchmarks.report import machine, markdown_table, update_section

NAME = "pythae_side_by_side"
FAMILIES = "vae_iaf,miwae,vaegan,svae,rhvae"


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
