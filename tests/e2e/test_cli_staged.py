"""MMdnn's staged commands to ONNX, as its users script them: `mmtocode -f onnx -dw w.npy`, then
`mmtomodel -f onnx -iw w.npy` runs the generated script with the real onnx package; the model
computes what the IR computes."""
import os
import subprocess
import sys

from test_onnx_writer import ort_results, run_ort
from test_pytorch_formats import small_graph
from test_pytorch_ops import compare, mmdnn_outputs


def test_mmdnn_staged_onnx_flow(tmp_path, mmdnn_bin, run_mmdnn, run_in_subprocess):
    g = small_graph()
    prefix = tmp_path / "ir"
    g.save(prefix)

    def mm(name, *args):
        link = tmp_path / name
        if not link.exists():
            os.symlink(mmdnn_bin, link)
        proc = subprocess.run([str(link), *map(str, args)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"

    # MMdnn's names: the IR weights as <prefix>.npy, the converted ones as w.npy.
    mm("mmtocode", "-f", "onnx", "-in", f"{prefix}.pb", "-iw", f"{prefix}.npy",
       "-o", tmp_path / "model.py", "-dw", tmp_path / "w.npy")
    assert (tmp_path / "w.npz").is_file()
    mm("mmtomodel", "-f", "onnx", "-in", tmp_path / "model.py", "-iw", tmp_path / "w.npy",
       "-o", tmp_path / "model.onnx", "--python", sys.executable)
    ref = mmdnn_outputs(run_mmdnn, prefix, 1, g.inputs, tmp_path / "ref")
    out = tmp_path / "ort"
    out.mkdir()
    run_ort(run_in_subprocess, [{"model": str(tmp_path / "model.onnx"), "out": str(out),
                                 "feeds": [(g.inputs[0], f"{prefix}.in0.npy")]}])
    for got, want in zip(ort_results(out, ref), ref):
        compare(got, want, "staged onnx")
