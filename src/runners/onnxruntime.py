"""Runs an ONNX model with onnxruntime (CPU)."""
import onnxruntime as ort

from common import main


def run(model, inputs):
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    feeds = dict(zip(names, (v for _, v in inputs)))
    outs = sess.run(None, feeds)
    return [(o.name, v) for o, v in zip(sess.get_outputs(), outs)]


if __name__ == "__main__":
    main(run)
