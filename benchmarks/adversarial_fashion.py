"""Adversarial family benchmark: conv `wae` (critic, gan, mmd) and `aae` vs plain `ae` on
Fashion-MNIST.

    python benchmarks/adversarial_fashion.py [--epochs 10] [--latent-dim 16] [--train-size 60000]

Trains each model with its default configuration in one process (the same code path as
`kerasae train`), then measures on the 10,000 test images: the test MSE, and the unbiased
IMQ MMD between the encoded test codes and draws from the model's prior, the quantity the
WAE/AAE regularizers drive down (for `ae`, against N(0, I)). Writes the table and a sample
grid per generative model into the `adversarial` section of BENCHMARKS.md. Rows are kept in
benchmarks/results/adversarial_fashion.json, so re-running some `--models` updates only those.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.report import (  # noqa: E402
    ROOT,
    base_parser,
    load_results,
    machine,
    markdown_table,
    save_results,
    update_section,
)

TARGET_MSE = 0.0110
MODELS = {
    "wae (critic)": ("wae", {"variant": "critic"}),
    "wae (gan)": ("wae", {"variant": "gan"}),
    "wae (mmd)": ("wae", {"variant": "mmd"}),
    "aae": ("aae", {}),
    "ae": ("ae", {}),
}


def run(label, data, args):
    import keras

    import kerasae
    from kerasae.data.pipeline import make_tf_dataset
    from kerasae.plots import save_grid
    from kerasae.probability.divergences import mmd

    name, params = MODELS[label]
    keras.utils.set_random_seed(args.seed)
    model = kerasae.create_model(
        name, input_shape=data.input_shape, latent_dim=args.latent_dim, **params
    )
    model.compile()
    start = time.perf_counter()
    model.fit(
        make_tf_dataset(data.x_train[: args.train_size], args.batch_size, seed=args.seed),
        epochs=args.epochs,
        verbose=2,
    )
    seconds = time.perf_counter() - start
    x = data.x_test
    mse = float(np.mean((model.reconstruct(x) - x) ** 2))
    codes = model.encode(x[: args.mmd_n])
    rng = np.random.default_rng(args.seed + 1)
    prior = (
        model.sample_prior(args.mmd_n, seed=args.seed + 1)
        if model.generative
        else rng.normal(size=codes.shape).astype("float32")
    )
    row = {"mse": mse, "mmd": mmd(codes, prior), "seconds": seconds, "grid": None}
    if model.generative:
        slug = label.replace(" ", "").replace("(", "_").replace(")", "")
        row["grid"] = f"benchmarks/figures/adversarial_{slug}.png"
        save_grid(
            model.sample(64, seed=args.seed),
            os.path.join(ROOT, row["grid"]),
            title=f"{label}: prior samples, {args.epochs} epochs",
        )
    return row


def main(argv=None):
    parser = base_parser(__doc__)
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--mmd-n", type=int, default=2000, help="test codes in the MMD")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args(argv)

    from kerasae.data.sources import load_dataset

    data = load_dataset("fashion_mnist")
    args.train_size = min(args.train_size, len(data.x_train))
    results = load_results("adversarial_fashion", {})
    cmd = (
        f"python benchmarks/adversarial_fashion.py --epochs {args.epochs} --latent-dim "
        f"{args.latent_dim} --batch-size {args.batch_size} --train-size {args.train_size} "
        f"--models '{args.models}'"
    )
    for label in args.models.split(","):
        results[label] = {
            **run(label, data, args),
            "epochs": args.epochs,
            "command": cmd,
            "machine": machine(),
        }
        print(f"{label}: {results[label]}", flush=True)
        save_results("adversarial_fashion", results)
    results = {label: results[label] for label in MODELS if label in results}
    rows = [
        [
            f"`{label}`",
            f"{r['mse']:.5f}",
            ("met" if r["mse"] <= TARGET_MSE else "NOT met") if label != "ae" else "-",
            f"{r['mmd']:.4f}",
            r["epochs"],
            f"{r['seconds']:.0f}",
        ]
        for label, r in results.items()
    ]
    commands = sorted({f"`{r['command']}` ({r['machine']})" for r in results.values()})
    grids = [f"![{label}]({r['grid']})" for label, r in results.items() if r["grid"]]
    body = "\n".join(
        [
            f"## Adversarial family: Fashion-MNIST, latent {args.latent_dim}, batch "
            f"{args.batch_size}, {args.train_size:,} training images",
            "",
            "Commands (machine, date): " + "; ".join(commands) + "  ",
            "CPU only, shared with other jobs: times are indicative; GPU figures are not "
            "measured.",
            "",
            markdown_table(
                [
                    "model",
                    "test MSE",
                    f"MSE <= {TARGET_MSE}",
                    "MMD(codes, prior)",
                    "epochs",
                    "train seconds",
                ],
                rows,
            ),
            "",
            "Test MSE over all pixels of the 10,000 test images (pixels in [0, 1]). MMD is the "
            f"unbiased multi-scale IMQ MMD^2 between {args.mmd_n:,} encoded test images and as "
            "many "
            "prior draws (N(0, I) for every model here; for plain `ae` too, which has no prior: "
            "its codes are never pushed toward one). Default configurations: conv networks "
            "with filters (64, 128), Adam 2e-3 for encoder and decoder (as `conv_ae`), lambda "
            "0.003 for wae critic and gan, 0.1 for wae mmd, 0.005 for aae.",
            "",
            " ".join(grids),
        ]
    )
    update_section("adversarial", body)
    print(body)


if __name__ == "__main__":
    main()
