"""Dynamic models (issue 12): ONNX exports whose batch, sequence and image sizes are symbols
(a BERT-like encoder, a GPT-like decoder whose positions are `arange(seq_len)` into a 128-row
table, an LRASPP-like head upsampling to the input's own size, a Conv1d + bidirectional LSTM
over a dynamic time axis; torchvision's LRASPP and
DeepLabV3-MobileNetV3 with symbolic batch/H/W and ResNet-18 with a symbolic batch, random
weights),
a graph of strided Conv, MaxPool, AveragePool and ConvTranspose with auto_pad SAME over a symbolic
H and W, and one of the SAME windows onnxruntime's auto_pad gets wrong, checked against explicit
pads), converted with no pinning to the IR (`mmdnn run`), ONNX (onnxruntime) and PyTorch (the
generated module), each run at two sizes and compared with onnxruntime on the source within
max|Δ| ≤ 1e-4 · max(1, |ref|). The converted ONNX model must keep the source's symbolic dims.
torch and onnxruntime come from the shared venv.
"""

import json

import numpy as np
import onnx
import pytest
from test_onnx_reader import compare, run_mmdnn_model

EXPORT = """
import warnings
warnings.filterwarnings("ignore")
import json, numpy as np, torch, torch.nn as nn, torch.nn.functional as F, torchvision
import onnxruntime as ort
torch.manual_seed(0)


class Encoder(nn.Module):
    # A BERT-like block: [N, S, 32] with 4 heads; the head split and merge are Reshapes whose
    # targets exporters compute from Shape(x).
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(32, 96)
        self.out = nn.Linear(32, 32)
        self.norm = nn.LayerNorm(32)
        self.ff = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))

    def forward(self, x):
        b, s, c = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        heads = lambda t: t.reshape(b, s, 4, c // 4).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        a = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, dim=-1) @ v
        x = self.norm(x + self.out(a.transpose(1, 2).reshape(b, s, c)))
        return x + self.ff(x)


class SegHead(nn.Module):
    # LRASPP-like: features at 1/4 size, upsampled back to the input's own H and W.
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, 2, 1)
        self.down2 = nn.Conv2d(8, 8, 3, 2, 1)
        self.cls = nn.Conv2d(8, 5, 1)

    def forward(self, x):
        y = self.cls(F.relu(self.down2(F.relu(self.down(x)))))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class Decoder(nn.Module):
    # GPT-like: token and learned position embeddings (a 128-row table indexed by
    # arange(seq_len), a Range over the symbolic sequence length), the block above, a head.
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(50, 32)
        self.pos = nn.Embedding(128, 32)
        self.block = Encoder()
        self.head = nn.Linear(32, 50)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1])
        return self.head(self.block(self.tok(ids) + self.pos(pos)[None]))


class ConvBiLSTM(nn.Module):
    # Conv1d over time, then a bidirectional LSTM: [N, T, 12] with T dynamic.
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(12, 16, 3, padding=1)
        self.lstm = nn.LSTM(16, 8, batch_first=True, bidirectional=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        h = F.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        return self.head(self.lstm(h)[0])


class Out(nn.Module):
    # torchvision's segmentation models return {"out": ...}.
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)["out"]


def export(name, model, example, axes, sizes):
    path = f"{out}/{name}.onnx"
    torch.onnx.export(model.eval(), (example,), path, dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": axes, "y": axes})
    sess = ort.InferenceSession(path)
    for i, shape in enumerate(sizes):
        rng = np.random.RandomState(i)
        if example.dtype == torch.int64:
            x = rng.randint(0, 50, size=shape).astype(np.int64)
        else:
            x = rng.randn(*shape).astype(np.float32)
        np.save(f"{path}.in{i}.npy", x)
        np.save(f"{path}.ref{i}.npy", sess.run(None, {"x": x})[0])


out = OUT_DIR
export("encoder", Encoder(), torch.randn(2, 7, 32), {0: "batch", 1: "seq"},
       [(2, 7, 32), (3, 40, 32)])
export("decoder", Decoder(), torch.randint(0, 50, (2, 7)), {0: "batch", 1: "seq"},
       [(2, 7), (3, 40)])
export("convbilstm", ConvBiLSTM(), torch.randn(2, 20, 12), {0: "batch", 1: "time"},
       [(2, 20, 12), (3, 33, 12)])
seg = torchvision.models.segmentation
export("lraspp", Out(seg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                    num_classes=5)),
       torch.randn(1, 3, 96, 128), {0: "batch", 2: "height", 3: "width"},
       [(1, 3, 96, 128), (2, 3, 64, 80)])
export("deeplab", Out(seg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                       num_classes=5, aux_loss=False)),
       torch.randn(1, 3, 96, 128), {0: "batch", 2: "height", 3: "width"},
       [(1, 3, 96, 128), (2, 3, 64, 80)])
export("resnet18", torchvision.models.resnet18(weights=None), torch.randn(1, 3, 64, 64),
       {0: "batch"}, [(1, 3, 64, 64), (3, 3, 64, 64)])
export("seghead", SegHead(), torch.randn(1, 3, 32, 48), {0: "batch", 2: "height", 3: "width"},
       [(1, 3, 32, 48), (2, 3, 64, 40)])


def same_windows():
    # auto_pad SAME over symbolic H and W with stride 2: the pads depend on each size's parity.
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.RandomState(5)
    w1 = numpy_helper.from_array(rng.randn(8, 3, 3, 3).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.randn(8, 1, 3, 3).astype(np.float32), "w2")
    wt = numpy_helper.from_array(rng.randn(8, 4, 3, 3).astype(np.float32), "wt")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2],
                         group=8, auto_pad="SAME_LOWER"),
        helper.make_node("MaxPool", ["c2"], ["p1"], kernel_shape=[3, 3], strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("AveragePool", ["p1"], ["p2"], kernel_shape=[2, 3], strides=[2, 2],
                         auto_pad="SAME_LOWER"),
        helper.make_node("ConvTranspose", ["p2", "wt"], ["y"], kernel_shape=[3, 3],
                         strides=[2, 2], auto_pad="SAME_UPPER"),
    ]
    spatial = ["batch", 3, "height", "width"]
    graph = helper.make_graph(nodes, "same", [helper.make_tensor_value_info("x", 1, spatial)],
                              [helper.make_tensor_value_info("y", 1, None)], [w1, w2, wt])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = f"{out}/same_windows.onnx"
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    sess = ort.InferenceSession(path)
    for i, shape in enumerate([(1, 3, 33, 47), (2, 3, 64, 50)]):
        x = np.random.RandomState(i).randn(*shape).astype(np.float32)
        np.save(f"{path}.in{i}.npy", x)
        np.save(f"{path}.ref{i}.npy", sess.run(None, {"x": x})[0])



def same_pads(sizes, kernel, strides, dilations, upper):
    # TensorFlow's and ONNX's SAME rule: ceil(size / stride) outputs, the odd cell at the end
    # for SAME_UPPER.
    begin, end = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        small = total // 2
        begin.append(small if upper else total - small)
        end.append(total - small if upper else small)
    return begin + end


def same_onnx_gets_wrong():
    # SAME windows onnxruntime's auto_pad gets wrong (dilated ones, pools narrower than their
    # stride; a dilated average pool, which the PyTorch module computes as convolutions): the
    # references are onnxruntime on twins with the explicit pads of each size.
    from onnx import helper, numpy_helper
    rng = np.random.RandomState(6)
    w1 = numpy_helper.from_array(rng.randn(6, 3, 3, 3).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.randn(6, 6, 3, 2).astype(np.float32), "w2")
    layers = [("Conv", ["w1"], [3, 3], [2, 2], [2, 2], True),
              ("Conv", ["w2"], [3, 2], [2, 2], [2, 1], False),
              ("MaxPool", [], [1, 1], [2, 2], [1, 1], True),
              ("AveragePool", [], [2, 2], [2, 2], [2, 2], True),
              ("AveragePool", [], [2, 2], [3, 3], [1, 1], False)]

    def model(sizes):
        nodes, shape, prev = [], sizes, "x"
        for i, (op, ws, k, s, d, upper) in enumerate(layers):
            attrs = {"kernel_shape": k, "strides": s}
            if d != [1, 1]:
                attrs["dilations"] = d
            if sizes is None:
                attrs["auto_pad"] = "SAME_UPPER" if upper else "SAME_LOWER"
            else:
                attrs["pads"] = same_pads(shape, k, s, d, upper)
                shape = [-(-n // st) for n, st in zip(shape, s)]
            out = "y" if i == len(layers) - 1 else f"h{i}"
            nodes.append(helper.make_node(op, [prev, *ws], [out], **attrs))
            prev = out
        x = helper.make_tensor_value_info("x", 1, ["batch", 3, "height", "width"])
        graph = helper.make_graph(nodes, "same", [x], [helper.make_tensor_value_info("y", 1, None)],
                                  [w1, w2])
        # Opset 19: AveragePool's dilations.
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
        m.ir_version = 9
        return m.SerializeToString()

    path = f"{out}/same_onnx_gets_wrong.onnx"
    with open(path, "wb") as f:
        f.write(model(None))
    for i, shape in enumerate([(1, 3, 33, 47), (2, 3, 64, 50)]):
        x = np.random.RandomState(i).randn(*shape).astype(np.float32)
        twin = ort.InferenceSession(model(list(shape[2:])))
        np.save(f"{path}.in{i}.npy", x)
        np.save(f"{path}.ref{i}.npy", twin.run(None, {"x": x})[0])


same_windows()
same_onnx_gets_wrong()
"""

