"""The original student notebook's CNN, exactly: three Conv2D-32 blocks on MFCC segments.

Source: the notebook genrelib started from (a common tutorial architecture for GTZAN MFCC segments).
Blocks: Conv2D(32, 3x3) - MaxPool(3x3, stride 2, 'same') - BatchNorm; Conv2D(32, 3x3) - MaxPool(3x3/2) - BatchNorm;
Conv2D(32, 2x2) - MaxPool(2x2/2) - BatchNorm; Flatten; Dense 128/64/32 ReLU each followed by dropout 0.3;
softmax. L2 0.001 on every weight layer; Adam 1e-4; sparse categorical cross-entropy.
On a 130x16 (or 130x13) MFCC segment it has 86,314 parameters.

One training setting differs from the notebook: batch normalization keeps its statistics with momentum 0.9
(:data:`genrelib.models._blocks.BN_MOMENTUM`) instead of Keras' 0.99. With a few hundred tracks an epoch is
about 20 steps, and with 0.99 the stored statistics lagged the weights by several epochs (measured on real
GTZAN tracks: stored means 0.2-0.37 standard deviations off the actual ones after 15 epochs), which skews
validation, early stopping and every prediction. The architecture and parameter count are the notebook's.
"""

from __future__ import annotations


def build(
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    learning_rate: float = 1e-4,
    l2: float = 0.001,
    dropout: float = 0.3,
    filters: int = 32,
):
    """Build and compile the seed CNN.

    Parameters
    ----------
    input_shape : tuple
        ``(frames, n_mfcc)`` or ``(frames, n_mfcc, 1)``.
    n_classes : int
        Number of genres.
    learning_rate, l2, dropout : float
        Adam's learning rate, the L2 factor of every weight layer, the dropout after each dense layer.
    filters : int
        Filters of each of the three convolutions (the notebook's 32; a hyper-parameter search may vary it).

    Returns
    -------
    keras.Model
    """
    import keras
    from keras import layers, regularizers

    from genrelib.models._blocks import BN_MOMENTUM

    if len(input_shape) == 2:
        input_shape = (*input_shape, 1)
    reg = regularizers.l2(l2)
    model = keras.Sequential(name="seed_cnn")
    model.add(keras.Input(shape=input_shape))
    for kernel, pool in (((3, 3), (3, 3)), ((3, 3), (3, 3)), ((2, 2), (2, 2))):
        model.add(layers.Conv2D(filters, kernel, activation="relu", kernel_regularizer=reg))
        model.add(layers.MaxPooling2D(pool, strides=(2, 2), padding="same"))
        model.add(layers.BatchNormalization(momentum=BN_MOMENTUM))
    model.add(layers.Flatten())
    for units in (128, 64, 32):
        model.add(layers.Dense(units, activation="relu", kernel_regularizer=reg))
        model.add(layers.Dropout(dropout))
    model.add(layers.Dense(n_classes, activation="softmax", kernel_regularizer=reg))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
