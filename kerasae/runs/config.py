"""`TrainConfig`: the settings of one training run (flax-style, one dataclass).
"""
import dataclasses
from kerasae.errors import KerasaeError


LR_SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass
class TrainConfig:
    """Training settings (flax-style: one dataclass); model kwargs live in `params`."""

    model: str
    dataset: str = "digits"
    epochs: int = 10
    batch_size: int = 128
    latent_dim: int = 16
    learning_rate: float = None  # None: the model's default_learning_rate
    lr_schedule: str = "constant"  # or cosine: decay to 0 over the run (Loshchilov and Hutter)
    params: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    out: str = None
    beta_schedule: str = None  # KL annealing for models with a beta: linear, cyclical, sigmoid
    beta_warmup: int = 10  # epochs of the linear/sigmoid ramp from 0 to the model's beta
    beta_cycles: int = 4  # periods of the cyclical schedule over the run
    strategy: str = "default"  # tf.distribute: default, mirrored, multiworker (kerasae.distribute)
    precision: str = "float32"  # or mixed_float16 / mixed_bfloat16 (losses stay float32)
    # how streamed images are read (folders, TFRecord): evaluate, detect and resume reopen
    # the data the same way; None: what the data itself says (kerasae.data.load_dataset)
    image_size: tuple = None  # (height, width) every image is resized to
    channels: int = None  # 1 or 3
    feature: str = None  # the TFRecord feature holding the image (default "image")
    sampler: str = None  # a latent sampler fitted when training ends (kerasae.samplers)
    overwrite: bool = False

    def check(self):
        for key in ("epochs", "batch_size", "latent_dim"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                flag = "--" + key.replace("_", "-")
                raise KerasaeError(f"{flag} must be a positive integer, got {value!r}")
        lr = self.learning_rate
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                               or lr <= 0):
            raise KerasaeError(f"--learning-rate must be positive, got {self.learning_rate!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise KerasaeError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got "
                               f"{self.lr_schedule!r}")
        from kerasae.distribute import check as check_distribute
        from kerasae.data.options import check_data_options

        check_distribute(self.strategy, self.precision)
        self.image_size = check_data_options(self.image_size, self.channels, self.feature)
        if self.sampler is not None:  # an unknown name fails before any data is read
            from kerasae.samplers.base import create_sampler

            create_sampler(self.sampler)
