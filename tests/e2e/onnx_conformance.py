"""ONNX backend node-test conformance of the ONNX reader, the reference interpreter and the
ONNX writer.

The node tests of the installed onnx package (`onnx.backend.test.case.node`: one small model
per case, with inputs and expected outputs) are generated once into a cache outside the
checkout, `$MMDNN_ONNX_NODE_TESTS` or
`~/.cache/mmdnn/onnx-node-tests/<onnx version>-v<CACHE_FORMAT>/`, in the backend-test layout
(`<case>/model.onnx`, `<case>/test_data_set_0/{input,output}_<k>.pb`) plus the same tensors as
`.npy` and a `manifest.json` (op types, input names, output dtypes).

A case runs through a *runner* (RUNNERS, `--runner`), each with its list of the cases CI
requires:
  - interp (tests/onnx_conformance/passing.txt): `mmdnn run -n model.onnx --input
    NAME=input_k.npy`, the reader → IR → interpreter, one process per case;
  - roundtrip (tests/onnx_conformance/passing_roundtrip.txt): `mmdnn convert -sf onnx -df onnx`
    (reader → IR → ONNX writer at its default opset), then, in this process,
    `onnx.checker.check_model(full_check=True)` and onnxruntime (CPU, graph optimizations off)
    on the written model, fed the case's input tensors by name. The written model must keep the
    source's input names and input/output element types (bfloat16, 8-bit floats and 4- and
    2-bit types cross onnxruntime's Python API as bytes).
A case passes when every output matches:
  - float outputs elementwise |Δ| ≤ tol·max(1, |ref|) with tol = 1e-4 (the project's float32
    rule) for float32/float64 references, 1e-3 for float16 and 1e-2 for bfloat16 ones (those
    references are rounded to that precision; the interpreter computes every float as f32);
    the 8- and 4-bit float references (widened exactly to float32 in the cache) must match
    exactly (tol = 0): they are the rounding of a Cast or QuantizeLinear, not of arithmetic;
    NaN matches NaN and an infinity matches the same infinity;
  - integer and bool outputs exactly (values; the interpreter holds every integer as int64);
  - same shape always.
A case whose model uses an op the reader does not support is "not attempted"; for the round
trip, an IR node the writer cannot lower is a failure.

The IR takes weights, axes, shapes, pads, scales, ... as constants, while node tests feed them
as graph inputs. Such inputs are bound to their test values as initializers (the model is
rewritten in the work dir) when the reader names them, or a value computed from them (not
through Shape or Size), as "... is computed at run time; the IR needs it as a constant":
`run --all` finds them, and the lists record them after the case
name (`test_reduce_sum_keepdims_example const:axes`, like tract's node.txt), so CI binds exactly
those. Nothing else is ever bound: a computation the IR cannot express stays a failure.

Command line (run with the venv's python; `scripts/venv` prints it):
  onnx_conformance.py generate                write the cache (if missing)
  onnx_conformance.py run [--runner interp|roundtrip] [--all] [-k SUBSTR] [--write-passing]
                          [--bin MMDNN]
      runs the cases of the runner's list (or every case with --all), prints passed /
      attempted / total and the failures per op; --write-passing rewrites the list (keeping
      its leading comments) with the cases that passed.

A runner is `runner(mmdnn_bin, case_dir, meta, work_dir, consts) -> [np.ndarray]` (the outputs
in graph-output order), raising Unsupported, NeedsConst or AssertionError.
"""

import argparse
import concurrent.futures
import fcntl
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
# The cases CI requires per runner.
PASSING = {"interp": REPO_ROOT / "tests/onnx_conformance/passing.txt",
           "roundtrip": REPO_ROOT / "tests/onnx_conformance/passing_roundtrip.txt"}
HEADER = {
    "interp": "ONNX backend node tests that the reader + interpreter pass",
    "roundtrip": "ONNX backend node tests that pass the round trip reader → IR → ONNX writer → "
                 "onnxruntime",
}
WRITER_MISSING = "as ONNX opset"
UNSUPPORTED_OP = "ops the ONNX reader does not support"
NEEDS_CONST = re.compile(r"\('([^']*)'\) is computed at run time; the IR needs it as a constant")
CASE_TIMEOUT = 120

