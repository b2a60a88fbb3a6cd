"""`kerasae sample RUN_DIR [-n N] [--out FILE.png] [--traverse]`: a grid of the model's
prior samples, or a latent traversal (one row per latent dimension), or `--langevin`
samples from a denoising autoencoder's score (kerasae.samplers.langevin)."""

import os

import numpy as np

from kerasae.cli import add_verbosity, verbosity
from kerasae.errors import KerasaeError
from kerasae.evaluation.factor_labels import row_labels, run_dimensions
from kerasae.io import atomic_path
from kerasae.plots import save_grid
from kerasae.runs.folder import load_run, read_run_config
from kerasae.samplers.base import SAMPLERS


def register(sub):
    p = sub.add_parser("sample", help="write a PNG grid of samples from a generative run")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        help="PNG file (default RUN_DIR/samples/samples.png, or "
        "traversal.png with --traverse); a .npy file holds the "
        "raw float32 images instead",
    )
    p.add_argument(
        "--sampler",
        metavar="NAME",
        help="the latent sampler to draw from: one fitted in the run (kerasae "
        "fit-sampler) or prior, the model's own (default: the run's sampler, "
        "else its prior)",
    )
    p.add_argument(
        "--traverse",
        action="store_true",
        help="one row per latent dimension, swept over [-SPAN, SPAN] around a "
        "reference code (instead of prior samples)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="traversal steps per row (default 9), or Langevin steps (default 100)",
    )
    p.add_argument("--span", type=float, default=3.0, help="traversal range (default 3)")
    p.add_argument(
        "--reference",
        type=int,
        metavar="INDEX",
        help="traverse around the posterior mean of this test example of the "
        "run's dataset (default: the prior mean, all zeros)",
    )
    p.add_argument(
        "--langevin",
        action="store_true",
        help="Langevin dynamics on the score of a dae/sdae trained with Gaussian "
        "noise, started from uniform noise (instead of prior samples)",
    )
    p.add_argument(
        "--step-size",
        type=float,
        metavar="E",
        help="Langevin step size (default sigma^2 / 2, sigma the DAE's noise std)",
    )
    p.add_argument(
        "--anneal",
        action="store_true",
        help="Langevin with a decreasing noise schedule (see kerasae.samplers.langevin); "
        "on an ncsn run, Song and Ermon's annealed Langevin with --steps "
        "steps per noise level and --step-size as its epsilon (default 2e-5)",
    )

    add_verbosity(p)
    p.set_defaults(func=cmd_sample, check=check)


def check(args):
    """The flags, --out and the run folder, before TensorFlow; fills in --steps and --out."""
    mode = "traversal" if args.traverse else "langevin" if args.langevin else "samples"
    if args.sampler and mode != "samples":
        raise KerasaeError(
            "--sampler chooses where latent samples come from; drop it with "
            f"--{'traverse' if args.traverse else 'langevin'}"
        )
    if args.sampler:
        SAMPLERS.entry(args.sampler)
    if args.steps is None:
        args.steps = {"traversal": 9, "langevin": 100}.get(mode)
    if mode == "traversal":
        if args.steps < 2:
            raise KerasaeError(f"--steps must be at least 2, got {args.steps}")
        if not args.span > 0:
            raise KerasaeError(f"--span must be positive, got {args.span}")
    elif mode == "langevin" and (args.n <= 0 or args.steps <= 0):
        raise KerasaeError(
            f"-n and --steps must be positive integers, got {args.n} and {args.steps}"
        )
    elif args.n <= 0:
        raise KerasaeError(f"-n must be a positive integer, got {args.n}")
    args.out = args.out or os.path.join(args.run_dir, "samples", f"{mode}.png")
    suffixes = (".png", ".npy") if mode == "samples" else (".png",)
    if not args.out.lower().endswith(suffixes):
        what = "a .png (a grid) or .npy (the images)" if mode == "samples" else "a .png"
        raise KerasaeError(f"--out {args.out} must be {what} file")
    read_run_config(args.run_dir)


def cmd_sample(args):
    # imports TensorFlow: only when used
    from kerasae.runs.samplers import run_generator

    if args.traverse:
        return cmd_traverse(args)
    if args.langevin:
        return cmd_langevin(args)
    out = args.out
    config, model = load_run(args.run_dir)
    draw, description = run_generator(args.run_dir, config, model, args.sampler)
    images = draw(args.n, args.seed)
    if out.lower().endswith(".npy"):
        with atomic_path(out) as tmp:
            np.save(tmp, np.asarray(images, dtype="float32"))
    else:
        save_grid(images, out, title=f"{config['model']}: {args.n} samples, {description}")
    _wrote(args, f"wrote {out} ({args.n} samples from the {description})")
    return 0


def cmd_traverse(args):
    # imports TensorFlow: only when used
    from kerasae.callbacks.grids import traversal_images

    steps, out = args.steps, args.out
    config, model = load_run(args.run_dir)
    z_ref, where = None, "the prior mean"
    if args.reference is not None:
        from kerasae.runs.data import open_data  # imports TensorFlow: only when used

        data = open_data(config, scaling=config.get("scaling"))  # as the run read it
        if not 0 <= args.reference < data.n_test:
            raise KerasaeError(
                f"--reference must lie in [0, {data.n_test - 1}], got {args.reference}"
            )
        z_ref = model.encode(data.head("test", args.reference + 1)[-1:])[0]
        where = f"test example {args.reference}"
    rows, images = traversal_images(model, z_ref, steps=steps, span=args.span)
    # each row named after the factor its dimension captures, where the run has a
    # disentanglement.json of this model (`kerasae evaluate --disentanglement`)
    dimensions = run_dimensions(args.run_dir, model.latent_dim)
    save_grid(
        images,
        out,
        rows=rows,
        title=f"{config['model']}: latent traversal over "
        f"[-{args.span:g}, {args.span:g}] around {where}",
        row_labels=row_labels(range(rows), dimensions),
    )
    _wrote(args, f"wrote {out} ({rows} latent dimensions x {steps} steps)")
    return 0


def cmd_langevin(args):
    # imports TensorFlow: only when used
    from kerasae.samplers.langevin_sampling import (
        DEFAULT_EPSILON,
        annealed_langevin,
        is_noise_conditional,
        langevin,
        score_sigma,
    )

    steps, out = args.steps, args.out
    config, model = load_run(args.run_dir)
    if args.anneal and is_noise_conditional(model):  # an ncsn: Song and Ermon's Algorithm 1
        eps = DEFAULT_EPSILON if args.step_size is None else args.step_size
        images = annealed_langevin(
            model, args.n, steps_per_level=steps, epsilon=eps, seed=args.seed
        )
        what = (
            f"annealed Langevin, {len(model.sigmas)} noise levels x {steps} steps, "
            f"epsilon {eps:.3g}"
        )
        save_grid(images, out, title=f"{config['model']}: {args.n} samples, {what}")
        _wrote(args, f"wrote {out} ({what})")
        return 0
    sigma = score_sigma(model)  # refuses models without a score estimate, before any work
    eps = sigma**2 / 2 if args.step_size is None else args.step_size
    images = langevin(
        model, args.n, steps=steps, step_size=eps, seed=args.seed, anneal=args.anneal
    )
    save_grid(
        images,
        out,
        title=f"{config['model']}: {args.n} Langevin samples, {steps} "
        f"steps of size {eps:.3g}{' (annealed)' if args.anneal else ''}",
    )
    _wrote(args, f"wrote {out}")
    return 0


def _wrote(args, line):
    if verbosity(args):
        print(line)
