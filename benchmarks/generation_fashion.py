"""Generation benchmark: every generative family and latent sampler on Fashion-MNIST.

    python benchmarks/generation_fashion.py [--models vae,ae,...] [--samplers prior,gmm,...]
        [--epochs 10] [--latent-dim 16] [--samples 2000] [--work /tmp/kerasae-generation]

Each model trains once (a `kerasae train` run folder under --work, reused when its settings
match), then every applicable latent sampler (`kerasae.samplers`: the model's own prior,
a full-covariance Gaussian, a 10-component GMM, a two-stage VAE, the maf and iaf flows,
PixelCNN for vq_vae) is
fitted to its training codes, and --samples images are drawn and scored by
`kerasae.evaluation.quality`: FID-C (the Frechet distance in the feature space of a small
classifier
trained on Fashion-MNIST: a classifier-feature FID, not Inception FID), precision and
recall (Kynkaanniemi et al. 2019, k = 3), classes covered, and the sampling time per 1,000
images. `ncsn` samples by annealed Langevin dynamics (Song and Ermon 2019). A `data` row
scores held-out test images the same way: the floor any generator can reach.

Rows are kept in benchmarks/results/generation_fashion.json (one per model and sampler);
an 8x8 grid per row goes to benchmarks/figures/generation_<model>_<sampler>.png.
"""

import os
import re
import sys
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

NAME = "generation_fashion"
FIGURES = os.path.join(ROOT, "benchmarks", "figures")
MODELS = (
    "vae,beta_vae,iwae,info_vae,vamp,aae,wae[variant=mmd],rae,ae,conv_ae,dae,pca,"
    "vq_vae[latent_dim=3136],ncsn,vaegan"
)
SAMPLERS = ("prior", "gaussian", "gmm", "two_stage", "maf", "iaf", "pixelcnn")


def split_specs(text):
    return [s.strip() for s in re.split(r",(?![^\[]*\])", text) if s.strip()]


def parse_spec(spec):
    """'wae[variant=mmd]' -> ('wae', {'variant': 'mmd'})."""
    from kerasae.params import parse_value

    name, _, rest = spec.partition("[")
    kwargs = {}
    for item in filter(None, rest.rstrip("]").split(",")):
        key, _, value = item.partition("=")
        kwargs[key.strip()] = parse_value(value)
    return name, kwargs


def run_spec(spec):
    """`spec` less its `samples=N` (how many samples a row scores, not how the model trains):
    'vae[samples=1000]' reuses the run of 'vae'."""
    name, _, rest = spec.partition("[")
    items = [
        i
        for i in filter(None, rest.rstrip("]").split(","))
        if i.partition("=")[0].strip() != "samples"
    ]
    return f"{name}[{','.join(items)}]" if items else name


def train_run(spec, args):
    """The finished run folder of `spec` (trained now unless a run with its settings exists)."""
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.folder import is_finished, settings_diff
    from kerasae.runs.training import train

    spec = run_spec(spec)
    name, kwargs = parse_spec(spec)
    epochs = kwargs.pop("epochs", args.epochs)
    latent = kwargs.pop("latent_dim", args.latent_dim)
    schedule = kwargs.pop("lr_schedule", "constant")  # e.g. ncsn[lr_schedule=cosine]
    out = os.path.join(args.work, re.sub(r"[^\w.=-]+", "_", spec))
    config = TrainConfig(
        model=name,
        dataset="fashion_mnist",
        epochs=epochs,
        latent_dim=latent,
        batch_size=args.batch_size,
        params=kwargs,
        seed=args.seed,
        out=out,
        lr_schedule=schedule,
        overwrite=True,
    )
    if is_finished(out) and not settings_diff(out, config):
        return out, None
    start = time.perf_counter()
    train(config, verbose=2)
    return out, round(time.perf_counter() - start, 1)


def applicable(model, names):
    """The samplers of `names` that apply to `model` (each sampler's own check decides)."""
    from kerasae.errors import KerasaeError
    from kerasae.samplers.base import SAMPLERS

    keep = []
    for name in names:
        try:
            SAMPLERS.get(name).check(model)
        except KerasaeError:
            continue
        keep.append(name)
    return keep


def draw_langevin(model, args):
    from kerasae.samplers import langevin

    return lambda n, seed: langevin(
        model,
        n,
        seed=seed,
        anneal=True,
        **({"steps": args.langevin_steps} if args.langevin_steps else {}),
    )


