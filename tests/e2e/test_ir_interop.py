"""The IR files interoperate with MMdnn 0.3.1 and NumPy.

- An IR written with MMdnn's schema (built here with Python protobuf from MMdnn's field numbers)
  loads in `mmdnn inspect`; and the IR mmdnn writes decodes with MMdnn's schema.
- `numpy.load` opens mmdnn's weights without allow_pickle, with the right values.
- A legacy MMdnn .npy whose pickle would run code is refused, and nothing runs.
"""

import json

import numpy as np
import mmdnn_ir_schema as mm


def write_mmdnn_ir(prefix, legacy_npy=False):
    graph = mm.make_mmdnn_keras_like_ir()
    prefix.with_suffix(".pb").write_bytes(graph.SerializeToString())
    weights = mm.make_mmdnn_weights(np.random.default_rng(0))
    mm.save_mmdnn_npy(str(prefix.with_suffix(".npy")), weights, legacy=legacy_npy)
    return graph, weights


def test_mmdnn_schema_ir_loads_in_inspect(tmp_path, run_mmdnn):
    for legacy in (False, True):
        prefix = tmp_path / f"mm_{legacy}"
        write_mmdnn_ir(prefix, legacy_npy=legacy)
        proc = run_mmdnn("inspect", prefix.with_suffix(".pb"), "--json", check=True)
        report = json.loads(proc.stdout)
        assert report["inputs"] == [{"name": "input_1", "type": "float32[?, 8, 8, 3]"}]
        assert report["outputs"] == [{"name": "dense_1_activation", "type": "float32[?, 5]"}]
        assert report["parameters"] == 3 * 3 * 3 * 4 + 4 + 64 * 5 + 5
        assert report["unsupported_ops"] == [] and report["problems"] == []


def test_our_ir_decodes_with_mmdnn_schema_and_numpy(tmp_path, run_mmdnn):
    src = tmp_path / "mm"
    _, weights = write_mmdnn_ir(src)
    out = tmp_path / "ours"
    run_mmdnn("toir", "-f", "mmdnn", "-n", src.with_suffix(".pb"), "-w", src.with_suffix(".npy"),
              "-o", out, check=True)

    g = mm.GraphDef()
    g.ParseFromString(out.with_suffix(".pb").read_bytes())
    by_name = {n.name: n for n in g.node}
    assert set(by_name) >= {"input_1", "conv2d_1", "max_pooling2d_1", "dense_1", "dense_1_activation"}
    conv = by_name["conv2d_1"]
    assert conv.op == "Conv" and list(conv.input) == ["input_1"]
    assert list(conv.attr["kernel_shape"].list.i) == [3, 3]
    assert conv.attr["data_format"].s == b"channels_last"
    assert conv.attr["out_channels"].i == 4
    assert by_name["dense_1"].attr["units"].i == 5
    assert by_name["input_1"].attr["dtype"].type == mm.DataType.Value("DT_FLOAT32")
    # Our additions (graph inputs/outputs, ir_version, output types) survive as unknown fields:
    # the graph re-serialised with MMdnn's schema is still read by mmdnn as its own IR.
    round_trip = tmp_path / "round_trip.pb"
    round_trip.write_bytes(g.SerializeToString())
    proc = run_mmdnn("inspect", round_trip, "-w", out.with_suffix(".npz"), "--json", check=True)
    report = json.loads(proc.stdout)
    # (Were they dropped, mmdnn would take it for an MMdnn IR and say so as the producer.)
    assert report["producer"].startswith("mmdnn "), report["producer"]
    assert report["outputs"] == [{"name": "dense_1_activation", "type": "float32[?, 5]"}]

    # The JSON is protobuf JSON of the same graph, with proto field names.
    doc = json.loads(out.with_suffix(".json").read_text())
    assert [n["name"] for n in doc["node"]] == [n.name for n in g.node]
    assert doc["ir_version"] == 1

    # numpy opens the weights without pickle; the values are MMdnn's, unchanged in layout.
    with np.load(out.with_suffix(".npz"), allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(
            f"{layer}/{param}" for layer, params in weights.items() for param in params)
        for layer, params in weights.items():
            for param, value in params.items():
                got = npz[f"{layer}/{param}"]
                assert got.dtype == value.dtype and got.shape == value.shape
                np.testing.assert_array_equal(got, value)


def test_staged_scripts_passing_npy_keep_working(tmp_path, run_mmdnn):
    src = tmp_path / "mm"
    write_mmdnn_ir(src)
    out = tmp_path / "ir"
    run_mmdnn("toir", "-f", "mmdnn", "-n", src.with_suffix(".pb"), "-w", src.with_suffix(".npy"),
              "-o", out, check=True)
    # An MMdnn-era script names ir.npy in the next step; mmdnn wrote ir.npz.
    proc = run_mmdnn("inspect", out.with_suffix(".pb"), "-w", out.with_suffix(".npy"), "--json",
                     check=True)
    assert json.loads(proc.stdout)["parameters"] == 3 * 3 * 3 * 4 + 4 + 64 * 5 + 5


def evil_npy(path, marker):
    """A .npy shaped like MMdnn's weights whose pickle calls os.system when unpickled."""
    cmd = f"touch {marker}".encode()
    # protocol 2: GLOBAL posix.system, the command as argument, REDUCE, inside a dict.
    pickle_bytes = (b"\x80\x02}q\x00X\x05\x00\x00\x00layerq\x01cposix\nsystem\nq\x02"
                    + b"X" + len(cmd).to_bytes(4, "little") + cmd
                    + b"\x85q\x03Rq\x04s.")
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
                     + header.encode() + pickle_bytes)


def test_pickle_that_runs_code_is_refused(tmp_path, run_mmdnn):
    src = tmp_path / "mm"
    write_mmdnn_ir(src)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.npy"
    evil_npy(evil, marker)
    out = tmp_path / "out"
    proc = run_mmdnn("toir", "-f", "mmdnn", "-n", src.with_suffix(".pb"), "-w", evil, "-o", out)
    assert proc.returncode == 1, proc.stderr
    assert "posix.system" in proc.stderr and "never executes" in proc.stderr
    proc = run_mmdnn("inspect", src.with_suffix(".pb"), "-w", evil)
    assert proc.returncode == 1 and "posix.system" in proc.stderr
    assert not marker.exists()
    assert not any(tmp_path.glob("out*")), "no partial output"
