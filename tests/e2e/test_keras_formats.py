"""Keras frontend, file handling: MMdnn's -n model.json -w weights.h5 pair, weights-only files,
models that cannot be converted (Python Lambda, unknown classes) and `toir` output."""

import json

import numpy as np

import keras_models


def test_json_and_weights_pair_keras3(tmp_path, run_in_subprocess, run_mmdnn):
    run_in_subprocess(
        f"import keras_models; keras_models.save_json_pair('keras', {str(tmp_path)!r})"
    )
    problems, _ = keras_models.compare(run_mmdnn, tmp_path, pair=("model.json", "model.weights.h5"))
    assert not problems, "\n".join(problems)


def test_json_and_weights_pair_keras2(tmp_path, run_in_subprocess, run_mmdnn):
    run_in_subprocess(
        f"import keras_models; keras_models.save_json_pair('tf_keras', {str(tmp_path)!r})"
    )
    problems, _ = keras_models.compare(run_mmdnn, tmp_path, pair=("model.json", "weights.h5"))
    assert not problems, "\n".join(problems)


def test_weights_only_file_says_what_to_pass(tmp_path, run_in_subprocess, run_mmdnn):
    run_in_subprocess(
        f"import keras_models; keras_models.save_json_pair('tf_keras', {str(tmp_path)!r})"
    )
    proc = run_mmdnn("toir", "-f", "keras", "-w", tmp_path / "weights.h5", "-o", tmp_path / "ir")
    assert proc.returncode == 1, proc.stderr
    assert "only weights" in proc.stderr and "model.json" in proc.stderr, proc.stderr
    assert not list(tmp_path.glob("ir*"))


UNCONVERTIBLE = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras

@keras.saving.register_keras_serializable(package="test")
class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2.0

x = keras.Input((4,), name="x")
y = keras.layers.Dense(3, name="dense")(x)
y = keras.layers.Lambda(lambda t: t + 1.0, name="python_lambda")(y)
y = Doubler(name="my_doubler")(y)
keras.Model(x, y).save({path!r})
"""


def test_python_lambda_and_unknown_layers_fail_listing_all(tmp_path, run_in_subprocess, run_mmdnn):
    model = tmp_path / "model.keras"
    run_in_subprocess(UNCONVERTIBLE.format(path=str(model)))
    proc = run_mmdnn("toir", "-f", "keras", "-n", model, "-o", tmp_path / "ir")
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "'python_lambda' (Lambda" in err and "'my_doubler' (Doubler)" in err, err
    assert "2 layer(s)" in err, err
    assert not list(tmp_path.glob("ir*")), "a failed conversion wrote files"


def test_toir_writes_the_converted_weights(tmp_path, run_in_subprocess, run_mmdnn):
    run_in_subprocess(
        f"import keras_models; keras_models.save_case('legacy', 'structure', {str(tmp_path)!r})"
    )
    proc = run_mmdnn("toir", "-f", "keras", "-n", tmp_path / "model.h5", "-o", tmp_path / "ir")
    assert proc.returncode == 0, proc.stderr
    weights = np.load(tmp_path / "ir.npz")
    keys = set(weights.files)
    # Bidirectional LSTM kernels arrive in the IR layout [D, 4H, F].
    lstm = [k for k in keys if k.endswith("/W") and weights[k].shape[0] == 2]
    assert lstm and weights[lstm[0]].shape == (2, 12, 4), sorted(keys)
    graph = json.loads((tmp_path / "ir.json").read_text())
    assert graph, "empty IR json"