def score(samples, data, seconds, spec, sampler, extra=None):
    from kerasae.evaluation.quality import generation_metrics
    from kerasae.plots import save_grid

    metrics = generation_metrics(samples, data, seed=0)
    slug = re.sub(r"[^a-z0-9]+", "_", f"{spec}_{sampler}".lower()).strip("_")
    figure = os.path.join(FIGURES, f"generation_{slug}.png")
    save_grid(samples[:64], figure, title=f"{spec}: {sampler} (Fashion-MNIST)")
    return {
        "model": spec,
        "sampler": sampler,
        "fid_c": metrics["fid_c"],
        "precision": metrics["precision"],
        "recall": metrics["recall"],
        "classes_covered": metrics["classes_covered"],
        "n_samples": len(samples),
        "seconds_per_1000": round(1000 * seconds / len(samples), 3),
        "classifier_accuracy": metrics.get("classifier_accuracy"),
        "figure": os.path.relpath(figure, ROOT),
        **(extra or {}),
    }


def run_model(spec, data, args, results):
    from kerasae.runs.folder import load_run
    from kerasae.runs.samplers import fit_run_sampler, run_generator

    out, train_seconds = train_run(spec, args)
    config, model = load_run(out)
    extra = {
        "train_seconds": train_seconds or config.get("train_seconds"),
        "epochs": config["epochs"],
    }
    if getattr(model, "noise_levels", None):  # ncsn: annealed Langevin, no latent sampler
        draws = [("langevin", draw_langevin(model, args))]
    else:
        draws = []
        for name in applicable(model, args.samplers):
            if name != "prior":
                fit_run_sampler(out, name, seed=args.seed)
            draws.append((name, run_generator(out, config, model, name)[0]))
    n = int(parse_spec(spec)[1].get("samples", args.samples))
    for sampler, draw in draws:
        start = time.perf_counter()
        samples = np.asarray(draw(n, 0), dtype="float32")
        seconds = time.perf_counter() - start
        row = score(samples, data, seconds, spec, sampler, extra)
        print(row, flush=True)
        results[f"{spec}|{sampler}"] = row
        save_results(NAME, results)  # after each row: a long run keeps what it finished


def claims(results):
    """The issue's three targets, each stated with what was measured."""
    vae = results.get("vae|prior")
    if not vae:
        return ["(no `vae` prior row yet: the targets compare against it)"]
    lines = []
    plain = [
        r
        for r in results.values()
        if r["sampler"] == "gmm"
        and parse_spec(r["model"])[0] in ("ae", "conv_ae", "dae", "rae", "pca")
    ]
    if plain:
        best = min(plain, key=lambda r: r["fid_c"])
        ok = best["fid_c"] < vae["fid_c"]
        lines.append(
            f"- An autoencoder with a `gmm` sampler scores a lower FID-C than `vae` with "
            f"prior sampling: best `{best['model']}` + gmm {best['fid_c']:.2f} vs "
            f"{vae['fid_c']:.2f}: {'holds' if ok else 'does NOT hold'}."
        )
    lines += flow_claim(results)
    lines += vaegan_claim(results, vae)
    models = [r for r in results.values() if r["model"] != "data"]
    best = min(models, key=lambda r: r["fid_c"])
    cut = 1 - best["fid_c"] / vae["fid_c"]
    lines.append(
        f"- The best generator's FID-C is at least 30% below the vae prior's: "
        f"`{best['model']}` + {best['sampler']} {best['fid_c']:.2f}, {100 * cut:.0f}% "
        f"below: {'met' if cut >= 0.3 else 'NOT met'}."
    )
    if not any(r["sampler"] == "langevin" for r in models):
        lines.append(
            "- Annealed Langevin covers >= 8 classes with FID-C within 2x of the vae "
            "prior's: NOT measured here yet (no `ncsn` row)."
        )
    for r in (r for r in models if r["sampler"] == "langevin"):
        # FID is biased upwards by fewer samples: compare with the vae prior at the same n
        ref = next(
            (
                v
                for v in models
                if v["sampler"] == "prior"
                and run_spec(v["model"]) == "vae"
                and v["n_samples"] == r["n_samples"]
            ),
            vae,
        )
        ok = r["classes_covered"] >= 8 and r["fid_c"] <= 2 * ref["fid_c"]
        against = (
            f"against {ref['fid_c']:.2f} for the vae prior, both from {r['n_samples']:,} samples"
            if ref["n_samples"] == r["n_samples"]
            else f"from {r['n_samples']:,} samples against {ref['fid_c']:.2f} from "
            f"{ref['n_samples']:,}"
        )
        lines.append(
            f"- Annealed Langevin (`{r['model']}`) covers >= 8 classes with FID-C "
            f"within 2x of the vae prior's: {r['classes_covered']}/10 classes, FID-C "
            f"{r['fid_c']:.2f} {against} ({r['fid_c'] / ref['fid_c']:.2f}x): "
            f"{'met' if ok else 'NOT met'}."
        )
    return lines


