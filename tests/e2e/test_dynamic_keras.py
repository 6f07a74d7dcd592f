"""Dynamic Keras models (issue 12): `None` dims are symbols (`batch`, `<input>_<axis>`), so a
Keras model taking images of any size (strided SAME windows included: their pads are computed
when the model runs), or sequences of any length, converts with no pinning and
runs at two sizes in the IR (`mmdnn run`), ONNX (onnxruntime) and PyTorch (the generated module),
each compared with Keras within max|Δ| ≤ 1e-4 · max(1, |ref|). keras, onnxruntime and torch come
from the shared venv.
"""

import json

import numpy as np
import pytest
from test_onnx_reader import compare, run_mmdnn_model

KERAS = r"""
import json, os
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras
import numpy as np

keras.utils.set_random_seed(7)
out = OUT_DIR

def save(name, model, sizes):
    model.save(f"{out}/{name}.keras")
    for i, shape in enumerate(sizes):
        x = np.random.default_rng(i).standard_normal(shape).astype(np.float32)
        np.save(f"{out}/{name}.in{i}.npy", x)
        np.save(f"{out}/{name}.ref{i}.npy", model.predict(x, verbose=0))

# Images of any size: a SAME convolution (stride 1), a VALID strided one, pooling, a head.
x = keras.Input(shape=(None, None, 3), name="image")
h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
h = keras.layers.Conv2D(8, 3, strides=2, padding="valid", activation="relu", name="conv2")(h)
y = keras.layers.Dense(4, name="head")(keras.layers.GlobalAveragePooling2D(name="gap")(h))
save("images", keras.Model(x, y), [(1, 32, 48, 3), (2, 41, 27, 3)])

# Strided SAME windows on images of any size: the pads depend on each size modulo the stride,
# so they are computed when the model runs (sizes of both parities below).
x = keras.Input(shape=(None, None, 3), name="image")
h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv")(x)
h = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(h)
h = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="max")(h)
h = keras.layers.SeparableConv2D(6, 3, strides=2, padding="same", name="sep")(h)
y = keras.layers.AveragePooling2D(3, strides=2, padding="same", name="avg")(h)
save("strided_same", keras.Model(x, y), [(1, 33, 47, 3), (2, 64, 50, 3)])

# SAME pools narrower than their stride (onnxruntime's own SAME padding is wrong for them: the
# ONNX writer computes the pads in the graph); 2 with stride 3 pads 33 by 0 but 64 by 1.
x = keras.Input(shape=(None, None, 3), name="image")
h = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
h = keras.layers.MaxPooling2D(2, strides=3, padding="same", name="max")(h)
y = keras.layers.AveragePooling2D(2, strides=3, padding="same", name="avg")(h)
save("narrow_pools", keras.Model(x, y), [(1, 33, 47, 3), (2, 64, 50, 3)])

# keras.applications' MobileNetV2 on images of any size (its downsampling is strided SAME
# depthwise convolutions behind ZeroPadding2D or not); its top needs a static size, so the
# features are averaged instead.
m = keras.applications.MobileNetV2(input_shape=(None, None, 3), weights=None, alpha=0.35,
                                   include_top=False, pooling="avg")
# Random weights fade to ~1e-10 through its 52 BatchNorms at their initial statistics: set each
# one's moving statistics to those of a probe batch (momentum 0) so the outputs are of order 1,
# with variances floored at twice the layer's mean (small ones amplify float32 rounding).
norms = [la for la in m.layers if isinstance(la, keras.layers.BatchNormalization)]
for layer in norms:
    layer.momentum = 0.0
m(np.random.default_rng(9).standard_normal((4, 48, 48, 3)).astype(np.float32), training=True)
for layer in norms:
    gamma, beta, mean, var = (w.numpy() for w in layer.weights)
    layer.set_weights([gamma, beta, mean, np.maximum(var, 2 * var.mean())])
save("mobilenet_v2", m, [(1, 33, 47, 3), (2, 64, 50, 3)])

# Sequences of any length: Conv1D then a bidirectional LSTM over time.
x = keras.Input(shape=(None, 12), name="series")
h = keras.layers.Conv1D(16, 3, padding="same", activation="relu", name="conv")(x)
h = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True), name="bilstm")(h)
y = keras.layers.Dense(3, name="head")(h)
save("series", keras.Model(x, y), [(2, 20, 12), (3, 33, 12)])
"""

