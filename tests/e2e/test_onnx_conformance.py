"""ONNX backend node tests: every case listed in tests/onnx_conformance/passing.txt must pass
the interpreter runner, every case of passing_roundtrip.txt the round-trip runner.

The cases are generated from the installed onnx package into a cache outside the checkout.
Interpreter runner: `mmdnn run` (reader → IR → interpreter). Round-trip runner: `mmdnn convert
-sf onnx -df onnx` (reader → IR → ONNX writer, opset 17), `onnx.checker.check_model(full_check=
True)` on the written model and onnxruntime on it. Both bind the graph inputs listed after
`const:` to constants; tolerances, the cache and the binding are described in
onnx_conformance.py (float32: |Δ| ≤ 1e-4·max(1, |ref|) elementwise; integers and bools exact).
A listed case that fails, or that the reader no longer supports, fails the test. To see every
case: `python tests/e2e/onnx_conformance.py run [--runner roundtrip] --all`.
"""

import sys

import onnx_conformance as conf
import pytest

RUNNERS = ["interp", "roundtrip"]


@pytest.fixture(scope="module")
def cases():
    root = conf.ensure_generated(sys.executable)
    return root, conf.load_manifest(root)


@pytest.mark.parametrize("runner", RUNNERS)
def test_passing_list_is_sorted_known_and_unique(cases, runner):
    _, manifest = cases
    listed = conf.read_passing(runner)
    name = conf.PASSING[runner].name
    assert listed, f"tests/onnx_conformance/{name} lists no case"
    assert list(listed) == sorted(listed), f"{name} must be sorted, one case per line"
    unknown = [n for n in listed if n not in manifest]
    assert not unknown, f"{name} names cases onnx does not generate: {unknown}"


@pytest.mark.parametrize("runner", RUNNERS)
def test_listed_cases_pass(cases, mmdnn_bin, runner):
    root, _ = cases
    listed = conf.read_passing(runner)
    results = conf.run_cases(root, listed, mmdnn_bin, runner=runner)
    failed = {n: r for n, r in results.items() if r[0] != "pass"}
    report = "\n".join(f"{n} [{s}]: {m[-400:]}" for n, (s, m, _) in sorted(failed.items()))
    assert not failed, f"{len(failed)} of {len(listed)} listed cases fail ({runner}):\n{report}"
