"""`resmlp`: a dense network whose hidden layers add their input back (He et al. 2016)."""

from keras import layers

from kerasae.nets import Architecture, register_architecture


@register_architecture("resmlp")
class ResidualMLP(Architecture):
    """An MLP of equal-width residual blocks (the first width of `hidden_units`)."""

    def features(
        self, x, prefix="enc", flatten=True, hidden_units=(64, 64), activation="relu", **body
    ):
        width = hidden_units[0] if hidden_units else 64
        h = layers.Dense(width, activation=activation, name=f"{prefix}_in")(
            layers.Flatten(name=f"{prefix}_flatten")(x)
        )
        for i in range(max(len(hidden_units) - 1, 1)):
            h = layers.Add(name=f"{prefix}_add{i}")(
                [h, layers.Dense(width, activation=activation, name=f"{prefix}_res{i}")(h)]
            )
        return h

    def decoder_body(
        self, z, output_shape, code="dense", hidden_units=(64, 64), activation="relu", **body
    ):
        h = self.features(z, prefix="dec", hidden_units=hidden_units, activation=activation)
        size = 1
        for d in output_shape:
            size *= d
        return layers.Dense(size, name="dec_out")(h)
