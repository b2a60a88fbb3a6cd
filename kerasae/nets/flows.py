"""Normalizing flows of a posterior, each transform and its log-determinant written once.

Planar and radial flows: Rezende and Mohamed, "Variational Inference with Normalizing
Flows" (ICML 2015), eqs. 10-14 and appendix A. Inverse autoregressive flow: Kingma,
Salimans, Jozefowicz, Chen, Sutskever and Welling, "Improved Variational Inference with
Inverse Autoregressive Flow" (NeurIPS 2016), its numerically stable update (algorithm 1):

    planar   f(z) = z + u_hat tanh(w.z + b),  log|det| = log|1 + u_hat.psi(z)|,
             psi(z) = (1 - tanh^2(w.z + b)) w; u_hat = u + (m(w.u) - w.u) w / |w|^2 with
             m(a) = -1 + softplus(a), so w.u_hat > -1 and f is invertible (appendix A.1)
    radial   f(z) = z + beta h(r) (z - z0), r = |z - z0|, h(r) = 1 / (alpha + r),
             log|det| = (d - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r);
             alpha = exp(log_alpha) > 0 and beta = -alpha + softplus(beta_raw) >= -alpha,
             the constraint that keeps f invertible (appendix A.2)
    iaf      [m, s] = MADE(z), sigma = sigmoid(s + gate_bias), f(z) = sigma z + (1 - sigma) m,
             log|det| = sum log sigma (the Jacobian is triangular in MADE's order)

`FlowStack(("planar", "radial", "iaf", ...))` chains them: `call(z)` is z_K = f_K o ... o
f_1(z) (what an exported encoder computes), `transform(z)` gives (z_K, sum_k log|det df_k/dz|)
(what the objective needs). The parameters of planar and radial flows are global weights
of the layer, as in pythae's VAE_LinNF (not amortized by the encoder, as in the paper);
successive IAF steps reverse MADE's order. Plain ops throughout, so tf2onnx exports them.
"""

import keras
from keras import ops

from kerasae.errors import KerasaeError
from kerasae.nets.made import MADE

FLOWS = ("planar", "radial", "iaf")


def planar(z, w, u, b):
    """(f(z), log|det df/dz|) of the planar flow with the invertible u_hat."""
    wu = ops.sum(w * u)
    u_hat = u + (ops.softplus(wu) - 1.0 - wu) * w / ops.sum(ops.square(w))
    h = ops.tanh(ops.matmul(z, w[:, None])[:, 0] + b)  # (batch,)
    f = z + h[:, None] * u_hat[None]
    # 1 + (1 - h^2) w.u_hat > 0 since w.u_hat > -1; the floor only guards underflow
    det = 1.0 + (1.0 - ops.square(h)) * ops.sum(w * u_hat)
    return f, ops.log(ops.maximum(det, 1e-30))


def radial(z, z0, log_alpha, beta_raw):
    """(f(z), log|det df/dz|) of the radial flow, beta constrained to >= -alpha."""
    alpha = ops.exp(log_alpha)
    beta = -alpha + ops.softplus(beta_raw)
    diff = z - z0[None]
    r = ops.sqrt(ops.sum(ops.square(diff), axis=-1) + 1e-12)  # (batch,), smooth at z0
    h = 1.0 / (alpha + r)
    f = z + (beta * h)[:, None] * diff
    dim = ops.cast(ops.shape(z)[-1], z.dtype)
    # h'(r) = -1 / (alpha + r)^2, so 1 + beta h + beta h' r = 1 + beta alpha / (alpha + r)^2;
    # log(1 + .), not log1p: tf2onnx has no Log1p
    log_det = (dim - 1.0) * ops.log(1.0 + beta * h) + ops.log(1.0 + beta * alpha * ops.square(h))
    return f, log_det


def iaf_step(z, shift, gate_logit):
    """(f(z), log|det df/dz|) of IAF's gated update, m = `shift`, s = `gate_logit`."""
    sigma = ops.sigmoid(gate_logit)
    f = sigma * z + (1.0 - sigma) * shift
    return f, ops.sum(ops.log_sigmoid(gate_logit), axis=-1)


@keras.saving.register_keras_serializable(package="kerasae")
class PlanarFlow(keras.layers.Layer):
    """z -> (f(z), log|det|): one planar flow (global w, u, b; N(0, 1) init as pythae)."""

    def build(self, input_shape):
        dim, init = int(input_shape[-1]), keras.initializers.RandomNormal(stddev=1.0)
        self.w = self.add_weight(shape=(dim,), initializer=init, name="w")
        self.u = self.add_weight(shape=(dim,), initializer=init, name="u")
        self.b = self.add_weight(shape=(), initializer=init, name="b")

    def call(self, z):
        return planar(z, self.w, self.u, self.b)


