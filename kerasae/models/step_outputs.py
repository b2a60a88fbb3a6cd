"""The declared outputs of a train step: `loss_names`, `metric_names` and `aux_names`.

A family's `compute_losses` (plugin API 2) returns a dict: the terms of its objective
(`loss_names`, "loss" the total), diagnostics that are logged but not differentiated
(`metric_names`) and tensors only `after_step` needs (`aux_names`). Checking it once, as
the first step is traced, turns a typo or a forgotten `ops.mean` into one line that names
the class and the key, not a KeyError deep inside Keras.
"""

from kerasae.errors import KerasaeError


def check_step_outputs(model, outputs):
    """Raise KerasaeError unless `outputs` holds every declared loss and metric of `model`
    as a scalar and nothing undeclared (`aux_names` may have any shape)."""
    cls = type(model).__name__
    if not isinstance(outputs, dict) or "loss" not in outputs:
        raise KerasaeError(
            f"{cls}.compute_losses must return a dict with the total under "
            f"'loss', got {type(outputs).__name__}"
        )
    declared = (*model.loss_names, *model.metric_names)
    for key in declared:
        if key not in outputs:
            where = "loss_names" if key in model.loss_names else "metric_names"
            raise KerasaeError(
                f"{cls}.compute_losses did not return {key!r}, which "
                f"{cls}.{where} declares; return it or drop it from {where}"
            )
    for key, value in outputs.items():
        if key in model.aux_names:
            continue
        if key not in declared:
            raise KerasaeError(
                f"{cls}.compute_losses returned {key!r}, which is not declared; add it to "
                "metric_names (logged), loss_names (a term of the loss) or aux_names "
                "(passed to after_step only)"
            )
        shape = getattr(value, "shape", ())
        if len(shape) != 0:
            raise KerasaeError(
                f"{cls}.compute_losses returned {key!r} of shape "
                f"{tuple(shape)}; losses and metrics must be scalars "
                "(reduce it, e.g. with ops.mean)"
            )
