"""The ONNX reader on torchvision's models, against ONNX Runtime.

Each model is built with `weights=None` after `torch.manual_seed(0)` and exported by
`torch.onnx.export` (TorchScript exporter, opset 17, static batch 1); ONNX Runtime (graph
optimizations off) runs the export on a fixed random input. One subprocess exports every model
the session tests and caches them in a per-session temp dir. `mmdnn run` (reader → IR →
interpreter) must give max|Δ| ≤ 1e-4 · max(1, |ref|) elementwise and, for classifiers, the same
argmax. The writer direction too: `mmdnn convert -sf onnx -df onnx` (reader → IR → our ONNX
writer, default opset 17) must write a model that passes `onnx.checker.check_model(full_check=
True)`, keeps the input name and shape, and gives in ONNX Runtime (graph optimizations off) the
original's outputs within the same bound and, for classifiers, the same argmax.

Random initialisation leaves BatchNorm's running statistics at mean 0 / variance 1, which makes
deep nets' outputs vanish (1e-14) or explode (1e11), so comparisons would say little. Before
export the weights are re-initialised gently: BatchNorm scales and shifts are redrawn (seeded:
γ ~ U(0.3, 0.7), β ~ N(0, 0.1)) and the running statistics are set from one training-mode pass
over a seeded random batch, so every BatchNorm normalizes; every nn.Linear gets PyTorch's
default initialisation (ViT's head starts at zero, Inception's layers at std 0.1, which
inflates logits and their float32 rounding). Outputs are then of order 1.

Inputs: 224×224 for vit_b_16, swin_t, vgg11 and alexnet (position embeddings, windows, and
adaptive pools that the exporter only handles when the size divides), 299×299 for
inception_v3, 128×128 otherwise. CI runs CI_MODELS; MMDNN_FULL=1 (scripts/test --full) runs
every model.
"""

import json
import shutil

import numpy as np
import pytest

from test_onnx_reader import assert_layout_exact, compare, run_mmdnn_model

# ONNX Runtime on a model written by mmdnn: checks it, feeds x, saves the first output.
RUN_WRITTEN = """
import sys
import numpy as np, onnx, onnxruntime as ort

path, x_file, out_file = sys.argv[1:]
onnx.checker.check_model(path, full_check=True)
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
x = np.load(x_file)
decl = session.get_inputs()
assert [i.name for i in decl] == ["x"] and decl[0].shape == list(x.shape), [
    (i.name, i.shape) for i in decl]
np.save(out_file, session.run(None, {"x": x})[0])
"""

EXPORT = """
import json, sys, traceback, warnings
warnings.filterwarnings("ignore")
import numpy as np, onnxruntime as ort, torch, torchvision
from torch import nn

out_dir, models = sys.argv[1], json.loads(sys.argv[2])


def build(name, segmentation):
    torch.manual_seed(0)
    if segmentation:
        return getattr(torchvision.models.segmentation, name)(
            weights=None, weights_backbone=None, aux_loss=False)
    kwargs = {"aux_logits": False, "init_weights": True} if name in (
        "googlenet", "inception_v3") else {}
    return getattr(torchvision.models, name)(weights=None, **kwargs)


def calibrate(model, size):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.3, 0.7, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.reset_running_stats()
                m.momentum = None  # cumulative average: the stats of this one batch
        model.train()
        model(torch.randn(2, 3, size, size, generator=g))
    return model.eval()


for name, size, segmentation in models:
    path = f"{out_dir}/{name}.onnx"
    try:
        model = calibrate(build(name, segmentation), size)
        x = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
        # Not under no_grad: that would pick nn.MultiheadAttention's fused fast path, which
        # the exporter cannot write.
        torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        np.save(path + ".in.npy", x)
        np.save(path + ".ref.npy", session.run(None, {"x": x})[0])
    except Exception:
        with open(path + ".error", "w") as f:
            f.write(traceback.format_exc())
"""

CLASSIFIERS = [
    "resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
    "regnet_y_400mf", "densenet121", "squeezenet1_1", "shufflenet_v2_x1_0", "mnasnet0_5",
    "googlenet", "inception_v3", "vgg11", "alexnet", "convnext_tiny", "vit_b_16", "swin_t",
]
SEGMENTATION = ["fcn_resnet50", "deeplabv3_mobilenet_v3_large"]
ALL_MODELS = CLASSIFIERS + SEGMENTATION
# The quicker exports; with them this file takes 1 to 3 minutes on 2 cores.
CI_MODELS = [
    "resnet18", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf", "squeezenet1_1",
    "shufflenet_v2_x1_0", "mnasnet0_5", "googlenet", "swin_t", "deeplabv3_mobilenet_v3_large",
]
MODEL_PARAMS = [n if n in CI_MODELS else pytest.param(n, marks=pytest.mark.full)
                for n in ALL_MODELS]
