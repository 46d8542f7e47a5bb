"""Building blocks shared by the Keras families."""

from __future__ import annotations

import numpy as np

#: Batch-norm momentum of every genrelib block (Keras' default is 0.99). The stored statistics are a moving
#: average with an effective memory of 1 / (1 - momentum) steps: 100 steps with 0.99, which is several epochs
#: of a data set of a few hundred tracks, so that validation (and early stopping) and test predictions used
#: statistics of long-gone weights. Measured on 100 real GTZAN tracks: mel_cnn with 0.99 scored 32% per
#: segment on its own training tracks with the stored statistics and 65% with batch statistics. With 0.9 the
#: memory is 10 steps.
BN_MOMENTUM = 0.9

#: Smallest band variance used for standardization (features are in dB or MFCC units, variances >> 1).
VAR_FLOOR = 1e-2

#: Name of the input standardization layer; :func:`adapt` sets its statistics from the training data.
STANDARDIZE = "standardize"


def input_layer(input_shape: tuple[int, ...]):
    """``keras.Input`` for ``(frames, bands)`` or ``(frames, bands, 1)`` segments."""
    import keras

    if len(input_shape) == 2:
        input_shape = (*input_shape, 1)
    return keras.Input(shape=input_shape)


def standardize(inputs):
    """Per-band standardization of ``(frames, bands, 1)`` input: each band to mean 0, variance 1.

    The mean and variance of every band are those of the training data, set by :func:`adapt` before training
    and saved with the model (a ``keras.layers.Normalization`` over the band axis). Unlike a batch-norm
    layer on the single input channel, this normalizes each band by its own statistics, and never depends on
    a moving average.
    """
    from keras import layers

    return layers.Normalization(axis=2, name=STANDARDIZE)(inputs)


def adapt(model, X: np.ndarray) -> None:
    """Set the input standardization of ``model`` (if it has one) from training rows ``X``.

    Parameters
    ----------
    model : keras.Model
    X : np.ndarray [shape=(n, frames, bands) or (n, frames, bands, 1)]
    """
    try:
        layer = model.get_layer(STANDARDIZE)
    except ValueError:
        return
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 3:
        X = X[..., None]
    # Two-pass float64 statistics per band (over rows, frames and the channel), set directly: Keras' adapt()
    # accumulates in float32 batches, which drifts on data of mean -40 dB and millions of values.
    mean = X.mean(axis=(0, 1, 3), dtype=np.float64)
    # A band that is constant in the training data (e.g. at the dB floor) must not blow up at test time.
    var = np.maximum(X.var(axis=(0, 1, 3), dtype=np.float64), VAR_FLOOR)
    shape = tuple(layer.adapt_mean.shape)
    layer.adapt_mean.assign(mean.reshape(shape).astype(np.float32))
    layer.adapt_variance.assign(var.reshape(shape).astype(np.float32))
    layer.finalize_state()


def conv_block(x, filters: int, pool: tuple[int, int], *, bn_momentum: float = BN_MOMENTUM):
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
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