# Reference dtype (manifest name) -> relative tolerance; other floats are not compared.
FLOAT_TOL = {"float32": 1e-4, "float64": 1e-4, "float16": 1e-3, "bfloat16": 1e-2,
             **{t: 0.0 for t in ("float8e4m3fn", "float8e4m3fnuz", "float8e5m2",
                                 "float8e5m2fnuz", "float8e8m0", "float4e2m1")}}


# Bumped whenever the generator changes what it writes, so a cache written by an older one is
# never reused (2: ml_dtypes arrays stored as loadable bit patterns).
CACHE_FORMAT = 2


def cache_dir():
    root = os.environ.get("MMDNN_ONNX_NODE_TESTS")
    if root:
        return Path(root)
    version = importlib.metadata.version("onnx")
    return Path.home() / ".cache/mmdnn/onnx-node-tests" / f"{version}-v{CACHE_FORMAT}"


# ---- generation (imports onnx) ----


def _npy_array(tensor_proto):
    """A TensorProto as a NumPy array `mmdnn` can read: exotic floats (bfloat16, float8, ...)
    widen to float32, 4-bit integers to int8/uint8. Returns (array, onnx dtype name)."""
    import onnx
    from onnx import numpy_helper

    a = numpy_helper.to_array(tensor_proto)
    # NumPy's own types only: ml_dtypes registers some of its types (float8_e5m2) as kind "f",
    # which `np.save` writes with a descriptor ('<f1') nothing can load.
    if a.dtype.isbuiltin == 1:
        return a, a.dtype.name
    name = onnx.TensorProto.DataType.Name(tensor_proto.data_type).lower()
    return (a.astype(np.float32) if "float" in name else a.astype(np.int64)), name


def _write_case(case, out):
    import onnx
    from onnx import numpy_helper

    model = case.model
    ds = out / "test_data_set_0"
    ds.mkdir(parents=True)
    (out / "model.onnx").write_bytes(model.SerializeToString())
    inputs, outputs = case.data_sets[0]
    meta = {"ops": sorted({n.op_type for n in model.graph.node}), "inputs": [], "outputs": []}
    for kind, values, infos in (("input", inputs, model.graph.input),
                                ("output", outputs, model.graph.output)):
        for j, (value, info) in enumerate(zip(values, infos)):
            entry = {"name": info.name, "tensor": info.type.HasField("tensor_type")}
            if entry["tensor"]:
                proto = value if isinstance(value, onnx.TensorProto) else (
                    numpy_helper.from_array(np.asarray(value), info.name))
                (ds / f"{kind}_{j}.pb").write_bytes(proto.SerializeToString())
                try:
                    array, entry["dtype"] = _npy_array(proto)
                    np.save(ds / f"{kind}_{j}.npy", array)
                except Exception as e:  # noqa: BLE001 - e.g. string tensors
                    entry["dtype"] = f"unreadable: {e}"
            meta[kind + "s"].append(entry)
    return meta


