"""The wheel (scripts/wheel, package mmdnn-rs), installed with pip into a fresh venv: it puts
`mmdnn` and MMdnn's five command names on the venv's PATH, each running its command, and its
`mmconvert` converts the quick start's Keras example (examples/keras/small_cnn.keras) to PyTorch
and ONNX. The results are checked in this suite's venv: the state dict loads with
`torch.load(weights_only=True)` into the generated module (through README's own Python snippet),
the ONNX file passes `onnx.checker`, and both compute what Keras computes.

The wheel is built before the suite by scripts/test (`MMDNN_WHEEL=$(scripts/wheel)`), not here:
while maturin packs, it moves target/release/mmdnn away, which would break the tests running it
in parallel. To run this file alone:

    MMDNN_WHEEL=$(scripts/wheel) $VENV/bin/python -m pytest tests/e2e/test_wheel.py
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = {"mmconvert": "convert", "mmtoir": "toir", "mmtocode": "tocode",
            "mmtomodel": "tomodel", "mmdownload": "download"}

KERAS_REFERENCE = r"""
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras
import numpy as np

x = np.random.default_rng(7).random((2, 32, 32, 3), dtype=np.float32)
model = keras.saving.load_model({model!r})
np.save("x.npy", x)
np.save("ref.npy", np.asarray(model.predict(x, verbose=0)))
"""

# Appended to README's Python snippet, which loads the converted `model`.
TORCH_CHECK = r"""
import numpy as np
import torch

x = torch.from_numpy(np.load("x.npy"))  # the source's [N, 32, 32, 3]: the interface is kept
with torch.no_grad():
    np.save("torch.npy", model(x).numpy())
"""

ONNX_CHECK = r"""
import numpy as np
import onnx
import onnxruntime

onnx.checker.check_model("small_cnn.onnx", full_check=True)
session = onnxruntime.InferenceSession("small_cnn.onnx", providers=["CPUExecutionProvider"])
assert [i.name for i in session.get_inputs()] == ["image"]
assert [o.name for o in session.get_outputs()] == ["scores"]
x = np.load("x.npy")  # the source's [N, 32, 32, 3]: the interface is kept
(out,) = session.run(None, {"image": x})
np.save("onnx.npy", out)
"""


def _wheel():
    path = os.environ.get("MMDNN_WHEEL")
    if not path or not Path(path).is_file():
        pytest.fail(
            f"MMDNN_WHEEL is {path!r}, not a wheel file. scripts/test builds the wheel before the "
            "suite; alone, run MMDNN_WHEEL=$(scripts/wheel) pytest tests/e2e/test_wheel.py",
            pytrace=False,
        )
    return Path(path)


def _readme_block(repo_root, marker):
    """The body of the fenced block after `marker` in README.md."""
    text = (repo_root / "README.md").read_text()
    assert marker in text, f"README.md has no {marker} block"
    lines = iter(text[text.index(marker) + len(marker):].splitlines())
    fence = next(line for line in lines if line.strip())
    assert fence.startswith("```"), f"{marker} is not followed by a fenced block"
    return "\n".join(line for line in iter(lines.__next__, "```"))


def _run(cmd, env, cwd=None):
    proc = subprocess.run([str(c) for c in cmd], check=False, env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited with {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )
    # A report (help, inspect) is on stdout, a conversion's summary on stderr.
    return proc.stdout + proc.stderr


def _close(got, ref, what):
    import numpy as np

    assert got.shape == ref.shape, f"{what}: shape {got.shape}, Keras {ref.shape}"
    worst = float(np.abs(got.astype(np.float64) - ref).max())
    bound = 1e-4 * max(1.0, float(np.abs(ref).max()))
    assert worst <= bound, f"{what}: max|Δ| {worst:.3g} > {bound:.3g} against Keras"


def test_wheel_installs_the_six_commands_and_converts_the_example(
    tmp_path, repo_root, run_in_subprocess
):
    import numpy as np

    wheel = _wheel()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], dict(os.environ))
    _run([sys.executable, "-m", "pip", "--python", venv / "bin/python", "install",
          "--no-index", "--no-deps", "--no-cache-dir", "--disable-pip-version-check", wheel],
         dict(os.environ))

    bin_dir = venv / "bin"
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    for name in ["mmdnn", *COMMANDS]:
        assert os.access(bin_dir / name, os.X_OK), f"the wheel installed no {name} in {bin_dir}"
    for alias, sub in COMMANDS.items():
        want = _run(["mmdnn", sub, "--help"], env).splitlines()[0]
        got = _run([alias, "--help"], env).splitlines()[0]
        assert got == want, f"{alias} --help starts {got!r}, not as `mmdnn {sub} --help`"

    work = tmp_path / "work"
    work.mkdir()
    example = repo_root / "examples/keras/small_cnn.keras"
    for dst, out in [("pytorch", "small_cnn.pt"), ("onnx", "small_cnn.onnx")]:
        printed = _run(["mmconvert", "-sf", "keras", "-iw", example, "-df", dst, "-om", out],
                       env, cwd=work)
        assert out in printed, f"mmconvert -df {dst} did not report {out}: {printed!r}"
        assert (work / out).stat().st_size > 0
    assert (work / "small_cnn.py").is_file()

    run_in_subprocess(KERAS_REFERENCE.format(model=str(example)), cwd=work)
    readme = _readme_block(repo_root, "<!-- quickstart-python -->")
    run_in_subprocess(readme + "\n" + TORCH_CHECK, cwd=work)
    run_in_subprocess(ONNX_CHECK, cwd=work)
    ref = np.load(work / "ref.npy").astype(np.float64)
    _close(np.load(work / "torch.npy"), ref, "PyTorch (state dict + generated code)")
    _close(np.load(work / "onnx.npy"), ref, "ONNX in onnxruntime")
