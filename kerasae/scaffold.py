"""`kerasae new-plugin`: write a new plugin distribution, ready to install and test.

The plugin follows docs/plugins.md and the example in plugins/kerasae-contractive: a
`kerasae-NAME` distribution whose `kerasae_NAME.model` registers one model, written
against plugin API version 2 (`set_networks`, `loss_names` and `metric_names`), that
trains as generated (a dense autoencoder with a small L2 code penalty, to be replaced)
and whose test suite is kerasae's own conformance check.

The pyproject asks only for `setuptools>=61` and names no license, so `pip install
--no-build-isolation` works offline with the setuptools 65.5 that a Python 3.11 venv
starts with, and isolated builds with today's setuptools (84) warn about nothing: the
SPDX-string license needs setuptools >= 77, and the table form is deprecated there
(unsupported after 2027-02-18). The author adds a license once they choose one. setuptools older
than 70.1 builds wheels through the `wheel` package, which a kerasae environment has
(TensorFlow depends on astunparse, which depends on wheel).
"""

import importlib.metadata
import keyword
import os
import re
import string
from collections import namedtuple

from kerasae.errors import KerasaeError
from kerasae.models.registry import get_entry, list_models

PluginNames = namedtuple("PluginNames", "name dist package model class_name")

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)*")
_MODEL = re.compile(r"[a-z][a-z0-9_]*")


def plugin_names(name, model=None):
    """The names one plugin uses, validated; a bad or taken name raises KerasaeError."""
    if name.lower().startswith("kerasae-") or name.lower().startswith("kerasae_"):
        raise KerasaeError(
            f"plugin name {name!r} already starts with 'kerasae-': give only "
            f"the part after it ({name[8:]!r}), the distribution is kerasae-NAME"
        )
    if not _NAME.fullmatch(name):
        hint = f" (e.g. {name.lower()!r})" if _NAME.fullmatch(name.lower()) else " (e.g. 'my-vae')"
        raise KerasaeError(
            f"plugin name {name!r} is not valid: use lowercase letters and "
            f"digits, starting with a letter, joined by '-' or '_'{hint}"
        )
    suffix = re.sub(r"[-.]", "_", name)
    if model is None:
        model = suffix
    elif not _MODEL.fullmatch(model) or keyword.iskeyword(model):
        suggestion = re.sub(r"[^a-z0-9_]", "_", model.lower()).strip("_")
        hint = f" (e.g. --model {suggestion})" if _MODEL.fullmatch(suggestion) else ""
        raise KerasaeError(
            f"model name {model!r} is not valid: use a lowercase Python "
            f"identifier (letters, digits and '_', starting with a letter){hint}"
        )

    if model in list_models():
        owner = get_entry(model).dist
        flag = "a different --model" if name != model else "a different NAME or --model"
        raise KerasaeError(
            f"model name {model!r} is already registered by distribution "
            f"{owner!r}: choose {flag} (`kerasae list` shows the names in use)"
        )
    dist = f"kerasae-{name}"
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        raise KerasaeError(
            f"distribution {dist!r} is already installed: choose another NAME "
            f"(or `pip uninstall {dist}` first)"
        )
    class_name = "".join(part.capitalize() for part in model.split("_") if part)
    if class_name in ("Autoencoder", "KerasaeError"):  # the names model.py imports
        class_name += "Model"
    return PluginNames(name, dist, f"kerasae_{suffix}", model, class_name)


def write_plugin(name, model=None, out=None):
    """Write the plugin distribution for `name` into `out` (default ./kerasae-NAME), which
    must not exist or be empty: no file is ever overwritten. Returns the absolute path."""
    names = plugin_names(name, model)
    out = os.path.abspath(out or names.dist)
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise KerasaeError(f"{out} is a file: choose another --out (a new or empty folder)")
        if os.listdir(out):
            raise KerasaeError(
                f"{out} already exists and is not empty: new-plugin never "
                "overwrites files; choose another --out or remove that folder"
            )
    values = names._asdict()
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"src/{names.package}/__init__.py": INIT,
        f"src/{names.package}/model.py": MODEL,
        f"tests/test_{names.model}.py": TEST,
    }
    for relative, template in files.items():
        path = os.path.join(out, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "x", encoding="utf-8") as f:  # "x": never replace a file
            f.write(string.Template(template).substitute(values))
    return out


PYPROJECT = """\
# A kerasae plugin (docs/plugins.md in kerasae). `pip install --no-build-isolation -e .`
# uses the setuptools already installed: >=61 reads this file. Add your license as
# `license = "SPDX-ID"` once your builds use setuptools >= 77 (older ones reject that
# form, and the table form `{text = ...}` is deprecated from 77 on).
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "The $model model for kerasae, as a plugin"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["kerasae>=0.3"]  # plugin API 2 with NetworkAutoencoder (kerasae 0.3)

[project.optional-dependencies]
test = ["pytest>=8"]

# The line that makes `kerasae list`, `create_model("$model")` and
# `kerasae train --model $model` find the model. Nothing is imported until it is used.
[project.entry-points."kerasae.models"]
$model = "$package.model:$class_name"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
filterwarnings = ["ignore::DeprecationWarning"]
"""

