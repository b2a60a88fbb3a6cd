"""Denoising benchmark: the conv `dae` on Fashion-MNIST with Gaussian noise of std 0.3.

    python benchmarks/denoising.py [--epochs 25] [--code spatial] [--latent-dim 6272]
                                   [--batch-size 64] [--lr-schedule cosine]

Trains a conv DAE (Vincent et al. 2008) on clean training images corrupted on the fly,
then corrupts the 10,000 official test images once (fixed seed, clipped to [0, 1], the
same corruption the model trains with) and reports PSNR = 10 log10(1 / MSE) over all test
pixels for the noisy input and for the denoised output (target: at least +9 dB). Writes the
`denoising` section of BENCHMARKS.md, a noisy / denoised / clean picture and a grid of
Langevin samples drawn from the DAE's score (kerasae.samplers.langevin) into benchmarks/figures/.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.report import ROOT, base_parser, machine, markdown_table, update_section  # noqa: E402
from kerasae.nets import CODES
from kerasae.runs.config import LR_SCHEDULES

SIGMA = 0.3
FIGURES = os.path.join(ROOT, "benchmarks", "figures")


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def main(argv=None):
    p = base_parser(__doc__, epochs=25, latent_dim=6272, batch_size=64)
    p.add_argument(
        "--code",
        choices=CODES,
        default="spatial",
        help="the dae's code: a 7x7 grid (latent_dim / 49 channels) or a vector",
    )
    p.add_argument("--train-size", type=int, default=60000)
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default="cosine",
        help="Adam's learning rate: a cosine decay to 0 over the run, or constant",
    )
    p.add_argument("--langevin-steps", type=int, default=200)
    args = p.parse_args(argv)

    import keras

    import kerasae
    from kerasae.data.pipeline import make_tf_dataset
    from kerasae.data.sources import load_dataset
    from kerasae.nets import code_grid
    from kerasae.plots import save_grid
    from kerasae.runs.training import adam
    from kerasae.samplers import langevin

    data = load_dataset("fashion_mnist")
    keras.utils.set_random_seed(args.seed)
    model = kerasae.create_model(
        "dae",
        input_shape=data.input_shape,
        latent_dim=args.latent_dim,
        architecture="conv",
        code=args.code,
        noise="gaussian",
        noise_level=SIGMA,
    )
    steps = args.epochs * -(-min(args.train_size, len(data.x_train)) // args.batch_size)
    model.compile(adam(model.default_learning_rate, args.lr_schedule, steps))
    start = time.perf_counter()
    model.fit(
        make_tf_dataset(data.x_train[: args.train_size], args.batch_size, seed=args.seed),
        epochs=args.epochs,
        verbose=2,
    )
    seconds = time.perf_counter() - start

    rng = np.random.default_rng(args.seed)
    clean = data.x_test
    noisy = np.clip(clean + SIGMA * rng.standard_normal(clean.shape), 0, 1).astype("float32")
    denoised = model.denoise(noisy)
    noisy_db, denoised_db = psnr(noisy, clean), psnr(denoised, clean)

    os.makedirs(FIGURES, exist_ok=True)
    picture = os.path.join(FIGURES, "denoising_fashion.png")
    show = np.concatenate([noisy[:10], denoised[:10], clean[:10]])
    save_grid(show, picture, rows=3, title="rows: noisy (std 0.3) / dae denoised / clean")
    start_l = time.perf_counter()
    samples = langevin(model, 64, steps=args.langevin_steps, seed=args.seed)
    langevin_seconds = time.perf_counter() - start_l
    grid = os.path.join(FIGURES, "langevin_fashion.png")
    save_grid(
        samples,
        grid,
        title=f"dae: Langevin from uniform noise, "
        f"{args.langevin_steps} steps of size {SIGMA**2 / 2:g}",
    )

    gain = denoised_db - noisy_db
    decay = " with a cosine decay to 0" if args.lr_schedule == "cosine" else ""
    height, width = code_grid(data.input_shape, model.filters)
    code = (
        f"spatial code {args.latent_dim} = {height}x{width}x{args.latent_dim // (height * width)}"
        if args.code == "spatial"
        else f"dense code {args.latent_dim}"
    )
    table = markdown_table(
        ["input", "test PSNR (dB)"],
        [
            ["noisy (Gaussian std 0.3, clipped)", f"{noisy_db:.2f}"],
            ["conv dae denoised", f"{denoised_db:.2f}"],
            ["gain", f"{gain:+.2f} (target >= +9: {'met' if gain >= 9 else 'NOT met'})"],
        ],
    )
    cmd = (
        f"python benchmarks/denoising.py --epochs {args.epochs} --code {args.code} "
        f"--lr-schedule {args.lr_schedule} "
        f"--latent-dim {args.latent_dim} --batch-size {args.batch_size} "
        f"--train-size {args.train_size} --langevin-steps {args.langevin_steps}"
    )
    body = f"""## Denoising (Fashion-MNIST, Gaussian noise std 0.3)

Conv `dae` (filters {tuple(model.filters)}, {code}, Adam \
{model.default_learning_rate:g}{decay}, batch {args.batch_size}),
trained {args.epochs} epoch(s) on {min(args.train_size, len(data.x_train))} training images
corrupted on the fly in {seconds:.0f} s. PSNR = 10 log10(1 / MSE) over all pixels of the
10,000 test images, corrupted once with seed {args.seed}.

{table}

![noisy / denoised / clean](benchmarks/figures/denoising_fashion.png)

Langevin samples from the DAE's score s(x) = (r(x) - x) / 0.3^2 (64 chains from uniform
noise, {args.langevin_steps} steps, final denoising step; {langevin_seconds:.1f} s):

![Langevin samples](benchmarks/figures/langevin_fashion.png)

Reproduce: `{cmd}`. Machine: {machine()} (CPU only, shared with other jobs; GPU figures are
not measured)."""
    update_section("denoising", body)
    print(body)


if __name__ == "__main__":
    main()