def generate(root):
    """Writes every node test case under `root` (once; concurrent callers wait)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "manifest.json").is_file():
            return
        import onnx.backend.test.case.node as node_cases

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            cases = node_cases.collect_testcases(None)
        tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=root.name + ".tmp"))
        manifest = {}
        for case in cases:
            manifest[case.name] = _write_case(case, tmp / case.name)
        # The op a case tests: its only op, else (a function's expansion) its base case's.
        for name, meta in manifest.items():
            base = manifest.get(name.split("_expanded")[0])
            meta["op"] = (meta["ops"][0] if len(meta["ops"]) == 1
                          else base["ops"][0] if base and len(base["ops"]) == 1
                          else "+".join(meta["ops"]))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)


def ensure_generated(python=sys.executable):
    """The cache directory, generated (in a subprocess of `python`) when missing."""
    root = cache_dir()
    if not (root / "manifest.json").is_file():
        subprocess.run([python, __file__, "generate"], check=True, timeout=1800)
    return root


def load_manifest(root):
    return json.loads((root / "manifest.json").read_text())


# ---- running and comparing ----


class Unsupported(Exception):
    """The model uses ops the reader does not support: the case is not attempted."""


class NeedsConst(Exception):
    """The reader needs these graph inputs as constants."""

    def __init__(self, names, msg):
        super().__init__(msg)
        self.names = names


def bind_constants(case_dir, meta, consts, work):
    """The case's model with the graph inputs `consts` turned into initializers holding their
    test values (written under `work`)."""
    import onnx

    model = onnx.load(case_dir / "model.onnx")
    graph = model.graph
    for j, entry in enumerate(meta["inputs"]):
        if entry["name"] in consts:
            t = onnx.TensorProto()
            t.ParseFromString((case_dir / f"test_data_set_0/input_{j}.pb").read_bytes())
            t.name = entry["name"]
            graph.initializer.append(t)
    keep = [i for i in graph.input if i.name not in consts]
    del graph.input[:]
    graph.input.extend(keep)
    path = work / "model.onnx"
    onnx.save(model, path)
    return path


def source_inputs(model_path, names):
    """The graph inputs the values `names` are computed from (not looking through Shape and
    Size, whose results only depend on shapes)."""
    import onnx

    graph = onnx.load(model_path).graph
    producer = {o: n for n in graph.node for o in n.output}
    inputs = {i.name for i in graph.input}
    found, seen, stack = set(), set(), list(names)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in inputs:
            found.add(name)
        elif name in producer and producer[name].op_type not in ("Shape", "Size"):
            stack.extend(producer[name].input)
    return found


def run_interp(mmdnn_bin, case_dir, meta, work, consts=()):
    """Runner: `mmdnn run` on the case's model (with the graph inputs `consts` bound to
    constants); returns its outputs in graph-output order."""
    model = bind_constants(case_dir, meta, consts, work) if consts else case_dir / "model.onnx"
    args = [str(mmdnn_bin), "run", "-n", str(model), "-o", str(work / "out")]
    for j, entry in enumerate(meta["inputs"]):
        if entry["name"] in consts:
            continue
        if not entry["tensor"]:
            raise AssertionError(f"input '{entry['name']}' is not a tensor")
        args += ["--input", f"{entry['name']}={case_dir}/test_data_set_0/input_{j}.npy"]
    proc = run_mmdnn_case(args, case_dir)
    files = [line.split("-> ")[-1] for line in proc.stdout.splitlines() if "-> " in line]
    return [np.load(f) for f in files]


def run_mmdnn_case(args, case_dir):
    """Runs `mmdnn` on a case's model; raises Unsupported, NeedsConst or AssertionError (its
    last line of stderr) when it fails."""
    env = dict(os.environ, MMDNN_THREADS="1")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=CASE_TIMEOUT, env=env,
                          check=False)
    if proc.returncode != 0:
        if UNSUPPORTED_OP in proc.stderr:
            raise Unsupported(proc.stderr.strip())
        wanted = source_inputs(case_dir / "model.onnx", NEEDS_CONST.findall(proc.stderr))
        if wanted:
            raise NeedsConst(wanted, proc.stderr.strip())
        raise AssertionError(proc.stderr.strip() or f"exit {proc.returncode}")
    return proc


def _elem_types(values):
    return [v.type.tensor_type.elem_type for v in values]


def run_roundtrip(mmdnn_bin, case_dir, meta, work, consts=()):
    """Runner: `mmdnn convert -sf onnx -df onnx` on the case's model (reader → IR → writer),
    then `onnx.checker.check_model(full_check=True)` and onnxruntime (graph optimizations off)
    on the written model. The written model must keep the interface: the same input names and
    the same input and output element types; inputs are fed by name."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = bind_constants(case_dir, meta, consts, work) if consts else case_dir / "model.onnx"
    out = work / "roundtrip.onnx"
    run_mmdnn_case([str(mmdnn_bin), "convert", "-sf", "onnx", "-iw", str(model), "-df", "onnx",
                    "-om", str(out)], case_dir)
    try:
        onnx.checker.check_model(str(out), full_check=True)
    except Exception as e:  # noqa: BLE001 - the checker raises several kinds
        raise AssertionError(f"check_model: {str(e).strip().splitlines()[0]}") from None
    source, written = onnx.load(model).graph, onnx.load(out).graph
    for kind, a, b in (("input", source.input, written.input),
                       ("output", source.output, written.output)):
        if _elem_types(a) != _elem_types(b):
            raise AssertionError(f"{kind} element types {_elem_types(a)} written as "
                                 f"{_elem_types(b)}")
    feeds = {}
    for j, entry in enumerate(meta["inputs"]):
        if entry["name"] not in consts:
            t = onnx.TensorProto()
            t.ParseFromString((case_dir / f"test_data_set_0/input_{j}.pb").read_bytes())
            feeds[entry["name"]] = _ort_value(numpy_helper.to_array(t), t.data_type)
    if sorted(feeds) != sorted(i.name for i in written.input):
        raise AssertionError(f"inputs {sorted(feeds)} written as "
                             f"{sorted(i.name for i in written.input)}")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
        got = session.run_with_ort_values([o.name for o in session.get_outputs()], feeds)
    except Exception as e:  # noqa: BLE001 - onnxruntime's own exception types
        raise AssertionError(f"onnxruntime: {str(e).strip().splitlines()[0]}") from None
    return [_from_ort_value(v) for v in got]


