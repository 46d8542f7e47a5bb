"""A compact fully-convolutional CNN on log-mel segments.

Source: after the FCN of K. Choi, G. Fazekas and M. Sandler, "Automatic tagging using deep convolutional
neural networks", ISMIR 2016: stacked 3x3 convolutions with batch normalization and max-pooling, here four
blocks (32-64-64-128 filters) ending in global average pooling instead of the last pooling stages, so that it
trains in minutes on a CPU. Input batch normalization stands in for per-band standardization.
"""

from __future__ import annotations


def build(input_shape: tuple[int, ...], n_classes: int, *, learning_rate: float = 1e-3, dropout: float = 0.3,
          filters: tuple[int, ...] = (32, 64, 64, 128)):
    """Build and compile the mel CNN for ``(frames, n_mels)`` input.

    Returns
    -------
    keras.Model
    """
    import keras
    from keras import layers

    if len(input_shape) == 2:
        input_shape = (*input_shape, 1)
    inputs = keras.Input(shape=input_shape)
    x = layers.BatchNormalization()(inputs)
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, (3, 3), padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D((2, 2) if i < len(filters) - 1 else (2, 4))(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="mel_cnn")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
