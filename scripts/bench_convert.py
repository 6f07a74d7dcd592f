"""Driver of scripts/bench-convert: VGG16 .h5 → IR / PyTorch / ONNX, timed against `cp`."""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mmdnn", "bench")
MODEL = os.path.join(CACHE, "vgg16.h5")
MB = 2**20


def build_model():
    """VGG16 with random weights (seed 0) saved by Keras as a full-model .h5, cached."""
    if os.path.exists(MODEL):
        return
    os.makedirs(CACHE, exist_ok=True)
    code = (
        "import keras; keras.utils.set_random_seed(0); "
        f"keras.applications.VGG16(weights=None).save({MODEL + '.tmp.h5'!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    os.replace(MODEL + ".tmp.h5", MODEL)


def largest_tensor_bytes():
    """Bytes of the largest dataset in the file (fc1's kernel for VGG16)."""
    import h5py

    sizes = []
    with h5py.File(MODEL, "r") as f:
        f.visititems(lambda _, obj: sizes.append(obj.nbytes) if isinstance(obj, h5py.Dataset) else None)
    return max(sizes)


def timed(cmd, out_dir):
    """Wall time (s), peak RSS (bytes) and CPU time (user + system, s) of one run of `cmd` in an
    empty `out_dir`."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    # Every contender starts with no dirty pages: the previous runs' writeback (and the removal
    # of their outputs) is finished before the clock starts, instead of landing on whoever runs
    # when the kernel's dirty limit is reached.
    os.sync()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=out_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    h, m, s = wall.groups()
    seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) * 1024
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", proc.stderr).group(1))
              for kind in ("User", "System"))
    return seconds, rss, cpu


def ready_targets(mmdnn):
    """The targets this build can write (an unwritable target fails before reading the source)."""
    ready = []
    for target in ("pytorch", "onnx"):
        probe = subprocess.run([mmdnn, "convert", "-sf", "keras", "-iw", "/nonexistent.h5", "-df", target,
                                "-om", "/nonexistent/out"], capture_output=True, text=True)
        if "not implemented" not in probe.stderr:
            ready.append(target)
    return ready


def main(mmdnn, runs, baseline=None):
    build_model()
    size = os.path.getsize(MODEL)
    largest = largest_tensor_bytes()
    with open(MODEL, "rb") as f:  # the source in the page cache for every contender alike
        while f.read(64 * MB):
            pass
    jobs = [("cp", ["cp", MODEL, "copy.h5"], None),
            ("toir", [mmdnn, "toir", "-f", "keras", "-iw", MODEL, "-o", "ir"], 1.5)]
    for target in ready_targets(mmdnn):
        ext = {"pytorch": "pth", "onnx": "onnx"}[target]
        jobs.append((f"convert -df {target}",
                     [mmdnn, "convert", "-sf", "keras", "-iw", MODEL, "-df", target, "-om", f"model.{ext}"], 2.0))
    if baseline:
        # Another build (e.g. the commit before a change), interleaved with this one: its rows
        # are for comparison and have no targets of their own.
        jobs.append(("toir (baseline)", [baseline, "toir", "-f", "keras", "-iw", MODEL, "-o", "ir"], None))
        for target in ready_targets(baseline):
            ext = {"pytorch": "pth", "onnx": "onnx"}[target]
            jobs.append((f"convert -df {target} (baseline)",
                         [baseline, "convert", "-sf", "keras", "-iw", MODEL, "-df", target, "-om",
                          f"model.{ext}"], None))
    results = {name: [] for name, _, _ in jobs}
    with tempfile.TemporaryDirectory(dir=os.path.dirname(MODEL)) as tmp:
        out = os.path.join(tmp, "out")
        for _ in range(runs):  # interleaved, so a burst of load hits every contender
            for name, cmd, _ in jobs:
                results[name].append(timed(cmd, out))
    cp = statistics.median(t for t, _, _ in results["cp"])
    cp_cpu = statistics.median(c for _, _, c in results["cp"])
    print(f"VGG16 .h5: {size / MB:.0f} MB, largest tensor {largest / MB:.0f} MB; median of {runs} runs "
          "(CPU = user + system time, for reference)")
    print(f"{'step':<31} {'time s':>8} {'× cp':>7} {'target':>7} {'peak RSS MB':>12} {'RSS target':>11}"
          f" {'CPU s':>7} {'CPU × cp':>9}")
    failed = False
    for name, _, target in jobs:
        t = statistics.median(t for t, _, _ in results[name])
        cpu = statistics.median(c for _, _, c in results[name])
        rss = max(r for _, r, _ in results[name])
        rss_target = largest + 100 * MB
        ok = target is None or (t / cp <= target and rss <= rss_target)
        failed |= not ok
        print(f"{name:<31} {t:8.3f} {t / cp:7.2f} {'' if target is None else f'≤ {target}':>7} "
              f"{rss / MB:12.0f} {'' if target is None else f'≤ {rss_target / MB:.0f}':>11}"
              f" {cpu:7.2f} {cpu / cp_cpu if cp_cpu else float('nan'):9.2f}{'' if ok else '  MISSED'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
