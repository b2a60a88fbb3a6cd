"""Reconstruction benchmark: `ae`, `conv_ae` and `pca` on Fashion-MNIST at one latent size.

    python benchmarks/reconstruction.py [--epochs 10] [--latent-dim 16] [--batch-size 128]

Trains each model with its default configuration (the same code path as `kerasae train`),
measures test MSE on the 10,000 official test images, and writes the table into the
`reconstruction` section of BENCHMARKS.md.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.report import base_parser, machine, markdown_table, update_section  # noqa: E402

TARGETS = {"conv_ae": 0.0090, "ae": 0.0115}


def run(name, data, args):
    import keras

    import kerasae
    from kerasae.data.pipeline import make_tf_dataset

    keras.utils.set_random_seed(args.seed)
    model = kerasae.create_model(name, input_shape=data.input_shape, latent_dim=args.latent_dim)
    model.compile()
    start = time.perf_counter()
    model.fit(
        make_tf_dataset(data.x_train, args.batch_size, seed=args.seed),
        epochs=args.epochs,
        verbose=2,
    )
    seconds = time.perf_counter() - start
    mse = float(np.mean((model.reconstruct(data.x_test) - data.x_test) ** 2))
    return mse, seconds, model.count_params()


def main(argv=None):
    parser = base_parser(__doc__)
    parser.add_argument("--models", default="pca,ae,conv_ae")
    args = parser.parse_args(argv)

    from kerasae.data.sources import load_dataset

    data = load_dataset("fashion_mnist")
    results = {}
    for name in args.models.split(","):
        results[name] = run(name, data, args)
        print(f"{name}: test MSE {results[name][0]:.5f} in {results[name][1]:.0f} s", flush=True)
    pca_mse = results.get("pca", (None,))[0]
    rows = []
    for name, (mse, seconds, params) in results.items():
        target = TARGETS.get(name)
        rows.append(
            [
                f"`{name}`",
                f"{mse:.5f}",
                f"{mse / pca_mse:.2f}" if pca_mse else "-",
                f"<= {target}" + (" (met)" if mse <= target else " (NOT met)") if target else "-",
                f"{params:,}",
                f"{seconds:.0f}",
            ]
        )
    cmd = (
        f"python benchmarks/reconstruction.py --epochs {args.epochs} "
        f"--latent-dim {args.latent_dim} --batch-size {args.batch_size} --models {args.models}"
    )
    body = "\n".join(
        [
            f"## Reconstruction: Fashion-MNIST, latent {args.latent_dim}, {args.epochs} epochs, "
            f"batch {args.batch_size}",
            "",
            f"Command: `{cmd}`  ",
            f"Machine: {machine()} (CPU only; shared with other jobs, so times are indicative).",
            "",
            markdown_table(
                ["model", "test MSE", "ratio to PCA", "target", "parameters", "train seconds"],
                rows,
            ),
            "",
            "Test MSE is the mean squared error over all pixels of the 10,000 test images, "
            "pixels in [0, 1]; `pca` is scikit-learn's exact PCA wrapped as a linear autoencoder.",
        ]
    )
    update_section("reconstruction", body)
    print(body)


if __name__ == "__main__":
    main()
