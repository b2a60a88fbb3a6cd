"""ONNX graph rewrite: a strided ConvTranspose feeding a Conv, as per-phase Convs (exact).

onnxruntime's CPU ConvTranspose runs one image at a time (a GEMM, then a single-threaded
col2im), which made exported conv decoders slower than the TF SavedModel at large batches.
A ConvTranspose of stride s is s*s ordinary convolutions, one per output phase (r, c) (the
output pixels whose row = r and column = c mod s), each with only the kernel taps that land
on that phase: no multiply is wasted, unlike sub-pixel convolution, which pads every phase
to one kernel. onnxruntime runs those Convs with its blocked NCHWc kernels, and fuses the
activation that follows into them.

Putting the phases back together (Concat + DepthToSpace) costs more than it saves when the
tensor is wide, so the rewrite applies only where the ConvTranspose feeds, through
elementwise activations, a stride-1 "same" Conv, as the last upsampling layer of every
kerasae conv decoder does: that Conv is then computed on the phases directly, and only its
narrow output is interleaved. Other ConvTranspose nodes are left alone, as are grouped,
dilated or output_shape ones. Exactness is checked by the exporter's verification.

benchmarks/inference.py measures it: about 1.4x the converted graph's throughput for the
conv_ae decoder at batch 1024 (BENCHMARKS.md, Inference).
"""

import itertools

import numpy as np

#: elementwise ops that commute with splitting a tensor into phases
ELEMENTWISE = (
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Elu",
    "Selu",
    "Softplus",
    "HardSigmoid",
    "Gelu",
    "Identity",
)


def rewrite(proto):
    """Rewrite every supported ConvTranspose + Conv pair in `proto.graph`, in place; returns
    the number of ConvTranspose nodes replaced."""
    from onnx import numpy_helper  # optional: the onnx extra

    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 11:  # DepthToSpace's mode="DCR" attribute arrived in opset 11
        return 0
    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    nodes = [_copy(n) for n in graph.node]  # plain copies: graph.node is rebuilt below
    count, replaced, graph_outputs = 0, set(), {o.name for o in graph.output}
    for node in list(nodes):
        if node.op_type != "ConvTranspose" or not _supported(node, inits):
            continue
        chain, conv = _fusable_tail(nodes, node, inits, graph_outputs)
        if conv is None:
            continue
        attrs = _attrs(node)
        bias = _bias(node)
        phases = _phase_convs(
            graph, node, numpy_helper.to_array(inits[node.input[1]]), bias, attrs
        )
        # the activations run on each phase (onnxruntime fuses them into the Convs)
        act_nodes, outputs = _per_phase(chain, phases["outputs"])
        new = (
            phases["nodes"]
            + act_nodes
            + _fused_tail(graph, node.name, outputs, conv, inits, attrs["strides"][0])
        )
        for done in chain + [conv]:
            nodes.remove(done)
        replaced.update(node.input[1:] + conv.input[1:])
        at = nodes.index(node)
        nodes[at : at + 1] = new
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for n in nodes for name in n.input} | {i.name for i in graph.input}
    for init in [i for i in graph.initializer if i.name in replaced - used]:
        graph.initializer.remove(init)
    return count


def _copy(node):
    from onnx import NodeProto  # optional: the onnx extra

    copy = NodeProto()
    copy.CopyFrom(node)
    return copy


def _attrs(node):
    from onnx import helper  # optional: the onnx extra

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _bias(node):
    """The name of a Conv/ConvTranspose node's bias input, or None when it has none."""
    return node.input[2] if len(node.input) > 2 and node.input[2] else None


def _plain(node, inits):
    """A 2-D, ungrouped, undilated node with explicit pads and a constant weight: the
    checks a ConvTranspose and the Conv it feeds share."""
    a = _attrs(node)
    return (
        node.input[1] in inits
        and len(a.get("kernel_shape", [])) == 2
        and a.get("group", 1) == 1
        and list(a.get("dilations", [1, 1])) == [1, 1]
        and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    )


