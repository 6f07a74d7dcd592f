"""Dynamic models (issue 12): ONNX exports whose batch, sequence and image sizes are symbols
(`transformers`' BertModel and GPT2LMHeadModel built from small configs, taking input_ids and a
padding attention_mask; a hand-written BERT-like block and a GPT-like decoder whose positions are
`arange(seq_len)` into a 128-row table, BERT's position ids sliced from a 64-long buffer and
gathered through (`torch.gather`, ONNX GatherElements), an LRASPP-like head upsampling to the
input's own size, a Conv1d + bidirectional LSTM over a dynamic time axis; torchvision's LRASPP
and DeepLabV3-MobileNetV3 with symbolic batch/H/W and ResNet-18 with a symbolic batch, random
weights; a graph of strided Conv, MaxPool, AveragePool and ConvTranspose with auto_pad SAME over
a symbolic H and W, and one of the SAME windows onnxruntime's auto_pad gets wrong, checked
against explicit pads), converted with no pinning to the IR (`mmdnn run`), ONNX (onnxruntime) and PyTorch (the
generated module), each run at two sizes and compared with onnxruntime on the source within
max|Δ| ≤ 1e-4 · max(1, |ref|). The converted models keep the source's interface: the ONNX
model its inputs' and outputs' names, order, dtypes and dims (dim_params where the source has
them), the PyTorch module its inputs as forward() arguments in order and their symbolic dims.
All exports use torch.onnx.export's TorchScript exporter (dynamo=False, opset 17): the dynamo
exporter needs onnxscript, which the venv does not pin. The transformers models use eager
attention (plain MatMul/Softmax ops; the sdpa path adds NaN guards and nothing to test).
torch, transformers and onnxruntime come from the shared venv.
"""

import ast
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
import transformers
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


class Positions(nn.Module):
    # BERT's position handling without its mask: ids sliced to the sequence length from a
    # 64-long buffer (a Slice of a known axis to a symbolic end), a torch.gather (ONNX
    # GatherElements) of a per-position table through them, and an embedding of them.
    def __init__(self):
        super().__init__()
        self.register_buffer("ids", torch.arange(64).flip(0)[None])
        self.table = nn.Parameter(torch.randn(1, 64))
        self.emb = nn.Embedding(64, 32)

    def forward(self, x):
        ids = self.ids[:, :x.shape[1]]
        return x * torch.gather(self.table, 1, ids)[..., None] + self.emb(ids)


class Out(nn.Module):
    # torchvision's segmentation models return {"out": ...}.
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)["out"]


class Bert(nn.Module):
    # transformers' BERT encoder (2 layers, 4 heads, hidden 32) from a config: random weights.
    def __init__(self):
        super().__init__()
        config = transformers.BertConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            vocab_size=100, max_position_embeddings=64, attn_implementation="eager")
        self.m = transformers.BertModel(config)

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class Gpt2(nn.Module):
    # transformers' GPT-2 with its LM head (2 layers, 4 heads, 32 wide, 64 positions), no cache.
    # attention_mask is an input: without it, transformers looks for packed sequences with
    # torch.diff, which the TorchScript exporter cannot export.
    def __init__(self):
        super().__init__()
        config = transformers.GPT2Config(
            n_embd=32, n_layer=2, n_head=4, vocab_size=100, n_positions=64, bos_token_id=0,
            eos_token_id=0, use_cache=False, attn_implementation="eager")
        self.m = transformers.GPT2LMHeadModel(config)

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask,
                      use_cache=False).logits


def example(name, shape, dtype, rng):
    # input_ids in [0, 50); attention_mask ones but for two padding positions in row 1.
    if name == "attention_mask":
        mask = np.ones(shape, np.int64)
        mask[1, -2:] = 0
        return mask
    if dtype == torch.int64:
        return rng.randint(0, 50, size=shape).astype(np.int64)
    return rng.randn(*shape).astype(np.float32)


def export(name, model, examples, axes, sizes, names=("x",)):
    # Every input and the output "y" have the symbolic axes `axes`; sizes are the inputs' shapes
    # (all inputs of a model have the same shape).
    path = f"{out}/{name}.onnx"
    with torch.no_grad():
        torch.onnx.export(model.eval(), examples, path, dynamo=False, opset_version=17,
                          input_names=list(names), output_names=["y"],
                          dynamic_axes={n: axes for n in [*names, "y"]})
    sess = ort.InferenceSession(path)
    for i, shape in enumerate(sizes):
        rng = np.random.RandomState(i)
        feeds = {n: example(n, shape, e.dtype, rng) for n, e in zip(names, examples)}
        for n, x in feeds.items():
            np.save(f"{path}.in{i}.{n}.npy", x)
        np.save(f"{path}.ref{i}.npy", sess.run(None, feeds)[0])


