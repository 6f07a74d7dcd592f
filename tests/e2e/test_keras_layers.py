"""Keras frontend, layer by layer: one hand-built model per layer family (Keras 3, saved as
.keras and .h5) and Keras 2 models written by tf_keras (TFOpLambda, nested models, RNNs), each
compared with Keras on the same inputs (see keras_models.py)."""

import pytest

import keras_models


def _check(kind, name, tmp_path, run_in_subprocess, run_mmdnn):
    run_in_subprocess(
        f"import keras_models; keras_models.save_case({kind!r}, {name!r}, {str(tmp_path)!r})"
    )
    problems, stats = keras_models.compare(run_mmdnn, tmp_path)
    assert not problems, "\n".join(problems)
    assert set(stats) == {"model.keras", "model.h5"}, stats


@pytest.mark.parametrize("name", sorted(keras_models.FAMILIES))
def test_keras3_family(name, tmp_path, run_in_subprocess, run_mmdnn):
    _check("layers", name, tmp_path, run_in_subprocess, run_mmdnn)


@pytest.mark.parametrize("name", sorted(keras_models.LEGACY))
def test_keras2_model(name, tmp_path, run_in_subprocess, run_mmdnn):
    _check("legacy", name, tmp_path, run_in_subprocess, run_mmdnn)
