"""Driver of scripts/bench-interp: ResNet-50 in onnxruntime vs mmdnn's interpreter."""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
import onnx_models  # noqa: E402


def main(mmdnn, runs, baseline=None):
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "resnet50.onnx")
        onnx_models.resnet50(model, seed=0)
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        np.save(os.path.join(tmp, "x.npy"), x)

        sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        ref = sess.run(None, {name: x})[0]
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            sess.run(None, {name: x})
            times.append(time.perf_counter() - t)
        ort_median = statistics.median(times)

        ir = os.path.join(tmp, "ir")
        subprocess.run([mmdnn, "toir", "-f", "onnx", "-n", model, "-o", ir], check=True,
                       capture_output=True)
        x_path = os.path.join(tmp, "x.npy")
        results = {}
        # This build and the baseline alternate, so both see the same machine.
        builds = [("mmdnn interpreter", mmdnn)] + ([("baseline", baseline)] if baseline else [])
        for _ in range(2 if baseline else 1):
            for label, binary in builds:
                results.setdefault(label, []).append(run_interp(binary, ir, name, x_path, tmp, runs))
        got = results["mmdnn interpreter"][0][2]
        err = float(np.max(np.abs(got - ref)))
        weights_mb = os.path.getsize(ir + ".npz") / 2**20

    print(f"onnxruntime {ort.__version__}: median {ort_median:.4f} s over {runs} runs")
    for label, rows in results.items():
        median = statistics.median(r[0] for r in rows)
        rss_kb = max(r[1] for r in rows)
        print(f"{label + ':':24s}median {median:.4f} s over {runs} runs × {len(rows)}; "
              f"ratio to onnxruntime {median / ort_median:.2f} (target ≤ 3); "
              f"peak RSS {rss_kb / 1024:.0f} MB (weights {weights_mb:.0f} MB)")
    if baseline:
        this = statistics.median(r[0] for r in results["mmdnn interpreter"])
        base = statistics.median(r[0] for r in results["baseline"])
        print(f"this build / baseline: {this / base:.3f}")
    print(f"max |mmdnn − onnxruntime| on the logits: {err:.2e} (scale {np.max(np.abs(ref)):.2e})")


def run_interp(mmdnn, ir, name, x_path, tmp, runs):
    """Median time (s) of `runs` forward passes, peak RSS (kB) and the output of one binary."""
    out = tempfile.mkdtemp(dir=tmp)
    proc = subprocess.run(
        ["/usr/bin/time", "-v", mmdnn, "run", "-n", ir + ".pb", "--input", f"{name}={x_path}",
         "-o", out, "--repeat", str(runs)],
        check=True, capture_output=True, text=True)
    median = float(re.search(r"median ([0-9.]+) s", proc.stderr).group(1))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    got = np.load(os.path.join(out, sorted(f for f in os.listdir(out) if f.endswith(".npy"))[0]))
    return median, rss_kb, got

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