def flow_claim(results):
    """Issue 31: a maf or iaf sampler beats the 10-component gmm of the same model run, at
    the same sample count, on FID-C for at least one family."""
    pairs = [
        (r, results[f"{r['model']}|gmm"])
        for r in results.values()
        if r["sampler"] in ("maf", "iaf")
        and f"{r['model']}|gmm" in results
        and results[f"{r['model']}|gmm"]["n_samples"] == r["n_samples"]
    ]
    if not pairs:
        return []
    listed = "; ".join(
        f"`{r['model']}` + {r['sampler']} {r['fid_c']:.2f} vs gmm {g['fid_c']:.2f}"
        for r, g in sorted(pairs, key=lambda p: (p[0]["model"], p[0]["sampler"]))
    )
    won = any(r["fid_c"] < g["fid_c"] for r, g in pairs)
    return [
        f"- A maf or iaf sampler beats the 10-component gmm on FID-C for at least one "
        f"family (issue 31): {listed}: {'holds' if won else 'does NOT hold'}."
    ]


def vaegan_claim(results, vae):
    """Issue 31: VAE/GAN's prior samples against the vae prior's, at the same sample count."""
    row = results.get("vaegan|prior")
    if not row or row["n_samples"] != vae["n_samples"]:
        return []
    ok = row["fid_c"] < vae["fid_c"]
    return [
        f"- `vaegan`'s prior samples have a lower FID-C than the vae prior's (issue 31): "
        f"{row['fid_c']:.2f} vs {vae['fid_c']:.2f}: {'holds' if ok else 'does NOT hold'}."
    ]


def write(results, args):
    note = results.get("_note")
    results = {k: r for k, r in results.items() if not k.startswith("_")}
    rows = sorted(results.values(), key=lambda r: r["fid_c"])
    vae = results.get("vae|prior")
    table = [
        [
            f"`{r['model']}`" if r["model"] != "data" else "test images (reference)",
            r["sampler"],
            f"{r['fid_c']:.2f}",
            f"{r['fid_c'] / vae['fid_c']:.2f}" if vae else "-",
            f"{r['precision']:.3f}",
            f"{r['recall']:.3f}",
            f"{r['classes_covered']}/10",
            f"{r['seconds_per_1000']:.2f}",
            f"[grid]({r['figure']})",
        ]
        for r in rows
    ]
    body = "\n".join(
        [
            f"## Generation: Fashion-MNIST, latent {args.latent_dim}, FID-C, precision and recall",
            "",
            f"Command: `python benchmarks/generation_fashion.py --epochs {args.epochs} "
            f"--samples {args.samples}` (rows in `benchmarks/results/{NAME}.json`)  ",
            f"Machine: {machine()} (CPU only, shared with other jobs: times are indicative).",
            "",
            markdown_table(
                [
                    "model",
                    "sampler",
                    "FID-C",
                    "vs vae prior",
                    "precision",
                    "recall",
                    "classes",
                    "s / 1000 samples",
                    "figure",
                ],
                table,
            ),
            "",
            "FID-C is the Frechet distance between classifier features of the samples and of as "
            "many training images (the penultimate layer of a small CNN kerasae trains on "
            "Fashion-MNIST's labelled training split; not Inception FID, so not comparable with "
            "published FIDs). Precision and recall: Kynkaanniemi et al. 2019, k = 3, in the same "
            "features. Classes: classes reaching a quarter of their expected share of samples.",
            "",
            "The targets (issue 18), measured:",
            "",
            *claims(results),
            *(["", f"Note: {note}"] if note else []),
        ]
    )
    update_section(NAME, body)
    print(body)


def main(argv=None):
    parser = base_parser(__doc__)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--langevin-steps", type=int, default=None)
    parser.add_argument("--work", default="/tmp/kerasae-generation")
    parser.add_argument("--write-only", action="store_true")
    parser.add_argument("--note", help="a note stored with the rows and printed under the table")
    args = parser.parse_args(argv)
    args.samplers = split_specs(args.samplers)
    results = load_results(NAME, {})
    store_note(NAME, results, args.note)
    if not args.write_only:
        from kerasae.data.sources import load_dataset

        data = load_dataset("fashion_mnist")
        real = data.x_test[: args.samples]
        results["data|test images"] = score(real, data, 0.0, "data", "test images")
        for spec in split_specs(args.models):
            run_model(spec, data, args, results)
    write(results, args)


if __name__ == "__main__":
    main()
