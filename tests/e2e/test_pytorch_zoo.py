"""The Keras and ONNX e2e zoos converted to PyTorch, end to end.

Each model (tests/e2e/keras_models.py, tests/e2e/onnx_models.py) is converted in one shot with
`mmdnn convert -df pytorch` (native state dict; the code is kept as <out>.py). The module runs in
PyTorch in a subprocess and must match both `mmdnn run` on the model's IR and the source
framework's own outputs: max|Δ| ≤ 1e-4·max(1, |ref|), same argmax. The generated code must pass
`ruff check` and `py_compile`. The module keeps the source's interface: its forward()
arguments are the source's input names, fed the source's arrays as they are.
"""

import json
from pathlib import Path

import keras_models
import numpy as np
import pytest
from test_pytorch_ops import compare, lint, mmdnn_outputs, run_torch, torch_results

REPO = Path(__file__).resolve().parents[2]

ONNX_CASES = [
    ("small_cnn", {"opset": 7}),
    ("small_cnn", {"opset": 13}),
    ("residual_block", {}),
    ("transformer_block", {"opset": 11, "batch": 2}),
    ("transformer_block", {"opset": 17, "batch": "batch"}),
    ("same_padding", {}),
    *[("op_zoo", {"opset": o}) for o in (7, 13, 21)],
    *[("resize", {"opset": o}) for o in (9, 11, 13, 19)],
    ("external_data", {}),
    ("resnet50", {}),
]

ONNX_REFERENCE = """
import json
import numpy as np
import onnxruntime as ort
import onnx_models
path = {path!r}
feeds = getattr(onnx_models, {builder!r})(path, **{kwargs!r})
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
for i, v in enumerate(session.run(None, feeds)):
    np.save(f"{out}/ref{{i}}.npy", v)
names = [i.name for i in session.get_inputs()]
for i, name in enumerate(names):
    np.save(f"{out}/in{{i}}.npy", feeds[name])
print(json.dumps(names))
"""


def check_case(tmp_path, run_mmdnn, run_in_subprocess, src, model, inputs, out, n_refs):
    """Converts `model` (framework `src`) to PyTorch and compares the module with the IR and
    with the source framework's outputs ref<j>.npy in `out`. Returns the worst errors."""
    pt = out / "pytorch"
    pt.mkdir()
    run_mmdnn("convert", "-sf", src, "-iw", model, "-df", "pytorch", "-om", pt / "model.pth", check=True)
    assert (pt / "model.py").exists(), "convert keeps the generated code next to the model"
    lint([pt / "model.py"])
    run_mmdnn("toir", "-f", src, "-iw", model, "-o", out / "ir", check=True)
    feeds = [out / f"in{i}.npy" for i in range(len(inputs))]
    refs_ir = mmdnn_outputs(run_mmdnn, out / "ir", len(inputs), inputs, out / "run", feeds=[str(f) for f in feeds])
    run_torch(run_in_subprocess, [{"name": out.name, "dir": str(pt), "code": str(pt / "model.py"),
                                   "weights": str(pt / "model.pth"), "inputs": [str(f) for f in feeds],
                                   "names": list(inputs)}])
    got = torch_results(pt, refs_ir)
    refs_src = [np.load(out / f"ref{j}.npy") for j in range(n_refs)]
    assert len(got) == len(refs_src)
    worst = {"ir": 0.0, src: 0.0}
    for j, (g, r_ir, r_src) in enumerate(zip(got, refs_ir, refs_src)):
        worst["ir"] = max(worst["ir"], compare(g, r_ir, f"{out.name} output {j} vs mmdnn run"))
        worst[src] = max(worst[src], compare(g, r_src.astype(r_ir.dtype, copy=False),
                                             f"{out.name} output {j} vs {src}"))
    return worst


@pytest.mark.parametrize("builder,kwargs", ONNX_CASES, ids=[f"{b}-{k}" for b, k in ONNX_CASES])
def test_onnx_zoo(tmp_path, run_mmdnn, run_in_subprocess, builder, kwargs):
    out = tmp_path / builder
    out.mkdir()
    model = out / "model.onnx"
    proc = run_in_subprocess(ONNX_REFERENCE.format(path=str(model), builder=builder, kwargs=kwargs, out=out))
    inputs = json.loads(proc.stdout.strip().splitlines()[-1])
    n_refs = len(list(out.glob("ref*.npy")))
    worst = check_case(tmp_path, run_mmdnn, run_in_subprocess, "onnx", model, inputs, out, n_refs)
    print(builder, kwargs, "max |Δ|:", worst)
    if builder == "resnet50":
        golden = (REPO / "examples/pytorch/resnet50.py").read_text()
        assert (out / "pytorch/model.py").read_text() == golden, (
            "the ONNX ResNet-50 no longer converts to examples/pytorch/resnet50.py")


KERAS_SAVE = """
import keras_models
keras_models.save_case({kind!r}, {name!r}, {out!r})
"""


def keras_cases(full):
    apps = list(keras_models.APPS) if full else keras_models.CI_APPS
    return ([("layers", n) for n in keras_models.FAMILIES] + [("legacy", n) for n in keras_models.LEGACY]
            + [("app", n) for n in apps])


@pytest.mark.parametrize("kind,name", keras_cases(False), ids=[f"{k}-{n}" for k, n in keras_cases(False)])
def test_keras_zoo(tmp_path, run_mmdnn, run_in_subprocess, kind, name):
    out = tmp_path / name
    run_in_subprocess(KERAS_SAVE.format(kind=kind, name=name, out=str(out)))
    manifest = json.loads((out / "manifest.json").read_text())
    n_refs = len(list(out.glob("ref*.npy")))
    model = out / ("model.h5" if kind == "legacy" else "model.keras")
    worst = check_case(tmp_path, run_mmdnn, run_in_subprocess, "keras", model, manifest["inputs"], out, n_refs)
    print(kind, name, "max |Δ|:", worst)


@pytest.mark.full
@pytest.mark.parametrize("name", [n for n in keras_models.APPS if n not in keras_models.CI_APPS])
def test_keras_application_zoo(tmp_path, run_mmdnn, run_in_subprocess, name):
    """Every other keras.applications model (MMDNN_FULL=1 only)."""
    test_keras_zoo(tmp_path, run_mmdnn, run_in_subprocess, "app", name)
