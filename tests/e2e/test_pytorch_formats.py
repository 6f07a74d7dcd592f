"""PyTorch model files: the native state dict, TorchScript, torch.export and MMdnn's pickled
module, through `tomodel` and `convert --format`; the staged `tocode` → `tomodel` path with
either weights file; and the message when the Python that must save lacks torch.
"""

import os
import stat
import sys

import numpy as np
from test_pytorch_ops import Graph, compare, mmdnn_outputs

CHECK_FILES = r"""
import importlib.util, json, sys
import numpy as np
import torch

d = sys.argv[1] if len(sys.argv) > 1 else {d!r}
x = torch.from_numpy(np.load(d + "/ir.in0.npy"))
results = {{}}
sd = torch.load(d + "/weights.pth", weights_only=True)
sd2 = torch.load(d + "/from_npz.pth", weights_only=True)
assert list(sd) == list(sd2) and all(torch.equal(sd[k], sd2[k]) for k in sd), "state dicts differ"
assert torch.equal(torch.load(d + "/copy.pth", weights_only=True)["conv.weight"], sd["conv.weight"])
ts = torch.jit.load(d + "/model.pt")
results["torchscript"] = ts(x)
ep = torch.export.load(d + "/model.pt2").module()
results["export"] = ep(x)
sys.path.insert(0, d + "/convert")
whole = torch.load(d + "/convert/model.pkl", weights_only=False)
results["pickle"] = whole(x)
results["convert_torchscript"] = torch.jit.load(d + "/convert/scripted.pt")(x)
for k, v in results.items():
    np.save(f"{{d}}/{{k}}.npy", v.detach().numpy())
print(json.dumps(list(results)))
"""


def small_graph():
    g = Graph(3)
    x = g.input([1, 3, 8, 8], name="image")
    c = g.op("Conv", [x], name="conv", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1],
             out_channels=4, use_bias=True)
    g.w(c, "weights", g.rand(4, 3, 3, 3)), g.w(c, "bias", g.rand(4))
    r = g.op("Resize", [g.op("Relu", [c])], mode="linear", sizes=[7, 5],
             coordinate_transformation_mode="asymmetric")
    f = g.op("Flatten", [r])
    fc = g.op("FullyConnected", [f], name="fc", units=3, use_bias=True)
    g.w(fc, "weights", g.rand(140, 3)), g.w(fc, "bias", g.rand(3))
    g.output(fc)
    return g


def test_formats(tmp_path, run_mmdnn, run_in_subprocess):
    g = small_graph()
    d = tmp_path
    g.save(d / "ir")
    ir = [d / "ir.pb", d / "ir.npz"]
    run_mmdnn("tocode", "-f", "pytorch", "-n", ir[0], "-w", ir[1], "-d", d / "model.py",
              "-dw", d / "weights.pth", check=True)
    tomodel = ["tomodel", "-f", "pytorch", "-in", d / "model.py"]
    run_mmdnn(*tomodel, "-iw", d / "weights.pth", "-o", d / "copy.pth", check=True)
    run_mmdnn(*tomodel, "-iw", ir[1], "-o", d / "from_npz.pth", check=True)
    run_mmdnn(*tomodel, "-iw", d / "weights.pth", "-o", d / "model.pt", "--format", "torchscript", check=True)
    run_mmdnn(*tomodel, "-iw", ir[1], "-o", d / "model.pt2", "--format", "export", check=True)
    (d / "convert").mkdir()
    for fmt, name in [("pickle", "model.pkl"), ("torchscript", "scripted.pt")]:
        run_mmdnn("convert", "-sf", "mmdnn", "-in", ir[0], "-iw", ir[1], "-df", "pytorch",
                  "-om", d / "convert" / name, "--format", fmt, check=True)
    assert (d / "convert/model.py").exists() and (d / "convert/scripted.py").exists()
    run_in_subprocess(CHECK_FILES.format(d=str(d)))
    ref = mmdnn_outputs(run_mmdnn, d / "ir", 1, g.inputs, d / "ref")[0]
    for fmt in ["torchscript", "export", "pickle", "convert_torchscript"]:
        compare(np.load(d / f"{fmt}.npy"), ref, fmt)
    # mmdnn verify runs TorchScript files through its PyTorch runner.
    run_mmdnn("verify", "--reference", ir[0], "--candidate", d / "model.pt", "--random-input", check=True)


def test_missing_torch_is_reported_with_the_install_command(tmp_path, run_mmdnn):
    g = small_graph()
    g.save(tmp_path / "ir")
    fake = tmp_path / "python-without-torch"
    # The real interpreter without site-packages: torch cannot be imported.
    fake.write_text(f"#!/bin/sh\nexec {os.path.realpath(sys.executable)} -S \"$@\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "model.pt"
    proc = run_mmdnn("convert", "-sf", "mmdnn", "-in", tmp_path / "ir.pb", "-iw", tmp_path / "ir.npz",
                     "-df", "pytorch", "-om", out, "--format", "torchscript", "--python", fake)
    assert proc.returncode == 1, proc.stderr
    assert f"{fake} -m pip install torch" in proc.stderr, proc.stderr
    assert not out.exists() and not (tmp_path / "model.py").exists(), "a failed conversion wrote files"
    # The state dict needs no Python at all.
    run_mmdnn("convert", "-sf", "mmdnn", "-in", tmp_path / "ir.pb", "-iw", tmp_path / "ir.npz",
              "-df", "pytorch", "-om", tmp_path / "model.pth", "--python", fake, check=True)
    assert (tmp_path / "model.py").exists()


def test_streaming_keeps_memory_below_the_model_size(tmp_path, run_in_subprocess, mmdnn_bin):
    """`convert -sf keras -df pytorch` reads and writes one tensor at a time: converting a model
    with 201 MB of weights never holds more than a fraction of them in its own memory.

    Weights are read from memory-mapped files, whose pages count as (reclaimable) file-backed
    resident memory; the process's anonymous memory (RssAnon, sampled from /proc) is what a
    whole-model copy would show in."""
    code = f"""
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
inp = keras.Input((4096,))
x = inp
for i in range(3):
    x = keras.layers.Dense(4096, name=f"dense_{{i}}")(x)
keras.Model(inp, x).save({str(tmp_path / "big.keras")!r})
"""
    run_in_subprocess(code)
    measure = f"""
import subprocess, time
proc = subprocess.Popen([{str(mmdnn_bin)!r}, "convert", "-sf", "keras", "-iw", {str(tmp_path / "big.keras")!r},
                         "-df", "pytorch", "-om", {str(tmp_path / "big.pth")!r}],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
peak = 0
while proc.poll() is None:
    try:
        with open(f"/proc/{{proc.pid}}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    peak = max(peak, int(line.split()[1]))
    except (FileNotFoundError, ProcessLookupError):
        break
    time.sleep(0.002)
assert proc.wait() == 0, proc.stderr.read()
print(peak)
"""
    peak_kb = int(run_in_subprocess(measure).stdout.split()[-1])
    weights_mb = 3 * (4096 * 4096 + 4096) * 4 / 1e6
    print(f"peak anonymous memory {peak_kb / 1e3:.1f} MB for {weights_mb:.0f} MB of weights")
    assert (tmp_path / "big.pth").stat().st_size > weights_mb * 1e6
    assert peak_kb / 1e3 < 0.25 * weights_mb
