"""Helper of scripts/bench-onnx-scale: see there. Usage: bench_onnx_scale.py MMDNN [WORKDIR]."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

DIM = 8192  # each weight: DIM×DIM float32 = 256 MB
LAYERS = 12  # ≈ 3 GB in all
TOL = 1e-4
RSS_TARGET_MB = 400


def build(path):
    """Writes the model and its external data file tensor by tensor (never all in memory)."""
    data_name = os.path.basename(path) + ".data"
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    x = "x"
    with open(path + ".data", "wb") as data:
        for i in range(LAYERS):
            w = rng.standard_normal((DIM, DIM), dtype=np.float32)
            w *= np.float32(1.0 / np.sqrt(DIM))
            offset = data.tell()
            data.write(w.tobytes())
            t = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[DIM, DIM])
            t.data_location = TensorProto.EXTERNAL
            for k, v in (("location", data_name), ("offset", offset), ("length", w.nbytes)):
                t.external_data.add(key=k, value=str(v))
            inits.append(t)
            del w
            b = helper.make_tensor(f"b{i}", TensorProto.FLOAT, [DIM],
                                   (rng.standard_normal(DIM) * 0.1).astype(np.float32).tobytes(),
                                   raw=True)
            inits.append(b)
            if i % 2 == 0:
                nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]))
                nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]))
            else:
                nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"a{i}"]))
            nodes.append(helper.make_node("Tanh", [f"a{i}"], [f"y{i}"]))
            x = f"y{i}"
    graph = helper.make_graph(
        nodes, "scale", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, DIM])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, DIM])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def timed(cmd):
    """Runs cmd under /usr/bin/time -v; returns (seconds, peak RSS in MB as time reports it,
    peak VmRSS in MB sampled every 10 ms, stdout). The kernel updates the high-water mark that
    time reports lazily, so pages released soon after use can escape it; the sampled peak is
    the cross-check. Starts after a sync, so no run pays for an earlier one's writeback."""
    os.sync()
    t0 = time.time()
    proc = subprocess.Popen(["/usr/bin/time", "-v", *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sampled = 0
    child = None
    while proc.poll() is None:
        try:
            if child is None:
                with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                    child = f.read().split()[0]
            with open(f"/proc/{child}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        sampled = max(sampled, int(line.split()[1]))
        except (OSError, IndexError, TypeError):
            child = None
        time.sleep(0.01)
    stdout, stderr = proc.communicate()
    secs = time.time() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stdout}\n{stderr}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1))
    return secs, rss_kb / 1024, sampled / 1024, stdout


def run(path, x):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def main():
    mmdnn = sys.argv[1]
    work = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="mmdnn-onnx-scale-")
    own = len(sys.argv) <= 2
    os.makedirs(work, exist_ok=True)
    try:
        src, out = os.path.join(work, "big.onnx"), os.path.join(work, "big.mmdnn.onnx")
        t0 = time.time()
        build(src)
        size = os.path.getsize(src + ".data")
        print(f"built {src} (+ {size / 2**30:.2f} GiB external data) in {time.time() - t0:.0f} s")
        cp_secs, cp_rss, _, _ = timed(["cp", src + ".data", os.path.join(work, "copy.data")])
        os.remove(os.path.join(work, "copy.data"))
        secs, rss, sampled, stdout = timed([mmdnn, "convert", "-sf", "onnx", "-iw", src, "-df", "onnx",
                                   "-om", out])
        print(stdout.strip())
        m = onnx.load(out, load_external_data=False)
        external = [t.name for t in m.graph.initializer
                    if t.data_location == TensorProto.EXTERNAL]
        assert len(external) >= LAYERS, f"only {len(external)} external tensors"
        assert os.path.getsize(out) < 10 * 2**20, "the .onnx itself should hold no weights"
        x = np.random.default_rng(1).standard_normal((1, DIM)).astype(np.float32)
        ref = run(src, x)
        got = run(out, x)
        err = float(np.abs(got.astype(np.float64) - ref).max())
        ok = bool((np.abs(got - ref) <= TOL * np.maximum(1.0, np.abs(ref))).all())
        print(f"outputs: max|Δ| {err:.3g} vs the source in onnxruntime "
              f"({'ok' if ok else 'OUT OF TOLERANCE'}: ≤ 1e-4·max(1,|ref|))")
        print(f"external tensors: {len(external)}; data file "
              f"{os.path.getsize(out + '.data') / 2**30:.2f} GiB")
        peak = max(rss, sampled)
        print(f"mmdnn convert: {secs:.1f} s, peak RSS {rss:.0f} MB (time -v), "
              f"{sampled:.0f} MB (sampled VmRSS) "
              f"(target ≤ {RSS_TARGET_MB} MB: {'ok' if peak <= RSS_TARGET_MB else 'OVER'})")
        print(f"cp of the weights: {cp_secs:.1f} s, peak RSS {cp_rss:.0f} MB; "
              f"convert / cp time: {secs / cp_secs:.2f}")
        if not ok or peak > RSS_TARGET_MB:
            sys.exit(1)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
