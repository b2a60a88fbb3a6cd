"""Annealed Langevin step size (Song and Ermon 2019, Algorithm 1): FID-C by epsilon.

Samples a trained `ncsn` run with T steps per level for each epsilon, scores each set
against Fashion-MNIST's training images (FID-C, precision, recall, classes;
kerasae.evaluation.quality)
next to the `vae` prior's samples of the same size (FID-C depends on the sample count),
and stores the rows in benchmarks/results/langevin_step_size.json. It chose the default
epsilon of `kerasae.samplers.annealed_langevin`.

    python benchmarks/langevin_step_size.py --run /tmp/kerasae-generation/ncsn_... \\
        --vae /tmp/kerasae-generation/vae --epsilons 1e-5,2e-5,5e-5 --samples 256
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.report import load_results, save_results  # noqa: E402

NAME = "langevin_step_size"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a finished ncsn run folder")
    p.add_argument("--vae", help="a finished vae run folder: its prior is the reference row")
    p.add_argument("--epsilons", default="1e-5,2e-5,5e-5")
    p.add_argument("--steps", type=int, default=100, help="T, steps per noise level")
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    from kerasae.data.sources import load_dataset
    from kerasae.evaluation.quality import generation_metrics
    from kerasae.runs.folder import load_run
    from kerasae.samplers import annealed_langevin

    data = load_dataset("fashion_mnist")
    results = load_results(NAME, {})

    def record(key, samples, seconds, **extra):
        m = generation_metrics(samples, data, seed=0)
        row = {
            "fid_c": m["fid_c"],
            "precision": m["precision"],
            "recall": m["recall"],
            "classes_covered": m["classes_covered"],
            "n_samples": len(samples),
            "seconds": round(seconds, 1),
            **extra,
        }
        results[key] = row
        save_results(NAME, results)
        print(key, row, flush=True)

    if args.vae:
        _, vae = load_run(args.vae)
        record(f"vae prior|n={args.samples}", vae.sample(args.samples, seed=args.seed), 0.0)
    _, model = load_run(args.run)
    for eps in (float(e) for e in args.epsilons.split(",")):
        start = time.perf_counter()
        x = annealed_langevin(
            model, args.samples, steps_per_level=args.steps, epsilon=eps, seed=args.seed
        )
        record(
            f"{os.path.basename(os.path.normpath(args.run))}|eps={eps:g}|T={args.steps}"
            f"|n={args.samples}",
            x,
            time.perf_counter() - start,
            epsilon=eps,
            steps_per_level=args.steps,
        )


if __name__ == "__main__":
    main()
