"""Recurrent state as inputs and outputs: a PyTorch module with a bidirectional LSTM and a GRU
whose initial states are graph inputs and whose final states are graph outputs, exported to ONNX
(torch.onnx, opset 17), converted to the IR (run by `mmdnn run`), to ONNX (run by onnxruntime)
and to PyTorch (run by torch). Each target is used as a streaming model: three calls, each fed
the states the target itself returned from the previous call, compared at every step with
onnxruntime on the source model doing the same, within max|Δ| ≤ 1e-4 · max(1, |ref|).

With a dynamic batch (dynamic_axes on every input and output) the same runs at batch 2 and 3,
converted with no pinning; the written ONNX model keeps the batch symbolic. A Keras 3 model
whose LSTM, GRU and Bidirectional SimpleRNN take `initial_state` from Input layers streams the
same way through `mmdnn run`, against Keras.
"""

import json

import numpy as np
from test_onnx_reader import compare

NAMES = ["x", "h0", "c0", "g0"]
OUTS = ["y", "h", "c", "g"]
# Which output feeds which state input on the next call.
FEEDBACK = {"h0": 1, "c0": 2, "g0": 3}
STEPS = 3

# Exports the module and writes, per batch size, the three calls' inputs and onnxruntime's
# outputs on the source model: <path>.<n>.<step>.<name>.npy.
EXPORT = r"""
import sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, onnxruntime as ort, torch, torch.nn as nn
torch.manual_seed(0)
F, H, G = 6, 5, 4
path, dynamic, sizes = sys.argv[1], sys.argv[2] == "1", [int(v) for v in sys.argv[3].split(",")]


class Stream(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(F, H, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(2 * H, G, batch_first=True)
        self.fc = nn.Linear(G, 3)

    def forward(self, x, h0, c0, g0):
        y, (h, c) = self.lstm(x, (h0, c0))
        z, g = self.gru(y, g0)
        return self.fc(z), h, c, g


def inputs(n, rng):
    return {"x": rng.standard_normal((n, 7, F), dtype=np.float32),
            "h0": rng.standard_normal((2, n, H), dtype=np.float32),
            "c0": rng.standard_normal((2, n, H), dtype=np.float32),
            "g0": rng.standard_normal((1, n, G), dtype=np.float32)}


m = Stream().eval()
ex = {k: torch.from_numpy(v) for k, v in inputs(sizes[0], np.random.default_rng(1)).items()}
axes = None
if dynamic:
    axes = {"x": {0: "N"}, "y": {0: "N"}}
    axes.update({k: {1: "N"} for k in ["h0", "c0", "g0", "h", "c", "g"]})
torch.onnx.export(m, tuple(ex.values()), path, dynamo=False, opset_version=17,
                  input_names=["x", "h0", "c0", "g0"], output_names=["y", "h", "c", "g"],
                  dynamic_axes=axes)
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
for n in sizes:
    rng = np.random.default_rng(n)
    feed = inputs(n, rng)
    for step in range(3):
        if step:
            feed["x"] = rng.standard_normal((n, 7, F), dtype=np.float32)
            feed.update(h0=outs[1], c0=outs[2], g0=outs[3])
        outs = session.run(None, feed)
        for k, v in feed.items():
            np.save(f"{path}.{n}.{step}.{k}.npy", v)
        for k, v in zip(["y", "h", "c", "g"], outs):
            np.save(f"{path}.{n}.{step}.ref_{k}.npy", v)
"""

