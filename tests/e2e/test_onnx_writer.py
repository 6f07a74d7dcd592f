"""The ONNX writer (`-df onnx`, `tomodel -f onnx`, `tocode -f onnx`) against onnxruntime.

Every model written must pass `onnx.checker.check_model(path, full_check=True)` and give, in
onnxruntime (graph optimizations off), the outputs of the reference: `mmdnn run` on the IR
for hand-built graphs (every catalogue op, reusing test_pytorch_ops's cases) and the Keras
applications, onnxruntime on the source model for ONNX → IR → ONNX round trips. Tolerance:
max|Δ| ≤ 1e-4·max(1, |ref|) elementwise; integer and bool outputs equal.

The written models keep the source's interface: each input is fed under its own name and shape
and each output has the reference's shape. Only with `--io-layout channels_first`
(test_io_layout) are image inputs fed transposed and such outputs transposed back, recognised by
the declared input shapes and the reference output shapes. CI runs the default opset on every family plus opsets 13, 18, 21 and 25
on the families whose ONNX form changes with the opset; MMDNN_FULL=1 runs every family at
every supported opset, the whole Keras zoo and every light ONNX model.
"""

import json

import numpy as np
import pytest

import keras_models
from test_onnx_light_models import MODELS as LIGHT_MODELS, PREPARE as LIGHT_PREPARE
from test_onnx_reader import reference as onnx_reference
from test_pytorch_ops import ALL, Graph, compare, mmdnn_outputs

OPSETS = list(range(13, 26))
# Families whose lowering depends on the opset (axes inputs, HardSwish/Mish/Gelu, LayerNorm,
# Resize's axes, pooling dilations).
OPSET_FAMILIES = ["activations", "norm", "reduce", "shape", "resize", "pool", "runtime_attrs"]
# The first opset each family can be written at when one is asked for: average pooling with
# dilations (in the pool cases), Resize's half_pixel_symmetric and float8 tensors (in the dtypes
# cases) need opset 19, ScatterND's max and min reductions 18, like ReduceMax over axes given at
# run time. Without --opset the writer picks that opset itself (test_ops).
MIN_OPSET = {"pool": 19, "scatter": 18, "resize19": 19, "dtypes": 19, "runtime_attrs": 18}

ORT_RUNNER = r"""
import json, sys
import numpy as np
import onnx
import onnxruntime as ort

options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
for job in json.loads(sys.argv[1]):
    onnx.checker.check_model(job["model"], full_check=True)
    session = ort.InferenceSession(job["model"], options, providers=["CPUExecutionProvider"])
    feeds = {}
    assert len(session.get_inputs()) == len(job["feeds"]), job["model"]
    for decl, (name, file) in zip(session.get_inputs(), job["feeds"]):
        assert decl.name == name, (job["model"], decl.name, name)
        x = np.load(file)
        dims = [d if isinstance(d, int) else None for d in decl.shape]
        fits = lambda a: a.ndim == len(dims) and all(d is None or d == s for d, s in zip(dims, a.shape))
        if job.get("io_layout") and not fits(x) and x.ndim >= 3 and fits(np.moveaxis(x, -1, 1)):
            x = np.moveaxis(x, -1, 1)  # --io-layout channels_first made this input channels-first
        assert fits(x), (job["model"], name, decl.shape, x.shape)
        feeds[decl.name] = x
    outs = session.run(None, feeds)
    for i, o in enumerate(outs):
        np.save(f"{job['out']}/ort{i}.npy", o)
    print("ran", job["model"], flush=True)
"""


def run_ort(run_in_subprocess, jobs):
    """jobs: [{model, feeds: [(input name, .npy)], out}]; checks each model and writes its
    onnxruntime outputs as <out>/ort<i>.npy."""
    run_in_subprocess(ORT_RUNNER.replace("sys.argv[1]", repr(json.dumps(jobs))))


def ort_results(out, refs, io_layout=False):
    """The outputs of one job (with `io_layout`, channels-first ones moved back to the
    reference's layout)."""
    got = []
    for i, ref in enumerate(refs):
        g = np.load(out / f"ort{i}.npy")
        if io_layout and g.shape != ref.shape and g.ndim >= 3 and np.moveaxis(g, 1, -1).shape == ref.shape:
            g = np.moveaxis(g, 1, -1)
        got.append(g)
    assert not (out / f"ort{len(refs)}.npy").exists(), f"{out}: more outputs than the reference"
    return got


