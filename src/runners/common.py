"""Shared protocol of mmdnn's framework runners (embedded in the mmdnn binary).

    python <runner>.py MODEL WORKDIR

WORKDIR/inputs.json lists the inputs as [{"name": ..., "file": ...}] (.npy files, in the
model's input order). The runner writes each model output as WORKDIR/out_<i>.npy and their names
to WORKDIR/outputs.json. Runners never modify the model file.
"""
import json
import os
import sys

import numpy as np


def read_inputs(workdir):
    with open(os.path.join(workdir, "inputs.json")) as f:
        specs = json.load(f)
    return [(s["name"], np.load(os.path.join(workdir, s["file"]), allow_pickle=False)) for s in specs]


def write_outputs(workdir, named):
    names = []
    for i, (name, value) in enumerate(named):
        np.save(os.path.join(workdir, f"out_{i}.npy"), np.asarray(value))
        names.append(str(name))
    with open(os.path.join(workdir, "outputs.json"), "w") as f:
        json.dump(names, f)


def main(run):
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} MODEL WORKDIR")
    model, workdir = sys.argv[1], sys.argv[2]
    write_outputs(workdir, run(model, read_inputs(workdir)))
