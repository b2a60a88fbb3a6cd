"""`MADE`: the masked autoencoder of Germain, Gregor, Murray and Larochelle, "MADE: Masked
Autoencoder for Distribution Estimation" (ICML 2015), as a plain Keras 3 layer.

`MADE(units, hidden_units=(h1, h2, ...), order=...)` maps x of shape (batch, units) to
(shift, log_scale), each (batch, units), where output i depends only on the inputs that come
before i in `order` (the autoregressive property: the Jacobian of either output with respect
to x is strictly lower-triangular once rows and columns are permuted into `order`). The flows
of IAF (Kingma et al. 2016) and MAF (Papamakarios et al. 2017) are built on it.

Degrees follow the paper: input d gets degree 1..D, its position in `order`; hidden unit k
of every layer gets degree 1 + (k mod (D - 1)) (the deterministic "sequential" assignment,
so the masks are functions of the config alone); a hidden unit sees units of degree <= its
own, an output of degree d sees hidden units of degree < d. Each kernel is multiplied by its
constant 0/1 mask in `call`, so the layer exports to ONNX as plain MatMul/Mul/Add and needs
nothing from tensorflow-probability (whose AutoregressiveNetwork is a tf-keras, Keras 2,
layer that cannot live inside a Keras 3 model).
"""

import keras
import numpy as np

from kerasae.errors import KerasaeError

ORDERS = ("left-to-right", "right-to-left")


def resolve_order(order, units):
    """`order` as a tuple of the dimensions in autoregressive order (a permutation of
    range(units)): "left-to-right" is 0..D-1, "right-to-left" its reverse."""
    if isinstance(order, str):
        if order not in ORDERS:
            raise KerasaeError(
                f"order must be one of {', '.join(ORDERS)} or a permutation, got {order!r}"
            )
        order = range(units) if order == "left-to-right" else range(units - 1, -1, -1)
    order = tuple(int(i) for i in order)
    if sorted(order) != list(range(units)):
        raise KerasaeError(f"order must be a permutation of 0..{units - 1}, got {list(order)}")
    return order


def made_masks(order, hidden_units):
    """The 0/1 masks (float32 numpy) of each hidden kernel and of the output kernels."""
    units = len(order)
    degrees = np.empty(units, dtype=np.int64)
    degrees[list(order)] = np.arange(1, units + 1)
    masks, previous = [], degrees
    for width in hidden_units:
        hidden = 1 + np.arange(width) % max(units - 1, 1)
        masks.append((hidden[None, :] >= previous[:, None]).astype("float32"))
        previous = hidden
    output = (degrees[None, :] > previous[:, None]).astype("float32")
    return masks, output


@keras.saving.register_keras_serializable(package="kerasae")
class MADE(keras.layers.Layer):
    """Masked autoregressive network: x -> (shift, log_scale), output i seeing x_<i in order.

    Args:
        units: D, the dimension of x (and of each output).
        hidden_units: widths of the masked hidden layers (may be empty: one masked affine map).
        order: "left-to-right", "right-to-left", or a permutation of range(D) listing the
            dimensions in autoregressive order (output order[j] depends on x[order[:j]]).
        activation: of the hidden layers.
        kernel_initializer: of the hidden kernels.
        output_initializer: of the two output kernels (default: `kernel_initializer`;
            "zeros" starts a flow at the identity, shift 0 and log_scale 0).
    """

    def __init__(
        self,
        units,
        hidden_units=(64, 64),
        order="left-to-right",
        activation="relu",
        kernel_initializer="glorot_uniform",
        output_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        if self.units < 1:
            raise KerasaeError(f"MADE units must be positive, got {units!r}")
        self.hidden_units = tuple(int(h) for h in hidden_units)
        if any(h < 1 for h in self.hidden_units):
            raise KerasaeError(f"MADE hidden_units must be positive, got {list(hidden_units)}")
        self.order = resolve_order(order, self.units)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_initializer = keras.initializers.get(output_initializer or kernel_initializer)
        self._hidden_masks, self._output_mask = made_masks(self.order, self.hidden_units)

    def build(self, input_shape):
        if input_shape[-1] != self.units:
            raise KerasaeError(
                f"MADE expects inputs of {self.units} features, got {input_shape[-1]}"
            )
        self.hidden = []
        previous = self.units
        for i, width in enumerate(self.hidden_units):
            kernel = self.add_weight(
                shape=(previous, width), initializer=self.kernel_initializer, name=f"kernel_{i}"
            )
            bias = self.add_weight(shape=(width,), initializer="zeros", name=f"bias_{i}")
            self.hidden.append((kernel, bias))
            previous = width
        self.shift_kernel = self.add_weight(
            shape=(previous, self.units), initializer=self.output_initializer, name="shift_kernel"
        )
        self.shift_bias = self.add_weight(
            shape=(self.units,), initializer="zeros", name="shift_bias"
        )
        self.log_scale_kernel = self.add_weight(
            shape=(previous, self.units),
            initializer=self.output_initializer,
            name="log_scale_kernel",
        )
        self.log_scale_bias = self.add_weight(
            shape=(self.units,), initializer="zeros", name="log_scale_bias"
        )

    def call(self, x):
        h = x
        for (kernel, bias), mask in zip(self.hidden, self._hidden_masks):
            h = self.activation(keras.ops.matmul(h, kernel * mask) + bias)
        mask = self._output_mask
        shift = keras.ops.matmul(h, self.shift_kernel * mask) + self.shift_bias
        log_scale = keras.ops.matmul(h, self.log_scale_kernel * mask) + self.log_scale_bias
        return shift, log_scale

    def compute_output_shape(self, input_shape):
        return tuple(input_shape), tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "hidden_units": list(self.hidden_units),
            "order": list(self.order),
            "activation": keras.activations.serialize(self.activation),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "output_initializer": keras.initializers.serialize(self.output_initializer),
        }
