"""Runs a TensorFlow SavedModel (directory) through its serving signature."""
import tensorflow as tf

from common import main, port


def load(model, weights):
    loaded = tf.saved_model.load(model)
    return {"loaded": loaded, "fn": loaded.signatures["serving_default"],
            "runtime": f"tensorflow {tf.__version__}"}


def describe(h):
    specs = h["fn"].structured_input_signature[1]
    outs = h["fn"].structured_outputs
    return {
        "inputs": [port(k, specs[k].shape.as_list(), specs[k].dtype.name) for k in sorted(specs)],
        "outputs": [port(k, outs[k].shape.as_list(), outs[k].dtype.name) for k in sorted(outs)],
    }


def run(h, inputs, layers):
    fn = h["fn"]
    keys = sorted(fn.structured_input_signature[1].keys())
    outs = fn(**{k: tf.constant(v) for k, (_, v) in zip(keys, inputs)})
    return [(k, outs[k].numpy()) for k in sorted(outs)], []


if __name__ == "__main__":
    main(load, describe, run)