SIZE = {"vit_b_16": 224, "swin_t": 224, "vgg11": 224, "alexnet": 224, "inception_v3": 299}


@pytest.fixture(scope="session")
def exports(tmp_path_factory, run_in_subprocess, mmdnn_full):
    """The directory holding every export of this session (one subprocess for all)."""
    out = tmp_path_factory.mktemp("torchvision")
    names = ALL_MODELS if mmdnn_full else CI_MODELS
    models = [(n, SIZE.get(n, 128), n in SEGMENTATION) for n in names]
    code = f"import sys; sys.argv[1:] = {[str(out), json.dumps(models)]!r}\n" + EXPORT
    run_in_subprocess(code)
    yield out
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_torchvision_model(name, exports, tmp_path, run_mmdnn):
    path = exports / f"{name}.onnx"
    error = path.with_name(path.name + ".error")
    assert not error.exists(), f"{name}: export failed:\n{error.read_text()}"
    got = run_mmdnn_model(run_mmdnn, path, {"x": f"{path}.in.npy"}, tmp_path / "out")
    ref = np.load(f"{path}.ref.npy")
    err = compare(got[0], ref, name)
    if name in CLASSIFIERS:
        assert got[0].argmax() == ref.argmax(), f"{name}: argmax differs"
    print(f"{name}: max |Δ| {err:.3g}, max |ref| {np.abs(ref).max():.3g}")
    assert_layout_exact(run_mmdnn, path, tmp_path)


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_torchvision_model_written(name, exports, tmp_path, run_mmdnn, run_in_subprocess):
    """Writer direction: ONNX → IR → our ONNX, in ONNX Runtime against the original's outputs."""
    path = exports / f"{name}.onnx"
    error = path.with_name(path.name + ".error")
    assert not error.exists(), f"{name}: export failed:\n{error.read_text()}"
    ref = np.load(f"{path}.ref.npy")
    written = tmp_path / f"{name}.written.onnx"
    run_mmdnn("convert", "-sf", "onnx", "-iw", path, "-df", "onnx", "-om", written, check=True)
    out = tmp_path / "written_out.npy"
    args = [str(written), f"{path}.in.npy", str(out)]
    run_in_subprocess(f"import sys; sys.argv[1:] = {args!r}\n" + RUN_WRITTEN)
    got = np.load(out)
    err = compare(got, ref, f"{name} (written ONNX)")
    if name in CLASSIFIERS:
        assert got.argmax() == ref.argmax(), f"{name} (written ONNX): argmax differs"
    print(f"{name} written by mmdnn: max |Δ| {err:.3g}")


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_torchvision_model_to_pytorch(name, exports, tmp_path, run_mmdnn, run_in_subprocess):
    """PyTorch target: ONNX → `convert -df pytorch` (native state dict, generated module that
    passes ruff and py_compile) → torch, against the original's onnxruntime outputs."""
    from test_pytorch_ops import lint, run_torch

    path = exports / f"{name}.onnx"
    error = path.with_name(path.name + ".error")
    assert not error.exists(), f"{name}: export failed:\n{error.read_text()}"
    ref = np.load(f"{path}.ref.npy")
    pt = tmp_path / "pytorch"
    pt.mkdir()
    run_mmdnn("convert", "-sf", "onnx", "-iw", path, "-df", "pytorch", "-om", pt / "model.pth", check=True)
    lint([pt / "model.py"])
    run_torch(run_in_subprocess, [{"name": name, "dir": str(pt), "code": str(pt / "model.py"),
                                   "weights": str(pt / "model.pth"), "inputs": [f"{path}.in.npy"]}])
    got = np.load(pt / "torch0.npy")
    assert not (pt / "torch1.npy").exists(), f"{name}: the module returned more than one output"
    err = compare(got, ref, f"{name} (PyTorch)")
    if name in CLASSIFIERS:
        assert got.argmax() == ref.argmax(), f"{name} (PyTorch): argmax differs"
    print(f"{name} in PyTorch: max |Δ| {err:.3g}")
