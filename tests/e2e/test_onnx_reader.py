"""The ONNX reader against ONNX Runtime.

Each model is built with onnx.helper (tests/e2e/onnx_models.py, fixed seeds) and run by
onnxruntime (graph optimizations off) in a subprocess; `mmdnn run -n model.onnx` (the framework guessed from the
extension) must give every output within max|Δ| ≤ 1e-4 · max(1, |ref|) elementwise.
"""

import json

from pathlib import Path

import numpy as np
import pytest

from conftest import layout_problems

TOL = 1e-4

REFERENCE = """
import json, sys
import numpy as np
import onnxruntime as ort
import onnx_models
path = {path!r}
feeds = getattr(onnx_models, {builder!r})(path, **{kwargs!r})
options = ort.SessionOptions()
# The reference is each op as specified: no fusions (e.g. QDQ pairs into integer kernels).
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
outs = session.run(None, feeds)
names = [o.name for o in session.get_outputs()]
for k, v in feeds.items():
    np.save(f"{{path}}.in.{{k}}.npy", v)
for i, v in enumerate(outs):
    np.save(f"{{path}}.ref{{i}}.npy", v)
print(json.dumps({{"inputs": list(feeds), "outputs": names}}))
"""


def reference(run_in_subprocess, path, builder, **kwargs):
    """Builds the model and its ONNX Runtime outputs; returns (input names, output names)."""
    proc = run_in_subprocess(REFERENCE.format(path=str(path), builder=builder, kwargs=kwargs))
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return info["inputs"], info["outputs"]


def run_mmdnn_model(run_mmdnn, path, feeds, out_dir):
    """`mmdnn run` on the model with {input name: .npy file}; returns its outputs in order."""
    args = ["run", "-n", path, "-o", out_dir]
    for name, file in feeds.items():
        args += ["--input", f"{name}={file}"]
    proc = run_mmdnn(*args, check=True)
    files = [line.split("-> ")[-1] for line in proc.stdout.splitlines() if "-> " in line]
    return [np.load(f) for f in files]


def assert_layout_exact(run_mmdnn, path, work):
    """The layout property on the model: interp(g) equals interp(layout(g)) (conftest)."""
    ir = Path(work) / "layout_ir"
    run_mmdnn("toir", "-f", "onnx", "-n", path, "-o", ir, check=True)
    problems = layout_problems(run_mmdnn, f"{ir}.pb", work)
    assert not problems, "\n".join(problems)


def compare(got, ref, what):
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    if ref.dtype.kind in "iub":
        np.testing.assert_array_equal(got, ref, err_msg=what)
        return 0.0
    err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    bound = TOL * np.maximum(1.0, np.abs(ref.astype(np.float64)))
    worst = float(err.max()) if err.size else 0.0
    assert (err <= bound).all(), f"{what}: max |Δ| {worst:.3g} exceeds 1e-4·max(1,|ref|)"
    return worst


def check(tmp_path, run_in_subprocess, run_mmdnn, builder, **kwargs):
    path = tmp_path / f"{builder}.onnx"
    inputs, outputs = reference(run_in_subprocess, path, builder, **kwargs)
    feeds = {name: f"{path}.in.{name}.npy" for name in inputs}
    got = run_mmdnn_model(run_mmdnn, path, feeds, tmp_path / "out")
    assert len(got) == len(outputs)
    refs = [np.load(f"{path}.ref{i}.npy") for i in range(len(outputs))]
    errors = {name: compare(g, r, f"{builder}{kwargs} output {name}")
              for name, g, r in zip(outputs, got, refs)}
    print(builder, kwargs, "max |Δ|:", errors)
    return got, refs


@pytest.mark.parametrize("opset", [7, 11, 13, 17, 21])
def test_small_cnn(tmp_path, run_in_subprocess, run_mmdnn, opset):
    check(tmp_path, run_in_subprocess, run_mmdnn, "small_cnn", opset=opset)


def test_residual_block_symbolic_batch(tmp_path, run_in_subprocess, run_mmdnn):
    check(tmp_path, run_in_subprocess, run_mmdnn, "residual_block")


@pytest.mark.parametrize("opset,batch", [(11, 2), (13, "batch"), (17, "batch"), (21, 3)])
def test_transformer_block(tmp_path, run_in_subprocess, run_mmdnn, opset, batch):
    check(tmp_path, run_in_subprocess, run_mmdnn, "transformer_block", opset=opset, batch=batch)


def test_depthwise_grouped_same_padding(tmp_path, run_in_subprocess, run_mmdnn):
    check(tmp_path, run_in_subprocess, run_mmdnn, "same_padding")


