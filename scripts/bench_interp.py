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


def main(mmdnn, runs):
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
        out = os.path.join(tmp, "out")
        proc = subprocess.run(
            ["/usr/bin/time", "-v", mmdnn, "run", "-n", ir + ".pb", "--input", f"{name}=" + os.path.join(tmp, "x.npy"),
             "-o", out, "--repeat", str(runs)],
            check=True, capture_output=True, text=True)
        median = float(re.search(r"median ([0-9.]+) s", proc.stderr).group(1))
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
        got = np.load(os.path.join(out, os.listdir(out)[0]))
        err = float(np.max(np.abs(got - ref)))
        weights_mb = os.path.getsize(ir + ".npz") / 2**20

    print(f"onnxruntime {ort.__version__}: median {ort_median:.4f} s over {runs} runs")
    print(f"mmdnn interpreter:      median {median:.4f} s over {runs} runs")
    print(f"ratio mmdnn / onnxruntime: {median / ort_median:.2f} (target ≤ 3)")
    print(f"mmdnn run peak RSS: {rss_kb / 1024:.0f} MB (weights {weights_mb:.0f} MB)")
    print(f"max |mmdnn − onnxruntime| on the logits: {err:.2e} (scale {np.max(np.abs(ref)):.2e})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
