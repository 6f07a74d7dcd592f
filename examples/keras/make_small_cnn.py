"""Makes small_cnn.keras, the quick start's model (README.md): a small Keras 3 image
classifier, 32×32 RGB in, 10 class scores out, with fixed seeds.

Weights are Keras's initialisation under seed 0, and the batch-normalization statistics are set
to seeded random values, so a converted model that mixed up any weight would compute something
else. Run with the test venv (requirements/keras.txt), from anywhere:

    $(scripts/venv)/bin/python examples/keras/make_small_cnn.py

The file's bytes change between runs (Keras stores the save date); its weights do not.
"""

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from keras import layers

OUT = Path(__file__).resolve().parent / "small_cnn.keras"


def build():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(10, activation="softmax", name="scores")(x)
    model = keras.Model(inputs, outputs, name="small_cnn")
    rng = np.random.default_rng(0)
    bn = model.get_layer("bn1")
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights(
        [
            rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
            rng.normal(0.0, 0.1, beta.shape).astype("float32"),
            rng.normal(0.0, 0.1, mean.shape).astype("float32"),
            rng.uniform(0.5, 1.5, var.shape).astype("float32"),
        ]
    )
    return model


if __name__ == "__main__":
    model = build()
    model.save(OUT)
    print(f"{OUT.name}: {model.count_params()} parameters, {OUT.stat().st_size} bytes")
