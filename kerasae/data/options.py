"""How a run reads its data: --image-size, --channels and --feature, checked without TensorFlow.

A run records them in config.json, so evaluate, detect, compare, export and `--resume`
reopen the same examples the same way.
"""

from kerasae.errors import KerasaeError

DATA_OPTIONS = ("image_size", "channels", "feature")


def check_data_options(image_size, channels, feature):
    """`image_size` as a (height, width) tuple (or None); KerasaeError for bad values."""
    if feature is not None and (not isinstance(feature, str) or not feature):
        raise KerasaeError(f"--feature must be a TFRecord feature name, got {feature!r}")
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise KerasaeError(f"--channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
    if image_size is None:
        return None
    size = tuple(image_size) if isinstance(image_size, (list, tuple)) else (image_size,)
    if len(size) != 2 or any(
        isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in size
    ):
        raise KerasaeError(
            f"--image-size must be two positive integers HEIGHT,WIDTH, got {image_size!r}"
        )
    return size


def parse_image_size(text):
    """'64,64' (or '64x64') -> (64, 64): the argparse type of --image-size."""
    parts = str(text).replace("x", ",").split(",")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = None
    if size is None or len(size) != 2 or min(size) <= 0:
        raise KerasaeError(
            f"--image-size must be HEIGHT,WIDTH in pixels, e.g. 64,64; got {text!r}"
        )
    return size


def _get(config, key):
    return config.get(key) if isinstance(config, dict) else getattr(config, key, None)


def data_options(config):
    """{image_size, channels, feature} of a TrainConfig or a run's config.json, unset ones
    left out (a run that predates them reads its data as it always did)."""
    out = {}
    for key in DATA_OPTIONS:
        value = _get(config, key)
        if value is not None:
            out[key] = tuple(value) if key == "image_size" else value
    return out