@pytest.mark.parametrize("opset", [7, 9, 11, 13, 17, 18, 21, 28])
def test_op_zoo(tmp_path, run_in_subprocess, run_mmdnn, opset):
    check(tmp_path, run_in_subprocess, run_mmdnn, "op_zoo", opset=opset)


@pytest.mark.parametrize("opset", [13, 18])
def test_op_zoo2(tmp_path, run_in_subprocess, run_mmdnn, opset):
    check(tmp_path, run_in_subprocess, run_mmdnn, "op_zoo2", opset=opset)


@pytest.mark.parametrize("opset", [7, 9, 10, 11, 13, 18, 19])
def test_resize(tmp_path, run_in_subprocess, run_mmdnn, opset):
    check(tmp_path, run_in_subprocess, run_mmdnn, "resize", opset=opset)


def test_resize_sizes_from_a_dynamic_shape(tmp_path, run_in_subprocess, run_mmdnn):
    check(tmp_path, run_in_subprocess, run_mmdnn, "resize_dynamic")


@pytest.mark.parametrize("opset", [9, 14, 22])
def test_recurrent(tmp_path, run_in_subprocess, run_mmdnn, opset):
    check(tmp_path, run_in_subprocess, run_mmdnn, "recurrent", opset=opset)


def test_recurrent_initial_states_symbolic_batch(tmp_path, run_in_subprocess, run_mmdnn):
    """A symbolic batch: LSTM's absent initial_h beside a given initial_c is a zero row
    expanded to the batch at run time."""
    check(tmp_path, run_in_subprocess, run_mmdnn, "recurrent_states", batch="N")


def test_recurrent_initial_states(tmp_path, run_in_subprocess, run_mmdnn):
    time_first, _ = check(tmp_path, run_in_subprocess, run_mmdnn, "recurrent_states")
    # layout = 1, which ONNX Runtime does not run: the same values batch first give layout 0's
    # outputs with batch and time (or direction) swapped.
    batch_first = tmp_path / "batch_first"
    batch_first.mkdir()
    model = batch_first / "m.onnx"
    run_in_subprocess(f"import onnx_models\nonnx_models.recurrent_states({str(model)!r}, layout=1)")
    feeds = {}
    for k in ["x", "h0", "c0", "g0"]:
        np.save(batch_first / f"{k}.npy", np.load(tmp_path / f"recurrent_states.onnx.in.{k}.npy").transpose(1, 0, 2))
        feeds[k] = batch_first / f"{k}.npy"
    got = run_mmdnn_model(run_mmdnn, model, feeds, batch_first / "out")
    for i, (g, ref) in enumerate(zip(got, time_first)):
        want = ref.transpose(2, 0, 1, 3) if ref.ndim == 4 else ref.transpose(1, 0, 2)
        compare(g, want, f"layout 1 output {i}")


def test_recurrent_batch_first_layout(tmp_path, run_in_subprocess, run_mmdnn):
    """layout = 1 (opset 14), which ONNX Runtime does not run: the same weights on the same
    data give layout 0's outputs with batch and time (or direction) swapped."""
    time_first, _ = check(tmp_path, run_in_subprocess, run_mmdnn, "recurrent", opset=14)
    batch_first = tmp_path / "batch_first"
    batch_first.mkdir()
    model = batch_first / "m.onnx"
    run_in_subprocess(f"import onnx_models\nonnx_models.recurrent({str(model)!r}, opset=14, layout=1)")
    x = np.load(tmp_path / "recurrent.onnx.in.x.npy").transpose(1, 0, 2)
    np.save(batch_first / "x.npy", x)
    got = run_mmdnn_model(run_mmdnn, model, {"x": batch_first / "x.npy"}, batch_first / "out")
    for i, (g, ref) in enumerate(zip(got, time_first)):
        want = ref.transpose(2, 0, 1, 3) if ref.ndim == 4 else ref.transpose(1, 0, 2)
        compare(g, want, f"layout 1 output {i}")


def test_external_data(tmp_path, run_in_subprocess, run_mmdnn):
    check(tmp_path, run_in_subprocess, run_mmdnn, "external_data")
    assert (tmp_path / "weights.bin").stat().st_size > 4 * 8 * 3 * 3 * 3


def test_resnet50(tmp_path, run_in_subprocess, run_mmdnn):
    got, refs = check(tmp_path, run_in_subprocess, run_mmdnn, "resnet50")
    assert got[0].shape == (1, 1000)
    assert got[0].argmax() == refs[0].argmax()
