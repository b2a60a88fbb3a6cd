"""VAE benchmark: convolutional `vae` (and optionally `beta_vae`) on Fashion-MNIST.

    python benchmarks/vae_fashion.py [--epochs 10] [--latent-dim 16] [--models vae,beta_vae]

Trains each model with `architecture="conv"` and its defaults (Bernoulli decoder on
logits, analytic KL), then measures on the 10,000 official test images:
  - the test negative ELBO in nats per image (beta = 1; 8 posterior draws per image),
  - its two parts, reconstruction NLL and KL,
  - reconstruction MSE of the decoder mean at the posterior mean (target <= 0.016 for vae).
Writes the `vae_fashion` section of BENCHMARKS.md and the figures in docs/images/.
"""

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.report import base_parser, machine, markdown_table, update_section  # noqa: E402

TARGET_MSE = {"vae": 0.016}
IMAGES = os.path.join(ROOT, "docs", "images")


def evaluate(model, x, batch_size=500, samples=8):
    """(negative ELBO, reconstruction NLL, KL) in nats per image, averaged over the test set
    and over `samples` seeded posterior draws (so the figure is repeatable)."""
    parts = np.zeros(3)
    for i in range(0, len(x), batch_size):
        b = x[i : i + batch_size]
        for s in range(samples):
            nll, kl, total = model.negative_elbo(b, beta=1.0, seed=(1, s))
            parts += [float(np.sum(total)), float(np.sum(nll)), float(np.sum(kl))]
    return parts / (len(x) * samples)


def figures(name, model, data):
    """Prior samples and a traversal of the 10 most informative latent dimensions."""
    from kerasae.callbacks.grids import traversal_images
    from kerasae.plots import save_grid
    from kerasae.probability import divergences

    os.makedirs(IMAGES, exist_ok=True)
    save_grid(
        model.sample(64, seed=0),
        os.path.join(IMAGES, f"{name}_samples.png"),
        title=f"{name}: 64 prior samples (Fashion-MNIST, latent {model.latent_dim})",
    )
    mean, log_var = model.encode_distribution(data.x_test[:2000])
    kl_per_dim = divergences.kl_gaussian(mean, log_var, axis=0) / len(mean)
    dims = [int(d) for d in np.argsort(-kl_per_dim)[:10]]  # active dimensions first
    rows, images = traversal_images(model, mean[0], steps=11, span=3.0, dims=dims)
    save_grid(
        images,
        os.path.join(IMAGES, f"{name}_traversal.png"),
        rows=rows,
        title=f"{name}: traversal over [-3, 3] of the 10 dims with the most KL",
    )
    return kl_per_dim


def run(name, data, args):
    import keras

    import kerasae
    from kerasae.data.pipeline import make_tf_dataset

    keras.utils.set_random_seed(args.seed)
    model = kerasae.create_model(
        name, input_shape=data.input_shape, latent_dim=args.latent_dim, architecture="conv"
    )
    model.compile()
    start = time.perf_counter()
    model.fit(
        make_tf_dataset(data.x_train, args.batch_size, seed=args.seed),
        epochs=args.epochs,
        verbose=2,
    )
    seconds = time.perf_counter() - start
    nelbo, nll, kl = evaluate(model, data.x_test)
    mse = float(np.mean((model.reconstruct(data.x_test) - data.x_test) ** 2))
    kl_per_dim = figures(name, model, data)
    active = int(np.sum(kl_per_dim > 0.01))  # Burda et al. 2016 use covariance > 0.01
    return dict(
        beta=model.beta,
        nelbo=nelbo,
        nll=nll,
        kl=kl,
        mse=mse,
        active=active,
        seconds=seconds,
        params=model.count_params(),
    )


def main(argv=None):
    parser = base_parser(__doc__)
    parser.add_argument("--models", default="vae,beta_vae")
    args = parser.parse_args(argv)

    from kerasae.data.sources import load_dataset

    data = load_dataset("fashion_mnist")
    rows, names = [], []
    for name in args.models.split(","):
        r = run(name, data, args)
        print(name, r, flush=True)
        names.append(name)
        target = TARGET_MSE.get(name)
        rows.append(
            [
                f"`{name}`",
                f"{r['beta']:g}",
                f"{r['nelbo']:.2f}",
                f"{r['nll']:.2f}",
                f"{r['kl']:.2f}",
                f"{r['mse']:.5f}",
                f"<= {target}" + (" (met)" if r["mse"] <= target else " (NOT met)")
                if target
                else "-",
                f"{r['active']}/{args.latent_dim}",
                f"{r['params']:,}",
                f"{r['seconds']:.0f}",
            ]
        )
        write(args, rows, names)  # after each model, so a long run keeps what it finished


def write(args, rows, names):
    cmd = (
        f"python benchmarks/vae_fashion.py --epochs {args.epochs} --latent-dim "
        f"{args.latent_dim} --batch-size {args.batch_size} --models {args.models}"
    )
    pictures = "\n".join(
        f"![{n} prior samples](docs/images/{n}_samples.png) "
        f"![{n} latent traversal](docs/images/{n}_traversal.png)"
        for n in names
    )
    body = "\n".join(
        [
            f"## VAE: conv {', '.join(f'`{n}`' for n in names)} on Fashion-MNIST, latent "
            f"{args.latent_dim}, {args.epochs} epochs, batch {args.batch_size}",
            "",
            f"Command: `{cmd}`  ",
            f"Machine: {machine()} (CPU only; shared with other jobs, so times are indicative; "
            "GPU figures are not measured).",
            "",
            markdown_table(
                [
                    "model",
                    "beta",
                    "test -ELBO (nats)",
                    "recon NLL",
                    "KL",
                    "recon MSE",
                    "target",
                    "active dims",
                    "parameters",
                    "train seconds",
                ],
                rows,
            ),
            "",
            "-ELBO, NLL and KL are nats per 28x28 test image (Bernoulli likelihood on grey "
            "levels, beta = 1 for every model, 8 seeded posterior draws per image). Recon MSE "
            "decodes the posterior mean (the mean image, pixels in [0, 1]). A dimension is "
            "active when its average KL on the test set exceeds 0.01 nats.",
            "",
            "Prior samples and traversals (rows: the 10 dimensions with the most KL, swept over "
            "[-3, 3] around the first test image's code):",
            "",
            pictures,
        ]
    )
    update_section("vae_fashion", body)
    print(body)


if __name__ == "__main__":
    main()
