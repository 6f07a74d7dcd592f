"""Runs a Keras model with its own Keras: a .h5 whose keras_version is 2.x with tf_keras (Keras
2), every other .h5 and every .keras with keras (Keras 3). With layers, each layer's output is
keyed by the layer's name (`NAME/ACTIVATION`, e.g. `conv/relu`, for a layer with a non-linear
activation: the name of the IR node that applies it)."""
from common import main, port


def _keras_of(model):
    if model.lower().endswith((".h5", ".hdf5")):
        import h5py

        with h5py.File(model, "r") as f:
            version = f.attrs.get("keras_version")
        if isinstance(version, bytes):
            version = version.decode()
        if version is not None and str(version).startswith("2"):
            import tf_keras

            return tf_keras
    import keras

    return keras


def load(model, weights):
    keras = _keras_of(model)
    return {"keras": keras, "model": keras.models.load_model(model, compile=False), "probe": None,
            "runtime": f"{keras.__name__} {keras.__version__}"}


def _dtype(t):
    d = getattr(t, "dtype", None)
    return getattr(d, "name", d)


def _names(m, attr, tensors):
    names = getattr(m, attr, None)
    if names and len(names) == len(tensors):
        return list(names)
    return [getattr(t, "name", str(i)).split(":")[0] for i, t in enumerate(tensors)]


def describe(h):
    m = h["model"]
    ins, outs = list(m.inputs), list(m.outputs)
    return {
        "inputs": [port(n, tuple(t.shape), _dtype(t)) for n, t in zip(_names(m, "input_names", ins), ins)],
        "outputs": [port(n, tuple(t.shape), _dtype(t)) for n, t in zip(_names(m, "output_names", outs), outs)],
    }


def _key(layer):
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", "linear")
    return f"{layer.name}/{name}" if act is not None and name != "linear" else layer.name


def _probe(h):
    """A model returning every layer's output (None when the model's structure does not allow
    it, e.g. a layer called twice)."""
    if h["probe"] is None:
        m, keras = h["model"], h["keras"]
        layers = [l for l in m.layers if type(l).__name__ != "InputLayer"]
        try:
            probe = keras.Model(m.inputs, [l.output for l in layers])
            h["probe"] = (probe, [[_key(l)] for l in layers])
        except (AttributeError, ValueError, RuntimeError):
            h["probe"] = (None, [])
    return h["probe"]


def _predict(m, inputs):
    outs = m.predict([v for _, v in inputs] if len(inputs) > 1 else inputs[0][1], verbose=0)
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]


def run(h, inputs, layers):
    m = h["model"]
    outs = list(zip(_names(m, "output_names", list(m.outputs)), _predict(m, inputs)))
    if not layers:
        return outs, []
    probe, keys = _probe(h)
    if probe is None:
        return outs, []
    return outs, list(zip(keys, _predict(probe, inputs)))


if __name__ == "__main__":
    main(load, describe, run)
