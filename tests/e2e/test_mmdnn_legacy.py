"""An IR written by MMdnn 0.3.1's own `mmtoir` from a Keras model runs in `mmdnn run` and matches
Keras's output.

The fixtures in tests/fixtures/mmdnn/ were made by MMdnn 0.3.1 with Keras 2.2.4 / TensorFlow 1.15
under Python 3.6 (scripts beside them): keras_zoo.pb and the pickled keras_zoo.npy are mmtoir's
output, keras_zoo_io.npz holds the inputs and Keras's own predictions.
"""
import numpy as np

TOLERANCE = 1e-4  # max |Δ| ≤ 1e-4 · max(1, |ref|), elementwise


def test_mmdnn_ir_matches_keras(tmp_path, run_mmdnn, repo_root):
    fx = repo_root / "tests/fixtures/mmdnn"
    io = np.load(fx / "keras_zoo_io.npz")
    args = []
    for key in io.files:
        if key.startswith("in/"):
            name = key[3:]
            np.save(tmp_path / f"{name}.npy", io[key])
            args += ["--input", f"{name}={tmp_path / (name + '.npy')}"]
    out = tmp_path / "out"
    run_mmdnn("run", "-n", fx / "keras_zoo.pb", "-w", fx / "keras_zoo.npy", *args, "-o", out,
              "--intermediate", check=True)
    compared = 0
    for key in io.files:
        if not key.startswith("out/"):
            continue
        ref = io[key]
        got = np.load(out / "nodes" / f"{key[4:]}.0.npy")
        assert got.shape == ref.shape, key
        bound = TOLERANCE * np.maximum(1.0, np.abs(ref))
        assert np.all(np.abs(got - ref) <= bound), (key, float(np.max(np.abs(got - ref))))
        compared += 1
    assert compared == 11
    final = np.load(out / "fc_activation.npy")
    np.testing.assert_array_equal(final.argmax(-1), io["out/fc_activation"].argmax(-1))


def test_layout_pass_keeps_the_keras_ir_exact(tmp_path, run_mmdnn, repo_root):
    """interp(g) equals interp(layout(g)) on this e2e model, in both directions (within 1e-5)."""
    fx = repo_root / "tests/fixtures/mmdnn"
    ir = tmp_path / "zoo"
    run_mmdnn("toir", "-f", "mmdnn", "-n", fx / "keras_zoo.pb", "-w", fx / "keras_zoo.npy",
              "-o", ir, check=True)
    cf, back = tmp_path / "zoo_cf", tmp_path / "zoo_back"
    run_mmdnn("layout", "-n", f"{ir}.pb", "--to", "channels_first", "--keep-io", "-o", cf,
              check=True)
    run_mmdnn("layout", "-n", f"{cf}.pb", "--to", "channels_last", "--keep-io", "-o", back,
              check=True)
    for candidate in (cf, back):
        proc = run_mmdnn("verify", "--reference", f"{ir}.pb", "--candidate", f"{candidate}.pb",
                         "--random-input", "--seed", "2", "--atol", "1e-5", "--rtol", "1e-5")
        assert proc.returncode == 0, proc.stdout + proc.stderr
