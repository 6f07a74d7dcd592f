"""ONNX backend node tests: every case listed in tests/onnx_conformance/passing.txt must pass.

The cases are generated from the installed onnx package into a cache outside the checkout and
run through `mmdnn run` (reader → IR → interpreter), with the graph inputs listed after `const:`
bound to constants; tolerances, the cache and the binding are described in onnx_conformance.py (float32: |Δ| ≤ 1e-4·max(1, |ref|) elementwise; integers and bools exact).
A listed case that fails, or that the reader no longer supports, fails the test. To see every
case: `python tests/e2e/onnx_conformance.py run --all`.
"""

import sys

import onnx_conformance as conf
import pytest


@pytest.fixture(scope="module")
def cases():
    root = conf.ensure_generated(sys.executable)
    return root, conf.load_manifest(root)


def test_passing_list_is_sorted_known_and_unique(cases):
    _, manifest = cases
    listed = conf.read_passing()
    assert listed, "tests/onnx_conformance/passing.txt lists no case"
    assert list(listed) == sorted(listed), "passing.txt must be sorted, one case per line"
    unknown = [n for n in listed if n not in manifest]
    assert not unknown, f"passing.txt names cases onnx does not generate: {unknown}"


def test_listed_cases_pass(cases, mmdnn_bin):
    root, _ = cases
    listed = conf.read_passing()
    results = conf.run_cases(root, listed, mmdnn_bin)
    failed = {n: r for n, r in results.items() if r[0] != "pass"}
    report = "\n".join(f"{n} [{s}]: {m[-400:]}" for n, (s, m, _) in sorted(failed.items()))
    assert not failed, f"{len(failed)} of {len(listed)} listed cases fail:\n{report}"