def write_and_compare(tmp_path, run_mmdnn, run_in_subprocess, cases, args=()):
    """cases: {name: Graph}. Writes each IR as ONNX with `tomodel -f onnx`, runs all in one
    onnxruntime subprocess and compares with `mmdnn run` on the IR."""
    io_layout = "--io-layout" in args
    jobs = []
    for name, g in cases.items():
        d = tmp_path / name
        d.mkdir()
        prefix = d / "ir"
        g.save(prefix)
        run_mmdnn("tomodel", "-f", "onnx", "-n", f"{prefix}.pb", "-w", f"{prefix}.npz",
                  "-o", d / "model.onnx", *args, check=True)
        jobs.append({"model": str(d / "model.onnx"), "out": str(d), "io_layout": io_layout,
                     "feeds": [(n, f"{prefix}.in{i}.npy") for i, n in enumerate(g.inputs)]})
    run_ort(run_in_subprocess, jobs)
    errors = {}
    for name, g in cases.items():
        d = tmp_path / name
        refs = mmdnn_outputs(run_mmdnn, d / "ir", len(g.inputs), g.inputs, d / "ref")
        got = ort_results(d, refs, io_layout)
        errors[name] = [compare(a, b, f"{name} output {i}") for i, (a, b) in enumerate(zip(got, refs))]
    return errors


def _without_ort_nearest_symmetric(cases):
    """The cases without nearest half_pixel_symmetric Resize nodes given scales: onnxruntime
    rounds those differently from the ONNX reference (which the interpreter and the PyTorch
    emitter follow) when the output length differs from length · scale."""
    for g in cases.values():
        drop = [n for n, op, _, a in g.nodes if op == "Resize" and a.get("mode", "nearest") == "nearest"
                and a.get("coordinate_transformation_mode") == "half_pixel_symmetric" and "scales" in a]
        g.nodes = [node for node in g.nodes if node[0] not in drop]
        g.outputs = [o for o in g.outputs if o not in drop]
    return cases


@pytest.mark.parametrize("family", list(ALL))
def test_ops(tmp_path, run_mmdnn, run_in_subprocess, family):
    cases = ALL[family]()
    if family == "resize19":
        cases = _without_ort_nearest_symmetric(cases)
    errors = write_and_compare(tmp_path, run_mmdnn, run_in_subprocess, cases, [])
    print(family, "max |Δ|:", {k: max(v) if v else 0 for k, v in errors.items()})


AT_OPSET = [(f, o) for f in OPSET_FAMILIES for o in [13, 18, 21, 25] if o >= MIN_OPSET.get(f, 0)]


def _spec_resize_only(cases):
    """The resize cases without tf_half_pixel_for_nn nodes that opset 18 cannot express (it
    was dropped from the spec; only nearest with floor or round_prefer_floor rounding maps to
    half_pixel exactly). Returns the cases and the names of the dropped nodes."""
    dropped = []
    for g in cases.values():
        keep = []
        for node in g.nodes:
            _, op, _, attrs = node
            mapped = attrs.get("mode", "nearest") == "nearest" and attrs.get(
                "nearest_mode", "round_prefer_floor") in ("floor", "round_prefer_floor")
            if op == "Resize" and attrs.get("coordinate_transformation_mode") == \
                    "tf_half_pixel_for_nn" and not mapped:
                dropped.append(node[0])
            else:
                keep.append(node)
        g.nodes = keep
        g.outputs = [o for o in g.outputs if o not in dropped]
    return cases, dropped


@pytest.mark.parametrize("family,opset", AT_OPSET)
def test_ops_at_opset(tmp_path, run_mmdnn, run_in_subprocess, family, opset):
    cases = ALL[family]()
    if family == "resize" and opset >= 18:
        cases, dropped = _spec_resize_only(cases)
        assert dropped
    write_and_compare(tmp_path, run_mmdnn, run_in_subprocess, cases, ["--opset", str(opset)])


@pytest.mark.full
def test_every_opset_full(tmp_path, run_mmdnn, run_in_subprocess):
    """Every family at every supported opset; only with MMDNN_FULL=1."""
    for opset in OPSETS:
        for family, make in ALL.items():
            if opset < MIN_OPSET.get(family, 0):
                continue
            cases = make()
            if family == "resize" and opset >= 18:
                cases, _ = _spec_resize_only(cases)
            d = tmp_path / f"{family}_{opset}"
            d.mkdir()
            write_and_compare(d, run_mmdnn, run_in_subprocess, cases, ["--opset", str(opset)])


