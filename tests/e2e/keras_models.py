"""Keras models for the Keras frontend's e2e tests (tests/e2e/test_keras_*.py).

`save_case(kind, name, out)` runs inside a fresh interpreter (the tests call it through
`run_in_subprocess`): it builds the model with fixed seeds, gives every normalization
statistic, scale and bias random values (so a mix-up of weights shows), saves it in each
format under test, and writes the inputs (`in<i>.npy`), Keras's outputs (`ref<j>.npy`) and
`manifest.json` ({"files": [...], "inputs": [names]}).

`compare(run_mmdnn, out)` then runs `mmdnn run` on every saved file and checks each output
against Keras: max|Δ| ≤ 1e-4·max(1, |ref|) elementwise and, for class scores, the same argmax.

Kinds: "layers" (hand-built Keras 3 models, one per layer family: FAMILIES), "legacy"
(Keras 2 models built with tf_keras: LEGACY), "app" (keras.applications / tf_keras
applications with random weights at their smallest input size, compared on their logits:
APPS).
"""

import json
import os
import time
from pathlib import Path

import numpy as np

from conftest import layout_problems

SEED = 1234

# name -> (library, constructor, input size): the smallest input each model accepts.
APPS = {
    "Xception": ("keras", "Xception", 71),
    "VGG16": ("keras", "VGG16", 32),
    "VGG19": ("keras", "VGG19", 32),
    "ResNet50": ("keras", "ResNet50", 32),
    "ResNet101": ("keras", "ResNet101", 32),
    "ResNet152": ("keras", "ResNet152", 32),
    "ResNet50V2": ("keras", "ResNet50V2", 32),
    "ResNet101V2": ("keras", "ResNet101V2", 32),
    "ResNet152V2": ("keras", "ResNet152V2", 32),
    "InceptionV3": ("keras", "InceptionV3", 75),
    "InceptionResNetV2": ("keras", "InceptionResNetV2", 75),
    "MobileNet": ("keras", "MobileNet", 32),
    "MobileNetV2": ("keras", "MobileNetV2", 32),
    "MobileNetV3Small": ("keras", "MobileNetV3Small", 32),
    "MobileNetV3Large": ("keras", "MobileNetV3Large", 32),
    "DenseNet121": ("keras", "DenseNet121", 32),
    "DenseNet169": ("keras", "DenseNet169", 32),
    "DenseNet201": ("keras", "DenseNet201", 32),
    "NASNetMobile": ("keras", "NASNetMobile", 32),
    "NASNetLarge": ("keras", "NASNetLarge", 32),
    **{f"EfficientNetB{i}": ("keras", f"EfficientNetB{i}", 32) for i in range(8)},
    **{
        f"EfficientNetV2{s}": ("keras", f"EfficientNetV2{s}", 32)
        for s in ["B0", "B1", "B2", "B3", "S", "M", "L"]
    },
    **{
        f"ConvNeXt{s}": ("keras", f"ConvNeXt{s}", 32)
        for s in ["Tiny", "Small", "Base", "Large", "XLarge"]
    },
    # Keras 3 dropped RegNet; tf_keras (Keras 2) still has it, so these also test Keras 2 .h5.
    **{
        f"RegNet{k}{s}": ("tf_keras", f"RegNet{k}{s}", 32)
        for k in "XY"
        for s in ["002", "004", "006", "008", "016", "032", "040", "064", "080", "120", "160", "320"]
    },
}

# The CI subset: together these use every layer class and op the zoo uses.
CI_APPS = [
    "MobileNetV3Small",  # Rescaling, hard_swish via Keras 3 ops, SE blocks, ReLU(6)
    "InceptionResNetV2",  # CustomScaleLayer, "same" average pooling, Concatenate
    "NASNetMobile",  # SeparableConv2D, Cropping2D, ZeroPadding2D, odd "same" padding
    "EfficientNetB0",  # Normalization, DepthwiseConv2D, swish, Reshape, Multiply
    "ConvNeXtTiny",  # LayerNormalization, Dense on rank 4, gelu, LayerScale, nested Sequential
    "ResNet50V2",  # pre-activation BN, MaxPooling2D with padding
    "DenseNet121",  # AveragePooling2D, concatenation chains
    "RegNetX002",  # tf_keras (Keras 2 .h5), grouped convolutions
]


