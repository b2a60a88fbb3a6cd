"""`kerasae fit-sampler RUN --sampler NAME [--param KEY=VALUE ...] [--seed S]`: fit a
latent sampler (kerasae.samplers) to a finished run's training codes and make it the
run's default, so `kerasae sample` and `kerasae export` generate from it."""

import os

from kerasae.cli import add_verbosity
from kerasae.params import parse_assignments
from kerasae.runs.folder import read_run_config
from kerasae.samplers.base import SAMPLERS


def register(sub):
    p = sub.add_parser(
        "fit-sampler",
        help="fit a latent sampler to a run's training codes (makes any model "
        "with an encoder generative)",
    )
    p.add_argument("run_dir")
    p.add_argument(
        "--sampler",
        required=True,
        metavar="NAME",
        help="gmm, gaussian, two_stage, prior, ... (see kerasae.samplers)",
    )
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="a sampler option (repeatable), e.g. n_components=20 for gmm",
    )
    p.add_argument("--seed", type=int, help="seeds the fit (default: the run's seed)")

    add_verbosity(p)
    p.set_defaults(func=cmd_fit_sampler, check=check)


def check(args):
    """The run folder, the sampler's name and the --param syntax, before TensorFlow."""
    read_run_config(args.run_dir)
    SAMPLERS.entry(args.sampler)
    parse_assignments(args.param)


def cmd_fit_sampler(args):
    # imports TensorFlow: only when used
    from kerasae.runs.samplers import fit_run_sampler, run_samplers_dir

    sampler = fit_run_sampler(
        args.run_dir, args.sampler, seed=args.seed, **parse_assignments(args.param)
    )
    folder = run_samplers_dir(args.run_dir, sampler.name)
    print(
        f"fitted the {sampler.describe()}; saved in {os.path.normpath(folder)}, now the "
        "run's default sampler"
    )
    return 0
