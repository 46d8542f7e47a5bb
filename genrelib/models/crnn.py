"""A convolutional recurrent network: convolutions summarize frequency, a GRU reads the sequence over time.

Source: after K. Choi, G. Fazekas, M. Sandler and K. Cho, "Convolutional recurrent neural networks for music
classification", ICASSP 2017: 2-D convolution blocks that pool mostly along frequency, then a recurrent layer
over the remaining time steps (the original notebook imported LSTM and TimeDistributed for the same idea).
"""

from __future__ import annotations


def build(
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    learning_rate: float = 1e-3,
    dropout: float = 0.3,
    filters: tuple[int, ...] = (32, 64, 64),
    units: int = 64,
):
    """Build and compile the CRNN for ``(frames, bands)`` input (log-mel or MFCC segments).

    Returns
    -------
    keras.Model
    """
    from keras import layers

    from genrelib.models._blocks import classifier, conv_block, input_layer, standardize

    inputs = input_layer(input_shape)
    # Per-band standardization by the training data's statistics; the blocks' batch norms use the shared
    # momentum (see _blocks.BN_MOMENTUM: with Keras' 0.99 early stopping kept the first epoch, 33% per track
    # on the demo data, measured).
    x = standardize(inputs)
    freq = inputs.shape[2]
    for f in filters:
        pool_f = 4 if freq >= 16 else (2 if freq >= 2 else 1)
        x = conv_block(x, f, (2, pool_f))
        freq //= pool_f
    # (time, freq, channels) -> (time, freq * channels): one feature vector per time step
    x = layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]))(x)
    x = layers.GRU(units)(x)
    return classifier(inputs, x, n_classes, dropout=dropout, learning_rate=learning_rate, name="crnn")
