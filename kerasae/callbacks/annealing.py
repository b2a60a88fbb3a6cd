"""KL (beta) annealing: the model's beta moved from 0 to its target, epoch by epoch.

Schedules: linear warm-up (Bowman et al., "Generating Sentences from a Continuous Space",
CoNLL 2016), cyclical (Fu et al., "Cyclical Annealing Schedule", NAACL 2019) and a
logistic ramp.
"""

import math

import keras

from kerasae.errors import KerasaeError

SCHEDULES = ("linear", "cyclical", "sigmoid")


SIGMOID_STEEPNESS = 10.0  # logistic ramp from ~0.7% to ~99.3% of the target, then rescaled


def beta_at(epoch, schedule, target, warmup_epochs=10, cycles=4, ratio=0.5, total_epochs=None):
    """Beta for a 0-based `epoch`; every schedule starts at exactly 0 and reaches `target`.

    linear:   target * min(1, epoch / warmup_epochs)
    sigmoid:  a logistic ramp over the same warm-up, rescaled to hit 0 and target exactly
    cyclical: `cycles` periods over `total_epochs`; each rises linearly for the first
              `ratio` of its period, then holds target (Fu et al. 2019's R = 0.5)
    """
    if schedule == "linear":
        return target * min(1.0, epoch / warmup_epochs)
    if schedule == "sigmoid":
        t = min(1.0, epoch / warmup_epochs)
        s = [1.0 / (1.0 + math.exp(-SIGMOID_STEEPNESS * (u - 0.5))) for u in (0.0, t, 1.0)]
        return target * (s[1] - s[0]) / (s[2] - s[0])
    if schedule == "cyclical":
        if not total_epochs:
            raise KerasaeError("the cyclical beta schedule needs the total number of epochs")
        period = total_epochs / cycles
        position = (epoch % period) / period
        return target * min(1.0, position / ratio)
    raise KerasaeError(f"beta schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")


class BetaAnnealing(keras.callbacks.Callback):
    """Moves the model's beta from 0 to its target (`model.beta`) at each epoch's start.

    It assigns `model.beta_variable`, a non-trainable variable the compiled (XLA) train
    step reads, so no retracing is needed; the model logs the value as `beta`.
    """

    def __init__(
        self, schedule="linear", warmup_epochs=10, cycles=4, ratio=0.5, total_epochs=None
    ):
        super().__init__()
        if schedule not in SCHEDULES:
            raise KerasaeError(
                f"--beta-schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}"
            )
        for name, value in (("--beta-warmup", warmup_epochs), ("--beta-cycles", cycles)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise KerasaeError(f"{name} must be a positive integer, got {value!r}")
        if not 0 < ratio <= 1:
            raise KerasaeError(f"ratio must lie in (0, 1], got {ratio!r}")
        self.schedule, self.warmup_epochs = schedule, warmup_epochs
        self.cycles, self.ratio, self.total_epochs = cycles, ratio, total_epochs

    @staticmethod
    def check_model(model):
        if getattr(model, "beta_variable", None) is None:
            name = getattr(model, "registered_name", type(model).__name__)
            raise KerasaeError(
                f"model {name!r} has no beta (KL weight) to anneal; use "
                "--beta-schedule with a family that has one (vae, beta_vae, "
                "beta_tcvae, factor_vae, dip_vae, vamp)"
            )

    def value(self, epoch):
        total = self.total_epochs or (self.params or {}).get("epochs")
        return beta_at(
            epoch,
            self.schedule,
            float(self.model.beta),
            self.warmup_epochs,
            self.cycles,
            self.ratio,
            total,
        )

    def set_model(self, model):
        super().set_model(model)
        self.check_model(model)
        model.log_beta()  # before fit builds its step: `beta` is logged from the first epoch

    def on_train_begin(self, logs=None):
        self.check_model(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.beta_variable.assign(self.value(epoch))