MODELS = {
    "convbilstm": ["batch", "time", 3],
    "decoder": ["batch", "seq", 50],
    "encoder": ["batch", "seq", 32],
    "lraspp": ["batch", 5, "height", "width"],
    "deeplab": ["batch", 5, "height", "width"],
    "resnet18": ["batch", 1000],
    "seghead": ["batch", 5, "height", "width"],
    "same_onnx_gets_wrong": ["batch", 6,
                             "(((((height + 1) // 2 + 1) // 2 + 1) // 2 + 1) // 2 + 2) // 3",
                             "(((((width + 1) // 2 + 1) // 2 + 1) // 2 + 1) // 2 + 2) // 3"],
    "same_windows": ["batch", 4, "2*(((((height + 1) // 2 + 1) // 2 + 1) // 2 + 1) // 2)",
                     "2*(((((width + 1) // 2 + 1) // 2 + 1) // 2 + 1) // 2)"],
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory, run_in_subprocess):
    d = tmp_path_factory.mktemp("dynamic")
    run_in_subprocess(EXPORT.replace("OUT_DIR", repr(str(d))))
    return d


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_ir_runs_at_two_sizes(name, exports, tmp_path, run_mmdnn):
    path = exports / f"{name}.onnx"
    for i in range(2):
        got = run_mmdnn_model(run_mmdnn, path, {"x": f"{path}.in{i}.npy"}, tmp_path / f"out{i}")
        err = compare(got[0], np.load(f"{path}.ref{i}.npy"), f"{name} (IR) size {i}")
        print(f"{name} IR size {i}: max |Δ| {err:.3g}")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_keeps_symbols_and_runs_at_two_sizes(name, exports, tmp_path, run_mmdnn,
                                                   run_in_subprocess):
    path = exports / f"{name}.onnx"
    target = tmp_path / "model.onnx"
    run_mmdnn("convert", "-sf", "onnx", "-iw", path, "-df", "onnx", "-om", target, check=True)
    model = onnx.load(str(target))
    onnx.checker.check_model(model)
    assert dims(model.graph.input[0]) == dims(onnx.load(str(path)).graph.input[0])
    assert dims(model.graph.output[0]) == MODELS[name], dims(model.graph.output[0])
    run_in_subprocess(f"""
import numpy as np, onnxruntime as ort
sess = ort.InferenceSession({str(target)!r})
for i in range(2):
    x = np.load({str(path)!r} + f".in{{i}}.npy")
    np.save({str(tmp_path)!r} + f"/got{{i}}.npy", sess.run(None, {{"x": x}})[0])
""")
    for i in range(2):
        got = np.load(tmp_path / f"got{i}.npy")
        err = compare(got, np.load(f"{path}.ref{i}.npy"), f"{name} (ONNX) size {i}")
        print(f"{name} ONNX size {i}: max |Δ| {err:.3g}")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pytorch_runs_at_two_sizes(name, exports, tmp_path, run_mmdnn, run_in_subprocess):
    from test_pytorch_ops import lint, run_torch

    path = exports / f"{name}.onnx"
    pt = tmp_path / "pytorch"
    pt.mkdir()
    run_mmdnn("convert", "-sf", "onnx", "-iw", path, "-df", "pytorch", "-om", pt / "model.pth",
              check=True)
    lint([pt / "model.py"])
    for i in range(2):
        d = pt / f"size{i}"
        d.mkdir()
        run_torch(run_in_subprocess, [{"name": name, "dir": str(d), "code": str(pt / "model.py"),
                                       "weights": str(pt / "model.pth"),
                                       "inputs": [f"{path}.in{i}.npy"]}])
        got = np.load(d / "torch0.npy")
        err = compare(got, np.load(f"{path}.ref{i}.npy"), f"{name} (PyTorch) size {i}")
        print(f"{name} PyTorch size {i}: max |Δ| {err:.3g}")


