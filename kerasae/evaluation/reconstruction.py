"""Reconstruction metrics of a finished run: test MSE, PSNR and loss, streamed over batches."""

from __future__ import annotations

import os

import numpy as np

from kerasae.errors import KerasaeError
from kerasae.runs.data import EVAL_BATCH, batch_arrays, check_shape, open_data
from kerasae.runs.folder import load_run


def reconstruction_mse(model, batches):
    """Mean squared reconstruction error over every value of `batches`, summed in float64."""
    total, count = 0.0, 0
    for x in batch_arrays(batches):
        x_hat = model.reconstruct(x, batch_size=len(x))
        total += float(np.sum(np.square(x.astype("float64") - x_hat)))
        count += x.size
    if not count:
        raise KerasaeError("no examples to evaluate (the split is empty)")
    return total / count


def evaluate(
    run_dir: str | os.PathLike, dataset: str | None = None, verbose: bool = False
) -> dict:
    """Test-set reconstruction metrics of a finished run (`verbose`: Keras's progress bar),
    streamed over the test split."""
    config, model = load_run(run_dir)
    if not model.compiled:
        model.compile()
    data = open_data(config, dataset, scaling=config.get("scaling"))
    check_shape(data, model)
    model.reseed(config.get("seed", 0))  # a stochastic loss (vae's draws) repeats
    mse = reconstruction_mse(model, data.batches("test", EVAL_BATCH))
    loss = model.evaluate(
        data.batches("test", EVAL_BATCH), verbose=int(verbose), return_dict=True
    )["loss"]
    return {
        "run": run_dir,
        "model": config["model"],
        "dataset": data.name,
        "n_test": int(data.n_test),
        "test_mse": mse,
        "psnr": float(10 * np.log10(1.0 / max(mse, 1e-12))),
        "test_loss": float(loss),
    }