def _supported(node, inits):
    a = _attrs(node)
    strides, kernel = list(a.get("strides", [1, 1])), list(a.get("kernel_shape", []))
    pads = a.get("pads", [0] * 4)
    return (
        _plain(node, inits)
        and len(strides) == 2
        and strides[0] == strides[1] > 1
        and "output_shape" not in a
        and not any(a.get("output_padding", [0, 0]))
        and all(_phase_ok(kernel[d], strides[0], pads[d], pads[d + 2]) for d in (0, 1))
    )


def _taps(k, s, pad_begin, r):
    """The kernel taps that reach output phase r, and that phase's input offset c."""
    t0 = (r + pad_begin) % s
    taps = list(range(t0, k, s))
    c = (r + pad_begin - t0) // s
    return taps, c


def _phase_pads(k, s, pad_begin, pad_end, r):
    # output length H_out = (H - 1) s + k - pad_begin - pad_end; phase r has
    # ceil((H_out - r) / s) = H + d rows, and a Conv with len(taps) taps needs these pads
    taps, c = _taps(k, s, pad_begin, r)
    d = -(-(k - pad_begin - pad_end - s - r) // s)
    return len(taps) - 1 - c, d + c


def _phase_ok(k, s, pad_begin, pad_end):
    full = k - pad_begin - pad_end  # H_out - (H - 1) s: every phase the same size when == s
    return full == s and all(
        min(_phase_pads(k, s, pad_begin, pad_end, r)) >= 0 and _taps(k, s, pad_begin, r)[0]
        for r in range(s)
    )


def _phase_convs(graph, node, weight, bias, attrs):
    """One Conv per output phase; weight (C_in, C_out, kh, kw) becomes (C_out, C_in, ., .)."""
    from onnx import helper, numpy_helper  # optional: the onnx extra

    s, (kh, kw), pads = attrs["strides"][0], attrs["kernel_shape"], attrs.get("pads", [0] * 4)
    nodes, outputs = [], []
    for r in range(s):
        for c in range(s):
            rows, _ = _taps(kh, s, pads[0], r)
            cols, _ = _taps(kw, s, pads[1], c)
            top, bottom = _phase_pads(kh, s, pads[0], pads[2], r)
            left, right = _phase_pads(kw, s, pads[1], pads[3], c)
            kernel = weight[:, :, rows[::-1], :][:, :, :, cols[::-1]].transpose(1, 0, 2, 3)
            name = f"{node.name}/phase{r}{c}"
            graph.initializer.append(
                numpy_helper.from_array(np.ascontiguousarray(kernel), f"{name}/W")
            )
            nodes.append(
                helper.make_node(
                    "Conv",
                    [node.input[0], f"{name}/W"] + ([bias] if bias else []),
                    [name],
                    name=name,
                    kernel_shape=[len(rows), len(cols)],
                    pads=[top, left, bottom, right],
                    strides=[1, 1],
                )
            )
            outputs.append(name)
    return {"nodes": nodes, "outputs": outputs}


def _per_phase(chain, phases):
    """Copies of the elementwise `chain` on each phase: (nodes, the phases' new names)."""
    from onnx import helper  # optional: the onnx extra

    nodes, outputs = [], []
    for phase in phases:
        x = phase
        for i, op in enumerate(chain):
            y = f"{phase}/{op.op_type}{i}"
            nodes.append(
                helper.make_node(op.op_type, [x], [y], name=y, domain=op.domain, **_attrs(op))
            )
            x = y
        outputs.append(x)
    return nodes, outputs


def _consumers(nodes, name):
    return [n for n in nodes if name in n.input]


def _fusable_tail(nodes, node, inits, outputs):
    """The elementwise chain after `node` and the stride-1 'same' Conv it feeds, if any."""
    chain, current = [], node
    while True:
        if current.output[0] in outputs:
            return chain, None
        users = _consumers(nodes, current.output[0])
        if len(users) != 1:
            return chain, None
        user = users[0]
        if user.op_type in ELEMENTWISE and len(user.input) == 1:
            chain.append(user)
            current = user
            continue
        if user.op_type != "Conv" or user.input[0] != current.output[0]:
            return chain, None
        a = _attrs(user)
        kernel, pads = list(a.get("kernel_shape", [])), list(a.get("pads", [0] * 4))
        ok = (
            _plain(user, inits)
            and list(a.get("strides", [1, 1])) == [1, 1]
            and pads[0] + pads[2] == kernel[0] - 1
            and pads[1] + pads[3] == kernel[1] - 1
        )
        return chain, (user if ok else None)


def _span(offsets):
    """(lowest, highest) grid offset, widened to include 0 so the Conv's pads are >= 0."""
    found = [o[0] for o in offsets]
    return min(found + [0]), max(found + [0])


def _fused_tail(graph, base, phases, conv, inits, s):
    """`conv` computed from the phases: input phase p contributes to every output phase
    through one Conv on the phase grid; the sum is interleaved once, at conv's width."""
    from onnx import helper, numpy_helper  # optional: the onnx extra

    weight = numpy_helper.to_array(inits[conv.input[1]])  # (C_out, C_in, kh, kw)
    a = _attrs(conv)
    (kh, kw), pads = a["kernel_shape"], a.get("pads", [0] * 4)
    c_out, c_in = weight.shape[:2]
    # output phase (r, c), tap (ky, kx) reads input pixel (s*i + r + ky - pad_top, ...),
    # which is input phase (py, px) at grid offset (gy, gx): divmod(r + ky - pad_top, s)
    rows = [divmod(r + ky - pads[0], s) + (r, ky) for r in range(s) for ky in range(kh)]
    cols = [divmod(c + kx - pads[1], s) + (c, kx) for c in range(s) for kx in range(kw)]
    kernels = []
    for py, px in np.ndindex(s, s):  # each input phase: a kernel over the offsets it meets
        ys = [row for row in rows if row[1] == py]
        xs = [col for col in cols if col[1] == px]
        (y_lo, y_hi), (x_lo, x_hi) = _span(ys), _span(xs)
        kernel = np.zeros((s * s * c_out, c_in, y_hi - y_lo + 1, x_hi - x_lo + 1), weight.dtype)
        for (gy, _, r, ky), (gx, _, c, kx) in itertools.product(ys, xs):
            q = r * s + c
            kernel[q * c_out : (q + 1) * c_out, :, gy - y_lo, gx - x_lo] += weight[:, :, ky, kx]
        kernels.append((kernel, [-y_lo, -x_lo, y_hi, x_hi]))
    bias = None
    if _bias(conv):  # one copy per output phase
        bias = f"{base}/fused/B"
        graph.initializer.append(
            numpy_helper.from_array(
                np.tile(numpy_helper.to_array(inits[_bias(conv)]), s * s), bias
            )
        )
    nodes, partial = [], []
    for p, (phase, (kernel, conv_pads)) in enumerate(zip(phases, kernels)):
        name = f"{base}/fused{p}"
        graph.initializer.append(numpy_helper.from_array(kernel, f"{name}/W"))
        nodes.append(
            helper.make_node(
                "Conv",
                [phase, f"{name}/W"] + ([bias] if bias and p == 0 else []),
                [name],
                name=name,
                kernel_shape=list(kernel.shape[2:]),
                pads=conv_pads,
                strides=[1, 1],
            )
        )
        partial.append(name)
    total = f"{base}/fused"
    nodes.append(helper.make_node("Sum", partial, [total], name=total))
    nodes.append(
        helper.make_node(
            "DepthToSpace",
            [total],
            [conv.output[0]],
            name=f"{base}/fused_d2s",
            blocksize=s,
            mode="DCR",
        )
    )
    return nodes
