"""The ConvTranspose + Conv rewrite (kerasae.export.phase_conv) is exact and targeted."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from kerasae.export import phase_conv  # noqa: E402


def graph(
    kernel,
    stride,
    pads,
    conv_kernel=3,
    conv_pads=(1, 1, 1, 1),
    activation="Relu",
    bias=True,
    c_in=5,
    c_mid=6,
    c_out=2,
    seed=0,
    tail=True,
):
    """x (N, c_in, 5, 4) -> ConvTranspose -> [activation] -> [Conv] -> y."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(
            rng.standard_normal((c_in, c_mid, kernel, kernel)).astype("float32"), "Wt"
        )
    ]
    ins = ["x", "Wt"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(c_mid).astype("float32"), "Bt"))
        ins.append("Bt")
    nodes = [
        helper.make_node(
            "ConvTranspose",
            ins,
            ["t"],
            name="deconv",
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=list(pads),
        )
    ]
    last = "t"
    if activation:
        extra = {"alpha": 0.2} if activation == "LeakyRelu" else {}
        nodes.append(helper.make_node(activation, ["t"], ["a"], name="act", **extra))
        last = "a"
    if tail:
        inits.append(
            numpy_helper.from_array(
                rng.standard_normal((c_out, c_mid, conv_kernel, conv_kernel)).astype("float32"),
                "Wc",
            )
        )
        inits.append(numpy_helper.from_array(rng.standard_normal(c_out).astype("float32"), "Bc"))
        nodes.append(
            helper.make_node(
                "Conv",
                [last, "Wc", "Bc"],
                ["y"],
                name="conv",
                kernel_shape=[conv_kernel, conv_kernel],
                pads=list(conv_pads),
            )
        )
    else:
        nodes.append(helper.make_node("Identity", [last], ["y"]))
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", c_in, 5, 4])],
        [
            helper.make_tensor_value_info(
                "y", TensorProto.FLOAT, ["n", c_out if tail else c_mid, "h", "w"]
            )
        ],
        inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


CASES = [  # (kernel, stride, ConvTranspose pads, tail conv kernel, tail conv pads, activation)
    (3, 2, (0, 0, 1, 1), 3, (1, 1, 1, 1), "Relu"),  # Keras "same", as kerasae decoders
    (4, 2, (1, 1, 1, 1), 3, (1, 1, 1, 1), "LeakyRelu"),  # DCGAN / PyTorch style
    (2, 2, (0, 0, 0, 0), 1, (0, 0, 0, 0), None),
    (5, 2, (2, 2, 1, 1), 5, (2, 2, 2, 2), "Sigmoid"),
    (3, 3, (0, 0, 0, 0), 2, (0, 0, 1, 1), "Relu"),  # stride 3, asymmetric "same" tail
]


@pytest.mark.parametrize("kernel,stride,pads,conv_kernel,conv_pads,activation", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_rewrite_is_exact(kernel, stride, pads, conv_kernel, conv_pads, activation, bias):
    model = graph(kernel, stride, pads, conv_kernel, conv_pads, activation, bias)
    x = np.random.default_rng(1).standard_normal((3, 5, 5, 4)).astype("float32")
    expected = run(model, x)
    assert phase_conv.rewrite(model) == 1
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert "ConvTranspose" not in ops and ops.count("DepthToSpace") == 1
    assert {i.name for i in model.graph.initializer}.isdisjoint({"Wt", "Wc"})  # no dead weights
    got = run(model, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_leaves_what_it_cannot_fuse():
    alone = graph(3, 2, (0, 0, 1, 1), tail=False)  # nothing to fuse into: interleaving the
    assert phase_conv.rewrite(alone) == 0  # wide tensor would cost more than it saves
    assert [n.op_type for n in alone.graph.node][0] == "ConvTranspose"
    uneven = graph(3, 2, (0, 0, 0, 0))  # output 2H + 1: phases of unequal size
    assert phase_conv.rewrite(uneven) == 0
    strided_tail = graph(3, 2, (0, 0, 1, 1))
    strided_tail.graph.node[-1].attribute.append(helper.make_attribute("strides", [2, 2]))
    assert phase_conv.rewrite(strided_tail) == 0


def test_old_opsets_are_left_alone():  # DepthToSpace's mode arrived in opset 11
    model = graph(3, 2, (0, 0, 1, 1))
    model.opset_import[0].version = 10
    assert phase_conv.rewrite(model) == 0


def test_a_shared_activation_output_is_not_fused():
    model = graph(3, 2, (0, 0, 1, 1))
    model.graph.output.append(
        helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 6, "h", "w"])
    )
    assert phase_conv.rewrite(model) == 0  # "a" is needed whole, as a graph output