@keras.saving.register_keras_serializable(package="kerasae")
class RadialFlow(keras.layers.Layer):
    """z -> (f(z), log|det|): one radial flow (global z0, alpha, beta; N(0, 1) init as pythae)."""

    def build(self, input_shape):
        dim, init = int(input_shape[-1]), keras.initializers.RandomNormal(stddev=1.0)
        self.z0 = self.add_weight(shape=(dim,), initializer=init, name="z0")
        self.log_alpha = self.add_weight(shape=(), initializer=init, name="log_alpha")
        self.beta_raw = self.add_weight(shape=(), initializer=init, name="beta")

    def call(self, z):
        return radial(z, self.z0, self.log_alpha, self.beta_raw)


@keras.saving.register_keras_serializable(package="kerasae")
class IAFStep(keras.layers.Layer):
    """z -> (f(z), log|det|): one IAF step on a MADE of `hidden_units` in `order`.

    `gate_bias` is added to MADE's s, so sigma starts near sigmoid(gate_bias) and each step
    starts close to the identity (the paper: s "sufficiently positive, close to +1 or +2").
    """

    def __init__(
        self, units, hidden_units=(128, 128, 128), order="left-to-right", gate_bias=1.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.gate_bias = float(gate_bias)
        self.made = MADE(units, hidden_units, order=order, dtype=self.dtype_policy, name="made")

    def build(self, input_shape):
        self.made.build(input_shape)

    def call(self, z):
        shift, s = self.made(z)
        return iaf_step(z, shift, s + self.gate_bias)

    def get_config(self):
        made = self.made
        return {
            **super().get_config(),
            "units": made.units,
            "hidden_units": list(made.hidden_units),
            "order": list(made.order),
            "gate_bias": self.gate_bias,
        }


@keras.saving.register_keras_serializable(package="kerasae")
class FlowStack(keras.layers.Layer):
    """A chain of flows by name: `call(z)` -> z_K, `transform(z)` -> (z_K, sum log|det|).

    Args:
        units: the dimension of z.
        flows: names among planar, radial, iaf, applied first to last.
        iaf_hidden_units: the hidden layers of each IAF step's MADE.
        gate_bias: IAF's initial offset of s.
    Float32 whatever the dtype policy: a log-determinant in float16 loses nats.
    """

    def __init__(
        self, units, flows=("planar",), iaf_hidden_units=(128, 128, 128), gate_bias=1.0, **kwargs
    ):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.units = int(units)
        self.flows = tuple(flows)
        self.iaf_hidden_units = tuple(int(h) for h in iaf_hidden_units)
        self.gate_bias = float(gate_bias)
        bad = [f for f in self.flows if f not in FLOWS]
        if bad:
            raise KerasaeError(f"flows must be among {', '.join(FLOWS)}, got {bad[0]!r}")
        self.steps, iaf_count = [], 0
        for i, kind in enumerate(self.flows):
            name = f"{kind}_{i}"
            if kind == "planar":
                step = PlanarFlow(dtype="float32", name=name)
            elif kind == "radial":
                step = RadialFlow(dtype="float32", name=name)
            else:  # successive IAF steps reverse the order (the paper's section 4)
                order = "left-to-right" if iaf_count % 2 == 0 else "right-to-left"
                step = IAFStep(
                    self.units,
                    self.iaf_hidden_units,
                    order,
                    self.gate_bias,
                    dtype="float32",
                    name=name,
                )
                iaf_count += 1
            self.steps.append(step)

    def build(self, input_shape):
        for step in self.steps:
            if not step.built:  # `transform` called before the stack was
                step.build(input_shape)

    def transform(self, z):
        """(z_K, sum over the flows of log|det df_k/dz_(k-1)|, shape (batch,))."""
        z = ops.cast(z, "float32")
        log_det = ops.zeros(ops.shape(z)[:1], "float32")
        for step in self.steps:
            z, step_log_det = step(z)
            log_det = log_det + step_log_det
        return z, log_det

    def call(self, z):
        return self.transform(z)[0]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "flows": list(self.flows),
            "iaf_hidden_units": list(self.iaf_hidden_units),
            "gate_bias": self.gate_bias,
        }
