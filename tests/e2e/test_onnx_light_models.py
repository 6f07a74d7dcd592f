"""The ONNX reader on real model graphs: the "light" models the onnx package ships
(onnx/backend/test/data/light: AlexNet, DenseNet-121, Inception v1 and v2, ResNet-50,
ShuffleNet, SqueezeNet, VGG-19, ZFNet-512 from the ONNX model zoo, opset 9, IR version 3).
Their weights are ConstantOfShape nodes; here each becomes a random initializer (fixed seed)
so the outputs mean something. `mmdnn run` must match onnxruntime within
max|Δ| ≤ 1e-4 · max(1, |ref|) and give the same top class.
"""

import json

import numpy as np
import pytest

from test_onnx_reader import assert_layout_exact, compare, run_mmdnn_model

MODELS = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
          "shufflenet", "squeezenet", "vgg19", "zfnet512"]

PREPARE = """
import json, os
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

src = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/light/light_{name}.onnx")
model = onnx.load(src)
rng = np.random.default_rng(0)
inits = {{t.name: t for t in model.graph.initializer}}
kept = []
for node in model.graph.node:
    if node.op_type != "ConstantOfShape" or node.input[0] not in inits:
        kept.append(node)
        continue
    shape = [int(d) for d in numpy_helper.to_array(inits[node.input[0]])]
    if len(shape) > 1:
        fan_in = int(np.prod(shape[1:]))
        value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    else:  # biases and batch-norm statistics (the variances must be positive)
        value = rng.uniform(0.5, 1.5, shape)
    model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
    model.graph.input.append(onnx.helper.make_tensor_value_info(node.output[0], 1, shape))
del model.graph.node[:]
model.graph.node.extend(kept)
path = {path!r}
onnx.save(model, path)
inputs = [i for i in model.graph.input if i.name not in {{t.name for t in model.graph.initializer}}]
x = inputs[0]
shape = [d.dim_value for d in x.type.tensor_type.shape.dim]
feed = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
np.save(path + ".in." + x.name.replace("/", "_") + ".npy", feed)
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
outs = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]).run(None, {{x.name: feed}})
for i, v in enumerate(outs):
    np.save(f"{{path}}.ref{{i}}.npy", v)
print(json.dumps({{"input": x.name, "outputs": len(outs)}}))
"""


@pytest.mark.parametrize("name", MODELS)
def test_light_model(tmp_path, run_in_subprocess, run_mmdnn, name):
    path = tmp_path / f"{name}.onnx"
    proc = run_in_subprocess(PREPARE.format(name=name, path=str(path)))
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    feed = f"{path}.in.{info['input'].replace('/', '_')}.npy"
    got = run_mmdnn_model(run_mmdnn, path, {info["input"]: feed}, tmp_path / "out")
    assert len(got) == info["outputs"]
    for i, g in enumerate(got):
        ref = np.load(f"{path}.ref{i}.npy")
        err = compare(g, ref, f"{name} output {i}")
        assert g.argmax() == ref.argmax(), f"{name}: top class {g.argmax()} != {ref.argmax()}"
        print(name, "max |Δ|", err, "max |ref|", float(np.abs(ref).max()))
    assert_layout_exact(run_mmdnn, path, tmp_path)
