"""Shared protocol of mmdnn's framework runners (embedded in the mmdnn binary).

    python <runner>.py WORKDIR

WORKDIR/job.json holds {"model": PATH, "weights": PATH or null, "describe": bool,
"layers": bool, "runs": [[{"name": ..., "file": ...}, ...], ...]}: one list of .npy inputs per
run, in the model's input order. The runner writes WORKDIR/result.json:
{"interface": {"inputs": [PORT], "outputs": [PORT]} or null, "runs": [{"outputs": [{"name",
"file"}], "layers": [{"keys": [...], "file"}]}]}, a PORT being {"name", "shape": [int, str (a
named dynamic dim) or null (an unnamed one)] or null, "dtype": str or null}. Each runner module
defines load(model, weights) (a dict; its "runtime" names the library that runs the model, as
"result.json"'s "runtime"), describe(handle) and run(handle, inputs, layers) -> (outputs,
layers): outputs [(name, array)], layers [(keys, array)] in execution order. Runners never modify
the model file.
"""
import json
import os
import sys

import numpy as np


def _save(workdir, stem, value):
    file = f"{stem}.npy"
    np.save(os.path.join(workdir, file), np.asarray(value))
    return file


def port(name, shape, dtype):
    """An interface entry; `shape` may hold ints, dim names and None."""
    dims = None
    if shape is not None:
        dims = []
        for d in shape:
            if isinstance(d, str) and d:
                dims.append(d)
            elif isinstance(d, (int, np.integer)) and int(d) >= 0:
                dims.append(int(d))
            else:
                dims.append(None)
    return {"name": str(name), "shape": dims, "dtype": None if dtype is None else str(dtype)}


def main(load, describe, run):
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} WORKDIR")
    workdir = sys.argv[1]
    with open(os.path.join(workdir, "job.json")) as f:
        job = json.load(f)
    handle = load(job["model"], job.get("weights"))
    result = {"interface": describe(handle) if job.get("describe") else None, "runs": [],
              "runtime": handle.get("runtime")}
    for r, specs in enumerate(job.get("runs", [])):
        inputs = [(s["name"], np.load(os.path.join(workdir, s["file"]), allow_pickle=False)) for s in specs]
        outputs, layers = run(handle, inputs, job.get("layers", False))
        result["runs"].append({
            "outputs": [{"name": str(n), "file": _save(workdir, f"out_{r}_{i}", v)}
                        for i, (n, v) in enumerate(outputs)],
            "layers": [{"keys": [str(k) for k in keys], "file": _save(workdir, f"layer_{r}_{i}", v)}
                       for i, (keys, v) in enumerate(layers)],
        })
    with open(os.path.join(workdir, "result.json"), "w") as f:
        json.dump(result, f)
