"""`kerasae evaluate RUN_DIR`: test reconstruction metrics of a finished run; with
`--disentanglement`, the disentanglement metrics of a run on a factor dataset."""

import json

import kerasae.evaluation.disentanglement_run as disentanglement_run
from kerasae.cli import add_verbosity, verbosity
from kerasae.data.sources import resolve
from kerasae.errors import KerasaeError
from kerasae.runs.folder import read_run_config
from kerasae.samplers.base import SAMPLERS


def register(sub):
    p = sub.add_parser("evaluate", help="test reconstruction MSE and PSNR of a run")
    p.add_argument("run_dir")
    p.add_argument("--dataset", help="evaluate on other data of the same shape")
    p.add_argument(
        "--json", action="store_true", help="print the metrics as one JSON object on the last line"
    )
    p.add_argument(
        "--generation",
        action="store_true",
        help="also sample quality (labelled data): FID-C (FID in the features "
        "of a cached classifier trained on the data, not Inception FID), "
        "precision/recall (k=3) and classes covered",
    )
    p.add_argument(
        "--sampler",
        metavar="NAME",
        help="latent sampler for --generation (default: the run's fitted one, "
        "else the model's prior)",
    )
    p.add_argument(
        "--samples", type=int, default=2000, help="samples drawn for --generation (default 2000)"
    )
    p.add_argument(
        "--log-likelihood",
        action="store_true",
        help="also the importance-sampled test log p(x) in nats (Burda et al. "
        "2016; models with a posterior: vae, iwae, vamp, ...)",
    )
    p.add_argument(
        "--k",
        type=int,
        default=1000,
        help="importance samples per example for --log-likelihood (default 1000)",
    )
    p.add_argument(
        "--disentanglement",
        action="store_true",
        help="also MIG, SAP, DCI, modularity, explicitness, BetaVAE and FactorVAE scores "
        "(data with factors: dsprites); writes RUN_DIR/disentanglement.json and a "
        "traversal with each dimension named after its factor",
    )

    add_verbosity(p)
    p.set_defaults(func=cmd_evaluate, check=check)


def check(args):
    """The flags, the run folder, --dataset and --sampler, before TensorFlow."""
    if args.sampler and not args.generation:
        raise KerasaeError("--sampler chooses the generator for --generation; add --generation")
    for flag, value in (("--samples", args.samples), ("--k", args.k)):
        if value <= 0:
            raise KerasaeError(f"{flag} must be a positive integer, got {value}")
    config = read_run_config(args.run_dir)
    if args.dataset:
        resolve(args.dataset)
    if args.disentanglement:
        disentanglement_run.check_factor_dataset(config, args.dataset)
    if args.sampler:
        SAMPLERS.entry(args.sampler)


def cmd_evaluate(args):
    # imports TensorFlow: only when used
    from kerasae.evaluation.reconstruction import evaluate

    likelihood = None
    if args.log_likelihood:  # first: a model without a posterior fails before any work
        # imports TensorFlow: only when used
        from kerasae.evaluation.likelihood import evaluate_run

        likelihood = evaluate_run(args.run_dir, dataset=args.dataset, k=args.k)
    metrics = evaluate(args.run_dir, dataset=args.dataset, verbose=verbosity(args) == 2)
    if likelihood is not None:
        metrics["log_likelihood"] = likelihood
    if args.generation:
        # imports TensorFlow: only when used
        from kerasae.evaluation.quality import evaluate_generation

        metrics["generation"] = evaluate_generation(
            args.run_dir, dataset=args.dataset, n_samples=args.samples, sampler=args.sampler
        )
    if args.disentanglement:
        metrics["disentanglement"] = disentanglement_run.evaluate_disentanglement(
            args.run_dir, dataset=args.dataset
        )
    if args.json:
        print(json.dumps(metrics, sort_keys=True))
    else:
        print(
            f"{metrics['model']} on {metrics['dataset']} ({metrics['n_test']} test examples): "
            f"test MSE {metrics['test_mse']:.5f}, PSNR {metrics['psnr']:.2f} dB, "
            f"model loss {metrics['test_loss']:.5f}"
        )
        if likelihood is not None:
            print(
                f"log-likelihood: {likelihood['nats']:.2f} nats "
                f"(± {likelihood['stderr']:.2f}) with k={likelihood['k']}"
            )
        if args.generation:
            # imports TensorFlow: only when used
            from kerasae.evaluation.quality import describe

            print(describe(metrics["generation"]), end="")
        if args.disentanglement:
            print(disentanglement_run.describe(metrics["disentanglement"]), end="")
    return 0
