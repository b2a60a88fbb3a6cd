"""`TrainConfig`: the settings of one training run (flax-style, one dataclass), and the one
source of `kerasae train`'s flags.

Each field carries its flag's help text, type and choices (`setting`), so the CLI, a
config file's keys, what `--resume` may change and `--help`'s defaults all derive from
this class. Checking a config imports neither TensorFlow nor a model: a bad value fails in
a fraction of a second, before anything heavy starts.
"""

import dataclasses

from kerasae.data.options import check_data_options, parse_image_size
from kerasae.distribute import PRECISIONS, STRATEGIES
from kerasae.distribute import check as check_distribute
from kerasae.errors import KerasaeError
from kerasae.samplers.base import SAMPLERS

LR_SCHEDULES = ("constant", "cosine")
BETA_SCHEDULES = ("linear", "cyclical", "sigmoid")


def setting(default, help, *, type=None, choices=None, metavar=None, resume=False, flag=True):
    """A TrainConfig field with its `kerasae train` flag: `help` (the default is added),
    the argparse `type` and `choices`, and whether `--resume` may change it."""
    meta = {
        "help": help,
        "type": type,
        "choices": choices,
        "metavar": metavar,
        "resume": resume,
        "flag": flag,
    }
    if default == {}:
        return dataclasses.field(default_factory=dict, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class TrainConfig:
    """Training settings; model constructor arguments live in `params`."""

    model: str = setting(None, "a registered model name (see `kerasae list`)")
    dataset: str = setting(
        "digits",
        "digits, fashion_mnist, mnist, cifar10, dsprites (or dsprites:N, N of its images), a "
        "plugin's name (`kerasae list --kind datasets`), or a path: an image folder "
        "(streamed), TFRecord files (a quoted glob or a folder), .npy, .npz, .csv",
    )
    epochs: int = setting(10, "passes over the training split", type=int, resume=True)
    batch_size: int = setting(
        128, "examples per step (global: split over a strategy's replicas)", type=int
    )
    latent_dim: int = setting(16, "size of the code", type=int)
    learning_rate: float = setting(
        None,
        "Adam learning rate (default: the model's own, 1e-3; conv_ae 2e-3)",
        type=float,
        resume=True,
    )
    lr_schedule: str = setting(
        "constant",
        "constant, or cosine: decay the rate to 0 over the run (Loshchilov and Hutter)",
        choices=LR_SCHEDULES,
    )
    params: dict = setting({}, "model constructor arguments (--param KEY=VALUE)", flag=False)
    seed: int = setting(0, "seeds weights, shuffling, noise and draws", type=int)
    out: str = setting(None, "run folder (default runs/MODEL-DATASET-TIME)", resume=True)
    beta_schedule: str = setting(
        None, "anneal the KL weight of vae/beta_vae from 0 to its beta", choices=BETA_SCHEDULES
    )
    beta_warmup: int = setting(
        10,
        "epochs of the linear/sigmoid ramp from 0 to the model's beta",
        type=int,
        metavar="EPOCHS",
    )
    beta_cycles: int = setting(4, "periods of the cyclical schedule over the run", type=int)
    strategy: str = setting(
        "default",
        "tf.distribute: mirrored = all local GPUs (or CPU devices), multiworker = "
        "the machines in TF_CONFIG; --batch-size is global",
        choices=STRATEGIES,
        resume=True,
    )
    precision: str = setting(
        "float32", "layer compute dtype (losses stay float32)", choices=PRECISIONS
    )
    # how streamed images are read (folders, TFRecord): evaluate, detect and resume reopen
    # the data the same way; None: what the data itself says (kerasae.data.load_dataset)
    image_size: tuple = setting(
        None,
        "resize every image (folders, TFRecord) to H,W pixels (default: the size of "
        "the first image)",
        type=parse_image_size,
        metavar="H,W",
    )
    channels: int = setting(
        None,
        "1 (greyscale) or 3 (RGB) channels per image (default: those of the first image)",
        type=int,
        choices=(1, 3),
    )
    feature: str = setting(
        None, "the TFRecord feature holding the encoded image (default image)", metavar="NAME"
    )
    sampler: str = setting(
        None,
        "fit this latent sampler to the training codes when training ends (gmm, "
        "gaussian, two_stage, prior, ...): how `kerasae sample` and an export generate; "
        "makes any model with an encoder generative",
        metavar="NAME",
    )
    overwrite: bool = setting(False, "replace a finished run in --out", flag=False)

    def check(self):
        """Refuse, with a one-line KerasaeError, a setting that cannot run (no TensorFlow)."""
        if not self.model:
            raise KerasaeError("no model given; pass --model NAME (see `kerasae list`)")
        for key in ("epochs", "batch_size", "latent_dim", "beta_warmup", "beta_cycles"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise KerasaeError(f"{flag_of(key)} must be a positive integer, got {value!r}")
        lr = self.learning_rate
        if lr is not None and (
            isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0
        ):
            raise KerasaeError(f"--learning-rate must be positive, got {self.learning_rate!r}")
        for key in ("lr_schedule", "beta_schedule"):
            allowed = field(key).metadata["choices"]
            if getattr(self, key) is not None and getattr(self, key) not in allowed:
                raise KerasaeError(
                    f"{flag_of(key)} must be one of {', '.join(allowed)}, got "
                    f"{getattr(self, key)!r}"
                )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise KerasaeError(f"--seed must be an integer, got {self.seed!r}")
        check_distribute(self.strategy, self.precision)
        self.image_size = check_data_options(self.image_size, self.channels, self.feature)
        if self.sampler is not None:  # an unknown name fails before any data is read
            SAMPLERS.entry(self.sampler)
        return self


def field(name):
    return next(f for f in dataclasses.fields(TrainConfig) if f.name == name)


def flag_of(name):
    return "--" + name.replace("_", "-")


#: the settings a flag or a config file's top level may give (not params or overwrite)
TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["flag"])
#: what `--resume` takes (the run folder) and may change: the rest is the run's own, from
#: its config.json
RESUME_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["resume"])
RESUME_CHANGES = tuple(k for k in RESUME_KEYS if k != "out")