out = OUT_DIR
export("encoder", Encoder(), (torch.randn(2, 7, 32),), {0: "batch", 1: "seq"},
       [(2, 7, 32), (3, 40, 32)])
export("decoder", Decoder(), (torch.randint(0, 50, (2, 7)),), {0: "batch", 1: "seq"},
       [(2, 7), (3, 40)])
export("convbilstm", ConvBiLSTM(), (torch.randn(2, 20, 12),), {0: "batch", 1: "time"},
       [(2, 20, 12), (3, 33, 12)])
export("positions", Positions(), (torch.randn(2, 7, 32),), {0: "batch", 1: "seq"},
       [(2, 7, 32), (3, 40, 32)])
seg = torchvision.models.segmentation
export("lraspp", Out(seg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                    num_classes=5)),
       (torch.randn(1, 3, 96, 128),), {0: "batch", 2: "height", 3: "width"},
       [(1, 3, 96, 128), (2, 3, 64, 80)])
export("deeplab", Out(seg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                       num_classes=5, aux_loss=False)),
       (torch.randn(1, 3, 96, 128),), {0: "batch", 2: "height", 3: "width"},
       [(1, 3, 96, 128), (2, 3, 64, 80)])
export("resnet18", torchvision.models.resnet18(weights=None), (torch.randn(1, 3, 64, 64),),
       {0: "batch"}, [(1, 3, 64, 64), (3, 3, 64, 64)])
export("seghead", SegHead(), (torch.randn(1, 3, 32, 48),), {0: "batch", 2: "height", 3: "width"},
       [(1, 3, 32, 48), (2, 3, 64, 40)])
ids, mask = torch.randint(0, 50, (2, 7)), torch.ones(2, 7, dtype=torch.int64)
hf_inputs = ("input_ids", "attention_mask")
export("bert", Bert(), (ids, mask), {0: "batch", 1: "seq"}, [(2, 7), (3, 40)], hf_inputs)
export("gpt2", Gpt2(), (ids, mask), {0: "batch", 1: "seq"}, [(2, 7), (3, 40)], hf_inputs)


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
        np.save(f"{path}.in{i}.x.npy", x)
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
        np.save(f"{path}.in{i}.x.npy", x)
        np.save(f"{path}.ref{i}.npy", twin.run(None, {"x": x})[0])


same_windows()
same_onnx_gets_wrong()
"""

MODELS = {
    "bert": ["batch", "seq", 32],
    "gpt2": ["batch", "seq", 100],
    "convbilstm": ["batch", "time", 3],
    "decoder": ["batch", "seq", 50],
    "encoder": ["batch", "seq", 32],
    "positions": ["batch", "seq", 32],
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


def interface(values):
    """(name, dtype, dims) of each graph input or output, in order."""
    return [(v.name, v.type.tensor_type.elem_type, dims(v)) for v in values]


def inputs(path):
    """The source's input names, in order."""
    return [v.name for v in onnx.load(str(path)).graph.input]


def feeds(path, i):
    """{input name: .npy file} of the source's inputs at size `i`."""
    return {name: f"{path}.in{i}.{name}.npy" for name in inputs(path)}


DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64"}


