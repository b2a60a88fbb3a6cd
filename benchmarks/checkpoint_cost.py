"""What crash safety costs: the per-epoch checkpoint write and the restore on --resume.

For each model at Fashion-MNIST size (28x28x1, latent 16, default widths) it times
`RunCheckpoint.save` (weights + every optimizer's state to a temporary name, fsync,
rename, then state.json and history.csv the same way) and `checkpoints.restore` (one
warm-up step that builds the optimizers, then the load). No training: the figures do
not depend on the data, only on the number of variables.

    .venv/bin/python benchmarks/checkpoint_cost.py [--models ae conv_ae aae] [--repeats 5]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def measure(name, repeats, folder):
    import keras

    from kerasae.models.registry import create_model
    from kerasae.runs import checkpoints

    def build():
        model = create_model(name, input_shape=(28, 28, 1), latent_dim=16)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model

    x = np.random.default_rng(0).random((128, 28, 28, 1), dtype=np.float32)
    model = build()
    model.train_on_batch(x)  # optimizer state exists, as after an epoch
    ckpt = checkpoints.RunCheckpoint(os.path.join(folder, name), os.path.join(folder, "h.csv"))
    ckpt.set_model(model)
    saves = []
    for epoch in range(repeats):
        t = time.perf_counter()
        ckpt.on_epoch_end(epoch, {"loss": 0.1, "val_loss": 0.1})
        saves.append(time.perf_counter() - t)
    state = checkpoints.read_state(os.path.join(folder, name))
    restores = []
    for _ in range(max(1, repeats // 2)):
        fresh = build()
        t = time.perf_counter()
        checkpoints.restore(fresh, state, x)
        restores.append(time.perf_counter() - t)
    n_vars = sum(int(np.prod(v.shape)) for v in model.weights)
    size = os.path.getsize(state["path"]) / 2**20
    return [
        name,
        f"{n_vars:,}",
        f"{size:.1f}",
        f"{1000 * np.median(saves):.0f}",
        f"{1000 * np.median(restores):.0f}",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ae", "conv_ae", "aae"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--no-write", action="store_true", help="print, do not update BENCHMARKS.md"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(name, args.repeats, folder) for name in args.models]
    from benchmarks.report import machine, markdown_table, update_section

    models, reps = " ".join(args.models), args.repeats
    table = markdown_table(
        [
            "model",
            "model weights",
            "checkpoint MiB (incl. Adam state)",
            "save per epoch, ms (median)",
            "restore on --resume, ms",
        ],
        rows,
    )
    print(table)
    if args.no_write:
        return
    update_section(
        "checkpoint_cost",
        f"""## Crash safety: checkpoint cost per epoch

Each epoch's checkpoint (weights and every optimizer's state, written to a temporary name,
fsynced and renamed, then `state.json` and `history.csv`) and the restore that
`kerasae train --resume` does (a warm-up step that builds the optimizers, then the load).
Fashion-MNIST-sized models (28x28x1, latent 16, default widths), CPU only (GPU figures not
measured); machine: {machine()}, shared with other jobs, so treat the times as upper bounds.
The restore time is mostly the tracing of the train step, which the first epoch of any
`fit` pays anyway; the load itself is a small part of it.

{table}

Reproduce: `.venv/bin/python benchmarks/checkpoint_cost.py --models {models} --repeats {reps}`
""",
    )


if __name__ == "__main__":
    main()