def test_keep_layout(tmp_path, run_mmdnn, run_in_subprocess):
    g = ALL["conv"]()["conv_channels_last"]
    write_and_compare(tmp_path, run_mmdnn, run_in_subprocess, {"kept": g}, ["--keep-layout"])


def test_io_layout(tmp_path, run_mmdnn, run_in_subprocess):
    """--io-layout channels_first: the channels_last image input and output become
    channels-first (checked through their shapes), the values stay the source's."""
    g = ALL["conv"]()["conv_channels_last"]
    write_and_compare(tmp_path, run_mmdnn, run_in_subprocess, {"cf": g},
                      ["--io-layout", "channels_first"])
    check = f"""
import onnx
m = onnx.load({str(tmp_path / "cf" / "model.onnx")!r})
dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
assert dims[1] < dims[-1], dims  # [N, C, H, W]: fewer channels than columns in this case
"""
    run_in_subprocess(check)


def test_forced_external_data(tmp_path, run_mmdnn, run_in_subprocess):
    cases = ALL["conv"]()
    g = Graph(3)
    x = g.input([2, 300])
    f = g.op("FullyConnected", [x], units=40, use_bias=True)
    g.w(f, "weights", g.rand(300, 40))  # 48,000 bytes: external
    g.w(f, "bias", g.rand(40))  # 160 bytes: inline
    m = g.op("Mul", [f, g.const(g.rand(40))])
    g.output(m)
    cases["dense"] = g
    errors = write_and_compare(tmp_path, run_mmdnn, run_in_subprocess, cases, ["--external-data"])
    assert errors
    check = """
import onnx, sys
from onnx.external_data_helper import uses_external_data
for path in sys.argv[1:]:
    m = onnx.load(path, load_external_data=False)
    big = [t for t in m.graph.initializer if len(t.raw_data) >= 1024 or uses_external_data(t)]
    assert big and all(uses_external_data(t) for t in big), path
    for t in big:
        e = {x.key: x for x in t.external_data}
        assert e["location"].value == "model.onnx.data" and int(e["offset"].value) % 4096 == 0, t
"""
    models = [str(tmp_path / name / "model.onnx") for name in cases]
    big = [m for m in models if (tmp_path / m).with_name("model.onnx.data").exists()]
    assert big, "no case has a weight of 1 KiB or more"
    run_in_subprocess(check.replace("sys.argv[1:]", repr(big)))


def test_unsupported_ops_are_listed_and_nothing_is_written(tmp_path, run_mmdnn):
    g = Graph()
    x = g.input([1, 3, 4, 4])
    a = g.op("Pool", [x], pooling_type="AVG", kernel_shape=[2, 2], dilations=[2, 2])
    b = g.op("Pool", [a], name="second", pooling_type="AVG", kernel_shape=[1, 1], dilations=[2, 1])
    c = g.op("Resize", [x], name="third", scales=[2.0, 2.0], mode="linear",
             coordinate_transformation_mode="tf_half_pixel_for_nn")
    d = g.op("Relu", [c])
    g.output(b, d)
    g.save(tmp_path / "ir")
    out = tmp_path / "model.onnx"
    proc = run_mmdnn("tomodel", "-f", "onnx", "-n", tmp_path / "ir.pb", "-w", tmp_path / "ir.npz",
                     "-o", out, "--external-data", "--opset", "18")
    assert proc.returncode == 1, proc.stderr
    # Every unsupported node in one message (not the one fed by a failed node), none written.
    assert "cannot write 2 node(s) as ONNX opset 18 (ops: Pool, Resize)" in proc.stderr, proc.stderr
    assert "node 'pool_2' (Pool)" in proc.stderr and "node 'third' (Resize)" in proc.stderr
    assert "second" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ir.in0.npy", "ir.npz", "ir.pb"]
    proc = run_mmdnn("tomodel", "-f", "onnx", "-n", tmp_path / "ir.pb", "-w", tmp_path / "ir.npz",
                     "-o", out, "--opset", "12")
    assert proc.returncode == 2, proc.stderr


# ---------------------------------------------------------------------------------------------
# Keras applications: .keras → ONNX (the source's interface) vs `mmdnn run` on the IR.