def described(name, dtype, ds):
    """`inspect`'s line for a graph input or output (`  x  float32[batch, seq, 32]`)."""
    return f"  {name}  {DTYPES[dtype]}[{', '.join(str(d) for d in ds)}]"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_ir_runs_at_two_sizes(name, exports, tmp_path, run_mmdnn):
    path = exports / f"{name}.onnx"
    # The IR's interface is the source's: names, order, dtypes, input dims (symbols by name);
    # the output's dims are MODELS' (the exporter names some known dims, e.g. deeplab's 5).
    ir = tmp_path / "ir"
    run_mmdnn("toir", "-f", "onnx", "-n", path, "-o", ir, check=True)
    text = run_mmdnn("inspect", f"{ir}.pb", check=True).stdout
    source = onnx.load(str(path)).graph
    (out, dtype, _), = interface(source.output)
    want = ["inputs:", *(described(*v) for v in interface(source.input)), "outputs:",
            described(out, dtype, MODELS[name])]
    lines = text.splitlines()
    start = lines.index("inputs:")
    assert lines[start:start + len(want)] == want, text
    for i in range(2):
        got = run_mmdnn_model(run_mmdnn, path, feeds(path, i), tmp_path / f"out{i}")
        err = compare(got[0], np.load(f"{path}.ref{i}.npy"), f"{name} (IR) size {i}")
        print(f"{name} IR size {i}: max |Δ| {err:.3g}")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_keeps_symbols_and_runs_at_two_sizes(name, exports, tmp_path, run_mmdnn,
                                                   run_in_subprocess):
    path = exports / f"{name}.onnx"
    target = tmp_path / "model.onnx"
    run_mmdnn("convert", "-sf", "onnx", "-iw", path, "-df", "onnx", "-om", target, check=True)
    model, source = onnx.load(str(target)), onnx.load(str(path))
    onnx.checker.check_model(model)
    assert interface(model.graph.input) == interface(source.graph.input)
    assert [o.name for o in model.graph.output] == [o.name for o in source.graph.output]
    assert dims(model.graph.output[0]) == MODELS[name], dims(model.graph.output[0])
    run_in_subprocess(f"""
import numpy as np, onnxruntime as ort
sess = ort.InferenceSession({str(target)!r})
for i, feeds in enumerate({[feeds(path, i) for i in range(2)]!r}):
    feeds = {{name: np.load(f) for name, f in feeds.items()}}
    np.save({str(tmp_path)!r} + f"/got{{i}}.npy", sess.run(None, feeds)[0])
""")
    for i in range(2):
        got = np.load(tmp_path / f"got{i}.npy")
        err = compare(got, np.load(f"{path}.ref{i}.npy"), f"{name} (ONNX) size {i}")
        print(f"{name} ONNX size {i}: max |Δ| {err:.3g}")


def module_dynamic_dims(code):
    """KitModel.dynamic_dims of a generated module, read from its source."""
    for node in ast.walk(ast.parse(code.read_text())):
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
                "dynamic_dims"]:
            return list(ast.literal_eval(node.value))
    return []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pytorch_runs_at_two_sizes(name, exports, tmp_path, run_mmdnn, run_in_subprocess):
    from test_pytorch_ops import lint, run_torch

    path = exports / f"{name}.onnx"
    pt = tmp_path / "pytorch"
    pt.mkdir()
    run_mmdnn("convert", "-sf", "onnx", "-iw", path, "-df", "pytorch", "-om", pt / "model.pth",
              check=True)
    lint([pt / "model.py"])
    # The source's symbolic input dims are the module's, by argument and axis.
    source = onnx.load(str(path)).graph.input
    symbols = [(v.name, axis, d) for v in source for axis, d in enumerate(dims(v))
               if isinstance(d, str)]
    assert module_dynamic_dims(pt / "model.py") == symbols
    for i in range(2):
        d = pt / f"size{i}"
        d.mkdir()
        # "names": forward()'s arguments are the source's inputs, in order.
        run_torch(run_in_subprocess, [{"name": name, "dir": str(d), "code": str(pt / "model.py"),
                                       "weights": str(pt / "model.pth"), "names": inputs(path),
                                       "inputs": list(feeds(path, i).values())}])
        got = np.load(d / "torch0.npy")
        err = compare(got, np.load(f"{path}.ref{i}.npy"), f"{name} (PyTorch) size {i}")
        print(f"{name} PyTorch size {i}: max |Δ| {err:.3g}")


EXPORTED_RUN = """
import numpy as np, torch
program = torch.export.load(PT2)
assert program.range_constraints, "no symbolic dims in the program"
m = program.module()
for i, files in enumerate(FEEDS):
    args = [torch.from_numpy(np.load(f)) for f in files.values()]
    np.save(f"{OUT}/pt2_{i}.npy", m(*args).detach().numpy())
"""


@pytest.mark.parametrize("name", ["bert", "decoder", "gpt2", "seghead"])
def test_torch_export_keeps_the_symbols(name, exports, tmp_path, run_mmdnn, run_in_subprocess):
    """`--format export` exports with torch.export.Dims: the .pt2 runs at both sizes."""
    path = exports / f"{name}.onnx"
    pt2 = tmp_path / "model.pt2"
    run_mmdnn("convert", "-sf", "onnx", "-iw", path, "-df", "pytorch", "-om", pt2,
              "--format", "export", check=True)
    code = EXPORTED_RUN
    for k, v in {"PT2": str(pt2), "OUT": str(tmp_path),
                 "FEEDS": [feeds(path, i) for i in range(2)]}.items():
        code = code.replace(k, repr(v))
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
