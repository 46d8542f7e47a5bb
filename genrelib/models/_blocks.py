"""Building blocks shared by the Keras families."""

from __future__ import annotations


def input_layer(input_shape: tuple[int, ...]):
    """``keras.Input`` for ``(frames, bands)`` or ``(frames, bands, 1)`` segments."""
    import keras

    if len(input_shape) == 2:
        input_shape = (*input_shape, 1)
    return keras.Input(shape=input_shape)


def conv_block(x, filters: int, pool: tuple[int, int], *, bn_momentum: float = 0.99):
    """3x3 convolution (no bias), batch normalization, ReLU, max-pooling."""
    from keras import layers

    x = layers.Conv2D(filters, (3, 3), padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    x = layers.Activation("relu")(x)
    return layers.MaxPooling2D(pool)(x)


def classifier(inputs, x, n_classes: int, *, dropout: float, learning_rate: float, name: str):
    """Dropout and a softmax layer on ``x``; the model compiled with Adam and sparse cross-entropy."""
    import keras
    from keras import layers

    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
