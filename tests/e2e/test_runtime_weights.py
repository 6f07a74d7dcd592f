"""Operands the IR otherwise stores as weights, fed at run time: a PyTorch module whose
convolution kernels and bias and whose matrix-product right operands are graph inputs or
computed from them (F.conv2d / F.conv1d → ONNX Conv with a run-time W and B, F.linear → Gemm
with a run-time B and C, `@` → MatMul), exported to ONNX (opset 17) and converted to the IR
(`mmdnn run`), ONNX (onnxruntime) and PyTorch (torch), each compared with onnxruntime on the
source within max|Δ| ≤ 1e-4 · max(1, |ref|).
"""

import json

import numpy as np
from test_onnx_reader import compare

EXPORT = r"""
import sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, onnx, onnxruntime as ort, torch, torch.nn as nn, torch.nn.functional as F
path = sys.argv[1]


class Operands(nn.Module):
    def forward(self, x, w, b, s, a, k, c):
        y = F.conv2d(x, w, b, stride=2, padding=1)
        y1 = F.conv1d(s, torch.tanh(w[:, :, 0]), padding=1, groups=1)
        z = F.linear(a, k, c)
        u = a @ torch.relu(k).t()
        return y, y1, z, u


rng = np.random.default_rng(0)
feeds = {"x": rng.standard_normal((2, 3, 9, 8)), "w": rng.standard_normal((4, 3, 3, 3)),
         "b": rng.standard_normal(4), "s": rng.standard_normal((2, 3, 10)),
         "a": rng.standard_normal((5, 6)), "k": rng.standard_normal((7, 6)),
         "c": rng.standard_normal(7)}
feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
torch.onnx.export(Operands(), tuple(torch.from_numpy(v) for v in feeds.values()), path,
                  dynamo=False, opset_version=17, input_names=list(feeds),
                  output_names=["y", "y1", "z", "u"])
ops = sorted({n.op_type for n in onnx.load(path).graph.node})
assert {"Conv", "Gemm", "MatMul"} <= set(ops), ops
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
for k, v in feeds.items():
    np.save(f"{path}.{k}.npy", v)
for k, v in zip(["y", "y1", "z", "u"], session.run(None, feeds)):
    np.save(f"{path}.ref_{k}.npy", v)
"""

RUN = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
job = json.loads(sys.argv[1])
feed = {k: np.load(f"{job['src']}.{k}.npy") for k in job["inputs"]}
if job["kind"] == "onnx":
    import onnx, onnxruntime as ort
    onnx.checker.check_model(job["model"], full_check=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(job["model"], options, providers=["CPUExecutionProvider"])
    assert [i.name for i in s.get_inputs()] == job["inputs"], [i.name for i in s.get_inputs()]
    outs = s.run(None, feed)
else:
    import importlib.util, torch
    spec = importlib.util.spec_from_file_location("operands_model", job["code"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.KitModel()
    model.load_state_dict(torch.load(job["model"], weights_only=True))
    with torch.no_grad():
        outs = [o.numpy() for o in model.eval()(*[torch.from_numpy(feed[k]) for k in job["inputs"]])]
for k, v in zip(job["outputs"], outs):
    np.save(f"{job['out']}.{k}.npy", v)
"""

INPUTS = ["x", "w", "b", "s", "a", "k", "c"]
OUTPUTS = ["y", "y1", "z", "u"]


def test_conv_and_matmul_operands_fed_at_run_time(tmp_path, run_in_subprocess, run_mmdnn):
    src = tmp_path / "operands.onnx"
    script = tmp_path / "export.py"
    script.write_text(EXPORT)
    run_in_subprocess(f"import runpy, sys; sys.argv = ['export', {str(src)!r}]; "
                      f"runpy.run_path({str(script)!r}, run_name='__main__')")
    refs = {k: np.load(f"{src}.ref_{k}.npy") for k in OUTPUTS}

    args = ["run", "-n", src, "-o", tmp_path / "ir"]
    for k in INPUTS:
        args += ["--input", f"{k}={src}.{k}.npy"]
    proc = run_mmdnn(*args, check=True)
    files = [line.split("-> ")[-1] for line in proc.stdout.splitlines() if "-> " in line]
    got = {"ir": dict(zip(OUTPUTS, (np.load(f) for f in files)))}

    onnx_out = tmp_path / "converted.onnx"
    run_mmdnn("convert", "-sf", "onnx", "-iw", src, "-df", "onnx", "-om", onnx_out, check=True)
    pt = tmp_path / "pytorch"
    pt.mkdir()
    run_mmdnn("convert", "-sf", "onnx", "-iw", src, "-df", "pytorch", "-om", pt / "model.pth", check=True)
    for kind, model, code in [("onnx", onnx_out, None), ("pytorch", pt / "model.pth", pt / "model.py")]:
        job = {"kind": kind, "model": str(model), "code": str(code), "src": str(src),
               "inputs": INPUTS, "outputs": OUTPUTS, "out": str(tmp_path / kind)}
        run_in_subprocess(RUN.replace("sys.argv[1]", repr(json.dumps(job))))
        got[kind] = {k: np.load(f"{tmp_path / kind}.{k}.npy") for k in OUTPUTS}

    errors = {t: max(compare(v[k], refs[k], f"{t} output {k}") for k in OUTPUTS) for t, v in got.items()}
    print("max |Δ| against onnxruntime on the source:", errors)
