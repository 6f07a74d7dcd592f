"""Shared fixtures for the end-to-end tests of the `mmdnn` binary.

Run through scripts/test, which sets MMDNN_BIN and puts the venv first on PATH.
A missing binary is an error, never a skip. Framework code (torch, TF, ...)
runs in a fresh interpreter per call (`run_in_subprocess`), so frameworks with
clashing native libraries never share a process.

Fixtures:
  repo_root          Path of the checkout
  mmdnn_bin          Path of the binary under test (MMDNN_BIN, else
                     <repo>/target/release/mmdnn)
  mmdnn_full         True when the long suites run (MMDNN_FULL=1)
  run_mmdnn          run_mmdnn(*args, cwd=None, check=False) -> CompletedProcess
  run_in_subprocess  run_in_subprocess(code, cwd=None, check=True, env=None)
                     -> CompletedProcess; `import mmdnn_ir_schema` works there
  tmp_path           pytest's own per-test temporary directory; removed as soon as its test
                     passes (models of hundreds of MB per test would otherwise fill the disk)

Marker `full`: a long suite, deselected unless MMDNN_FULL=1 (scripts/test --full).
Helper `layout_problems(run_mmdnn, ir, work)`: the layout property on one model's IR.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent

# Helpers next to this file (mmdnn_ir_schema, ...) are importable from tests.
if str(E2E_DIR) not in sys.path:
    sys.path.insert(0, str(E2E_DIR))

# Generous per-call limits so a hung process fails the test instead of CI.
MMDNN_TIMEOUT = 600
SUBPROCESS_TIMEOUT = 1200


def _describe(proc, what):
    return (
        f"{what} exited with {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def _find_mmdnn_bin():
    path = Path(os.environ.get("MMDNN_BIN") or REPO_ROOT / "target/release/mmdnn")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"mmdnn binary not found or not executable: {path}\n"
            "Build it with `cargo build --release` or set MMDNN_BIN "
            "(scripts/test does both).",
            pytrace=False,
        )
    return path.resolve()


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def mmdnn_bin():
    return _find_mmdnn_bin()


def _full():
    return os.environ.get("MMDNN_FULL", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def mmdnn_full():
    """True when the long suites run (MMDNN_FULL=1)."""
    return _full()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "full: a long suite, run only with MMDNN_FULL=1 (scripts/test --full)"
    )


def pytest_collection_modifyitems(config, items):
    """Without MMDNN_FULL=1, tests marked `full` are deselected: reported as deselected, never
    counted as passed or skipped."""
    if _full():
        return
    kept = [item for item in items if item.get_closest_marker("full") is None]
    dropped = [item for item in items if item.get_closest_marker("full") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item, for `_drop_tmp_path_of_passed_tests`."""
    report = yield
    setattr(item, f"_report_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _drop_tmp_path_of_passed_tests(request):
    """A passed test's `tmp_path` is deleted at its teardown; a failed test's stays for
    inspection. Without this the suite keeps every converted model until the session ends."""
    if "tmp_path" not in request.fixturenames:
        yield
        return
    path = request.getfixturevalue("tmp_path")
    yield
    report = getattr(request.node, "_report_call", None)
    if report is not None and report.passed:
        shutil.rmtree(path, ignore_errors=True)


def layout_problems(run_mmdnn, ir, work):
    """The layout property on one model's IR (`ir` is the .pb): interp(g) equals
    interp(layout(g)) for both target layouts, inputs and outputs kept in their layout
    (`--keep-io`), on the same random inputs, within max|Δ| ≤ 1e-5 · max(1, max|ref|) per output
    (a tenth of the project's float32 bound: the rewritten graph sums in another order, so
    it is not bit-exact). Returns a list of problems."""
    import numpy as np

    work = Path(work)

    def outputs(pb, name):
        dest = work / name
        proc = run_mmdnn("run", "-n", pb, "--random-input", "--seed", "3", "-o", dest)
        if proc.returncode != 0:
            return None, f"mmdnn run {pb} failed:\n{proc.stderr}"
        files = [line.split("-> ")[-1] for line in proc.stdout.splitlines() if "-> " in line]
        return [np.load(f) for f in files], None

    ref, err = outputs(ir, "layout_ref")
    if err:
        return [err]
    problems = []
    for target in ("channels_first", "channels_last"):
        out = work / f"layout_{target}"
        proc = run_mmdnn("layout", "-n", ir, "--to", target, "--keep-io", "-o", out)
        if proc.returncode != 0:
            problems.append(f"layout --to {target} failed:\n{proc.stderr}")
            continue
        got, err = outputs(f"{out}.pb", f"layout_{target}_out")
        if err:
            problems.append(err)
            continue
        if len(got) != len(ref):
            problems.append(f"layout --to {target}: {len(got)} outputs, expected {len(ref)}")
            continue
        for i, (g, r) in enumerate(zip(got, ref)):
            if g.shape != r.shape:
                problems.append(f"layout --to {target}: output {i} has shape {g.shape}, expected {r.shape}")
                continue
            if r.dtype.kind in "iub":
                if not np.array_equal(g, r):
                    problems.append(f"layout --to {target}: output {i} differs")
                continue
            r64 = r.astype(np.float64)
            scale = max(1.0, float(np.abs(r64).max())) if r.size else 1.0
            worst = float(np.abs(g.astype(np.float64) - r64).max()) if r.size else 0.0
            if not worst <= 1e-5 * scale:
                problems.append(f"layout --to {target}: output {i} max|Δ| {worst:.3g} > 1e-5 × {scale:.3g}")
    return problems


@pytest.fixture(scope="session")
def run_mmdnn(mmdnn_bin):
    def run(*args, cwd=None, check=False, timeout=MMDNN_TIMEOUT):
        cmd = [str(mmdnn_bin), *map(str, args)]
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            pytest.fail(_describe(proc, " ".join(cmd)), pytrace=False)
        return proc

    return run


def _subprocess_env(extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(E2E_DIR), env.get("PYTHONPATH")) if p
    )
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="session")
def run_in_subprocess():
    def run(code, cwd=None, check=True, env=None, timeout=SUBPROCESS_TIMEOUT):
        code = textwrap.dedent(code)
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=cwd,
            env=_subprocess_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                _describe(proc, "python subprocess") + f"\n--- code ---\n{code}",
                pytrace=False,
            )
        return proc

    return run
