"""Keras frontend on keras.applications (and tf_keras's RegNets) with random weights at their
smallest input size: Keras's logits vs `mmdnn run` on the .keras and .h5 files.

CI runs CI_APPS (every layer family the zoo uses); `scripts/test --full` (MMDNN_FULL=1) also
runs every other model, in test_application_zoo."""

import pytest

import keras_models


def _check(name, tmp_path, run_in_subprocess, run_mmdnn):
    out = tmp_path / name
    run_in_subprocess(f"import keras_models; keras_models.save_case('app', {name!r}, {str(out)!r})")
    problems, stats = keras_models.compare(run_mmdnn, out)
    for f in out.glob("model.*"):
        f.unlink()  # the largest models are hundreds of MB
    return problems, stats


@pytest.mark.parametrize("name", keras_models.CI_APPS)
def test_application(name, tmp_path, run_in_subprocess, run_mmdnn):
    problems, stats = _check(name, tmp_path, run_in_subprocess, run_mmdnn)
    print(f"{name}: max |Δ| and seconds per file: {stats}")
    assert not problems, "\n".join(problems)
    assert set(stats) == {"model.keras", "model.h5"}, stats


@pytest.mark.full
@pytest.mark.parametrize("name", [n for n in keras_models.APPS if n not in keras_models.CI_APPS])
def test_application_zoo(name, tmp_path, run_in_subprocess, run_mmdnn):
    """Every other application; only with MMDNN_FULL=1 (scripts/test --full)."""
    test_application(name, tmp_path, run_in_subprocess, run_mmdnn)
