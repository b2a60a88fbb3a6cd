"""What `kerasae train` prints: the header before the first epoch, the summary after the
last, Keras's progress verbosity, and a note when a run is too short to learn."""

import math
import sys


def summary(model, history, out, history_path):
    losses = history.get("loss") or [float("nan")]
    print(
        f"trained {model} for {len(losses)} epoch(s): loss {losses[0]:.5f} -> "
        f"{losses[-1]:.5f}; run folder {out} (history in {history_path})"
    )


def keras_verbose(level):
    """Keras's fit verbosity: a live progress bar on a terminal, one line per epoch in a
    log file (a bar there is a wall of carriage returns), nothing with --quiet."""
    if level == 0:
        return 0
    return 1 if sys.stdout.isatty() or level == 2 else 2


#: fewer optimizer steps than this in a whole run rarely learn more than the mean image
FEW_STEPS = 500


def few_steps_note(n_train, batch_size, epochs):
    """A note for a run too short to learn (small data, few epochs), with the --epochs that
    gives FEW_STEPS steps; None otherwise."""
    per_epoch = max(1, math.ceil(n_train / batch_size))
    if per_epoch * epochs >= FEW_STEPS:
        return None
    enough = math.ceil(FEW_STEPS / per_epoch)
    return (
        f"only {per_epoch * epochs} training steps in all ({n_train:,} examples, batch "
        f"{batch_size}): too few to learn much; --epochs {enough} gives {per_epoch * enough}"
    )


def header(facts, model, level, resume):
    """What is about to train, printed before the first epoch (not with --quiet); with
    --verbose also the resolved settings and Keras's summary of each network."""
    if level == 0:
        return
    f = facts
    shape = "x".join(map(str, f["input_shape"]))
    if resume:
        done = f["resumed_from"] or 0
        print(
            f"resuming {f['out']} from epoch {done + 1} of {f['epochs']}"
            if done
            else f"resuming {f['out']}: no epoch had finished, starting at epoch 1 of "
            f"{f['epochs']}"
        )
    n_bad = f.get("skipped") or 0
    skipped = f" ({n_bad} undecodable file{'s' if n_bad != 1 else ''} skipped)" if n_bad else ""
    lines = [
        f"kerasae train: {f['model']} on {f['dataset']} ({f['n_train']} train / "
        f"{f['n_test']} test examples of shape {shape}){skipped}",
        f"  model     {f['model']}, latent_dim {f['latent_dim']}, "
        f"{f['parameters']:,} trainable parameters",
        f"  training  {f['epochs']} epoch{'s' if f['epochs'] != 1 else ''}, "
        f"batch {f['batch_size']}, Adam "
        f"{f['learning_rate']:g} ({f['lr_schedule']}), {f['precision']}",
        f"  device    {f['device']}, strategy {f['strategy']} ({f['replicas']} "
        f"replica{'s' if f['replicas'] != 1 else ''})",
        f"  run       {f['out']}",
    ]
    note = few_steps_note(f["n_train"], f["batch_size"] * f["replicas"], f["epochs"])
    if note:
        lines.append(f"  note      {note}")
    print("\n".join(lines), flush=True)
    if level == 2:
        for net in (model.encoder, model.decoder):
            net.summary(print_fn=lambda line, *_, **__: print(line))
        print(flush=True)