KERAS_CI = ["MobileNetV3Small", "EfficientNetB0"]


def _keras_app(name, tmp_path, run_in_subprocess, run_mmdnn):
    out = tmp_path / name
    run_in_subprocess(f"import keras_models; keras_models.save_case('app', {name!r}, {str(out)!r})")
    manifest = json.loads((out / "manifest.json").read_text())
    run_mmdnn("toir", "-f", "keras", "-w", out / "model.keras", "-o", out / "ir", check=True)
    run_mmdnn("convert", "-sf", "keras", "-iw", out / "model.keras", "-df", "onnx",
              "-om", out / "model.onnx", check=True)
    for f in out.glob("model.*[!x]"):
        f.unlink()  # the saved Keras files are large
    feeds = [str(out / f"in{i}.npy") for i in range(len(manifest["inputs"]))]
    refs = mmdnn_outputs(run_mmdnn, out / "ir", len(feeds), manifest["inputs"], out / "ref", feeds)
    run_ort(run_in_subprocess, [{"model": str(out / "model.onnx"), "out": str(out),
                                 "feeds": list(zip(manifest["inputs"], feeds))}])
    got = ort_results(out, refs)
    return [compare(a, b, f"{name} output {i}") for i, (a, b) in enumerate(zip(got, refs))]


@pytest.mark.parametrize("name", KERAS_CI)
def test_keras_application(name, tmp_path, run_in_subprocess, run_mmdnn):
    print(name, "max |Δ|", _keras_app(name, tmp_path, run_in_subprocess, run_mmdnn))


@pytest.mark.full
@pytest.mark.parametrize("name", [n for n in keras_models.APPS if n not in KERAS_CI])
def test_keras_zoo_full(name, tmp_path, run_in_subprocess, run_mmdnn):
    """Every other Keras application; only with MMDNN_FULL=1."""
    test_keras_application(name, tmp_path, run_in_subprocess, run_mmdnn)


# ---------------------------------------------------------------------------------------------
# ONNX → IR → ONNX: equal outputs in onnxruntime.

ROUND_TRIP = [
    ("small_cnn", {"opset": 13}),
    ("residual_block", {}),
    ("transformer_block", {"opset": 17}),
    ("same_padding", {}),
    ("op_zoo", {"opset": 13}),
    ("op_zoo2", {"opset": 13}),
    ("resize", {"opset": 13}),
    ("recurrent", {"opset": 14}),
]
LIGHT_CI = ["squeezenet", "shufflenet"]


def _round_trip(tmp_path, run_mmdnn, run_in_subprocess, path, feeds, n_outputs, what):
    out = path.with_name(path.stem + ".mmdnn.onnx")
    run_mmdnn("convert", "-sf", "onnx", "-iw", path, "-df", "onnx", "-om", out, check=True)
    d = tmp_path / f"{path.stem}_ort"
    d.mkdir()
    run_ort(run_in_subprocess, [{"model": str(out), "out": str(d), "feeds": feeds}])
    refs = [np.load(f"{path}.ref{i}.npy") for i in range(n_outputs)]
    got = ort_results(d, refs)
    return [compare(a, b, f"{what} output {i}") for i, (a, b) in enumerate(zip(got, refs))]


@pytest.mark.parametrize("builder,kwargs", ROUND_TRIP, ids=[b for b, _ in ROUND_TRIP])
def test_onnx_round_trip(tmp_path, run_mmdnn, run_in_subprocess, builder, kwargs):
    path = tmp_path / f"{builder}.onnx"
    inputs, outputs = onnx_reference(run_in_subprocess, path, builder, **kwargs)
    feeds = [(n, f"{path}.in.{n}.npy") for n in inputs]
    errors = _round_trip(tmp_path, run_mmdnn, run_in_subprocess, path, feeds, len(outputs), builder)
    print(builder, "max |Δ|", errors)


def _light(tmp_path, run_mmdnn, run_in_subprocess, name):
    path = tmp_path / f"{name}.onnx"
    proc = run_in_subprocess(LIGHT_PREPARE.format(name=name, path=str(path)))
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    feed = f"{path}.in.{info['input'].replace('/', '_')}.npy"
    return _round_trip(tmp_path, run_mmdnn, run_in_subprocess, path, [(info["input"], feed)],
                       info["outputs"], name)