INIT = '''\
"""$dist: the `$model` model as a kerasae plugin.

Importing this package imports no TensorFlow; kerasae imports `$package.model`
through the entry point only when `$model` is used.
"""
__version__ = "0.1.0"
'''

MODEL = '''\
"""`$model`: <the model's name> (<authors>, <venue and year>).

Cite the paper this module implements here: title, authors, venue, and a link (arXiv or
DOI), then its objective in one line. As generated, the model is a working placeholder,
a dense autoencoder with a small L2 penalty on the code:

    loss = reconstruction(x, g(f(x))) + code_weight * mean ||f(x)||^2 / latent_dim

Written only against kerasae's plugin API (version 2): `NetworkAutoencoder`,
`register_model`, `KerasaeError`. The guide is docs/plugins.md in kerasae.
"""
from keras import ops

from kerasae import register_model
from kerasae.errors import KerasaeError
from kerasae.models import NetworkAutoencoder


@register_model("$model")
class $class_name(NetworkAutoencoder):
    """Dense autoencoder with an L2 code penalty (a placeholder: describe your model here)."""

    # Each name gets a Mean tracker, so it appears in history.csv and TensorBoard:
    # loss_names are terms of the objective, metric_names are logged but not trained on.
    loss_names = ("loss", "reconstruction", "code_penalty")
    metric_names = ("code_norm",)
    tiny_config = {"latent_dim": 2, "hidden_units": (16,)}  # what the conformance test builds
    kerasae_api_version = 2

    # Declare only what the model adds (or whose default it changes): input_shape,
    # latent_dim, architecture, hidden_units, ..., encoder and decoder are inherited, and
    # the merged signature is the config (--param, get_config, kerasae info).
    def __init__(self, *, hidden_units=(256,), code_weight=1e-3, **kwargs):
        super().__init__(hidden_units=hidden_units, **kwargs)
        if not code_weight >= 0:
            raise KerasaeError(f"code_weight must be >= 0 (the penalty's weight), "
                               f"got {code_weight!r}")
        self.code_weight = float(code_weight)
        self.resolve_networks()  # checks the architecture against the data
        # Plain keras.Models (the architecture's, or the user's own): what `kerasae export`
        # exports.
        self.set_networks(self.build_encoder(), self.build_decoder())

    def compute_losses(self, x, training=False):
        """The objective: replace the code penalty with your model's terms.

        Return scalars: the total under "loss", plus every name in `loss_names` and
        `metric_names`. The base class owns the gradient tape and the optimizer step.
        """
        z = self.encoder(x, training=training)
        reconstruction = self.reconstruction_loss(x, self.decoder(z, training=training))
        squared_norm = ops.sum(ops.square(z), axis=-1)
        code_penalty = ops.mean(squared_norm) / self.latent_dim
        return {"loss": reconstruction + self.code_weight * code_penalty,
                "reconstruction": reconstruction, "code_penalty": code_penalty,
                "code_norm": ops.mean(ops.sqrt(squared_norm))}
'''

TEST = '''\
"""Tests for the `$model` plugin; run them after installing it (see README.md).

`check_model` runs the checks kerasae runs on its own models (build, shapes, config, a
short fit lowers the loss, save/load, and ONNX export when kerasae[onnx] is installed).
Add tests of what is specific to your model below it.
"""
from kerasae.testing import check_model


def test_conformance():
    check_model("$model", input_shape=(8, 8, 1))
'''

README = """\
# $dist

The `$model` model as a **kerasae plugin**. Describe the model and cite its paper here.

## Install

```bash
pip install --no-build-isolation -e .    # into the environment that has kerasae
```

`--no-build-isolation` builds with the setuptools already installed (any >= 61), so
it works offline. setuptools older than 70.1 also needs the `wheel` package, which a
kerasae environment has (TensorFlow depends on it); in a bare venv, drop the flag or
`pip install wheel` first.

## Use

```bash
kerasae list $model                     # $model ... [$dist]
kerasae info $model                     # every parameter with its default
kerasae train --model $model --dataset digits --epochs 2
```

or from Python: `kerasae.create_model("$model", input_shape=(28, 28, 1))`.

## Test

```bash
pip install --no-build-isolation -e ".[test]"
python -m pytest -q
```

## Next

Replace `compute_losses` (and the networks, if need be) in `src/$package/model.py`,
update `loss_names`/`metric_names` and the docstrings, and add tests of what is specific
to your model next to the conformance test. The guide is `docs/plugins.md` in kerasae;
`plugins/kerasae-contractive/` there is a complete example.
"""