EXPORTED_RUN = """
import numpy as np, torch
program = torch.export.load(PT2)
assert program.range_constraints, "no symbolic dims in the program"
m = program.module()
for i in range(2):
    np.save(f"{OUT}/pt2_{i}.npy", m(torch.from_numpy(np.load(f"{SRC}.in{i}.npy"))).detach().numpy())
"""


@pytest.mark.parametrize("name", ["decoder", "seghead"])
def test_torch_export_keeps_the_symbols(name, exports, tmp_path, run_mmdnn, run_in_subprocess):
    """`--format export` exports with torch.export.Dims: the .pt2 runs at both sizes."""
    path = exports / f"{name}.onnx"
    pt2 = tmp_path / "model.pt2"
    run_mmdnn("convert", "-sf", "onnx", "-iw", path, "-df", "pytorch", "-om", pt2,
              "--format", "export", check=True)
    code = EXPORTED_RUN
    for k, v in {"PT2": pt2, "OUT": tmp_path, "SRC": path}.items():
        code = code.replace(k, repr(str(v)))
    run_in_subprocess(code)
    for i in range(2):
        got = np.load(tmp_path / f"pt2_{i}.npy")
        err = compare(got, np.load(f"{path}.ref{i}.npy"), f"{name} (.pt2) size {i}")
        print(f"{name} .pt2 size {i}: max |Δ| {err:.3g}")


def test_ir_says_the_symbols(exports, tmp_path, run_mmdnn):
    """`inspect` shows the symbolic dims (`float32[batch, seq, 32]`)."""
    ir = tmp_path / "ir"
    run_mmdnn("toir", "-f", "onnx", "-n", exports / "encoder.onnx", "-o", ir, check=True)
    proc = run_mmdnn("inspect", f"{ir}.pb", check=True)
    assert "float32[batch, seq, 32]" in proc.stdout, proc.stdout
    assert json.loads((tmp_path / "ir.json").read_text())  # the .json reads back
