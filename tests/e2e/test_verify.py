"""`mmdnn verify` on the pairs the tool produces, each model run by its own framework:
an ONNX source against its converted PyTorch code + state dict (and TorchScript, .pt2, pickle),
a Keras 2 .h5 (tf_keras) against its converted ONNX (interface kept, and --io-layout
channels_first), a dynamic batch run at two sizes, and `--per-layer` naming the
first divergent layer of a converted model whose file had one weight edited.
Tolerance: verify's defaults, |Δ| ≤ 1e-4·max(1, |ref|)."""

import json

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnx_models import Net, tensor_input

def _python():
    import sys

    return sys.executable


def verify(run_mmdnn, reference, candidate, *args):
    return run_mmdnn("verify", "--python", _python(), "--reference", reference,
                     "--candidate", candidate, "--random-input", "--json", *args)


def doc_of(proc):
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON on stdout (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def dynamic_cnn(path, seed=0):
    """x [N, 3, 12, 12] → Conv/BN/Relu → Conv/Relu → GlobalAveragePool → Flatten → Gemm →
    Softmax; every node named after its output (conv_2, …)."""
    n = Net(seed)
    x = n.op("Relu", [n.bn(n.conv("x", 3, 8, 3, pad=1), 8)])
    x = n.op("Relu", [n.conv(x, 8, 8, 3, pad=1)])
    x = n.op("Flatten", [n.op("GlobalAveragePool", [x])], axis=1)
    x = n.op("Gemm", [x, n.weight("fc_w", [5, 8]), n.const("fc_b", np.full(5, 0.1, np.float32))], transB=1)
    n.nodes.append(helper.make_node("Softmax", [x], ["probs"], name="softmax", axis=1))
    n.save(path, [tensor_input("x", ["N", 3, 12, 12])], [tensor_input("probs", ["N", 5])], opset=13)
    return n


def first_conv(model_path):
    m = onnx.load(str(model_path))
    return next(node for node in m.graph.node if node.op_type == "Conv")


def test_onnx_source_against_converted_pytorch_at_two_batch_sizes(run_mmdnn, tmp_path):
    src = tmp_path / "cnn.onnx"
    dynamic_cnn(src)
    run_mmdnn("convert", "-sf", "onnx", "-iw", src, "-df", "pytorch", "-om", tmp_path / "cnn.pth", "-q", check=True)
    assert (tmp_path / "cnn.py").is_file()
    # The state dict with its .py beside it, and the .py with its state dict beside it.
    for candidate in ("cnn.pth", "cnn.py"):
        proc = verify(run_mmdnn, src, tmp_path / candidate)
        doc = doc_of(proc)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # The batch is dynamic (dim_param N): two automatic sizes.
        assert [r["sizes"]["x"] for r in doc["runs"]] == [[1, 3, 12, 12], [2, 3, 12, 12]], doc
        for run in doc["runs"]:
            assert run["outputs"][0]["within_tolerance"], doc
    # Sizes given by the dim's name.
    doc = doc_of(verify(run_mmdnn, src, tmp_path / "cnn.pth", "--sizes", "N=3", "--sizes", "N=5"))
    assert [r["sizes"]["x"][0] for r in doc["runs"]] == [3, 5], doc
    assert doc["ok"], doc


def test_every_pytorch_format_against_the_onnx_source(run_mmdnn, tmp_path):
    """TorchScript, torch.export and pickled-module files (with the generated .py beside them)."""
    src = tmp_path / "cnn.onnx"
    dynamic_cnn(src)
    for fmt, name, runtime in (("torchscript", "s.pt", "TorchScript"), ("export", "e.pt2", "torch.export"),
                               ("pickle", "p.pkl", "pickled module")):
        run_mmdnn("convert", "-sf", "onnx", "-iw", src, "-df", "pytorch", "-om", tmp_path / name,
                  "--format", fmt, "-q", check=True)
        proc = verify(run_mmdnn, src, tmp_path / name)
        doc = doc_of(proc)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert runtime in doc["runtimes"]["candidate"], doc
        assert all(r["outputs"][0]["within_tolerance"] for r in doc["runs"]), doc


def test_keras2_h5_against_converted_onnx(run_mmdnn, run_in_subprocess, tmp_path):
    h5 = tmp_path / "k2.h5"
    run_in_subprocess(f"""
        import numpy as np
        import tf_keras as keras
        keras.utils.set_random_seed(0)
        inp = keras.Input((10, 10, 3), name="image")
        x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inp)
        x = keras.layers.BatchNormalization(name="bn")(x)
        x = keras.layers.MaxPooling2D(name="pool")(x)
        x = keras.layers.Flatten(name="flat")(x)
        out = keras.layers.Dense(4, activation="softmax", name="scores")(x)
        m = keras.Model(inp, out)
        bn = m.get_layer("bn")
        bn.set_weights([w + np.random.default_rng(1).uniform(0.1, 0.5, w.shape).astype("float32") for w in bn.get_weights()])
        m.save({str(h5)!r})
    """)
    import h5py

    with h5py.File(h5, "r") as f:
        assert str(f.attrs["keras_version"]).startswith("2"), "a Keras 2 file"
    onnx_path = tmp_path / "k2.onnx"
    run_mmdnn("convert", "-sf", "keras", "-iw", h5, "-df", "onnx", "-om", onnx_path, "-q", check=True)
    proc = verify(run_mmdnn, h5, onnx_path, "--per-layer")
    doc = doc_of(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["runtimes"]["reference"].startswith("tf_keras "), doc
    assert doc["runtimes"]["candidate"].startswith("onnxruntime "), doc
    assert len(doc["runs"]) == 2, doc  # batch None: two sizes
    for run in doc["runs"]:
        assert run["outputs"][0]["within_tolerance"], doc
        # Layers exposed by both: the Keras layer names the converted ONNX keeps.
        names = [l["name"] for l in run["layers"]]
        assert "conv/relu" in names and "bn" in names and "scores/softmax" in names, names
        assert run["first_divergent_layer"] is None, run
    # An opted-in layout change of the interface: the input is fed permuted, found from its shape.
    cf = tmp_path / "k2_cf.onnx"
    run_mmdnn("convert", "-sf", "keras", "-iw", h5, "-df", "onnx", "-om", cf, "--io-layout", "channels_first",
              "-q", check=True)
    proc = verify(run_mmdnn, h5, cf)
    doc = doc_of(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert any("permuted by [0, 3, 1, 2]" in note for note in doc["interface"]), doc
    assert all(r["outputs"][0]["within_tolerance"] for r in doc["runs"]), doc


def test_per_layer_names_the_first_divergent_layer_of_an_edited_weight(run_mmdnn, tmp_path):
    src = tmp_path / "cnn.onnx"
    dynamic_cnn(src)
    conv = first_conv(src)
    # Converted to ONNX, then one value of the first convolution's weight edited in the file.
    out = tmp_path / "conv.onnx"
    run_mmdnn("convert", "-sf", "onnx", "-iw", src, "-df", "onnx", "-om", out, "-q", check=True)
    m = onnx.load(str(out))
    node = next(n for n in m.graph.node if n.op_type == "Conv")
    init = next(t for t in m.graph.initializer if t.name == node.input[1])
    w = numpy_helper.to_array(init).copy()
    w.flat[5] += 0.5
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(m, str(out))
    proc = verify(run_mmdnn, src, out, "--per-layer")
    doc = doc_of(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert doc["failure"] == "verification out of tolerance"
    assert "verification out of tolerance" in proc.stderr
    for run in doc["runs"]:
        assert run["first_divergent_layer"] == conv.name, run
        layers = {l["name"]: l for l in run["layers"]}
        # Every layer after the edited one is listed too, although the outputs differ.
        assert len(layers) >= 6, layers
        assert not layers[conv.name]["within_tolerance"]

    # The same with the PyTorch target: one value of the state dict edited.
    run_mmdnn("convert", "-sf", "onnx", "-iw", src, "-df", "pytorch", "-om", tmp_path / "t.pth", "-q", check=True)
    import torch

    state = torch.load(tmp_path / "t.pth", weights_only=True)
    key = next(k for k, v in state.items() if v.dim() == 4)
    state[key].view(-1)[5] += 0.5
    torch.save(state, tmp_path / "t.pth")
    proc = verify(run_mmdnn, src, tmp_path / "t.pth", "--per-layer")
    doc = doc_of(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert doc["runs"][0]["first_divergent_layer"] == conv.name, doc["runs"][0]
