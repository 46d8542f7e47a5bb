"""A compact fully-convolutional CNN on log-mel segments.

Source: after the FCN of K. Choi, G. Fazekas and M. Sandler, "Automatic tagging using deep convolutional
neural networks", ISMIR 2016: stacked 3x3 convolutions with batch normalization and max-pooling, here four
blocks (32-64-64-128 filters) ending in global average pooling instead of the last pooling stages, so that it
trains in minutes on a CPU. The input is standardized per mel band with the training data's statistics
(:func:`genrelib.models._blocks.standardize`, set by :func:`genrelib.models._blocks.adapt` in training).
"""

from __future__ import annotations


def build(
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    learning_rate: float = 1e-3,
    dropout: float = 0.3,
    filters: tuple[int, ...] = (32, 64, 64, 128),
):
    """Build and compile the mel CNN for ``(frames, n_mels)`` input.

    Returns
    -------
    keras.Model
    """
    from keras import layers

    from genrelib.models._blocks import classifier, conv_block, input_layer, standardize

    inputs = input_layer(input_shape)
    x = standardize(inputs)
    for i, f in enumerate(filters):
        x = conv_block(x, f, (2, 2) if i < len(filters) - 1 else (2, 4))
    x = layers.GlobalAveragePooling2D()(x)
    return classifier(inputs, x, n_classes, dropout=dropout, learning_rate=learning_rate, name="mel_cnn")
