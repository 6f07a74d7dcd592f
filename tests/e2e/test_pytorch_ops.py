"""The PyTorch emitter, op by op, against the reference interpreter.

Every op of the catalogue (and the attribute combinations where torch's own functions differ
from the IR: asymmetric padding, ceil-mode windows, even LRN sizes, Resize modes, recurrent
variants) is built as a small mmdnn IR graph here, converted with `mmdnn tocode -f pytorch`
(state dict from `-dw`), run in PyTorch in a subprocess and compared with `mmdnn run` on the
IR: max|Δ| ≤ 1e-4·max(1, |ref|), integer and bool outputs equal. The generated files must pass
`ruff check` and `python -m py_compile`.

The helpers here (IR builder, `convert_and_compare`) are shared with the other
test_pytorch_*.py files.
"""

import json
import subprocess
import sys

import mmdnn_ir_schema as mmdnn_schema
import numpy as np
import pytest
from google.protobuf import descriptor_pool, message_factory

TOL = 1e-4

# ---------------------------------------------------------------------------------------------
# mmdnn IR (ir_version 1): MMdnn's schema plus the fields proto/ir/graph.proto adds.


def _schema():
    fdp = type(mmdnn_schema.FILE_DESCRIPTOR_PROTO)()
    fdp.CopyFrom(mmdnn_schema.FILE_DESCRIPTOR_PROTO)
    fdp.name = "mmdnn_ir_v1/graph.proto"
    fdp.package = "mmdnn_ir_v1"
    F = type(fdp.message_type[0].field[0])

    def retype(msg):
        for f in msg.field:
            if f.type_name:
                f.type_name = f.type_name.replace(".mmdnn_ir_test.", ".mmdnn_ir_v1.")
        for nested in msg.nested_type:
            retype(nested)

    for m in fdp.message_type:
        retype(m)
    fdp.enum_type[0].value.add(name="DT_BFLOAT16", number=16)
    by_name = {m.name: m for m in fdp.message_type}
    info = fdp.message_type.add(name="TensorInfo")
    info.field.add(name="dtype", number=1, type=F.TYPE_ENUM, label=F.LABEL_OPTIONAL,
                   type_name=".mmdnn_ir_v1.DataType")
    info.field.add(name="shape", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                   type_name=".mmdnn_ir_v1.TensorShape")
    by_name["NodeDef"].field.add(name="output_info", number=5, type=F.TYPE_MESSAGE,
                                 label=F.LABEL_REPEATED, type_name=".mmdnn_ir_v1.TensorInfo")
    g = by_name["GraphDef"]
    g.field.add(name="inputs", number=3, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    g.field.add(name="outputs", number=4, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    g.field.add(name="ir_version", number=5, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    g.field.add(name="producer", number=6, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("mmdnn_ir_v1.GraphDef"))


GraphDef = _schema()

DTYPES = {
    "int8": 1, "int16": 2, "int32": 3, "int64": 4, "uint8": 5, "uint16": 6, "uint32": 7,
    "uint64": 8, "float16": 9, "float32": 10, "float64": 11, "bool": 14,
    # mmdnn additions (proto/ir/graph.proto)
    "float8_e4m3fn": 17, "float8_e4m3fnuz": 18, "float8_e5m2": 19, "float8_e5m2fnuz": 20,
}


class DT(str):
    """An attribute value that is a dtype."""


class Shape(list):
    """An attribute value that is a shape."""


def _set_attr(attr, v):
    if isinstance(v, DT):
        attr.type = DTYPES[v]
    elif isinstance(v, Shape):
        attr.shape.dim.extend([])
        for d in v:
            attr.shape.dim.add().size = d
    elif isinstance(v, bool):
        attr.b = v
    elif isinstance(v, int):
        attr.i = v
    elif isinstance(v, float):
        attr.f = v
    elif isinstance(v, str):
        attr.s = v.encode()
    elif isinstance(v, (list, tuple)):
        if all(isinstance(x, str) for x in v) and v:
            attr.list.s.extend(x.encode() for x in v)
        elif any(isinstance(x, float) for x in v):
            attr.list.f.extend(float(x) for x in v)
        else:
            attr.list.SetInParent()
            attr.list.i.extend(int(x) for x in v)
    else:
        raise TypeError(f"unsupported attribute value {v!r}")


def encode_part(part):
    """Weight-key encoding of src/weights/mod.rs: %, /, \\, #, control chars, a leading dot."""
    out = []
    for i, c in enumerate(part):
        if c in "%/\\#" or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or (i == 0 and c == "."):
            out.extend(f"%{b:02X}" for b in c.encode())
        else:
            out.append(c)
    return "".join(out)


class Graph:
    """Builds an mmdnn IR graph, its weights and its feeds."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.weights = {}
        self.inputs = []
        self.outputs = []
        self.feeds = {}
        self.count = 0

    def name(self, base):
        self.count += 1
        return f"{base.lower()}_{self.count}"

    def input(self, shape, dtype="float32", name=None, data=None, batch_unknown=True):
        name = name or self.name("input")
        if data is None:
            if dtype == "bool":
                data = self.rng.random(shape) > 0.5
            elif dtype.startswith(("int", "uint")):
                data = self.rng.integers(0, 5, shape).astype(dtype)
            else:
                data = self.rng.standard_normal(shape).astype(dtype)
        decl = list(shape)
        if batch_unknown and decl:
            decl[0] = -1
        self.op("DataInput", [], name=name, dtype=DT(dtype), shape=Shape(decl))
        self.inputs.append(name)
        self.feeds[name] = data
        return name

    def op(self, op, inputs, name=None, **attrs):
        name = name or self.name(op)
        self.nodes.append((name, op, list(inputs), attrs))
        return name

    def w(self, node, param, array):
        self.weights[(node, param)] = np.asarray(array)

    def rand(self, *shape, scale=0.5):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def const(self, array, name=None):
        array = np.asarray(array)
        name = self.op("Constant", [], name=name, dtype=DT(str(array.dtype)),
                       shape=Shape(list(array.shape)))
        self.w(name, "value", array)
        return name

    def output(self, *refs):
        self.outputs.extend(refs)

    def save(self, prefix):
        g = GraphDef()
        g.ir_version = 1
        g.producer = "test_pytorch_ops.py"
        for name, op, inputs, attrs in self.nodes:
            n = g.node.add()
            n.name, n.op = name, op
            n.input.extend(inputs)
            for k, v in attrs.items():
                _set_attr(n.attr[k], v)
        g.inputs.extend(self.inputs)
        g.outputs.extend(self.outputs)
        with open(f"{prefix}.pb", "wb") as f:
            f.write(g.SerializeToString())
        np.savez(f"{prefix}.npz", **{
            f"{encode_part(n)}/{encode_part(p)}": a for (n, p), a in self.weights.items()})
        for i, name in enumerate(self.inputs):
            np.save(f"{prefix}.in{i}.npy", self.feeds[name])


# ---------------------------------------------------------------------------------------------
# Converting, running and comparing.

TORCH_RUNNER = r"""
import importlib.util, json, re, sys, warnings
import numpy as np
import torch

torch.manual_seed(0)
for case in json.loads(sys.argv[1]):
    spec = importlib.util.spec_from_file_location("model_" + case["name"], case["code"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.KitModel()
    model.load_state_dict(torch.load(case["weights"], weights_only=True))
    model.eval()
    if "names" in case:  # the forward() arguments are the source's input names
        import inspect
        assert list(inspect.signature(model.forward).parameters) == case["names"], case["name"]
    # The docstring says which inputs and outputs --io-layout made channels-first.
    doc = type(model).__doc__
    doc_in = doc.split("Inputs:")[1].split("Returns:")[0].strip().splitlines()
    doc_out = doc.split("Returns:")[1].strip().splitlines()
    args = []
    for f, line in zip(case["inputs"], doc_in):
        x = torch.from_numpy(np.load(f))
        args.append(x.movedim(-1, 1) if "channels-first" in line else x)
    with torch.no_grad():
        outs = model(*args)
        # The code is also valid TorchScript (tomodel --format torchscript scripts it).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.script(model)(*args)
    if isinstance(outs, torch.Tensor):
        outs, scripted = (outs,), (scripted,)
    for o, s in zip(outs, scripted):
        assert torch.equal(o, s) or torch.allclose(o, s, atol=1e-6, equal_nan=True), case["name"]
    for i, (o, line) in enumerate(zip(outs, doc_out)):
        m = re.search(r"permuted by \[([0-9, ]+)\]", line)
        if m:
            perm = [int(v) for v in m.group(1).split(",")]
            o = o.permute([perm.index(k) for k in range(len(perm))])
        np.save(f"{case['dir']}/torch{i}.npy", o.numpy())
    print("ran", case["name"], flush=True)
"""


def mmdnn_outputs(run_mmdnn, prefix, n_inputs, inputs, out_dir, feeds=None):
    """`mmdnn run` on the IR `prefix`.pb; inputs from `feeds` (else <prefix>.in<i>.npy)."""
    args = ["run", "-n", f"{prefix}.pb", "-o", out_dir]
    for i, name in enumerate(inputs[:n_inputs]):
        args += ["--input", f"{name}={feeds[i] if feeds else f'{prefix}.in{i}.npy'}"]
    proc = run_mmdnn(*args, check=True)
    files = [line.split("-> ")[-1] for line in proc.stdout.splitlines() if "-> " in line]
    return [np.load(f) for f in files]


def compare(got, ref, what):
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    if ref.dtype.kind in "iub":
        np.testing.assert_array_equal(got, ref, err_msg=what)
        return 0.0
    got, ref = got.astype(np.float64), ref.astype(np.float64)
    special = ~np.isfinite(ref)
    np.testing.assert_array_equal(got[special], ref[special], err_msg=f"{what}: inf/nan differ")
    ok = ~special
    err = np.abs(got[ok] - ref[ok])
    bound = TOL * np.maximum(1.0, np.abs(ref[ok]))
    worst = float(err.max()) if err.size else 0.0
    assert (err <= bound).all(), f"{what}: max |Δ| {worst:.3g} exceeds 1e-4·max(1,|ref|)"
    if ref.ndim >= 1 and ref.shape[-1] > 1 and ref.dtype.kind == "f":
        assert (got.argmax(-1) == ref.argmax(-1)).all(), f"{what}: argmax differs"
    return worst


def lint(paths):
    """ruff check (default rules) and py_compile on the generated files."""
    paths = [str(p) for p in paths]
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", *paths],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"ruff check failed:\n{proc.stdout}\n{proc.stderr}"
    for p in paths:
        # The compiled file goes to the __pycache__ beside the generated code (a temp dir).
        proc = subprocess.run([sys.executable, "-m", "py_compile", p], capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, f"py_compile {p}:\n{proc.stderr}"


def run_torch(run_in_subprocess, jobs):
    """Runs each job's generated module (code, state dict, input .npy files) in one torch
    subprocess; writes its outputs as <dir>/torch<i>.npy."""
    run_in_subprocess(TORCH_RUNNER.replace("sys.argv[1]", repr(json.dumps(jobs))))


def torch_results(d, refs):
    """The module's outputs for the IR's `refs` (back in the source's layout)."""
    got = [np.load(d / f"torch{i}.npy") for i in range(len(refs))]
    assert not (d / f"torch{len(refs)}.npy").exists(), f"{d.name}: more outputs than the IR"
    return got


def convert_and_compare(tmp_path, run_mmdnn, run_in_subprocess, cases, tocode_args=()):
    """cases: {name: Graph}. Converts each with tocode, runs all in one torch subprocess and
    compares with `mmdnn run`. Returns {name: max |Δ| per output}."""
    jobs = []
    for name, g in cases.items():
        d = tmp_path / name
        d.mkdir()
        prefix = d / "ir"
        g.save(prefix)
        run_mmdnn("tocode", "-f", "pytorch", "-n", f"{prefix}.pb", "-w", f"{prefix}.npz",
                  "-d", d / "model.py", "-dw", d / "weights.pth", *tocode_args, check=True)
        jobs.append({"name": name, "dir": str(d), "code": str(d / "model.py"),
                     "weights": str(d / "weights.pth"),
                     "inputs": [f"{prefix}.in{i}.npy" for i in range(len(g.inputs))]})
    lint([j["code"] for j in jobs])
    run_torch(run_in_subprocess, jobs)
    errors = {}
    for name, g in cases.items():
        d = tmp_path / name
        refs = mmdnn_outputs(run_mmdnn, d / "ir", len(g.inputs), g.inputs, d / "ref")
        got = torch_results(d, refs)
        errors[name] = [compare(a, b, f"{name} output {i}") for i, (a, b) in enumerate(zip(got, refs))]
    return errors


# ---------------------------------------------------------------------------------------------
# The cases.


def conv_cases():
    cases = {}

    g = Graph(1)
    x = g.input([2, 3, 9, 9])
    c = g.op("Conv", [x], kernel_shape=[3, 3], pads=[1, 1, 1, 1], out_channels=4, use_bias=True)
    g.w(c, "weights", g.rand(4, 3, 3, 3)), g.w(c, "bias", g.rand(4))
    c2 = g.op("Conv", [c], kernel_shape=[3, 2], strides=[2, 1], dilations=[1, 2], pads=[0, 1, 2, 0],
              out_channels=6)
    g.w(c2, "weights", g.rand(6, 4, 3, 2))
    c3 = g.op("Conv", [c2], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=6, out_channels=6)
    g.w(c3, "weights", g.rand(6, 1, 3, 3))
    c4 = g.op("Conv", [c3], kernel_shape=[1, 1], group=2, out_channels=4, use_bias=True)
    g.w(c4, "weights", g.rand(4, 3, 1, 1)), g.w(c4, "bias", g.rand(4))
    g.output(c4)
    cases["conv2d"] = g

    g = Graph(2)
    x = g.input([2, 3, 10])
    c = g.op("Conv", [x], kernel_shape=[3], strides=[2], pads=[2, 1], out_channels=5, use_bias=True)
    g.w(c, "weights", g.rand(5, 3, 3)), g.w(c, "bias", g.rand(5))
    y = g.input([1, 2, 5, 6, 4])
    c3 = g.op("Conv", [y], kernel_shape=[3, 3, 3], pads=[1, 1, 1, 1, 1, 1], out_channels=3)
    g.w(c3, "weights", g.rand(3, 2, 3, 3, 3))
    g.output(c, c3)
    cases["conv1d_3d"] = g

    g = Graph(3)
    x = g.input([1, 7, 7, 3])
    c = g.op("Conv", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1], out_channels=4,
             use_bias=True, data_format="channels_last")
    g.w(c, "weights", g.rand(3, 3, 3, 4)), g.w(c, "bias", g.rand(4))
    g.output(c)
    cases["conv_channels_last"] = g

    g = Graph(4)
    x = g.input([2, 4, 5, 5])
    t = g.op("ConvTranspose", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
             output_padding=[1, 1], out_channels=3, use_bias=True)
    g.w(t, "weights", g.rand(4, 3, 3, 3)), g.w(t, "bias", g.rand(3))
    t2 = g.op("ConvTranspose", [x], kernel_shape=[4, 3], strides=[2, 3], pads=[2, 0, 1, 1],
              output_padding=[0, 2], group=2, out_channels=4, use_bias=True)
    g.w(t2, "weights", g.rand(4, 2, 4, 3)), g.w(t2, "bias", g.rand(4))
    t3 = g.op("ConvTranspose", [x], kernel_shape=[3, 3], dilations=[2, 1], pads=[0, 3, 0, 0],
              out_channels=2)
    g.w(t3, "weights", g.rand(4, 2, 3, 3))
    y = g.input([1, 2, 6])
    t4 = g.op("ConvTranspose", [y], kernel_shape=[2], strides=[2], out_channels=3)
    g.w(t4, "weights", g.rand(2, 3, 2))
    g.output(t, t2, t3, t4)
    cases["conv_transpose"] = g

    # RuntimeConv: kernel and bias as inputs, one computed (Relu of an input), one a Constant.
    g = Graph(5)
    x = g.input([2, 4, 7, 6])
    w, b = g.input([6, 2, 3, 3], batch_unknown=False), g.input([6], batch_unknown=False)
    r = g.op("RuntimeConv", [x, g.op("Relu", [w]), b], kernel_shape=[3, 3], strides=[2, 1],
             pads=[0, 1, 1, 1], group=2, out_channels=6)
    y = g.input([1, 3, 9])
    r2 = g.op("RuntimeConv", [y, g.const(g.rand(2, 3, 3))], kernel_shape=[3], pads=[2, 2],
              dilations=[2], out_channels=2)
    g.output(r, r2)
    cases["runtime_conv"] = g
    return cases


def pool_cases():
    cases = {}
    g = Graph(5)
    x = g.input([2, 3, 11, 10])
    outs = [
        g.op("Pool", [x], pooling_type="MAX", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
             ceil_mode=True),
        g.op("Pool", [x], pooling_type="MAX", kernel_shape=[3, 2], strides=[2, 2], pads=[0, 0, 1, 1]),
        g.op("Pool", [x], pooling_type="MAX", kernel_shape=[2, 2], strides=[3, 3], pads=[0, 0, 2, 2],
             ceil_mode=True),
        g.op("Pool", [x], pooling_type="MAX", kernel_shape=[3, 3], dilations=[2, 1], strides=[1, 2]),
        g.op("Pool", [x], pooling_type="AVG", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
             count_include_pad=True, ceil_mode=True),
        g.op("Pool", [x], pooling_type="AVG", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        g.op("Pool", [x], pooling_type="AVG", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]),
        g.op("Pool", [x], pooling_type="AVG", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 2],
             count_include_pad=True),
        g.op("Pool", [x], pooling_type="AVG", kernel_shape=[2, 3], strides=[3, 2], pads=[0, 1, 2, 1],
             ceil_mode=True),
        g.op("Pool", [x], pooling_type="MAX", kernel_shape=[2, 2], pads=[2, 2, 2, 2]),
        g.op("Pool", [x], pooling_type="AVG", kernel_shape=[2, 3], dilations=[2, 1], strides=[2, 2],
             pads=[1, 0, 0, 2], ceil_mode=True),
        g.op("Pool", [x], pooling_type="AVG", kernel_shape=[3, 2], dilations=[1, 3], strides=[3, 1],
             pads=[1, 1, 2, 0], ceil_mode=True, count_include_pad=True),
        g.op("Pool", [x], pooling_type="AVG", kernel_shape=[2, 2], dilations=[2, 2]),
        g.op("GlobalPool", [x], pooling_type="AVG"),
        g.op("GlobalPool", [x], pooling_type="MAX", keepdims=False),
    ]
    g.output(*outs)
    cases["pool2d"] = g

    g = Graph(6)
    x = g.input([2, 3, 9])
    y = g.input([1, 2, 5, 6, 7])
    g.output(
        g.op("Pool", [x], pooling_type="AVG", kernel_shape=[3], strides=[2], pads=[1, 0]),
        g.op("Pool", [x], pooling_type="MAX", kernel_shape=[2], strides=[2], ceil_mode=True),
        g.op("Pool", [y], pooling_type="AVG", kernel_shape=[2, 3, 2], strides=[1, 2, 2],
             pads=[1, 1, 0, 1, 1, 0]),
        g.op("Pool", [y], pooling_type="MAX", kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
        g.op("GlobalPool", [y], pooling_type="AVG", keepdims=False),
    )
    cases["pool1d_3d"] = g
    return cases


def dense_cases():
    g = Graph(7)
    x = g.input([2, 4, 6])
    fc = g.op("FullyConnected", [x], units=5, use_bias=True)
    g.w(fc, "weights", g.rand(6, 5)), g.w(fc, "bias", g.rand(5))
    fc2 = g.op("FullyConnected", [fc], units=3)
    g.w(fc2, "weights", g.rand(5, 3))
    a = g.input([2, 3, 4])
    b = g.input([2, 4, 5])
    mm = g.op("MatMul", [a, b])
    ga = g.input([4, 3], batch_unknown=False)
    gb = g.const(g.rand(5, 4))
    gc = g.const(g.rand(5))
    gemm = g.op("Gemm", [ga, gb, gc], trans_a=True, trans_b=True, alpha=0.5, beta=2.0)
    gemm2 = g.op("Gemm", [ga, g.const(g.rand(4, 2))], trans_a=True)
    idx = g.input([2, 5], dtype="int64", data=np.array([[0, 3, 9, 2, 2], [1, 1, 0, 8, 7]]))
    emb = g.op("Embedding", [idx], input_dim=10, output_dim=4)
    g.w(emb, "weights", g.rand(10, 4))
    g.output(fc2, mm, gemm, gemm2, emb)
    return {"dense": g}


def norm_cases():
    g = Graph(8)
    x = g.input([2, 4, 5, 6])
    bn = g.op("BatchNorm", [x], epsilon=1e-3)
    for p in ("mean", "scale", "bias"):
        g.w(bn, p, g.rand(4))
    g.w(bn, "var", g.rng.uniform(0.5, 1.5, 4).astype(np.float32))
    bn2 = g.op("BatchNorm", [x], use_scale=False, axis=1)
    g.w(bn2, "mean", g.rand(4)), g.w(bn2, "var", np.ones(4, np.float32)), g.w(bn2, "bias", g.rand(4))
    s = g.input([2, 3, 5])
    bn3 = g.op("BatchNorm", [s], axis=-1, use_bias=False, use_scale=False)
    g.w(bn3, "mean", g.rand(5)), g.w(bn3, "var", np.full(5, 2.0, np.float32))
    ln = g.op("LayerNorm", [s], axes=[-1], epsilon=1e-6)
    g.w(ln, "scale", g.rand(5)), g.w(ln, "bias", g.rand(5))
    ln2 = g.op("LayerNorm", [x], axes=[1], use_bias=False)
    g.w(ln2, "scale", g.rand(4))
    ln3 = g.op("LayerNorm", [x], axes=[1, 3], use_scale=False)
    g.w(ln3, "bias", g.rand(4, 6))
    ln4 = g.op("LayerNorm", [s], axes=[1, 2], use_scale=False, use_bias=False)
    gn = g.op("GroupNorm", [x], groups=2)
    g.w(gn, "scale", g.rand(4)), g.w(gn, "bias", g.rand(4))
    inn = g.op("InstanceNorm", [x], epsilon=1e-3)
    g.w(inn, "scale", g.rand(4)), g.w(inn, "bias", g.rand(4))
    inn2 = g.op("InstanceNorm", [s], use_scale=False, use_bias=False)
    lrn = g.op("LRN", [x], size=3, alpha=0.01, beta=0.6, bias=1.5)
    lrn2 = g.op("LRN", [x], size=2, alpha=0.02)
    lrn3 = g.op("LRN", [s], size=4, axis=2)
    lp = g.op("LpNormalize", [x], axis=1, p=1)
    lp2 = g.op("LpNormalize", [s], axis=-1, p=2)
    g.output(bn, bn2, bn3, ln, ln2, ln3, ln4, gn, inn, inn2, lrn, lrn2, lrn3, lp, lp2)
    return {"normalization": g}


def activation_cases():
    g = Graph(9)
    x = g.input([2, 3, 4, 5])
    pos = g.op("Add", [g.op("Abs", [x]), g.const(np.float32(0.25))])
    outs = [g.op(op, [x]) for op in [
        "Relu", "Sigmoid", "HardSwish", "SiLU", "Mish", "Tanh", "Softplus", "Softsign", "Exp",
        "Square", "Abs", "Neg", "Sign", "Floor", "Ceil", "Round", "Erf", "Sin", "Cos", "Identity"]]
    outs += [g.op(op, [pos]) for op in ["Log", "Sqrt", "Rsqrt", "Reciprocal"]]
    outs += [
        g.op("LeakyRelu", [x], alpha=0.2),
        g.op("Elu", [x]), g.op("Elu", [x], alpha=0.5),
        g.op("Selu", [x]), g.op("Selu", [x], alpha=1.5, gamma=1.2),
        g.op("ThresholdedRelu", [x], alpha=0.3),
        g.op("HardSigmoid", [x]), g.op("HardSigmoid", [x], alpha=1 / 6, beta=0.5),
        g.op("Gelu", [x]), g.op("Gelu", [x], approximate="tanh"),
        g.op("Clip", [x], min=0.0, max=6.0), g.op("Clip", [x], min=-0.5),
        g.op("Clip", [x], max=0.5), g.op("Clip", [x], min=-1.0, max=1.0), g.op("Clip", [x]),
        g.op("Clip", [x], min=0.0),
        g.op("Softmax", [x], axis=1), g.op("LogSoftmax", [x]),
    ]
    p1 = g.op("PRelu", [x])
    g.w(p1, "slope", g.rand(3, 1, 1))
    p2 = g.op("PRelu", [x])
    g.w(p2, "slope", g.rand(4, 5))
    p3 = g.op("PRelu", [x])
    g.w(p3, "slope", np.float32([0.3]))
    b = g.input([2, 3], dtype="bool")
    i = g.input([2, 3], dtype="int64", data=np.array([[-7, 3, 12], [0, 5, -2]]))
    outs += [p1, p2, p3, g.op("Not", [b]), g.op("Clip", [i], min=-1.5, max=4.5)]
    g.output(*outs)
    return {"activations": g}


def arithmetic_cases():
    g = Graph(10)
    a = g.input([2, 3, 4])
    b = g.input([3, 1], batch_unknown=False)
    ia = g.input([2, 3], dtype="int64", data=np.array([[-7, 7, 9], [3, -4, 0]]))
    ib = g.input([2, 3], dtype="int64", data=np.array([[2, 2, -4], [1, 3, 5]]))
    ba = g.input([2, 3], dtype="bool")
    bb = g.input([2, 3], dtype="bool")
    pos = g.op("Abs", [a])
    outs = [g.op(op, [a, b]) for op in ["Add", "Sub", "Mul", "Div", "Maximum", "Minimum"]]
    outs += [g.op("Pow", [pos, b])]
    outs += [g.op(op, [a, b]) for op in ["Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual"]]
    outs += [g.op("Div", [ia, ib]), g.op("Add", [ia, ib]), g.op("Equal", [ia, ib])]
    outs += [g.op(op, [ba, bb]) for op in ["And", "Or", "Xor"]]
    outs += [g.op("Where", [g.op("Greater", [a, b]), a, g.const(np.float32(-1.0))])]
    div = g.const(np.array([[2.5], [-1.5], [0.75]], np.float32))
    outs += [g.op("Mod", [g.op("Mul", [a, g.const(np.float32(4.0))]), div], fmod=f) for f in (0, 1)]
    outs += [g.op("Mod", [ia, ib], fmod=f) for f in (0, 1)]
    g.output(*outs)
    return {"arithmetic": g}


def scatter_cases():
    """ScatterND; its reductions max and min need ONNX opset 18 (test_onnx_writer.MIN_OPSET)."""
    g = Graph(17)
    x = g.input([4, 3, 2])
    rows = g.input([2, 3, 2], batch_unknown=False)
    elems = g.input([2, 2], batch_unknown=False)
    ix = g.input([3, 4], dtype="int64", data=np.arange(12).reshape(3, 4))
    iu = g.input([2, 4], dtype="int64", data=np.array([[10, 20, 30, 40], [-1, -2, -3, -4]]))
    row_idx = g.const(np.array([[2], [-4]], np.int64))
    elem_idx = g.const(np.array([[[1, -1, 0], [3, 2, 1]], [[0, 0, -2], [-1, 1, 1]]], np.int32))
    dup = g.const(np.array([[1, 2], [3, 0], [1, 2]], np.int64))
    dup_upd = g.input([3, 2], batch_unknown=False)
    outs = [g.op("ScatterND", [x, row_idx, rows]), g.op("ScatterND", [x, elem_idx, elems])]
    outs += [g.op("ScatterND", [x, dup, dup_upd], reduction=r) for r in ("add", "mul", "max", "min")]
    outs += [g.op("ScatterND", [ix, g.const(np.array([[1], [1]], np.int64)), iu], reduction="add")]
    g.output(*outs)
    return {"scatter": g}


def reduce_cases():
    g = Graph(11)
    x = g.input([2, 3, 4, 5])
    t = g.input([2, 6], dtype="float32", data=np.array([[1, 3, 3, 0, 3, 2], [5, 5, 1, 5, 0, 0]], np.float32))
    outs = []
    for op in ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2"]:
        outs.append(g.op(op, [x], axes=[1, 3]))
        outs.append(g.op(op, [x], axes=[-1], keepdims=False))
        outs.append(g.op(op, [x], axes=[2, 0, 3], keepdims=False))
    outs.append(g.op("ReduceMean", [x]))
    outs.append(g.op("ReduceSum", [x], keepdims=False))
    for op in ["ArgMax", "ArgMin"]:
        outs.append(g.op(op, [t], axis=1))
        outs.append(g.op(op, [t], axis=-1, keepdims=False, select_last_index=True))
        outs.append(g.op(op, [x], axis=2, keepdims=False))
    g.output(*outs)
    return {"reductions": g}


def shape_cases():
    cases = {}
    g = Graph(12)
    x = g.input([2, 3, 4, 5])
    outs = [
        g.op("Reshape", [x], shape=[0, -1, 5]),
        g.op("Reshape", [x], shape=[-1, 20]),
        g.op("Flatten", [x], axis=0), g.op("Flatten", [x]), g.op("Flatten", [x], axis=2),
        g.op("Flatten", [x], axis=4), g.op("Flatten", [x], axis=-1),
        g.op("Transpose", [x], perm=[0, 3, 1, 2]),
        g.op("Squeeze", [g.op("Unsqueeze", [x], axes=[0, -1])]),
        g.op("Squeeze", [g.op("Unsqueeze", [x], axes=[2, 4])], axes=[2, -2]),
        g.op("Concat", [x, x, g.op("Neg", [x])], axis=-2),
        g.op("Slice", [x], starts=[1, -2], ends=[3, 1000], axes=[1, 3]),
        g.op("Slice", [x], starts=[-1], ends=[-10**12], axes=[2], steps=[-1]),
        g.op("Slice", [x], starts=[4, 0], ends=[0, 9], axes=[3, 1], steps=[-2, 2]),
        g.op("Slice", [x], starts=[0, 10], ends=[1, -100], steps=[1, -1]),
        g.op("Tile", [x], repeats=[1, 2, 1, 3]),
        g.op("Expand", [g.op("ReduceMean", [x], axes=[1])], shape=[2, 3, 4, 5]),
        g.op("Expand", [g.const(g.rand(4, 1))], shape=[2, 1, 1, 6]),
        g.op("Shape", [x]),
        g.op("Cast", [g.op("Mul", [x, g.const(np.float32(3.0))])], to=DT("int32")),
        g.op("Cast", [x], to=DT("bool")),
        g.op("Cast", [g.op("Shape", [x])], to=DT("float32")),
        g.op("Range", [], start=1, limit=9, delta=2),
        g.op("Range", [], start=5, limit=-4, delta=-2),
    ]
    g.op("Split", [x], name="split", axis=3, split=[1, 3, 1])
    outs += ["split", "split:2"]
    g.output(*outs)
    cases["shape"] = g

    g = Graph(13)
    x = g.input([2, 3, 5, 6])
    v = g.input([2, 6], batch_unknown=False)
    outs = [
        g.op("Pad", [x], pads=[0, 0, 1, 2, 0, 0, 2, 1]),
        g.op("Pad", [x], pads=[0, 1, 0, 0, 1, 0, 0, 0], value=-1.5),
        g.op("Pad", [x], pads=[0, 0, 2, 1, 0, 0, 1, 3], mode="reflect"),
        g.op("Pad", [x], pads=[0, 0, 2, 1, 0, 0, 1, 3], mode="edge"),
        g.op("Pad", [x], pads=[0, 0, 2, 1, 0, 0, 1, 3], mode="symmetric"),
        g.op("Pad", [x], pads=[0, 2, 0, 0, 0, 1, 0, 0], mode="reflect"),
        g.op("Pad", [x], pads=[1, 0, 0, 0, 0, 0, 0, 0], mode="edge"),
        g.op("Pad", [v], pads=[0, 2, 0, 3], mode="reflect"),
        g.op("Gather", [x, g.const(np.array([2, 0, -1, 2]))], axis=3),
        g.op("Gather", [x, g.const(np.array(1))], axis=1),
        g.op("Gather", [x, g.const(np.array([[0, 1], [2, 3]], np.int32))], axis=2),
        g.op("DepthToSpace", [g.op("Tile", [x], repeats=[1, 4, 1, 1])], blocksize=2),
        g.op("DepthToSpace", [g.op("Tile", [x], repeats=[1, 4, 1, 1])], blocksize=2, mode="CRD"),
        g.op("SpaceToDepth", [g.op("Slice", [x], starts=[0], ends=[4], axes=[2])], blocksize=2),
    ]
    g.output(*outs)
    cases["pad_gather_blocks"] = g
    return cases


def dtype_cases():
    """Constants of every dtype a state dict stores (uint16 to uint64 through
    _rebuild_tensor_v3), returned as they are."""
    g = Graph(17)
    x = g.input([2, 3])
    outs = [g.op("Add", [x, g.const(g.rand(3))])]
    for dtype in ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]:
        outs.append(g.const(np.arange(6, dtype=dtype).reshape(2, 3) * 3))
    outs.append(g.const(np.array([[True, False, True]])))
    outs.append(g.const(g.rand(2, 2).astype(np.float16)))
    outs.append(g.const(g.rand(4).astype(np.float64)))
    g.output(*outs)
    cases = {"dtypes": g}
    # float8 casts (torch's conversions do not saturate: the module clamps when the IR does),
    # widened back to float32: rounding, overflow, infinities, NaN, underflow, −0.
    g = Graph(17)
    x = g.input([2, 6], data=np.array([[0.3, 1000.0, -1e6, np.inf, -np.inf, np.nan],
                                       [1e-7, -1e-7, -2.5, 239.0, 250.0, -0.0]], np.float32))
    outs = []
    for dtype in ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz"]:
        for saturate in (True, False):
            y = g.op("Cast", [x], to=DT(dtype), saturate=saturate)
            outs.append(g.op("Cast", [y], to=DT("float32")))
    g.output(*outs)
    cases["float8_casts"] = g
    return cases


def resize_cases():
    g = Graph(14)
    x = g.input([1, 2, 5, 7])
    outs = []
    for ctm in ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]:
        for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
            outs.append(g.op("Resize", [x], mode="nearest", scales=[2.0, 3.0],
                             coordinate_transformation_mode=ctm, nearest_mode=nm))
        outs.append(g.op("Resize", [x], mode="nearest", sizes=[3, 11], coordinate_transformation_mode=ctm))
        outs.append(g.op("Resize", [x], mode="linear", sizes=[8, 4], coordinate_transformation_mode=ctm))
        outs.append(g.op("Resize", [x], mode="linear", scales=[1.5, 0.6], coordinate_transformation_mode=ctm))
        outs.append(g.op("Resize", [x], mode="cubic", sizes=[9, 13], coordinate_transformation_mode=ctm))
    outs.append(g.op("Resize", [x], mode="cubic", scales=[2.0, 2.0], cubic_coeff_a=-0.5))
    outs.append(g.op("Resize", [x], mode="nearest", scales=[1.0, 2.0], coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor"))
    y = g.input([1, 2, 6])
    outs.append(g.op("Resize", [y], mode="linear", sizes=[13]))
    z = g.input([1, 1, 3, 4, 2])
    outs.append(g.op("Resize", [z], mode="linear", scales=[2.0, 1.5, 2.0], coordinate_transformation_mode="align_corners"))
    g.output(*outs)
    return {"resize": g}


def resize19_cases():
    """Resize's half_pixel_symmetric (ONNX opset 19, test_onnx_writer.MIN_OPSET) and
    exclude_outside."""
    g = Graph(18)
    x = g.input([1, 2, 7, 5])
    outs = []
    for mode in ["nearest", "linear", "cubic"]:
        outs.append(g.op("Resize", [x], mode=mode, scales=[0.6, 1.5],
                         coordinate_transformation_mode="half_pixel_symmetric"))
        outs.append(g.op("Resize", [x], mode=mode, sizes=[3, 11],
                         coordinate_transformation_mode="half_pixel_symmetric"))
    for mode in ["linear", "cubic"]:
        outs.append(g.op("Resize", [x], mode=mode, scales=[0.8, 1.6], exclude_outside=True, cubic_coeff_a=-0.5))
        outs.append(g.op("Resize", [x], mode=mode, sizes=[14, 10], exclude_outside=True))
    g.output(*outs)
    return {"resize19": g}


def runtime_attr_cases():
    """Shape-like attributes given as int64 tensors computed at run time (the node's
    `from_inputs` names them; the tensors are graph inputs here, so nothing can fold them)."""
    g = Graph(21)
    x = g.input([2, 3, 4, 5])

    def ints(*values):
        return g.input([len(values)], "int64", data=np.array(values, np.int64), batch_unknown=False)

    def scalar(v):
        return g.input([], "int64", data=np.array(v, np.int64), batch_unknown=False)

    outs = [
        g.op("Reshape", [x, ints(0, 12, 5)], from_inputs=["shape"]),
        g.op("Reshape", [x, ints(-1, 20)], from_inputs=["shape"]),
        g.op("Expand", [g.const(g.rand(4, 1)), ints(2, 1, 1, 6)], from_inputs=["shape"]),
        g.op("Tile", [x, ints(1, 2, 1, 3)], from_inputs=["repeats"]),
        g.op("Slice", [x, ints(3, 0), ints(-100, 2), ints(2, -3), ints(-1, 1)],
             from_inputs=["starts", "ends", "axes", "steps"]),
        g.op("Slice", [x, ints(1), ints(10**12)], axes=[3], from_inputs=["starts", "ends"]),
        g.op("Pad", [x, ints(0, 1, 0, 2, 1, 0, 3, 0)], value=-1.5, from_inputs=["pads"]),
        g.op("Squeeze", [g.op("Unsqueeze", [x, ints(0, -1)], from_inputs=["axes"]), ints(0)],
             from_inputs=["axes"]),
        g.op("Range", [scalar(1), scalar(9), scalar(2)], from_inputs=["start", "limit", "delta"]),
        g.op("Range", [scalar(7)], start=2, from_inputs=["limit"]),
        g.op("ReduceSum", [x, ints(1, -1)], keepdims=False, from_inputs=["axes"]),
        g.op("ReduceMax", [x, ints()], from_inputs=["axes"]),
        g.op("Resize", [x, ints(7, 3)], mode="linear", from_inputs=["sizes"]),
        g.op("Resize", [x, g.input([2], data=np.array([1.5, 0.5], np.float32), batch_unknown=False)],
             mode="cubic", coordinate_transformation_mode="asymmetric", from_inputs=["scales"]),
    ]
    g.op("Split", [x, ints(1, 3, 1)], name="split", axis=3, from_inputs=["split"])
    outs += ["split", "split:2"]
    g.output(*outs)
    cases = {"runtime_attrs": g}
    # The layout pass: a channels_last convolution (run channels_first inside the generated
    # model) feeding run-time Reshape, Pad and ReduceMean, which read their input in the source
    # layout; its output reshaped to [N, 4, 16] with channels last.
    g = Graph(22)
    x = g.input([2, 8, 8, 3])
    c = g.op("Conv", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], out_channels=4,
             data_format="channels_last")
    g.w(c, "weights", g.rand(3, 3, 3, 4))
    outs = [
        g.op("Reshape", [c, ints(0, -1, 4)], from_inputs=["shape"]),
        g.op("Pad", [c, ints(0, 1, 0, 2, 0, 0, 1, 0)], from_inputs=["pads"]),
        g.op("ReduceMean", [c, ints(1, 2)], keepdims=False, from_inputs=["axes"]),
    ]
    g.output(*outs)
    cases["runtime_attrs_channels_last"] = g
    return cases


def recurrent_cases():
    from recurrent_ir_cases import recurrent_cases as cases

    return cases(Graph)


ALL = {
    "conv": conv_cases, "pool": pool_cases, "dense": dense_cases, "norm": norm_cases,
    "activations": activation_cases, "arithmetic": arithmetic_cases, "reduce": reduce_cases,
    "shape": shape_cases, "scatter": scatter_cases, "dtypes": dtype_cases, "resize": resize_cases,
    "resize19": resize19_cases, "recurrent": recurrent_cases, "runtime_attrs": runtime_attr_cases,
}


@pytest.mark.parametrize("family", list(ALL))
def test_ops(tmp_path, run_mmdnn, run_in_subprocess, family):
    errors = convert_and_compare(tmp_path, run_mmdnn, run_in_subprocess, ALL[family]())
    print(family, "max |Δ|:", {k: max(v) if v else 0 for k, v in errors.items()})


def test_channels_last_keep_layout(tmp_path, run_mmdnn, run_in_subprocess):
    g = conv_cases()["conv_channels_last"]
    convert_and_compare(tmp_path, run_mmdnn, run_in_subprocess, {"kept": g}, ["--keep-layout"])
    code = (tmp_path / "kept" / "model.py").read_text()
    assert "(1, 7, 7, 3)" in code and "channels-first" not in code, code


def test_channels_last_io_layout(tmp_path, run_mmdnn, run_in_subprocess):
    """--io-layout channels_first: the module takes and returns channels-first tensors (the
    docstring says so, and the runner above feeds and reads them accordingly)."""
    g = conv_cases()["conv_channels_last"]
    convert_and_compare(tmp_path, run_mmdnn, run_in_subprocess, {"cf": g},
                        ["--io-layout", "channels_first"])
    code = (tmp_path / "cf" / "model.py").read_text()
    assert "(1, 3, 7, 7)" in code and "channels-first; the source took [?, 7, 7, 3]" in code, code


def test_every_catalogue_op_is_covered(run_mmdnn):
    """Each op of `mmdnn ops` appears in at least one case above."""
    import re

    listed = set(re.findall(r"^### (\w+)", run_mmdnn("ops", "--markdown", check=True).stdout, re.MULTILINE))
    used = set()
    for make in ALL.values():
        for g in make().values():
            used |= {op for _, op, _, _ in g.nodes}
    assert listed and not listed - used, f"ops without a PyTorch test: {sorted(listed - used)}"
