"""Runs a Keras model (.keras, .h5) with Keras's own predict."""
import keras

from common import main


def run(model, inputs):
    m = keras.models.load_model(model, compile=False)
    outs = m.predict([v for _, v in inputs] if len(inputs) > 1 else inputs[0][1], verbose=0)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    names = [t.name if hasattr(t, "name") else str(i) for i, t in enumerate(m.outputs)]
    return list(zip(names, outs))


if __name__ == "__main__":
    main(run)
