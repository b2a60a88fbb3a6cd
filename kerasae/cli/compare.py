"""`kerasae compare`: several families at one latent size against PCA.

The work is kerasae.evaluation.comparison's; this module parses and reports.
"""

import os

from kerasae.cli import add_verbosity, verbosity
from kerasae.data.sources import resolve
from kerasae.errors import KerasaeError
from kerasae.models.registry import models_matching


def register(sub):
    p = sub.add_parser(
        "compare", help="train and compare models at one latent size, always against pca"
    )
    p.add_argument(
        "--dataset",
        default="digits",
        help="digits, fashion_mnist, mnist, cifar10, or a path (an image folder, "
        "TFRecord files, .npy, .npz, .csv; default digits)",
    )
    # imports TensorFlow: only when used
    from kerasae.cli.train import add_image_options

    add_image_options(p)
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument(
        "--models",
        default="ae,conv_ae",
        help="comma-separated names or globs, e.g. 'ae,*vae*'; pca is always added",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        help="comparison folder, one run per model inside "
        "(default runs/compare-DATASET-TIME); finished runs with "
        "the same settings are reused",
    )
    p.add_argument(
        "--retrain",
        action="store_true",
        help="train again even where OUT/MODEL holds a finished run",
    )

    add_verbosity(p)
    p.set_defaults(func=cmd_compare, check=check)


def check(args):
    """The sizes, the model names and the data source, before TensorFlow."""
    for flag, value in (
        ("--latent-dim", args.latent_dim),
        ("--epochs", args.epochs),
        ("--batch-size", args.batch_size),
    ):
        if value <= 0:
            raise KerasaeError(f"{flag} must be a positive integer, got {value}")
    models_matching(args.models)
    resolve(args.dataset)


def cmd_compare(args):
    from kerasae.evaluation.comparison import compare  # imports TensorFlow: only when used

    result = compare(
        dataset=args.dataset,
        latent_dim=args.latent_dim,
        models=args.models,
        epochs=args.epochs,
        out=args.out,
        batch_size=args.batch_size,
        seed=args.seed,
        retrain=args.retrain,
        verbose=verbosity(args),
        image_size=args.image_size,
        channels=args.channels,
        feature=args.feature,
    )
    with open(os.path.join(result["out"], "comparison.md"), encoding="utf-8") as f:
        print(f.read().rstrip())
    figures = ", ".join(os.path.basename(p) for p in result["figures"])
    if verbosity(args):
        print(f"wrote comparison.csv, comparison.md and {figures} in {result['out']}")
    return 0