# Runs a converted model (ONNX in onnxruntime, or generated PyTorch code) as a streaming model:
# each call gets x of that step from the source's files and the states it returned itself.
STREAM = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
job = json.loads(sys.argv[1])
src, n, out = job["src"], job["n"], job["out"]
names, feedback = ["x", "h0", "c0", "g0"], {"h0": 1, "c0": 2, "g0": 3}
if job["kind"] == "onnx":
    import onnx, onnxruntime as ort
    onnx.checker.check_model(job["model"], full_check=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(job["model"], options, providers=["CPUExecutionProvider"])
    assert [i.name for i in s.get_inputs()] == names, [i.name for i in s.get_inputs()]
    if job["dynamic"]:  # the batch stays a symbol: x's axis 0, the states' axis 1
        for i, axis in zip(s.get_inputs(), [0, 1, 1, 1]):
            assert isinstance(i.shape[axis], str), (i.name, i.shape)
    run = lambda feed: s.run(None, feed)
else:
    import importlib.util, torch
    spec = importlib.util.spec_from_file_location("stream_model", job["code"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.KitModel()
    model.load_state_dict(torch.load(job["model"], weights_only=True))
    model.eval()
    def run(feed):
        with torch.no_grad():
            outs = model(*[torch.from_numpy(feed[k]) for k in names])
        return [o.numpy() for o in outs]
feed = {k: np.load(f"{src}.{n}.0.{k}.npy") for k in names}
for step in range(3):
    if step:
        feed["x"] = np.load(f"{src}.{n}.{step}.x.npy")
        feed.update({k: outs[i] for k, i in feedback.items()})
    outs = run(feed)
    for k, v in zip(["y", "h", "c", "g"], outs):
        np.save(f"{out}.{step}.{k}.npy", v)
"""


def export(tmp_path, run_in_subprocess, dynamic, sizes):
    path = tmp_path / "stream.onnx"
    script = tmp_path / "export.py"
    script.write_text(EXPORT)
    run_in_subprocess(
        f"import runpy, sys; sys.argv = ['export', {str(path)!r}, {str(int(dynamic))!r}, "
        f"{','.join(map(str, sizes))!r}]; runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    return path


def check_steps(got, src, n, what):
    """got(step, name) -> array; compares every step's outputs with the source's."""
    worst = 0.0
    for step in range(STEPS):
        for k in OUTS:
            ref = np.load(f"{src}.{n}.{step}.ref_{k}.npy")
            worst = max(worst, compare(got(step, k), ref, f"{what}, batch {n}, call {step}, {k}"))
    return worst


def stream_ir(run_mmdnn, src, n, work):
    """`mmdnn run` three times, each call fed the states the previous one returned."""
    feeds = {k: f"{src}.{n}.0.{k}.npy" for k in NAMES}
    results = {}
    for step in range(STEPS):
        if step:
            feeds["x"] = f"{src}.{n}.{step}.x.npy"
            feeds.update({k: results[step - 1][i] for k, i in FEEDBACK.items()})
        args = ["run", "-n", src, "-o", work / f"ir{n}.{step}"]
        for k, f in feeds.items():
            args += ["--input", f"{k}={f}"]
        proc = run_mmdnn(*args, check=True)
        results[step] = [line.split("-> ")[-1] for line in proc.stdout.splitlines() if "-> " in line]
        assert len(results[step]) == len(OUTS), proc.stdout
    return lambda step, k: np.load(results[step][OUTS.index(k)])


def stream_target(run_in_subprocess, kind, model, src, n, out, code=None, dynamic=False):
    job = {"kind": kind, "model": str(model), "code": str(code), "src": str(src), "n": n,
           "out": str(out), "dynamic": dynamic}
    run_in_subprocess(STREAM.replace("sys.argv[1]", repr(json.dumps(job))))
    return lambda step, k: np.load(f"{out}.{step}.{k}.npy")


def check_all_targets(tmp_path, run_in_subprocess, run_mmdnn, src, sizes, dynamic=False):
    onnx_out = tmp_path / "converted.onnx"
    run_mmdnn("convert", "-sf", "onnx", "-iw", src, "-df", "onnx", "-om", onnx_out, check=True)
    pt = tmp_path / "pytorch"
    pt.mkdir()
    run_mmdnn("convert", "-sf", "onnx", "-iw", src, "-df", "pytorch", "-om", pt / "model.pth", check=True)
    for n in sizes:
        errors = {
            "ir": check_steps(stream_ir(run_mmdnn, src, n, tmp_path), src, n, "mmdnn run"),
            "onnx": check_steps(stream_target(run_in_subprocess, "onnx", onnx_out, src, n, tmp_path / f"onnx{n}",
                                                dynamic=dynamic),
                                src, n, "converted ONNX"),
            "pytorch": check_steps(stream_target(run_in_subprocess, "pytorch", pt / "model.pth", src, n,
                                                 tmp_path / f"torch{n}", code=pt / "model.py"),
                                   src, n, "converted PyTorch"),
        }
        print(f"batch {n}: max |Δ| over {STEPS} streaming calls", errors)


def test_lstm_gru_states_static_batch(tmp_path, run_in_subprocess, run_mmdnn):
    src = export(tmp_path, run_in_subprocess, False, [2])
    check_all_targets(tmp_path, run_in_subprocess, run_mmdnn, src, [2])


def test_lstm_gru_states_dynamic_batch(tmp_path, run_in_subprocess, run_mmdnn):
    src = export(tmp_path, run_in_subprocess, True, [2, 3])
    check_all_targets(tmp_path, run_in_subprocess, run_mmdnn, src, [2, 3], dynamic=True)


# Keras 3 model with initial_state from Input layers (keras_models._recurrent_state): outputs
# [z, h1, c1, g1, b], inputs [x, h, c, g, fw, bw]; three calls, h, c and g fed back each time.
KERAS_STREAM = r"""
import numpy as np
import keras_models
keras = keras_models._keras("keras")
model = keras_models._recurrent_state(keras)
keras_models.randomize(model)
model.save({path!r})
rng = np.random.default_rng(3)
names = ["x", "h", "c", "g", "fw", "bw"]
feed = [rng.standard_normal([2] + [int(d) for d in t.shape[1:]]).astype(np.float32)
        for t in model.inputs]
for step in range(3):
    if step:
        feed[0] = rng.standard_normal(feed[0].shape).astype(np.float32)
        feed[1:4] = [np.asarray(outs[i]) for i in (1, 2, 3)]
    outs = model(feed, training=False)
    for k, v in zip(names, feed):
        np.save(f"{path}.{{step}}.{{k}}.npy", v)
    for i, v in enumerate(outs):
        np.save(f"{path}.{{step}}.ref{{i}}.npy", np.asarray(v))
"""


def test_keras_initial_state_streaming(tmp_path, run_in_subprocess, run_mmdnn):
    src = tmp_path / "stream.keras"
    run_in_subprocess(KERAS_STREAM.format(path=str(src)))
    names, feedback = ["x", "h", "c", "g", "fw", "bw"], {"h": 1, "c": 2, "g": 3}
    feeds = {k: f"{src}.0.{k}.npy" for k in names}
    worst, files = 0.0, []  # files: the previous call's outputs
    for step in range(STEPS):
        if step:
            feeds["x"] = f"{src}.{step}.x.npy"
            feeds.update({k: files[i] for k, i in feedback.items()})
        args = ["run", "-n", src, "-o", tmp_path / f"ir{step}"]
        for k, f in feeds.items():
            args += ["--input", f"{k}={f}"]
        proc = run_mmdnn(*args, check=True)
        files = [line.split("-> ")[-1] for line in proc.stdout.splitlines() if "-> " in line]
        assert len(files) == 5, proc.stdout
        for i, f in enumerate(files):
            ref = np.load(f"{src}.{step}.ref{i}.npy")
            worst = max(worst, compare(np.load(f), ref, f"Keras call {step}, output {i}"))
    print(f"Keras: max |Δ| over {STEPS} streaming calls", worst)
