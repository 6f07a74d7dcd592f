"""A converted model keeps the source's interface: a Keras Conv1D + LSTM model taking [N, T, 12]
still takes [N, T, 12] (same input name) in ONNX and in PyTorch, its outputs keep the Keras
output layer names in ONNX, and both compute what Keras computes: max|Δ| ≤ 1e-4·max(1, |ref|).
`--io-layout channels_first` is the opt-in layout change: [N, 12, T], said in the summary."""

import json

import numpy as np

from test_pytorch_ops import compare

T, FEATURES = 20, 12

KERAS_MODEL = r"""
import json, os
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras
import numpy as np

keras.utils.set_random_seed(5)
x_in = keras.Input(shape=({T}, {F}), name="series")
h = keras.layers.Conv1D(8, 3, padding="same", activation="relu", name="conv")(x_in)
seq = keras.layers.LSTM(6, return_sequences=True, name="lstm")(h)
last = keras.layers.Dense(3, activation="softmax", name="probs")(keras.layers.GlobalAveragePooling1D(name="gap")(seq))
model = keras.Model(x_in, [seq, last], name="conv_lstm")
model.save({path!r})
x = np.random.default_rng(3).standard_normal((2, {T}, {F})).astype(np.float32)
np.save({x!r}, x)
for i, y in enumerate(model.predict(x, verbose=0)):
    np.save({out!r} + f"/ref{{i}}.npy", y)
print(json.dumps(model.output_names))
"""

ONNX_RUN = r"""
import json
import numpy as np
import onnx
import onnxruntime as ort

onnx.checker.check_model({model!r}, full_check=True)
s = ort.InferenceSession({model!r}, providers=["CPUExecutionProvider"])
x = np.load({x!r})
inputs = [(i.name, i.shape) for i in s.get_inputs()]
outs = s.run(None, {{s.get_inputs()[0].name: x if {same!r} else x.transpose(0, 2, 1).copy()}})
for i, o in enumerate(outs):
    np.save({out!r} + f"/onnx{{i}}.npy", o)
print(json.dumps({{"inputs": inputs, "outputs": [o.name for o in s.get_outputs()]}}))
"""

TORCH_RUN = r"""
import importlib.util, inspect
import numpy as np
import torch

spec = importlib.util.spec_from_file_location("m", {code!r})
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
model = m.KitModel()
model.load_state_dict(torch.load({weights!r}, weights_only=True))
model.eval()
assert list(inspect.signature(model.forward).parameters) == ["series"]
with torch.no_grad():
    outs = model(torch.from_numpy(np.load({x!r})))
for i, o in enumerate(outs):
    np.save({out!r} + f"/torch{{i}}.npy", o.numpy())
"""


def _keras_model(tmp_path, run_in_subprocess):
    path, x = tmp_path / "conv_lstm.keras", tmp_path / "x.npy"
    proc = run_in_subprocess(KERAS_MODEL.format(T=T, F=FEATURES, path=str(path), x=str(x),
                                                out=str(tmp_path)))
    names = json.loads(proc.stdout.strip().splitlines()[-1])
    refs = [np.load(tmp_path / f"ref{i}.npy") for i in range(2)]
    return path, x, names, refs


def test_conv1d_lstm_keeps_its_interface(tmp_path, run_mmdnn, run_in_subprocess):
    path, x, names, refs = _keras_model(tmp_path, run_in_subprocess)
    assert names == ["lstm", "probs"]
    # ONNX: input `series` [N, T, 12], outputs named after the Keras output layers.
    run_mmdnn("convert", "-sf", "keras", "-iw", path, "-df", "onnx", "-om", tmp_path / "m.onnx",
              check=True)
    proc = run_in_subprocess(ONNX_RUN.format(model=str(tmp_path / "m.onnx"), x=str(x),
                                             out=str(tmp_path), same=True))
    io = json.loads(proc.stdout.strip().splitlines()[-1])
    assert io["inputs"] == [["series", [None, T, FEATURES]]] or \
        [(n, s[1:]) for n, s in io["inputs"]] == [("series", [T, FEATURES])], io
    assert io["outputs"] == names, io
    for i, ref in enumerate(refs):
        print("onnx output", i, "max |Δ|", compare(np.load(tmp_path / f"onnx{i}.npy"), ref, f"onnx {i}"))
    # PyTorch: forward(series) on the same [N, T, 12] array.
    run_mmdnn("convert", "-sf", "keras", "-iw", path, "-df", "pytorch", "-om",
              tmp_path / "m.pth", check=True)
    run_in_subprocess(TORCH_RUN.format(code=str(tmp_path / "m.py"), weights=str(tmp_path / "m.pth"),
                                       x=str(x), out=str(tmp_path)))
    for i, ref in enumerate(refs):
        print("torch output", i, "max |Δ|", compare(np.load(tmp_path / f"torch{i}.npy"), ref, f"torch {i}"))


def test_conv1d_lstm_io_layout_channels_first(tmp_path, run_mmdnn, run_in_subprocess):
    path, x, names, refs = _keras_model(tmp_path, run_in_subprocess)
    proc = run_mmdnn("convert", "-sf", "keras", "-iw", path, "-df", "onnx", "-om",
                     tmp_path / "cf.onnx", "--io-layout", "channels_first", "--json", check=True)
    interface = json.loads(proc.stdout)["interface"]
    assert {"change": "layout", "kind": "input", "name": "series", "perm": [0, 2, 1],
            "type": f"float32[?, {FEATURES}, {T}]"} in interface, interface
    proc = run_in_subprocess(ONNX_RUN.format(model=str(tmp_path / "cf.onnx"), x=str(x),
                                             out=str(tmp_path), same=False))
    io = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [(n, s[1:]) for n, s in io["inputs"]] == [("series", [FEATURES, T])], io
    # The LSTM's output is no image (its layout is not known): it keeps the source's [N, T, 6].
    compare(np.load(tmp_path / "onnx0.npy"), refs[0], "onnx lstm")
    compare(np.load(tmp_path / "onnx1.npy"), refs[1], "onnx probs")
