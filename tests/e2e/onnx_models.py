"""ONNX models built with onnx.helper, for the ONNX reader's end-to-end tests and benchmarks.

Every builder writes a model to `path` (random weights from a fixed seed) and returns the
feeds to run it with: {input name: numpy array}. Nothing here imports onnxruntime.

    resnet50(path, seed=0)   torchvision's ResNet-50 (7x7 stem, bottlenecks [3, 4, 6, 3], BN,
                             Relu, MaxPool, GlobalAveragePool, Flatten, Gemm), opset 13
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Net:
    """Accumulates nodes and initializers; names are made unique with a counter."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.count = 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base, array):
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, base, shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
        std = scale if scale is not None else np.sqrt(2.0 / max(fan_in, 1))
        return self.const(base, (self.rng.standard_normal(shape) * std).astype(np.float32))

    def op(self, op_type, inputs, n_out=1, **attrs):
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=outs[0], **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x, cin, cout, k, stride=1, pad=0, group=1, bias=True, **attrs):
        w = self.weight("w", [cout, cin // group, k, k])
        inputs = [x, w]
        if bias:
            inputs.append(self.const("b", (self.rng.standard_normal(cout) * 0.1).astype(np.float32)))
        if "auto_pad" not in attrs:
            attrs["pads"] = [pad] * 4
        return self.op("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride], group=group, **attrs)

    def bn(self, x, c, gamma=(0.5, 1.5), **attrs):
        r = self.rng
        params = [
            r.uniform(*gamma, c),  # scale
            r.standard_normal(c) * 0.1,  # bias
            r.standard_normal(c) * 0.1,  # mean
            r.uniform(0.5, 1.5, c),  # var
        ]
        names = [self.const(n, p.astype(np.float32)) for n, p in zip(("gamma", "beta", "mean", "var"), params)]
        return self.op("BatchNormalization", [x, *names], epsilon=1e-5, **attrs)

    def save(self, path, inputs, outputs, opset, ir_version=None, check=True, **save_kw):
        graph = helper.make_graph(self.nodes, "g", inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="onnx_models.py")
        # The oldest IR version that has the opset, which every ONNX Runtime release reads.
        model.ir_version = ir_version or helper.find_min_ir_version_for(model.opset_import)
        if model.ir_version < 4:
            # IR 3 lists every initializer among the graph inputs too.
            model.graph.input.extend(
                helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in self.inits)
        if check:
            onnx.checker.check_model(model)
        onnx.save(model, str(path), **save_kw)
        return model


def tensor_input(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def resnet50(path, seed=0, batch=1, size=224):
    """torchvision's ResNet-50 with random weights. Returns {"x": input}."""
    n = Net(seed)
    x = n.conv("x", 3, 64, 7, stride=2, pad=3, bias=False)
    x = n.op("Relu", [n.bn(x, 64)])
    x = n.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for b in range(blocks):
            s = stride if b == 0 else 1
            y = n.op("Relu", [n.bn(n.conv(x, cin, width, 1, bias=False), width)])
            y = n.op("Relu", [n.bn(n.conv(y, width, width, 3, stride=s, pad=1, bias=False), width)])
            # The last BN of a block starts small, as residual nets are trained to be stable.
            y = n.bn(n.conv(y, width, width * 4, 1, bias=False), width * 4, gamma=(0.1, 0.3))
            if b == 0:
                x = n.bn(n.conv(x, cin, width * 4, 1, stride=s, bias=False), width * 4)
            x = n.op("Relu", [n.op("Add", [y, x])])
            cin = width * 4
    x = n.op("Flatten", [n.op("GlobalAveragePool", [x])], axis=1)
    fc_w = n.weight("fc_w", [1000, 2048], scale=np.sqrt(1.0 / 2048))
    fc_b = n.const("fc_b", (n.rng.standard_normal(1000) * 0.01).astype(np.float32))
    n.nodes.append(helper.make_node("Gemm", [x, fc_w, fc_b], ["logits"], name="fc", transB=1))
    n.save(path, [tensor_input("x", [batch, 3, size, size])],
           [tensor_input("logits", [batch, 1000])], opset=13)
    return {"x": np.random.default_rng(seed + 1).standard_normal((batch, 3, size, size)).astype(np.float32)}


def small_cnn(path, opset=13, seed=0):
    """Conv/BN/Relu/MaxPool/Flatten/Gemm/Softmax on a 1x3x16x16 image."""
    n = Net(seed)
    bn_attrs = {"spatial": 1} if opset < 9 else {}
    x = n.op("Relu", [n.bn(n.conv("x", 3, 8, 3, pad=1), 8, **bn_attrs)])
    x = n.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = n.op("Relu", [n.conv(x, 8, 16, 3, stride=2, pad=1)])
    x = n.op("Flatten", [x], axis=1)
    w = n.weight("fc_w", [10, 16 * 4 * 4])
    b = n.const("fc_b", np.zeros(10, np.float32) + 0.1)
    x = n.op("Gemm", [x, w, b], transB=1, alpha=0.5, beta=2.0)
    n.nodes.append(helper.make_node("Softmax", [x], ["probs"], name="softmax", axis=1))
    n.save(path, [tensor_input("x", [1, 3, 16, 16])], [tensor_input("probs", [1, 10])], opset)
    return {"x": n.rng.standard_normal((1, 3, 16, 16)).astype(np.float32)}


def residual_block(path, seed=0, opset=13):
    """Conv-BN-Relu6(Clip)-Conv-BN plus the input, Relu; a batch dim left symbolic."""
    n = Net(seed)
    y = n.bn(n.conv("x", 8, 8, 3, pad=1, bias=False), 8)
    lo, hi = n.const("lo", np.float32(0)), n.const("hi", np.float32(6))
    y = n.op("Clip", [y, lo, hi])
    y = n.bn(n.conv(y, 8, 8, 3, pad=1, bias=False), 8)
    x = n.op("Add", ["x", y])
    n.nodes.append(helper.make_node("Relu", [x], ["y"], name="out"))
    n.save(path, [tensor_input("x", ["batch", 8, 10, 10])], [tensor_input("y", ["batch", 8, 10, 10])], opset)
    return {"x": n.rng.standard_normal((2, 8, 10, 10)).astype(np.float32)}


def _layer_norm(n, x, d, opset):
    scale = n.const("ln_scale", n.rng.uniform(0.5, 1.5, d).astype(np.float32))
    bias = n.const("ln_bias", (n.rng.standard_normal(d) * 0.1).astype(np.float32))
    if opset >= 17:
        return n.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-5)
    # The decomposition exporters write for older opsets.
    mean = n.op("ReduceMean", [x], axes=[-1])
    c = n.op("Sub", [x, mean])
    var = n.op("ReduceMean", [n.op("Pow", [c, n.const("two", np.float32(2))])], axes=[-1])
    std = n.op("Sqrt", [n.op("Add", [var, n.const("eps", np.float32(1e-5))])])
    return n.op("Add", [n.op("Mul", [n.op("Div", [c, std]), scale]), bias])


def _gelu(n, x):
    """x * 0.5 * (1 + erf(x / sqrt(2))), as torch exports it."""
    e = n.op("Erf", [n.op("Div", [x, n.const("sqrt2", np.float32(np.sqrt(2)))])])
    return n.op("Mul", [n.op("Mul", [x, n.op("Add", [e, n.const("one", np.float32(1))])]),
                        n.const("half", np.float32(0.5))])


def transformer_block(path, seed=0, opset=17, batch="batch", tokens=6, dim=16, heads=2):
    """A ViT encoder block: LayerNorm, MatMul qkv, Reshape to heads with a shape computed by
    Shape -> Gather -> Unsqueeze -> Concat (as torch exports it), Transpose, attention with
    Softmax, MatMul, residuals, an MLP with erf Gelu. `batch` may be a symbolic name."""
    n = Net(seed)
    hd = dim // heads

    def unsq(v):
        if opset >= 13:
            return n.op("Unsqueeze", [v, n.const("ax0", np.array([0], np.int64))])
        return n.op("Unsqueeze", [v], axes=[0])

    shape = n.op("Shape", ["x"])
    b = unsq(n.op("Gather", [shape, n.const("i0", np.array(0, np.int64))], axis=0))
    t = unsq(n.op("Gather", [shape, n.const("i1", np.array(1, np.int64))], axis=0))
    h = _layer_norm(n, "x", dim, opset)
    qkv = n.op("Add", [n.op("MatMul", [h, n.weight("wqkv", [dim, 3 * dim], scale=0.3)]),
                       n.const("bqkv", (n.rng.standard_normal(3 * dim) * 0.1).astype(np.float32))])
    split_shape = n.op("Concat", [b, t, n.const("rest", np.array([3, heads, hd], np.int64))], axis=0)
    qkv = n.op("Transpose", [n.op("Reshape", [qkv, split_shape])], perm=[2, 0, 3, 1, 4])
    q, k, v = (n.op("Gather", [qkv, n.const(f"i{i}", np.array(i, np.int64))], axis=0) for i in range(3))
    att = n.op("MatMul", [q, n.op("Transpose", [k], perm=[0, 1, 3, 2])])
    att = n.op("Softmax", [n.op("Mul", [att, n.const("scale", np.float32(hd ** -0.5))])], axis=-1 if opset >= 13 else 3)
    o = n.op("Transpose", [n.op("MatMul", [att, v])], perm=[0, 2, 1, 3])
    merge_shape = n.op("Concat", [b, t, n.const("d", np.array([dim], np.int64))], axis=0)
    o = n.op("MatMul", [n.op("Reshape", [o, merge_shape]), n.weight("wo", [dim, dim], scale=0.3)])
    x = n.op("Add", ["x", o])
    m = n.op("MatMul", [_layer_norm(n, x, dim, opset), n.weight("w1", [dim, 2 * dim], scale=0.3)])
    m = n.op("MatMul", [_gelu(n, m), n.weight("w2", [2 * dim, dim], scale=0.3)])
    n.nodes.append(helper.make_node("Add", [x, m], ["y"], name="out"))
    n.save(path, [tensor_input("x", [batch, tokens, dim])], [tensor_input("y", [batch, tokens, dim])], opset)
    rows = 2 if isinstance(batch, str) else batch
    return {"x": n.rng.standard_normal((rows, tokens, dim)).astype(np.float32)}


def same_padding(path, seed=0, opset=13):
    """Depthwise and grouped convolutions and an average pool with auto_pad SAME_UPPER and
    SAME_LOWER, strides 1 and 2, on odd sizes."""
    n = Net(seed)
    x = n.conv("x", 6, 6, 3, stride=2, group=6, auto_pad="SAME_UPPER")
    x = n.conv(x, 6, 12, 4, group=2, auto_pad="SAME_LOWER")
    x = n.conv(x, 12, 12, 4, stride=2, group=12, auto_pad="SAME_UPPER")
    x = n.op("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")
    n.nodes.append(helper.make_node("MaxPool", [x], ["y"], name="out", kernel_shape=[2, 2], auto_pad="SAME_LOWER"))
    n.save(path, [tensor_input("x", [1, 6, 15, 13])], [tensor_input("y", [1, 12, 2, 2])], opset)
    return {"x": n.rng.standard_normal((1, 6, 15, 13)).astype(np.float32)}


def op_zoo(path, opset=13, seed=0):
    """Many ops in the form each opset writes them: Slice, Pad, Clip, Squeeze/Unsqueeze, Split
    and Reduce* with attributes or inputs, Softmax coerced to 2-d before opset 13, Upsample or
    Resize, Dropout, activations, Concat, Tile, Expand, Where, Cast, ConstantOfShape, Range,
    normalizations. Input x is 1x4x6x6; several outputs."""
    n = Net(seed)
    i64 = lambda *v: n.const("c", np.array(v, np.int64))  # noqa: E731
    f32 = lambda v: n.const("f", np.array(v, np.float32))  # noqa: E731
    outs = []

    def out(v, shape, dtype=TensorProto.FLOAT):
        name = f"out{len(outs)}"
        n.nodes.append(helper.make_node("Identity", [v], [name], name=name))
        outs.append(tensor_input(name, shape, dtype))

    x = "x"
    # Slice: x[:, 1:3, ::2 (or 1:5), ::-1 (or 0:5)]
    if opset < 10:
        s = n.op("Slice", [x], starts=[1, 1, 0], ends=[3, 5, 5], axes=[1, 2, 3])
        out(s, [1, 2, 4, 5])
    else:
        s = n.op("Slice", [x, i64(1, 0, -1), i64(3, 100, -100), i64(1, 2, 3), i64(1, 2, -1)])
        out(s, [1, 2, 3, 6])
    # Pad (constant and reflect)
    if opset < 11:
        p = n.op("Pad", [x], pads=[0, 0, 1, 2, 0, 0, 2, 1], value=0.5)
        r = n.op("Pad", [x], pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="reflect")
    else:
        p = n.op("Pad", [x, i64(0, 0, 1, 2, 0, 0, 2, 1), f32(0.5)])
        r = n.op("Pad", [x, i64(0, 0, 1, 1, 0, 0, 1, 1)], mode="reflect")
    out(p, [1, 4, 9, 9])
    out(r, [1, 4, 8, 8])
    # Clip with bounds
    c = n.op("Clip", [x], min=-0.5, max=0.7) if opset < 11 else n.op("Clip", [x, f32(-0.5), f32(0.7)])
    out(c, [1, 4, 6, 6])
    # Softmax over axis 1: before opset 13 that covers axes 1.. together.
    out(n.op("Softmax", [x], axis=1), [1, 4, 6, 6])
    out(n.op("LogSoftmax", [x], axis=-1), [1, 4, 6, 6])
    # Reductions
    if opset < 13:
        rs = n.op("ReduceSum", [x], axes=[2, 3], keepdims=0)
    else:
        rs = n.op("ReduceSum", [x, i64(2, 3)], keepdims=0)
    out(rs, [1, 4])
    rm = n.op("ReduceMean", [x], axes=[1]) if opset < 18 else n.op("ReduceMean", [x, i64(1)])
    out(rm, [1, 1, 6, 6])
    rmax = n.op("ReduceMax", [x], axes=[3], keepdims=0) if opset < 18 else n.op("ReduceMax", [x, i64(3)], keepdims=0)
    out(rmax, [1, 4, 6])
    # Squeeze / Unsqueeze
    if opset < 13:
        u = n.op("Unsqueeze", [rs], axes=[0, 3])
        sq = n.op("Squeeze", [u], axes=[0])
    else:
        u = n.op("Unsqueeze", [rs, i64(0, 3)])
        sq = n.op("Squeeze", [u, i64(0)])
    out(sq, [1, 4, 1])
    # Split in two along channels
    if opset < 13:
        a, b = n.op("Split", [x], n_out=2, axis=1, split=[2, 2])
    elif opset < 18:
        a, b = n.op("Split", [x, i64(2, 2)], n_out=2, axis=1)
    else:
        a, b = n.op("Split", [x], n_out=2, axis=1, num_outputs=2)
    out(b, [1, 2, 6, 6])
    if opset >= 13:
        equal = {"num_outputs": 3} if opset >= 18 else {}
        out(n.op("Split", [x], n_out=3, axis=3, **equal)[2], [1, 4, 6, 2])
    # Activations and arithmetic
    act = n.op("LeakyRelu", [x], alpha=0.2)
    act = n.op("Add", [act, n.op("HardSigmoid", [x], alpha=0.3, beta=0.4)])
    act = n.op("Mul", [act, n.op("Sigmoid", [x])])
    act = n.op("Sub", [act, n.op("Tanh", [x])])
    act = n.op("Div", [act, f32(1.5)])
    act = n.op("Max", [act, n.op("Elu", [x]), n.op("Neg", [x])])
    act = n.op("Sum", [act, n.op("Abs", [x]), n.op("Exp", [n.op("Neg", [n.op("Abs", [x])])])])
    if opset >= 14:
        act = n.op("Add", [act, n.op("HardSwish", [x])])
    if opset >= 18:
        act = n.op("Add", [act, n.op("Mish", [x])])
    if opset >= 20:
        act = n.op("Add", [act, n.op("Gelu", [x], approximate="tanh")])
    out(act, [1, 4, 6, 6])
    # Dropout (an identity at inference) and Concat, Transpose, Reshape, Flatten
    d = n.op("Dropout", [x], ratio=0.3) if opset < 12 else n.op("Dropout", [x, f32(0.3)])
    cat = n.op("Concat", [d, a], axis=1)
    t = n.op("Transpose", [cat], perm=[0, 2, 3, 1])
    out(n.op("Reshape", [t, i64(0, -1, 4)]), [1, 54, 4])
    out(n.op("Flatten", [t], axis=2), [6, 36])
    # Tile, Expand, Where, Equal, Greater, Cast, Gather
    if opset >= 8:
        e = n.op("Expand", [n.op("ReduceMean", [x], axes=[2, 3]), i64(1, 4, 2, 3)]) if opset < 18 else \
            n.op("Expand", [n.op("ReduceMean", [x, i64(2, 3)]), i64(1, 4, 2, 3)])
        out(n.op("Tile", [e, i64(1, 1, 2, 1)]), [1, 4, 4, 3])
    if opset >= 9:
        w = n.op("Where", [n.op("Greater", [x, f32(0.1)]), x, n.op("Mul", [x, f32(0.1)])])
        out(w, [1, 4, 6, 6])
        out(n.op("Cast", [n.op("Greater", [x, f32(0)])], to=TensorProto.INT64), [1, 4, 6, 6], TensorProto.INT64)
        zeros = n.op("ConstantOfShape", [n.op("Shape", [x])],
                     value=numpy_helper.from_array(np.array([0.25], np.float32)))
        out(n.op("Add", [x, zeros]), [1, 4, 6, 6])
    out(n.op("Gather", [x, i64(2, 0)], axis=3), [1, 4, 6, 2])
    if opset >= 11:
        rng = n.op("Range", [n.const("s", np.array(0, np.float32)), n.const("l", np.array(6, np.float32)),
                             n.const("d", np.array(1, np.float32))])
        out(n.op("Mul", [x, rng]), [1, 4, 6, 6])
        am = n.op("ArgMax", [x], axis=2, keepdims=0)
        out(am, [1, 4, 6], TensorProto.INT64)
    # Normalizations
    out(n.op("InstanceNormalization", [x, f32(np.linspace(0.5, 1.5, 4)), f32(np.linspace(-1, 1, 4))],
             epsilon=1e-3), [1, 4, 6, 6])
    out(n.op("LRN", [x], size=3, alpha=1e-3, beta=0.75, bias=1.0), [1, 4, 6, 6])
    if opset >= 10:
        out(n.op("MaxPool", [x], kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 0, 0], ceil_mode=1), [1, 4, 5, 5])
        avg = {"dilations": [2, 1]} if opset >= 19 else {}
        out(n.op("AveragePool", [x], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                 count_include_pad=1, **avg), [1, 4, 2 if opset >= 19 else 3, 4])
    if opset >= 17:
        ln = n.op("LayerNormalization", [x, f32(np.ones((6, 6)) * 0.9), f32(np.zeros(6) + 0.1)], axis=2)
        out(ln, [1, 4, 6, 6])
    if opset >= 21:
        gn = n.op("GroupNormalization", [x, f32(np.linspace(0.5, 1.5, 4)), f32(np.linspace(-1, 1, 4))],
                  num_groups=2, epsilon=1e-5)
        out(gn, [1, 4, 6, 6])
    # Constant nodes in their several forms
    if opset >= 12:
        k = n.op("Constant", [], value_floats=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    else:
        k = n.op("Constant", [], value=numpy_helper.from_array(np.arange(6, dtype=np.float32) * 0.5 + 0.5))
    out(n.op("Mul", [x, k]), [1, 4, 6, 6])
    n.save(path, [tensor_input("x", [1, 4, 6, 6])], outs, opset)
    return {"x": n.rng.standard_normal((1, 4, 6, 6)).astype(np.float32)}


def resize(path, opset=13, seed=0):
    """Upsample (opsets 7, 9) or Resize (10, 11, 13, 18, 19) in several modes. Input 1x2x5x7."""
    n = Net(seed)
    f32 = lambda *v: n.const("f", np.array(v, np.float32))  # noqa: E731
    outs = []

    def out(v, shape):
        name = f"out{len(outs)}"
        n.nodes.append(helper.make_node("Identity", [v], [name], name=name))
        outs.append(tensor_input(name, shape))

    x = "x"
    if opset < 9:
        out(n.op("Upsample", [x], scales=[1.0, 1.0, 2.0, 3.0], mode="nearest"), [1, 2, 10, 21])
        out(n.op("Upsample", [x], scales=[1.0, 1.0, 2.0, 2.0], mode="linear"), [1, 2, 10, 14])
    elif opset < 10:
        out(n.op("Upsample", [x, f32(1, 1, 2, 3)], mode="nearest"), [1, 2, 10, 21])
        out(n.op("Upsample", [x, f32(1, 1, 2, 2)], mode="linear"), [1, 2, 10, 14])
    elif opset < 11:
        out(n.op("Resize", [x, f32(1, 1, 2, 3)], mode="nearest"), [1, 2, 10, 21])
        out(n.op("Resize", [x, f32(1, 1, 0.6, 0.5)], mode="nearest"), [1, 2, 3, 3])
        out(n.op("Resize", [x, f32(1, 1, 2, 2)], mode="linear"), [1, 2, 10, 14])
    else:
        roi = "" if opset >= 13 else n.const("roi", np.array([], np.float32))
        none = "" if opset >= 13 else n.const("none", np.array([], np.float32))
        sizes = lambda *v: n.const("sz", np.array(v, np.int64))  # noqa: E731
        out(n.op("Resize", [x, roi, f32(1, 1, 2, 2)], mode="linear"), [1, 2, 10, 14])
        out(n.op("Resize", [x, roi, f32(1, 1, 1.5, 2.5)], mode="nearest",
                 coordinate_transformation_mode="asymmetric", nearest_mode="floor"), [1, 2, 7, 17])
        out(n.op("Resize", [x, roi, none, sizes(1, 2, 9, 4)], mode="linear",
                 coordinate_transformation_mode="align_corners"), [1, 2, 9, 4])
        out(n.op("Resize", [x, roi, none, sizes(1, 2, 8, 8)], mode="cubic",
                 coordinate_transformation_mode="pytorch_half_pixel"), [1, 2, 8, 8])
        out(n.op("Resize", [x, roi, f32(1, 1, 3, 3)], mode="nearest",
                 coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_ceil"), [1, 2, 15, 21])
        if opset >= 18:
            out(n.op("Resize", [x, "", "", n.const("sz", np.array([4, 11], np.int64))], mode="linear",
                     axes=[2, 3], antialias=0), [1, 2, 4, 11])
    n.save(path, [tensor_input("x", [1, 2, 5, 7])], outs, opset)
    return {"x": n.rng.standard_normal((1, 2, 5, 7)).astype(np.float32)}


def external_data(path, seed=0):
    """A small CNN whose weights are stored in `weights.bin` next to the model."""
    feeds = small_cnn(path, opset=13, seed=seed)
    model = onnx.load(str(path))
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    return feeds


def op_zoo2(path, opset=13, seed=0):
    """More ops: ConvTranspose (pads, output_padding, output_shape, auto_pad), PRelu,
    DepthToSpace/SpaceToDepth, Gemm with a full C, MatMul of two run-time tensors, Einsum,
    ReduceL1/L2/SumSquare/LogSum, ArgMin, Min/Mean/Pow/Sqrt, comparisons and logic, Mod and
    Size in a shape computation, GroupNormalization (per-group scale in opset 18), unary math.
    Input x is 1x4x6x6."""
    n = Net(seed)
    i64 = lambda *v: n.const("c", np.array(v, np.int64))  # noqa: E731
    f32 = lambda v: n.const("f", np.array(v, np.float32))  # noqa: E731
    outs = []

    def out(v, shape, dtype=TensorProto.FLOAT):
        name = f"out{len(outs)}"
        n.nodes.append(helper.make_node("Identity", [v], [name], name=name))
        outs.append(tensor_input(name, shape, dtype))

    x = "x"
    w = n.weight("wt", [4, 3, 3, 3])
    b = n.const("bt", np.linspace(-0.5, 0.5, 6).astype(np.float32))
    out(n.op("ConvTranspose", [x, w], strides=[2, 2], pads=[1, 0, 1, 1], output_padding=[1, 0]), [1, 3, 12, 12])
    out(n.op("ConvTranspose", [x, n.weight("wt2", [4, 3, 3, 3]), b], group=2, strides=[2, 2],
             output_shape=[13, 12]), [1, 6, 13, 12])
    out(n.op("ConvTranspose", [x, w], strides=[2, 2], auto_pad="SAME_UPPER"), [1, 3, 12, 12])
    out(n.op("PRelu", [x, f32(np.array([0.1, 0.2, 0.3, 0.4]).reshape(4, 1, 1))]), [1, 4, 6, 6])
    d2s = n.op("DepthToSpace", [x], blocksize=2, mode="CRD")
    out(d2s, [1, 1, 12, 12])
    out(n.op("SpaceToDepth", [d2s], blocksize=3), [1, 9, 4, 4])
    out(n.op("DepthToSpace", [x], blocksize=2), [1, 1, 12, 12])
    flat = n.op("Flatten", [x], axis=0)  # [1, 144]
    out(n.op("Gemm", [n.op("Reshape", [x, i64(4, 36)]), n.weight("wg", [8, 36]),
                      f32(np.arange(32).reshape(4, 8) * 0.01)], transB=1, beta=0.5), [4, 8])
    out(n.op("Gemm", [n.op("Reshape", [x, i64(36, 4)]), n.weight("wg2", [36, 5])], transA=1), [4, 5])
    sq = n.op("Reshape", [x, i64(4, 6, 6)])
    out(n.op("MatMul", [sq, n.op("Transpose", [sq], perm=[0, 2, 1])]), [4, 6, 6])
    out(n.op("Einsum", [sq, sq], equation="bij,bkj->bik"), [4, 6, 6])
    out(n.op("Einsum", [x, n.weight("we", [6, 5])], equation="nchw,wk->nchk"), [1, 4, 6, 5])
    out(n.op("Einsum", [sq], equation="bij->jb"), [6, 4])
    out(n.op("Einsum", [flat, n.weight("we2", [144, 3])], equation="ij,jk"), [1, 3])
    axes = {"axes": [2, 3]}
    red = lambda op, **kw: n.op(op, [x], keepdims=0, **axes, **kw) if opset < 18 else \
        n.op(op, [x, i64(2, 3)], keepdims=0, **kw)  # noqa: E731
    out(red("ReduceL1"), [1, 4])
    out(red("ReduceL2"), [1, 4])
    out(red("ReduceSumSquare"), [1, 4])
    out(n.op("ReduceLogSum", [n.op("Abs", [x])], axes=[1]) if opset < 18 else
        n.op("ReduceLogSum", [n.op("Abs", [x]), i64(1)]), [1, 1, 6, 6])
    out(n.op("ReduceMin", [x], axes=[1], keepdims=0) if opset < 18 else
        n.op("ReduceMin", [x, i64(1)], keepdims=0), [1, 6, 6])
    out(n.op("ReduceProd", [x], axes=[3], keepdims=0) if opset < 18 else
        n.op("ReduceProd", [x, i64(3)], keepdims=0), [1, 4, 6])
    out(n.op("ArgMin", [x], axis=-1, keepdims=1, select_last_index=1), [1, 4, 6, 1], TensorProto.INT64)
    ax = n.op("Abs", [x])
    m = n.op("Mean", [n.op("Min", [x, n.op("Neg", [x])]), n.op("Sqrt", [ax]),
                      n.op("Pow", [ax, f32(1.5)]), n.op("Reciprocal", [n.op("Add", [ax, f32(1.0)])])])
    out(m, [1, 4, 6, 6])
    un = n.op("Add", [n.op("Selu", [x]), n.op("ThresholdedRelu", [x], alpha=0.5)])
    un = n.op("Add", [un, n.op("Softplus", [x])])
    un = n.op("Add", [un, n.op("Softsign", [x])])
    un = n.op("Add", [un, n.op("Round", [n.op("Mul", [x, f32(3.0)])])])
    un = n.op("Add", [un, n.op("Floor", [x])])
    un = n.op("Add", [un, n.op("Ceil", [x])])
    un = n.op("Add", [un, n.op("Sin", [x])])
    un = n.op("Add", [un, n.op("Cos", [x])])
    un = n.op("Add", [un, n.op("Log", [n.op("Add", [ax, f32(0.1)])])])
    un = n.op("Add", [un, n.op("Sign", [x])])
    un = n.op("Add", [un, n.op("Erf", [x])])
    out(un, [1, 4, 6, 6])
    pos, big = n.op("Greater", [x, f32(0.0)]), n.op("Less", [x, f32(0.5)])
    logic = n.op("Or", [n.op("And", [pos, big]), n.op("Xor", [n.op("Not", [pos]), n.op("Equal", [x, x])])])
    logic = n.op("And", [logic, n.op("GreaterOrEqual", [x, f32(-1.0)])])
    logic = n.op("Or", [logic, n.op("LessOrEqual", [x, f32(-2.0)])])
    out(n.op("Cast", [logic], to=TensorProto.FLOAT), [1, 4, 6, 6])
    # A shape computation with Mod and Size: (size mod 5) + 1 columns of the flattened input.
    cols = n.op("Add", [n.op("Mod", [n.op("Size", [x]), n.const("five", np.array(5, np.int64))]),
                        n.const("one_i", np.array(1, np.int64))])
    ends = n.op("Unsqueeze", [cols, i64(0)])
    out(n.op("Slice", [flat, i64(0), ends, i64(1)]), [1, 5])
    if opset >= 15:
        out(n.op("CastLike", [n.op("Greater", [x, f32(0)]), x]), [1, 4, 6, 6])
    out(n.op("LpNormalization", [x], axis=1, p=1), [1, 4, 6, 6])
    # Quantized weights (int8, one scale per output channel) and a QDQ pair on activations.
    wq = n.const("wq", n.rng.integers(-127, 128, (4, 4, 1, 1)).astype(np.int8))
    wdq = n.op("DequantizeLinear", [wq, f32([0.01, 0.02, 0.03, 0.04]), n.const("wz", np.zeros(4, np.int8))], axis=0)
    out(n.op("Conv", [x, wdq]), [1, 4, 6, 6])
    q = n.op("QuantizeLinear", [x, f32(0.05), n.const("qz", np.array(128, np.uint8))])
    out(n.op("DequantizeLinear", [q, f32(0.05), n.const("qz2", np.array(128, np.uint8))]), [1, 4, 6, 6])
    out(q, [1, 4, 6, 6], TensorProto.UINT8)
    if 18 <= opset < 21:
        # Opset 18's form (one scale per group), deprecated since, so the checker refuses it.
        gn = n.op("GroupNormalization", [x, f32([0.5, 1.5]), f32([-1.0, 1.0])], num_groups=2, epsilon=1e-5)
        out(gn, [1, 4, 6, 6])
    n.save(path, [tensor_input("x", [1, 4, 6, 6])], outs, opset, check=not 18 <= opset < 21)
    return {"x": n.rng.standard_normal((1, 4, 6, 6)).astype(np.float32)}


def resize_dynamic(path, seed=0):
    """torch's F.interpolate(size=...) export with a dynamic batch: the sizes are
    Concat(Shape(x)[:2], [10, 14]). Input Nx2x5x7 (N symbolic)."""
    n = Net(seed)
    i64 = lambda *v: n.const("c", np.array(v, np.int64))  # noqa: E731
    head = n.op("Slice", [n.op("Shape", ["x"]), i64(0), i64(2)])
    sizes = n.op("Concat", [head, i64(10, 14)], axis=0)
    n.nodes.append(helper.make_node("Resize", ["x", "", "", sizes], ["y"], name="up", mode="linear",
                                    coordinate_transformation_mode="pytorch_half_pixel"))
    n.save(path, [tensor_input("x", ["N", 2, 5, 7])], [tensor_input("y", ["N", 2, 10, 14])], 13)
    return {"x": n.rng.standard_normal((3, 2, 5, 7)).astype(np.float32)}


def recurrent(path, opset=13, layout=0, seed=0):
    """LSTM (bidirectional), GRU (linear_before_reset) and RNN (reverse) as tf2onnx writes
    Keras recurrent layers: every output used. x is [T=5, N=2, F=3] (layout 1: [N, T, F])."""
    n = Net(seed)
    t_, b_, f_, h_ = 5, 2, 3, 4
    outs = []

    def out(v, shape):
        name = f"out{len(outs)}"
        n.nodes.append(helper.make_node("Identity", [v], [name], name=name))
        outs.append(tensor_input(name, shape))

    def rnn(op, gates, dirs, **attrs):
        w = n.weight("W", [dirs, gates * h_, f_], scale=0.5)
        r = n.weight("R", [dirs, gates * h_, h_], scale=0.5)
        b = n.const("B", (n.rng.standard_normal((dirs, 2 * gates * h_)) * 0.1).astype(np.float32))
        extra = {"layout": layout} if layout else {}
        n_out = 3 if op == "LSTM" else 2
        ys = n.op(op, ["x", w, r, b], n_out=n_out, hidden_size=h_, **attrs, **extra)
        seq = [b_, t_, dirs, h_] if layout else [t_, dirs, b_, h_]
        last = [b_, dirs, h_] if layout else [dirs, b_, h_]
        out(ys[0], seq)
        for y in ys[1:]:
            out(y, last)

    rnn("LSTM", 4, 2, direction="bidirectional")
    rnn("GRU", 3, 1, linear_before_reset=1)
    rnn("RNN", 1, 1, direction="reverse", activations=["Relu"])
    shape = [b_, t_, f_] if layout else [t_, b_, f_]
    n.save(path, [tensor_input("x", shape)], outs, opset)
    return {"x": n.rng.standard_normal(shape).astype(np.float32)}


def recurrent_states(path, opset=14, layout=0, seed=0, batch=None):
    """Initial states in every form the reader maps to the IR's h0/c0 inputs: a graph input
    (LSTM's initial_h, its initial_c absent, so zeros), a constant beside a graph input (LSTM),
    a computed value with an all-full sequence_lens (GRU), and a constant alone (RNN). x is
    [T=5, N=2, F=3], states [D, N, H=4] (layout 1: batch first, the same values transposed);
    `batch` names the batch dim of the inputs and outputs (the constant states then cannot be
    used: the LSTM's constant h0 is left out, the RNN's comes from a graph input)."""
    n = Net(seed)
    t_, b_, f_, h_ = 5, 2, 3, 4
    outs = []

    def bf(shape):  # the shape in the model's layout
        return [shape[1], shape[0], *shape[2:]] if layout else shape

    def named(shape, axis):  # the batch axis named `batch`
        return [batch if batch and i == axis else d for i, d in enumerate(shape)]

    def rnn(op, gates, dirs, seq_lens="", h0="", c0="", **attrs):
        w = n.weight("W", [dirs, gates * h_, f_], scale=0.5)
        r = n.weight("R", [dirs, gates * h_, h_], scale=0.5)
        b = n.const("B", (n.rng.standard_normal((dirs, 2 * gates * h_)) * 0.1).astype(np.float32))
        ins = ["x", w, r, b, seq_lens, h0] + ([c0] if op == "LSTM" else [])
        extra = {"layout": layout} if layout else {}
        ys = n.op(op, ins, n_out=3 if op == "LSTM" else 2, hidden_size=h_, **attrs, **extra)
        for k, y in enumerate(ys):
            name = f"out{len(outs)}"
            n.nodes.append(helper.make_node("Identity", [y], [name], name=name))
            seq = [b_, t_, dirs, h_] if layout else [t_, dirs, b_, h_]
            shape = seq if k == 0 else bf([dirs, b_, h_])
            outs.append(tensor_input(name, named(shape, 0 if layout else 2 if k == 0 else 1)))

    def state(d):
        v = n.rng.standard_normal((d, b_, h_)).astype(np.float32)
        return n.const("s", v.transpose(1, 0, 2) if layout else v)

    rnn("LSTM", 4, 2, h0="h0", direction="bidirectional")
    rnn("LSTM", 4, 1, h0="" if batch else state(1), c0="c0")
    if batch:
        rnn("GRU", 3, 1, h0=n.op("Tanh", ["g0"]), linear_before_reset=1)
        rnn("RNN", 1, 1, h0="c0", direction="reverse")
    else:
        full = n.const("lens", np.full(b_, t_, np.int32))
        rnn("GRU", 3, 1, seq_lens=full, h0=n.op("Tanh", ["g0"]), linear_before_reset=1)
        rnn("RNN", 1, 1, h0=state(1), direction="reverse")
    inputs = {"x": [t_, b_, f_], "h0": [2, b_, h_], "c0": [1, b_, h_], "g0": [1, b_, h_]}
    decl = {k: named(bf(v), 0 if layout else 1) for k, v in inputs.items()}
    n.save(path, [tensor_input(k, v) for k, v in decl.items()], outs, opset)
    return {k: n.rng.standard_normal(v).astype(np.float32) for k, v in inputs.items()}