ONNX_RUN = r"""
import json, numpy as np, onnxruntime as ort
s = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
for i in range(2):
    x = np.load(f"{SRC}.in{i}.npy")
    np.save(f"{OUT}/onnx{i}.npy", s.run(None, {s.get_inputs()[0].name: x})[0])
print(json.dumps([d if isinstance(d, int) else str(d) for d in s.get_inputs()[0].shape]))
"""

TORCH_RUN = r"""
import importlib.util, numpy as np, torch
spec = importlib.util.spec_from_file_location("m", CODE)
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
model = m.KitModel()
model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
model.eval()
with torch.no_grad():
    for i in range(2):
        y = model(torch.from_numpy(np.load(f"{SRC}.in{i}.npy")))
        np.save(f"{OUT}/torch{i}.npy", (y[0] if isinstance(y, tuple) else y).numpy())
"""

INPUTS = {"images": "image", "series": "series", "strided_same": "image",
          "narrow_pools": "image", "mobilenet_v2": "input_layer"}
SYMBOLS = {"images": ["batch", "image_1", "image_2", 3], "series": ["batch", "series_1", 12],
           "strided_same": ["batch", "image_1", "image_2", 3],
           "narrow_pools": ["batch", "image_1", "image_2", 3],
           "mobilenet_v2": ["batch", "input_layer_1", "input_layer_2", 3]}


def fill(code, **values):
    for k, v in values.items():
        code = code.replace(k, repr(str(v)))
    return code


@pytest.fixture(scope="module")
def models(tmp_path_factory, run_in_subprocess):
    d = tmp_path_factory.mktemp("dynamic_keras")
    run_in_subprocess(fill(KERAS, OUT_DIR=d))
    return d


@pytest.mark.parametrize("name", sorted(SYMBOLS))
def test_keras_none_dims_convert_without_pinning(name, models, tmp_path, run_mmdnn,
                                                 run_in_subprocess):
    src = models / name
    path = models / f"{name}.keras"
    refs = [np.load(f"{src}.ref{i}.npy") for i in range(2)]
    # IR, through the interpreter.
    for i in range(2):
        got = run_mmdnn_model(run_mmdnn, path, {INPUTS[name]: f"{src}.in{i}.npy"},
                              tmp_path / f"ir{i}")
        print(name, "IR", i, "max |Δ|", compare(got[0], refs[i], f"{name} IR size {i}"))
    # ONNX: the symbols are its dim_params.
    onnx_path = tmp_path / "m.onnx"
    run_mmdnn("convert", "-sf", "keras", "-iw", path, "-df", "onnx", "-om", onnx_path, check=True)
    proc = run_in_subprocess(fill(ONNX_RUN, MODEL=onnx_path, SRC=src, OUT=tmp_path))
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == SYMBOLS[name]
    for i in range(2):
        got = np.load(tmp_path / f"onnx{i}.npy")
        print(name, "ONNX", i, "max |Δ|", compare(got, refs[i], f"{name} ONNX size {i}"))
    # PyTorch.
    run_mmdnn("convert", "-sf", "keras", "-iw", path, "-df", "pytorch", "-om", tmp_path / "m.pth",
              check=True)
    run_in_subprocess(fill(TORCH_RUN, CODE=tmp_path / "m.py", WEIGHTS=tmp_path / "m.pth", SRC=src,
                           OUT=tmp_path))
    for i in range(2):
        got = np.load(tmp_path / f"torch{i}.npy")
        print(name, "PyTorch", i, "max |Δ|", compare(got, refs[i], f"{name} PyTorch size {i}"))
