#!/usr/bin/env python3
"""Write a tiny MMdnn 0.3.1 IR model, as `mmtoir -f keras` would produce it.

    python tests/e2e/make_mmdnn_ir.py [--legacy-npy] OUT_PREFIX

writes OUT_PREFIX.pb (serialized GraphDef) and OUT_PREFIX.npy (pickled weights
dict, numpy seed 0). See mmdnn_ir_schema.py for the model. --legacy-npy writes
the .npy as numpy 1.x (MMdnn's own stack) does, so old numpy can load it.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmdnn_ir_schema as ir  # noqa: E402


def main(argv):
    args = argv[1:]
    legacy = "--legacy-npy" in args
    args = [a for a in args if a != "--legacy-npy"]
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    prefix = args[0]
    graph = ir.make_mmdnn_keras_like_ir()
    with open(prefix + ".pb", "wb") as f:
        f.write(graph.SerializeToString(deterministic=True))
    weights = ir.make_mmdnn_weights(np.random.default_rng(0))
    ir.save_mmdnn_npy(prefix + ".npy", weights, legacy=legacy)
    print(f"wrote {prefix}.pb and {prefix}.npy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
