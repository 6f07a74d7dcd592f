"""Runs a TensorFlow SavedModel (directory) through its serving signature."""
import tensorflow as tf

from common import main


def run(model, inputs):
    loaded = tf.saved_model.load(model)
    fn = loaded.signatures["serving_default"]
    keys = sorted(fn.structured_input_signature[1].keys())
    outs = fn(**{k: tf.constant(v) for k, (_, v) in zip(keys, inputs)})
    return [(k, outs[k].numpy()) for k in sorted(outs)]


if __name__ == "__main__":
    main(run)