def _keras(lib):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if lib == "tf_keras":
        import tf_keras as keras
    else:
        import keras
    keras.utils.set_random_seed(SEED)
    return keras


def randomize(model, seed=SEED):
    """Random normalization statistics, scales, biases and PReLU slopes; kernels keep their
    (seeded) initialization. The ranges are mild: with wider ones the deepest random networks
    (EfficientNetV2-S/M/L) amplify float32 rounding beyond any tolerance."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        name = getattr(w, "path", None) or w.name
        leaf = name.split("/")[-1].split(":")[0]
        v = np.asarray(w.numpy())
        if not np.issubdtype(v.dtype, np.floating):
            continue
        # (Normalization's adapted mean and variance are left alone: Keras caches them.)
        if leaf in ("moving_variance", "gamma"):
            new = rng.uniform(0.9, 1.1, v.shape)
        elif leaf in ("moving_mean", "beta", "bias"):
            new = rng.normal(0.0, 0.02, v.shape)
        elif leaf == "alpha":
            new = rng.uniform(0.0, 0.5, v.shape)
        else:
            continue
        w.assign(new.astype(v.dtype))


def damp_residual_branches(model, factor=0.1):
    """Scales the gamma of each BatchNormalization that ends a residual branch (feeds an Add
    layer or a tf_keras `x + y`, possibly through Dropout) by `factor`, as "zero-γ" initialization does. Without it the
    deepest random networks (EfficientNetV2L) are chaotic: Keras's own float32 and float64
    results differ by most of their magnitude, so no float32 implementation can match."""
    def producer(t):
        history = getattr(t, "_keras_history", None)
        return history[0] if history else None

    for layer in model.layers:
        cls = layer.__class__.__name__
        if not (cls == "Add" or cls == "TFOpLambda" and layer.get_config()["function"] in (
            "__operators__.add", "math.add"
        )):
            continue
        for node in layer._inbound_nodes:
            for t in getattr(node, "keras_inputs", None) or node.input_tensors:
                src = producer(t)
                while src is not None and src.__class__.__name__ in ("Dropout", "StochasticDepth"):
                    src = producer(src._inbound_nodes[0].input_tensors[0])
                if src is not None and src.__class__.__name__ == "BatchNormalization" and src.scale:
                    src.gamma.assign(src.gamma.numpy() * factor)


# ---------------------------------------------------------------------------------------------
# Hand-built Keras 3 models, one per layer family.


def _conv(keras):
    L = keras.layers
    x1 = keras.Input((11, 4), name="seq")
    a = L.Conv1D(6, 3, strides=2, padding="same", activation="relu")(x1)
    a = L.Conv1D(6, 3, dilation_rate=2, padding="causal", groups=2)(a)
    a = L.Conv1DTranspose(5, 3, strides=2, padding="same")(a)
    a = L.DepthwiseConv1D(3, depth_multiplier=2, padding="same")(a)
    a = L.SeparableConv1D(4, 3, padding="valid", activation="tanh")(a)
    x2 = keras.Input((9, 10, 3), name="img")
    b = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x2)
    b = L.Conv2D(8, (3, 2), dilation_rate=(2, 1), padding="same", groups=4, activation="elu")(b)
    b = L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same")(b)
    b = L.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, activation="relu")(b)
    b = L.Conv2DTranspose(4, 3, strides=2, padding="valid")(b)
    b = L.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1)(b)
    b = L.Conv2DTranspose(3, 2, strides=3, padding="valid", output_padding=1)(b)
    x3 = keras.Input((5, 6, 7, 2), name="vol")
    c = L.Conv3D(4, 3, strides=(1, 2, 2), padding="same")(x3)
    c = L.Conv3DTranspose(3, 2, strides=2, padding="valid")(c)
    return keras.Model([x1, x2, x3], [a, b, c], name="conv")


def _pooling(keras):
    L = keras.layers
    x1 = keras.Input((13, 3), name="seq")
    p1 = [
        L.MaxPooling1D(3, strides=2, padding="same")(x1),
        L.AveragePooling1D(2, padding="valid")(x1),
        L.AveragePooling1D(4, strides=3, padding="same")(x1),
    ]
    g1 = [L.GlobalMaxPooling1D()(x1), L.GlobalAveragePooling1D(keepdims=True)(x1)]
    x2 = keras.Input((9, 10, 3), name="img")
    p2 = [
        L.MaxPooling2D(3, strides=2, padding="same")(x2),
        L.AveragePooling2D((3, 2), strides=(2, 3), padding="same")(x2),
        L.MaxPooling2D(2)(x2),
        L.AveragePooling2D(3, strides=1, padding="valid")(x2),
    ]
    g2 = [L.GlobalMaxPooling2D(keepdims=True)(x2), L.GlobalAveragePooling2D()(x2)]
    x3 = keras.Input((5, 6, 7, 2), name="vol")
    p3 = [
        L.MaxPooling3D(2, padding="same")(x3),
        L.AveragePooling3D(3, strides=2, padding="same")(x3),
    ]
    g3 = [L.GlobalMaxPooling3D()(x3), L.GlobalAveragePooling3D()(x3)]
    return keras.Model([x1, x2, x3], p1 + g1 + p2 + g2 + p3 + g3, name="pooling")


ACTIVATIONS = [
    "relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax", "elu", "selu", "softplus",
    "softsign", "swish", "silu", "gelu", "mish", "exponential", "hard_sigmoid", "hard_swish",
    "hard_silu", "leaky_relu", "hard_tanh", "log_sigmoid", "tanh_shrink", "linear",
]


def _activations(keras):
    L = keras.layers
    x = keras.Input((4, 6), name="x")
    outs = [L.Activation(a)(x) for a in ACTIVATIONS]
    outs += [
        L.Dense(5, activation="sigmoid")(x),  # Dense on rank 3, fused activation
        L.ReLU()(x),
        L.ReLU(max_value=1.5)(x),
        L.ReLU(negative_slope=0.1)(x),
        L.ReLU(threshold=0.3)(x),
        L.ReLU(max_value=2.0, negative_slope=0.2, threshold=0.5)(x),
        L.LeakyReLU(negative_slope=0.25)(x),
        L.PReLU(shared_axes=[1])(x),
        L.PReLU()(x),
        L.ELU(alpha=0.7)(x),
        L.Softmax(axis=1)(x),
        L.Dropout(0.5)(L.GaussianNoise(1.0)(L.GaussianDropout(0.3)(x))),
        L.SpatialDropout1D(0.5)(L.AlphaDropout(0.2)(L.ActivityRegularization(0.1)(x))),
        L.Identity()(x),
    ]
    return keras.Model(x, outs, name="activations")


def _normalization(keras):
    L = keras.layers
    x = keras.Input((5, 6, 8), name="x")
    norm = L.Normalization(axis=-1)
    norm.adapt(np.random.default_rng(0).normal(2.0, 3.0, (20, 5, 6, 8)).astype("float32"))
    outs = [
        L.BatchNormalization()(x),
        L.BatchNormalization(center=False, scale=False, epsilon=0.01)(x),
        L.BatchNormalization(axis=1)(x),
        L.LayerNormalization()(x),
        L.LayerNormalization(axis=[2, 3], center=False)(x),
        L.GroupNormalization(groups=4)(x),
        L.GroupNormalization(groups=2, scale=False, epsilon=1e-5)(x),
        norm(x),
        L.Normalization(mean=[1.0] * 8, variance=[4.0] * 8)(x),
        L.Normalization(axis=-1, mean=[0.5] * 8, variance=[2.0] * 8, invert=True)(x),
        L.Rescaling(1.0 / 255, offset=-1.0)(x),
        L.Rescaling([0.5] * 8)(x),
        L.UnitNormalization(axis=-1)(x),
    ]
    return keras.Model(x, outs, name="normalization")


def _reshaping(keras):
    L = keras.layers
    x = keras.Input((4, 6, 3), name="img")
    s = keras.Input((6, 4), name="seq")
    v = keras.Input((3, 4, 5, 2), name="vol")
    f = keras.Input((6,), name="vec")
    outs = [
        L.Reshape((12, 6))(x),
        L.Reshape((-1, 3))(x),
        L.Flatten()(x),
        L.Permute((3, 1, 2))(x),
        L.RepeatVector(3)(f),
        L.ZeroPadding1D((1, 2))(s),
        L.ZeroPadding2D(((1, 0), (2, 3)))(x),
        L.ZeroPadding2D(1)(x),
        L.ZeroPadding3D((1, 0, 2))(v),
        L.Cropping1D((1, 2))(s),
        L.Cropping2D(((1, 0), (2, 1)))(x),
        L.Cropping3D(1)(v),
        L.UpSampling1D(3)(s),
        L.UpSampling2D((2, 3))(x),
        L.UpSampling2D(2, interpolation="bilinear")(x),
        L.UpSampling3D((1, 2, 2))(v),
        L.Resizing(7, 9)(x),
        L.Resizing(8, 12, interpolation="nearest")(x),
        L.Resizing(3, 5)(x),
    ]
    return keras.Model([x, s, v, f], outs, name="reshaping")


def _merging(keras):
    L = keras.layers
    a = keras.Input((4, 5), name="a")
    b = keras.Input((4, 5), name="b")
    c = keras.Input((4, 5), name="c")
    u = keras.Input((7,), name="u")
    w = keras.Input((7,), name="w")
    m = keras.Input((3, 5), name="m")
    outs = [
        L.Concatenate()([a, b, c]),
        L.Concatenate(axis=1)([a, b]),
        L.Add()([a, b, c]),
        L.Subtract()([a, b]),
        L.Multiply()([a, b, c]),
        L.Average()([a, b, c]),
        L.Maximum()([a, b]),
        L.Minimum()([a, b, c]),
        L.Dot(axes=1)([u, w]),
        L.Dot(axes=1, normalize=True)([u, w]),
        L.Dot(axes=(2, 2))([a, m]),
        L.Dot(axes=(1, 1))([a, b]),
    ]
    return keras.Model([a, b, c, u, w, m], outs, name="merging")


def _recurrent(keras):
    L = keras.layers
    tok = keras.Input((7,), dtype="int32", name="tokens")
    e = L.Embedding(20, 6)(tok)
    outs = [
        L.SimpleRNN(5, return_sequences=True)(e),
        L.SimpleRNN(4, activation="relu", go_backwards=True)(e),
        L.LSTM(5, return_sequences=True)(e),
        L.LSTM(4, return_sequences=True, go_backwards=True, use_bias=False)(e),
        *L.LSTM(3, return_state=True)(e),
        L.GRU(5, return_sequences=True)(e),
        L.GRU(4, reset_after=False, return_sequences=True, go_backwards=True)(e),
        *L.GRU(3, return_state=True, go_backwards=True)(e),
        L.Bidirectional(L.LSTM(4, return_sequences=True))(e),
        L.Bidirectional(L.GRU(3), merge_mode="sum")(e),
        L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="ave")(e),
        L.Bidirectional(L.GRU(2, reset_after=False, return_sequences=True), merge_mode="mul")(e),
        *L.Bidirectional(L.LSTM(2, return_state=True), merge_mode=None)(e),
    ]
    return keras.Model(tok, outs, name="recurrent")


def _recurrent_state(keras):
    """Initial states from Input layers and final states returned: a streaming model."""
    L = keras.layers
    x = keras.Input((5, 3), name="x")
    h, c, g = (keras.Input((4,), name=n) for n in ("h", "c", "g"))
    fw, bw = keras.Input((2,), name="fw"), keras.Input((2,), name="bw")
    y, h1, c1 = L.LSTM(4, return_sequences=True, return_state=True)(x, initial_state=[h, c])
    z, g1 = L.GRU(4, return_state=True, go_backwards=True)(y, initial_state=[g])
    b = L.Bidirectional(L.SimpleRNN(2, return_sequences=True))(x, initial_state=[fw, bw])
    return keras.Model([x, h, c, g, fw, bw], [z, h1, c1, g1, b], name="recurrent_state")


def _wrappers(keras):
    L = keras.layers
    s = keras.Input((5, 6), name="seq")
    t = keras.Input((3, 6, 6, 2), name="frames")
    q = keras.Input((4, 6), name="q")
    outs = [
        L.TimeDistributed(L.Dense(4, activation="relu"))(s),
        L.TimeDistributed(L.Conv2D(3, 3, padding="same"))(t),
        L.TimeDistributed(L.GlobalAveragePooling2D())(t),
        L.MultiHeadAttention(num_heads=2, key_dim=3)(q, s),
        L.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4, output_shape=5)(q, s, s),
        L.MultiHeadAttention(num_heads=1, key_dim=4, use_bias=False)(s, s),
    ]
    out, scores = L.MultiHeadAttention(num_heads=2, key_dim=2)(q, q, return_attention_scores=True)
    return keras.Model([s, t, q], outs + [out, scores], name="wrappers")


def _structure(keras):
    """Nested functional and Sequential models, a shared layer, a nested model called twice,
    several inputs and outputs, Keras 3 operations on tensors."""
    L = keras.layers
    inner_in = keras.Input((6,), name="inner_in")
    inner = keras.Model(inner_in, L.Dense(6, activation="tanh", name="inner_dense")(inner_in), name="inner")
    seq = keras.Sequential([keras.Input((6,)), L.Dense(5, name="s1"), L.ReLU(name="s2")], name="seq")
    a = keras.Input((6,), name="a")
    b = keras.Input((6,), name="b")
    shared = L.Dense(6, name="shared")
    ha, hb = shared(a), shared(b)
    ia, ib = inner(ha), inner(hb)
    mid = L.Add(name="mix")([ia, ib])
    o1 = seq(mid)
    o2 = keras.ops.relu(mid * 2.0 - ha) + 1.5
    o3 = keras.ops.concatenate([ia, ib], axis=-1)
    o4 = keras.ops.reshape(keras.ops.transpose(keras.ops.expand_dims(mid, 1), (0, 2, 1)), (-1, 3, 2))
    o5 = keras.ops.mean(o4, axis=1)
    return keras.Model([a, b], [o1, o2, o3, o4, o5, ib], name="structure")


def _sequential(keras):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(4, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ],
        name="plain_sequential",
    )


FAMILIES = {
    "conv": _conv,
    "pooling": _pooling,
    "activations": _activations,
    "normalization": _normalization,
    "reshaping": _reshaping,
    "merging": _merging,
    "recurrent": _recurrent,
    "recurrent_state": _recurrent_state,
    "wrappers": _wrappers,
    "structure": _structure,
    "sequential": _sequential,
}


# ---------------------------------------------------------------------------------------------
# Keras 2 (tf_keras) models: TFOpLambda, nested models with Keras 2 node numbering.


def _legacy_ops(keras):
    import tensorflow as tf

    L = keras.layers
    x = keras.Input((6, 6, 3), name="x")
    y = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    y2 = y + 3.0
    y3 = tf.concat([y, y2 * 0.5], axis=-1)
    y3 = y3[:, 1:5, ::2, :]
    y3 = tf.nn.relu6(y3 - 1.0)
    y4 = tf.math.reduce_mean(y3, axis=[1, 2], keepdims=True)
    y4 = tf.squeeze(y4, axis=[1, 2])
    y5 = tf.transpose(tf.reshape(y3, (-1, 4, 3, 8)), perm=[0, 2, 1, 3])
    y6 = tf.expand_dims(y4, 1)[:, 0, 2:]
    y7 = tf.math.multiply(y4, y4) / 2.0
    return keras.Model(x, [y3, y4, y5, y6, y7], name="legacy_ops")


def _legacy_structure(keras):
    L = keras.layers
    sub = keras.Sequential([L.Dense(5, input_shape=(8,), name="d1"), L.Activation("relu")], name="sub")
    inner_in = keras.Input((8,), name="inner_in")
    inner = keras.Model(inner_in, L.Dense(8, name="inner_dense")(inner_in), name="inner")
    a = keras.Input((8,), name="a")
    b = keras.Input((8,), name="b")
    ia, ib = inner(a), inner(b)
    tok = keras.Input((5,), dtype="int32", name="tok")
    e = L.Embedding(10, 4)(tok)
    r = L.Bidirectional(L.LSTM(3, return_sequences=True))(e)
    g = L.GRU(3, reset_after=False)(r)
    n = L.BatchNormalization()(L.Dense(4)(g))
    return keras.Model([a, b, tok], [sub(ia), L.Add()([ia, ib]), n], name="legacy_structure")


LEGACY = {"ops": _legacy_ops, "structure": _legacy_structure, "recurrent_state": _recurrent_state}


# ---------------------------------------------------------------------------------------------


def _inputs_for(model):
    """(names, arrays) of the model's inputs, from its config's input layers."""
    cfg = model.get_config()
    if "input_layers" in cfg:
        layers = cfg["input_layers"]
        if layers and isinstance(layers[0], str):
            layers = [layers]
        names = [l[0] for l in layers]
    else:
        first = cfg["layers"][0]
        names = [first["config"]["name"]] if first["class_name"] == "InputLayer" else [
            first["config"]["name"] + "_input"
        ]
    rng = np.random.default_rng(SEED)
    arrays = []
    for t in model.inputs:
        shape = [2 if d is None else int(d) for d in t.shape]
        if "int" in str(t.dtype):
            arrays.append(rng.integers(0, 5, size=shape).astype(np.int32))
        else:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
    return names, arrays


def save_case(kind, name, out):
    """Builds model `name` of `kind`, saves it and its reference outputs under `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if kind == "app":
        lib, ctor, size = APPS[name]
        keras = _keras(lib)
        # Logits rather than softmax scores: a stronger comparison.
        model = getattr(keras.applications, ctor)(
            weights=None, input_shape=(size, size, 3), classifier_activation=None
        )
    elif kind == "legacy":
        lib = "tf_keras"
        keras = _keras(lib)
        model = LEGACY[name](keras)
    else:
        lib = "keras"
        keras = _keras(lib)
        model = FAMILIES[name](keras)
    randomize(model)
    if kind == "app":
        damp_residual_branches(model)
    names, xs = _inputs_for(model)
    ref = model(xs if len(xs) > 1 else xs[0], training=False)
    if not isinstance(ref, (list, tuple)):
        ref = [ref]
    files = []
    for fmt in ["keras", "h5"]:
        path = out / f"model.{fmt}"
        model.save(path)
        files.append(path.name)
    for i, x in enumerate(xs):
        np.save(out / f"in{i}.npy", x)
    for j, r in enumerate(ref):
        np.save(out / f"ref{j}.npy", np.asarray(r))
    manifest = {"files": files, "inputs": names, "keras_seconds": round(time.time() - t0, 1)}
    (out / "manifest.json").write_text(json.dumps(manifest))


def save_json_pair(lib, out):
    """A model saved as MMdnn's pair: architecture JSON + weights-only .h5."""
    out = Path(out)
    keras = _keras(lib)
    model = FAMILIES["sequential"](keras) if lib == "keras" else LEGACY["structure"](keras)
    randomize(model)
    names, xs = _inputs_for(model)
    ref = model(xs if len(xs) > 1 else xs[0], training=False)
    ref = ref if isinstance(ref, (list, tuple)) else [ref]
    (out / "model.json").write_text(model.to_json())
    model.save_weights(out / ("model.weights.h5" if lib == "keras" else "weights.h5"))
    for i, x in enumerate(xs):
        np.save(out / f"in{i}.npy", x)
    for j, r in enumerate(ref):
        np.save(out / f"ref{j}.npy", np.asarray(r))
    (out / "manifest.json").write_text(json.dumps({"inputs": names}))


def check_outputs(proc, out, n_refs):
    """Compares the files `mmdnn run` wrote (listed on its stdout) with ref<j>.npy; returns a
    list of problems (empty when all match) and the worst error seen."""
    problems, worst = [], 0.0
    lines = [l for l in proc.stdout.splitlines() if " -> " in l]
    if len(lines) != n_refs:
        return [f"mmdnn wrote {len(lines)} outputs, Keras has {n_refs}"], worst
    for j, line in enumerate(lines):
        got = np.load(line.rsplit(" -> ", 1)[1].strip())
        ref = np.load(Path(out) / f"ref{j}.npy")
        if got.shape != ref.shape:
            problems.append(f"output {j}: shape {got.shape}, Keras {ref.shape}")
            continue
        got = got.astype(np.float64)
        ref = ref.astype(np.float64)
        err = np.abs(got - ref)
        worst = max(worst, float(err.max(initial=0.0)))
        bad = err > 1e-4 * np.maximum(1.0, np.abs(ref))
        if bad.any():
            i = np.unravel_index(np.argmax(err - 1e-4 * np.maximum(1.0, np.abs(ref))), ref.shape)
            problems.append(
                f"output {j} ({line.split()[0]}): {int(bad.sum())} of {ref.size} values off, "
                f"max |Δ| {err.max():.3g}, e.g. at {tuple(int(k) for k in i)}: {got[i]} vs {ref[i]}"
            )
        if ref.ndim == 2 and ref.shape[1] > 1 and (got.argmax(1) != ref.argmax(1)).any():
            problems.append(f"output {j}: argmax differs")
    return problems, worst


def compare(run_mmdnn, out, pair=None):
    """Runs `mmdnn run` on each saved file (or on the -n/-w `pair`) and checks the outputs.
    Returns (problems, {file: (worst error, seconds)})."""
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text())
    n_refs = len(list(out.glob("ref*.npy")))
    feeds = []
    for i, name in enumerate(manifest["inputs"]):
        feeds += ["--input", f"{name}={out / f'in{i}.npy'}"]
    if pair:
        runs = [(pair[0], ["-f", "keras", "-n", out / pair[0], "-w", out / pair[1]])]
    else:
        # No -f: `mmdnn run` tells Keras files by their extension.
        runs = [(f, ["-n", out / f]) for f in manifest["files"]]
    problems, stats = [], {}
    for label, model_args in runs:
        dest = out / f"run_{label}"
        t0 = time.time()
        proc = run_mmdnn("run", *model_args, *feeds, "-o", dest)
        secs = round(time.time() - t0, 1)
        if proc.returncode != 0:
            problems.append(f"{label}: mmdnn run failed ({proc.returncode}):\n{proc.stderr}")
            continue
        found, worst = check_outputs(proc, out, n_refs)
        problems += [f"{label}: {p}" for p in found]
        stats[label] = (worst, secs)
    # The layout property on this model (its first file).
    label, model_args = runs[0]
    ir = out / "layout_ir"
    proc = run_mmdnn("toir", "-f", "keras", *model_args[model_args.index("-n"):], "-o", ir)
    if proc.returncode != 0:
        problems.append(f"{label}: mmdnn toir failed ({proc.returncode}):\n{proc.stderr}")
    else:
        problems += [f"{label}: {p}" for p in layout_problems(run_mmdnn, f"{ir}.pb", out)]
    return problems, stats