@pytest.mark.parametrize("name", LIGHT_CI)
def test_light_model_round_trip(tmp_path, run_mmdnn, run_in_subprocess, name):
    print(name, "max |Δ|", _light(tmp_path, run_mmdnn, run_in_subprocess, name))


@pytest.mark.full
def test_light_models_full(tmp_path, run_mmdnn, run_in_subprocess):
    """Every light ONNX model round-trips; only with MMDNN_FULL=1."""
    for name in LIGHT_MODELS:
        if name not in LIGHT_CI:
            d = tmp_path / name
            d.mkdir()
            print(name, "max |Δ|", _light(d, run_mmdnn, run_in_subprocess, name))


# ---------------------------------------------------------------------------------------------
# tocode -f onnx: the script builds the same model; hostile names stay data.


def _tocode_case():
    g = Graph()
    evil = [
        'quote"\'s',
        '__import__("os").system("touch PWNED")',
        "line\nbreak\r\n#",
        "x" * 10_000,
        "\\\"\"\"; import os; os.system('touch PWNED') #",
    ]
    x = g.input([2, 3, 6, 6], name=evil[0])
    c = g.op("Conv", [x], name=evil[1], kernel_shape=[3, 3], out_channels=4, use_bias=True,
             pads=[1, 1, 1, 1])
    g.w(c, "weights", g.rand(4, 3, 3, 3))
    g.w(c, "bias", g.rand(4))
    r = g.op("Relu", [c], name=evil[2])
    p = g.op("GlobalPool", [r], name=evil[3], pooling_type="AVG", keepdims=False)
    f = g.op("FullyConnected", [p], name=evil[4], units=5, use_bias=True)
    g.w(f, "weights", g.rand(4, 5))
    g.w(f, "bias", g.rand(5))
    g.output(f, r)
    return g, evil


def test_tocode_script_builds_the_same_model(tmp_path, run_mmdnn, run_in_subprocess):
    g, evil = _tocode_case()
    prefix = tmp_path / "ir"
    g.save(prefix)
    script = tmp_path / "model.py"
    run_mmdnn("tocode", "-f", "onnx", "-n", f"{prefix}.pb", "-w", f"{prefix}.npz", "-d", script,
              check=True)
    text = script.read_text()
    assert "touch PWNED\")" not in text.replace('\\"', "")  # only inside escaped literals
    assert "\r" not in text
    # The script runs (from another directory), and tomodel runs it too.
    run_in_subprocess(f"import runpy, sys; sys.argv = ['model.py', '--output', {str(tmp_path / 'a.onnx')!r}]; "
                      f"runpy.run_path({str(script)!r}, run_name='__main__')", cwd=tmp_path.parent)
    run_mmdnn("tomodel", "-f", "onnx", "-n", script, "-w", f"{prefix}.npz", "-o", tmp_path / "b.onnx",
              check=True)
    run_mmdnn("tomodel", "-f", "onnx", "-n", f"{prefix}.pb", "-w", f"{prefix}.npz",
              "-o", tmp_path / "c.onnx", check=True)
    assert not list(tmp_path.parent.rglob("PWNED")) and not list(tmp_path.rglob("PWNED"))
    refs = mmdnn_outputs(run_mmdnn, prefix, 1, g.inputs, tmp_path / "ref")
    for m in ["a", "b", "c"]:
        d = tmp_path / f"ort_{m}"
        d.mkdir()
        run_ort(run_in_subprocess, [{"model": str(tmp_path / f"{m}.onnx"), "out": str(d),
                                     "feeds": [(evil[0], f"{prefix}.in0.npy")]}])
        for i, (a, b) in enumerate(zip(ort_results(d, refs), refs)):
            compare(a, b, f"{m} output {i}")
    # Names come through exactly.
    names = """
import json, onnx, sys
a, c = (onnx.load(p) for p in sys.argv[1:])
assert [n.name for n in a.graph.node] == [n.name for n in c.graph.node]
assert [i.name for i in a.graph.input] == [i.name for i in c.graph.input]
print(json.dumps([n.name for n in a.graph.node] + [a.graph.input[0].name]))
"""
    proc = run_in_subprocess(names.replace("sys.argv[1:]", repr([str(tmp_path / "a.onnx"),
                                                                  str(tmp_path / "c.onnx")])))
    listed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(evil) <= set(listed), listed