# Element types onnxruntime's NumPy bridge lacks (name in onnxruntime's "tensor(...)") and
# their bits per element; they cross as bytes, the sub-byte ones packed as ONNX stores them
# (first element in the lowest bits).
ORT_RAW_BITS = {"bfloat16": 16, "float8e4m3fn": 8, "float8e4m3fnuz": 8, "float8e5m2": 8,
                "float8e5m2fnuz": 8, "float8e8m0": 8, "float4e2m1": 4, "int4": 4, "uint4": 4,
                "int2": 2, "uint2": 2}


def _ort_value(array, elem_type):
    """An onnxruntime value of the ONNX element type `elem_type` (see ORT_RAW_BITS)."""
    import ctypes

    import onnx
    import onnxruntime as ort

    a = np.array(array, order="C")
    bits = ORT_RAW_BITS.get(onnx.TensorProto.DataType.Name(elem_type).lower())
    if bits is None:
        return ort.OrtValue.ortvalue_from_numpy(a)
    raw = a.reshape(-1).view(np.uint8)  # 1-d first: a 0-d array cannot change its itemsize
    if bits < 8:  # ml_dtypes holds one element per byte, in its low bits
        per = 8 // bits
        padded = np.zeros(-(-raw.size // per) * per, np.uint8)
        padded[:raw.size] = raw & ((1 << bits) - 1)
        shifts = (np.arange(per) * bits).astype(np.uint8)
        raw = np.bitwise_or.reduce(padded.reshape(-1, per) << shifts, axis=1).astype(np.uint8)
    value = ort.OrtValue.ortvalue_from_shape_and_type(list(a.shape), elem_type)
    if value.tensor_size_in_bytes() != raw.size:
        raise AssertionError(f"{raw.size} bytes for a {value.data_type()} of shape {a.shape}")
    ctypes.memmove(value.data_ptr(), raw.tobytes(), raw.size)
    return value


def _from_ort_value(value):
    """A NumPy array of an onnxruntime output; the types of ORT_RAW_BITS widened exactly (floats
    to float32, integers to int64)."""
    import ctypes

    import onnx

    name = value.data_type()[len("tensor("):-1]
    bits = ORT_RAW_BITS.get(name)
    if bits is None:
        return value.numpy()
    shape, n = value.shape(), int(np.prod(value.shape()))
    raw = np.frombuffer(ctypes.string_at(value.data_ptr(), value.tensor_size_in_bytes()),
                        dtype=np.uint8 if bits <= 8 else np.uint16)
    if bits < 8:
        shifts = (np.arange(8 // bits) * bits).astype(np.uint8)
        raw = ((raw[:, None] >> shifts) & ((1 << bits) - 1)).ravel()[:n]
    if name.startswith(("int", "uint")):
        v = raw.astype(np.int64)
        if name.startswith("int"):
            v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
        return v.reshape(shape)
    ml_type = onnx.helper.tensor_dtype_to_np_dtype(onnx.TensorProto.DataType.Value(name.upper()))
    return np.ascontiguousarray(raw).view(ml_type).astype(np.float32).reshape(shape)


RUNNERS = {"interp": run_interp, "roundtrip": run_roundtrip}


def compare(got, ref, dtype, what):
    """Raises AssertionError unless `got` matches the reference (see the module doc)."""
    if got.shape != ref.shape:
        raise AssertionError(f"{what}: shape {got.shape} != expected {ref.shape}")
    if ref.dtype.kind in "iub":
        if got.dtype.kind not in "iub" or not np.array_equal(got.astype(np.int64),
                                                            ref.astype(np.int64)):
            raise AssertionError(f"{what}: {got.dtype} values differ from expected {ref.dtype}")
        return
    if dtype not in FLOAT_TOL:
        raise AssertionError(f"{what}: reference dtype {dtype} is not compared")
    if got.dtype.kind != "f":
        raise AssertionError(f"{what}: got {got.dtype}, expected {dtype}")
    g, r = got.astype(np.float64), ref.astype(np.float64)
    same = (g == r) | (np.isnan(g) & np.isnan(r))
    with np.errstate(invalid="ignore"):
        close = np.abs(g - r) <= FLOAT_TOL[dtype] * np.maximum(1.0, np.abs(r))
    bad = ~(same | close)
    if bad.any():
        err = np.where(bad, np.abs(g - r), 0)
        worst = float(np.nanmax(err)) if np.isfinite(err).any() else float("nan")
        raise AssertionError(f"{what}: {int(bad.sum())}/{bad.size} elements off, max |Δ| "
                             f"{worst:.3g} (tol {FLOAT_TOL[dtype]}·max(1,|ref|))")


def check_case(root, name, meta, mmdnn_bin, consts=None, runner="interp"):
    """Runs one case with the graph inputs `consts` bound to constants (None: find which the
    reader needs). Returns (status, message, consts), status "pass" | "fail" | "unsupported"."""
    case_dir = root / name
    discover, consts = consts is None, set(consts or ())
    with tempfile.TemporaryDirectory(prefix="mmdnn-onnx-case-") as work:
        try:
            while True:
                try:
                    got = RUNNERS[runner](mmdnn_bin, case_dir, meta, Path(work), consts)
                    break
                except NeedsConst as e:
                    if not discover or e.names <= consts:
                        raise AssertionError(str(e)) from None
                    consts |= e.names
            if len(got) != len(meta["outputs"]):
                raise AssertionError(f"{len(got)} outputs, expected {len(meta['outputs'])}")
            for j, (g, entry) in enumerate(zip(got, meta["outputs"])):
                if not entry["tensor"]:
                    raise AssertionError(f"output '{entry['name']}' is not a tensor")
                ref = np.load(case_dir / f"test_data_set_0/output_{j}.npy")
                compare(g, ref, entry["dtype"], f"output {j} ('{entry['name']}')")
        except Unsupported as e:
            return "unsupported", str(e), sorted(consts)
        except (AssertionError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            return "fail", str(e) or type(e).__name__, sorted(consts)
    return "pass", "", sorted(consts)


def run_cases(root, cases, mmdnn_bin, runner="interp", jobs=None):
    """{case name: (status, message, consts)} for {case name: consts (None: discover)},
    running `jobs` cases at a time."""
    manifest = load_manifest(root)
    jobs = jobs or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = {n: pool.submit(check_case, root, n, manifest[n], mmdnn_bin, c, runner)
                   for n, c in cases.items()}
        return {n: f.result() for n, f in futures.items()}


def read_passing(runner="interp"):
    """{case name: the inputs bound to constants} from the runner's list."""
    path, cases = PASSING[runner], {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, *rest = line.split()
            if name in cases:
                raise ValueError(f"{path}: {name} is listed twice")
            consts = [c for r in rest if r.startswith("const:") for c in r[6:].split(",")]
            cases[name] = consts
    return cases


def write_passing(results, runner="interp"):
    """Rewrites the runner's list with the cases that passed, keeping its leading comments."""
    path = PASSING[runner]
    old = path.read_text().splitlines() if path.exists() else []
    comments = [line for line in old[:next((i for i, line in enumerate(old)
                                            if not line.startswith("#")), len(old))]]
    lines = [n + (" const:" + ",".join(c) if c else "")
             for n, (s, _, c) in sorted(results.items()) if s == "pass"]
    head = comments or [f"# {HEADER[runner]}, each with the graph inputs bound to constants",
                        "# (see tests/e2e/onnx_conformance.py); CI runs every one."]
    path.write_text("".join(line + "\n" for line in head + lines))


def summary(results, manifest):
    """Counts and the failures grouped by op, as printable lines."""
    status = Counter(s for s, _, _ in results.values())
    attempted = status["pass"] + status["fail"]
    bound = sum(1 for s, _, c in results.values() if s == "pass" and c)
    lines = [f"passed {status['pass']} / attempted {attempted} / total {len(results)}"
             + (f" ({100 * status['pass'] / attempted:.1f} % of attempted)" if attempted else "")
             + f"; {bound} passed with inputs bound to constants"]
    fails = [m for s, m, _ in results.values() if s == "fail"]
    dtype = sum(1 for m in fails if "has no IR equivalent" in m and "element type" in m)
    seq = sum(1 for m in fails if "is not a tensor" in m)
    writer = sum(1 for m in fails if WRITER_MISSING in m)
    if attempted:
        rest = attempted - dtype - seq
        lines.append(f"failures: {dtype} on element types the IR lacks (float8, 4-bit, ...), "
                     f"{seq} on sequence/optional values"
                     + (f", {writer} on IR nodes the ONNX writer cannot lower" if writer else "")
                     + "; without the first two, passed "
                     f"{status['pass']} / {rest} ({100 * status['pass'] / max(rest, 1):.1f} %)")
    by_op = defaultdict(list)
    for name, (s, msg, _) in sorted(results.items()):
        if s == "fail":
            by_op[manifest[name]["op"]].append((name, msg))
    for op, fails in sorted(by_op.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"  {op}: {len(fails)} failed")
        lines += [f"    {n}: {m.splitlines()[-1][:200] if m else ''}" for n, m in fails]
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("generate")
    r = sub.add_parser("run")
    r.add_argument("--runner", choices=sorted(RUNNERS), default="interp",
                   help="interp: reader → IR → interpreter (passing.txt); roundtrip: reader → IR "
                   "→ ONNX writer → onnxruntime (passing_roundtrip.txt)")
    r.add_argument("--all", action="store_true", help="every case, not just the runner's list")
    r.add_argument("-k", default="", help="only cases whose name contains this")
    r.add_argument("--write-passing", action="store_true")
    r.add_argument("--bin", default=os.environ.get("MMDNN_BIN")
                   or os.path.join(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"),
                                   "release/mmdnn"))
    r.add_argument("--jobs", type=int, default=None)
    a = p.parse_args()
    if a.cmd == "generate":
        generate(cache_dir())
        print(cache_dir())
        return 0
    if not os.access(a.bin, os.X_OK):
        p.error(f"no mmdnn binary at {a.bin} (--bin, MMDNN_BIN or CARGO_TARGET_DIR)")
    root = ensure_generated()
    manifest = load_manifest(root)
    cases = dict.fromkeys(manifest) if a.all else read_passing(a.runner)
    cases = {n: c for n, c in cases.items() if a.k in n}
    results = run_cases(root, cases, a.bin, runner=a.runner, jobs=a.jobs)
    print("\n".join(summary(results, manifest)))
    if a.write_passing:
        write_passing(results, a.runner)
    return 0 if all(s == "pass" for s, _, _ in results.values()) or a.all else 1


if __name__ == "__main__":
    sys.exit(main())
