"""Makes keras_tiny.pb / keras_tiny.npy: a real IR written by Microsoft MMdnn 0.3.1.

Ran under Python 3.6 with mmdnn==0.3.1, keras==2.2.4, tensorflow-cpu==1.15.0, "h5py<3"
(see ../../../shared/reference/python-env-notes.md §9 for that venv), then:

    python make_keras_tiny.py
    mmtoir -f keras -w tiny.h5 -o keras_tiny

keras_tiny.npy is MMdnn's pickled weights dict; mmdnn reads it with a restricted decoder that
never executes pickled code. Weights are Keras's random initialisation (not seeded).
"""
from keras.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from keras.models import Model

x = Input((8, 8, 3))
y = Conv2D(4, 3, padding="same", activation="relu")(x)
y = MaxPooling2D(2)(y)
y = Flatten()(y)
y = Dense(5, activation="softmax")(y)
m = Model(x, y)
print([layer.name for layer in m.layers])
m.save("tiny.h5")
