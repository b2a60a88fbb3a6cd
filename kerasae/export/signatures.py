"""The named interface of each exported part: input `x` or `z`, outputs named after layers.

Every exporter (ONNX, SavedModel) wraps a part in the same `tf.function` with a dynamic
batch dimension and a dict of named outputs, so both formats expose identical names and
the manifest describes them once. A single-output encoder exports `z` and a single-output
decoder `x_hat`; a multi-output part (a VAE encoder's `[z_mean, z_log_var]`) names each
output after its Keras output layer, which is how the model's author named it.
"""

import dataclasses
import re

import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.models.base import Autoencoder

PARTS = ("encoder", "decoder", "scorer")
DEFAULT_INPUT = {"encoder": "x", "decoder": "z", "scorer": "x"}
DEFAULT_OUTPUT = {"encoder": "z", "decoder": "x_hat", "scorer": "score"}


@dataclasses.dataclass
class PartSignature:
    """Names and shapes of one part; shapes have `None` for the (dynamic) batch."""

    part: str
    input_name: str
    input_shape: tuple
    output_names: tuple
    output_shapes: tuple
    #: "float32", or an integer dtype for discrete outputs (a VQ encoder's code indices)
    output_dtypes: tuple = ()

    def describe(self):
        """The manifest entry: what a runtime needs to feed and read the part."""
        return {
            "inputs": [
                {"name": self.input_name, "shape": list(self.input_shape), "dtype": "float32"}
            ],
            "outputs": [
                {"name": n, "shape": list(s), "dtype": d}
                for n, s, d in zip(
                    self.output_names,
                    self.output_shapes,
                    self.output_dtypes or ("float32",) * len(self.output_names),
                )
            ],
        }


def _clean(name):
    """Output layer names become tensor names: keep them readable and ONNX-safe."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(name)).strip("_")
    return name or "out"


def _unique(names):
    seen, out = {}, []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n] - 1}")
    return tuple(out)


def _as_list(outputs):
    if isinstance(outputs, dict):
        return list(outputs.values()), [_clean(k) for k in outputs]
    if isinstance(outputs, (list, tuple)):
        return list(outputs), None
    return [outputs], None


class ScoreNet:
    """`model.score_tensor` as a part (x -> per-example score): what scorer.onnx holds, the
    very score `kerasae detect` computes, its fixed noise (a vae's) baked in."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x, training=False):
        return self.model.score_tensor(x)


def has_scorer(model):
    """False for a family that overrides `score` but not the traceable `score_tensor`: its
    scorer graph would compute another score than `detect`."""
    own = getattr(type(model), "score", None) is not Autoencoder.score
    return hasattr(model, "score_tensor") and not (
        own and getattr(type(model), "score_tensor", None) is Autoencoder.score_tensor
    )


def part_network(model, part):
    """What a part exports: `model.encoder`, `model.decoder` or a `ScoreNet`."""
    return ScoreNet(model) if part == "scorer" else getattr(model, part, None)


def part_signature(model, part):
    """The `PartSignature` of `model.encoder`, `model.decoder` or its scorer."""
    if part == "scorer":
        return PartSignature(
            part,
            "x",
            (None, *[int(d) for d in model.data_shape]),
            ("score",),
            ((None,),),
            ("float32",),
        )
    net = getattr(model, part, None)
    if net is None:
        raise KerasaeError(
            f"the model has no {part} network to export; a kerasae model sets "
            "it with self.set_networks(encoder, decoder)"
        )
    inputs = getattr(net, "inputs", None) or []
    if len(inputs) != 1:
        raise KerasaeError(
            f"the {part} has {len(inputs)} inputs; export supports parts with "
            "exactly one input tensor"
        )
    input_shape = (None, *[int(d) for d in inputs[0].shape[1:]])
    outputs, keyed = _as_list(net.outputs if len(net.outputs) > 1 else net.outputs[0])
    if len(outputs) == 1:
        names = (DEFAULT_OUTPUT[part],)
    else:
        layer_names = getattr(net, "output_names", None) or []
        names = (
            keyed
            or [_clean(n) for n in layer_names]
            or [f"{DEFAULT_OUTPUT[part]}_{i}" for i in range(len(outputs))]
        )
        if len(names) != len(outputs):
            names = [f"{DEFAULT_OUTPUT[part]}_{i}" for i in range(len(outputs))]
        names = _unique(names)
    if DEFAULT_INPUT[part] in names:
        raise KerasaeError(
            f"the {part} has an output named {DEFAULT_INPUT[part]!r}, the name "
            "of its input; rename that output layer"
        )
    shapes = tuple((None, *[int(d) for d in o.shape[1:]]) for o in outputs)
    # float outputs are float32 at the interface whatever the compute dtype; integers stay
    dtypes = tuple(str(o.dtype) if "int" in str(o.dtype) else "float32" for o in outputs)
    return PartSignature(part, DEFAULT_INPUT[part], input_shape, tuple(names), shapes, dtypes)


def serving_function(net, signature):
    """A traceable Python function: named input tensor -> dict of named output tensors."""
    names = signature.output_names

    def serve(tensor):
        out, _ = _as_list(net(tensor, training=False))
        return {n: o for n, o in zip(names, out)}

    return serve


def tensor_spec(signature):
    return tf.TensorSpec(signature.input_shape, tf.float32, name=signature.input_name)
