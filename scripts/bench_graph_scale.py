"""Helper of scripts/bench-graph-scale: see there. Usage: bench_graph_scale.py MMDNN NODES [BASELINE]."""

import os
import re
import subprocess
import sys
import tempfile
import time

import onnx
from onnx import TensorProto, helper


def build(path, nodes):
    """A chain of `nodes` alternating Relu and Neg on x [1, 4]."""
    chain, prev = [], "x"
    for i in range(nodes):
        out = f"v{i}"
        chain.append(helper.make_node("Relu" if i % 2 == 0 else "Neg", [prev], [out], name=f"n{i}"))
        prev = out
    graph = helper.make_graph(
        chain, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, path)


def timed(cmd):
    """(seconds, peak RSS in MB) of cmd under /usr/bin/time -v; fails loudly if cmd fails."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return seconds, rss_kb / 1024


PEERS = {
    "onnx.checker.check_model": "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]))",
    "onnxruntime session": "import onnxruntime as ort, sys; ort.InferenceSession(sys.argv[1], "
                           "providers=['CPUExecutionProvider'])",
}


def main(mmdnn, nodes, baseline=None):
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "chain.onnx")
        build(model, nodes)
        print(f"{nodes:,} nodes, {os.path.getsize(model) / 2**20:.0f} MB ONNX")
        print(f"{'step':40s} {'time s':>8s} {'peak RSS MB':>12s} {'bytes/node':>11s}")
        builds = [("", mmdnn)] + ([(" (baseline)", baseline)] if baseline else [])
        for suffix, binary in builds:
            for step, cmd in (
                ("convert -df onnx", [binary, "convert", "-sf", "onnx", "-iw", model, "-df", "onnx",
                                      "-om", os.path.join(tmp, "out.onnx"), "-q"]),
                ("toir", [binary, "toir", "-f", "onnx", "-n", model, "-o",
                          os.path.join(tmp, "ir"), "-q"]),
            ):
                s, mb = timed(cmd)
                print(f"{'mmdnn ' + step + suffix:40s} {s:8.1f} {mb:12.0f} {mb * 2**20 / nodes:11.0f}")
        for name, code in PEERS.items():
            s, mb = timed([sys.executable, "-c", code, model])
            print(f"{name:40s} {s:8.1f} {mb:12.0f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
