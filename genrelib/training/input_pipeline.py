"""The tf.data input pipeline of the Keras families when on-the-fly feature augmentation is on.

Training rows are shuffled (seeded, a new order every epoch), batched, and every batch is augmented by
:func:`augment_batch` with stateless random ops whose seed is ``(seed, batch number)``, the batch number counting
on across epochs: each epoch sees new variants, and the same seed gives the same augmented epochs. Validation and
test rows never pass through here. What the options do is described in :mod:`genrelib.training.augment`.

With every option off, :func:`genrelib.training.fitting.fit` does not use this pipeline at all (the original recipe:
``model.fit`` on the arrays).
"""

from __future__ import annotations

import numpy as np

from genrelib.features.config import FeatureConfig
from genrelib.training.augment import FeatureAugment


def gain_vector(config: FeatureConfig) -> np.ndarray:
    """What a gain of 1 dB adds to each band of a segment.

    Log-mel dB values all move by 1. MFCCs are the orthonormal DCT-II of the ``n_mels`` log-mel values, so a
    constant offset ``g`` on them becomes ``g * sqrt(n_mels)`` on coefficient 0 and nothing on the others.

    Returns
    -------
    v : np.ndarray [shape=(bands,), dtype=float32]
    """
    bands = config.row_shape[-1]
    if config.kind == "mfcc":
        v = np.zeros(bands, np.float32)
        v[0] = np.sqrt(config.n_mels)
        return v
    return np.ones(bands, np.float32)


def band_mean(X: np.ndarray) -> np.ndarray:
    """Mean of every band (last axis) of feature rows ``(n, frames, bands)``: the value masks fill in."""
    return np.asarray(X, np.float32).mean(axis=(0, 1), dtype=np.float64).astype(np.float32)


def _masks(batch, size: int, n: int, width: float, seeds):
    """``(batch, size)`` booleans: ``n`` masks per row, each of a width drawn in ``0..round(width * size)``."""
    import tensorflow as tf

    widest = max(1, int(round(width * size)))
    widths = tf.random.stateless_uniform([batch, n], seed=seeds[0], minval=0, maxval=widest + 1, dtype=tf.int32)
    u = tf.random.stateless_uniform([batch, n], seed=seeds[1])
    starts = tf.cast(tf.floor(u * tf.cast(size - widths + 1, tf.float32)), tf.int32)
    pos = tf.range(size)[None, None, :]
    inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])
    return tf.reduce_any(inside, axis=1)


def augment_batch(
    X,
    labels,
    seed,
    aug: FeatureAugment,
    *,
    fill: np.ndarray,
    gain: np.ndarray,
    n_classes: int,
    class_weights: np.ndarray | None = None,
):
    """Augment one batch: gain, noise, time and frequency masks, then mixup (TensorFlow ops, stateless).

    Parameters
    ----------
    X : tf.Tensor [shape=(batch, frames, bands), dtype=float32]
    labels : tf.Tensor [shape=(batch,), dtype=int]
    seed : tf.Tensor [shape=(2,), dtype=int64]
        Fixes every random draw of the batch.
    aug : FeatureAugment
    fill : np.ndarray [shape=(bands,)]
        Value of masked cells (the training data's band means, :func:`band_mean`).
    gain : np.ndarray [shape=(bands,)]
        :func:`gain_vector` of the features.
    n_classes : int
    class_weights : np.ndarray [shape=(n_classes,)], optional
        Weight of each class, turned into sample weights (mixed like the labels under mixup).

    Returns
    -------
    X : tf.Tensor [shape=(batch, frames, bands, 1)]
    y : tf.Tensor
        ``labels`` unchanged, or, with mixup, mixed one-hot labels ``(batch, n_classes)`` float32.
    sample_weight : tf.Tensor [shape=(batch,)]
        Only when ``class_weights`` is given.
    """
    import tensorflow as tf

    X = tf.cast(X, tf.float32)
    labels = tf.cast(labels, tf.int32)
    frames, bands = int(X.shape[1]), int(X.shape[2])
    batch = tf.shape(X)[0]
    seeds = tf.random.split(tf.cast(seed, tf.int64), num=8)
    if aug.gain_db:
        g = tf.random.stateless_uniform([batch], seed=seeds[0], minval=-aug.gain_db, maxval=aug.gain_db)
        X = X + g[:, None, None] * tf.constant(gain, tf.float32)[None, None, :]
    if aug.noise_std:
        X = X + aug.noise_std * tf.random.stateless_normal(tf.shape(X), seed=seeds[1])
    filled = tf.broadcast_to(tf.constant(fill, tf.float32)[None, None, :], tf.shape(X))
    if aug.time_masks:
        m = _masks(batch, frames, int(aug.time_masks), aug.time_mask_width, tf.random.split(seeds[2], 2))
        X = tf.where(m[:, :, None], filled, X)
    if aug.freq_masks:
        m = _masks(batch, bands, int(aug.freq_masks), aug.freq_mask_width, tf.random.split(seeds[3], 2))
        X = tf.where(m[:, None, :], filled, X)
    y = labels
    w = None if class_weights is None else tf.gather(tf.constant(class_weights, tf.float32), labels)
    if aug.mixup:
        g1 = tf.random.stateless_gamma([batch], seed=seeds[4], alpha=aug.mixup)
        g2 = tf.random.stateless_gamma([batch], seed=seeds[5], alpha=aug.mixup)
        # Both gammas can underflow to 0 for a small alpha: such a pair is an even blend.
        lam = tf.where(g1 + g2 > 0, tf.math.divide_no_nan(g1, g1 + g2), 0.5)
        perm = tf.argsort(tf.random.stateless_uniform([batch], seed=seeds[6]))
        X = lam[:, None, None] * X + (1 - lam[:, None, None]) * tf.gather(X, perm)
        Y = tf.one_hot(labels, n_classes, dtype=tf.float32)
        y = lam[:, None] * Y + (1 - lam[:, None]) * tf.gather(Y, perm)
        if w is not None:
            w = lam * w + (1 - lam) * tf.gather(w, perm)
    X = X[..., None]
    return (X, y) if w is None else (X, y, w)


def augment_numpy(
    X: np.ndarray,
    labels: np.ndarray,
    aug: FeatureAugment,
    config: FeatureConfig,
    *,
    seed: int,
    step: int = 0,
    fill: np.ndarray | None = None,
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`augment_batch` on arrays, as batch ``step`` of training with ``seed`` would augment them.

    Returns
    -------
    X : np.ndarray [shape=(n, frames, bands)]
    y : np.ndarray
        Labels, or mixed one-hot labels under mixup.
    """
    import tensorflow as tf

    X = np.asarray(X, np.float32)
    fill = band_mean(X) if fill is None else fill
    out = augment_batch(
        tf.constant(X),
        tf.constant(labels),
        tf.constant([seed, step], tf.int64),
        aug,
        fill=fill,
        gain=gain_vector(config),
        n_classes=int(n_classes or int(np.max(labels)) + 1),
    )
    return np.asarray(out[0])[..., 0], np.asarray(out[1])


def training_dataset(
    X: np.ndarray,
    labels: np.ndarray,
    aug: FeatureAugment,
    config: FeatureConfig,
    *,
    batch_size: int,
    seed: int,
    n_classes: int,
    fill: np.ndarray | None = None,
    class_weights: dict[int, float] | None = None,
):
    """The endless, augmented training stream and the number of batches that make one epoch.

    Parameters
    ----------
    X : np.ndarray [shape=(n, frames, bands)]
        Training rows (read by index from this array, never copied into the graph).
    labels : np.ndarray [shape=(n,)]
    aug : FeatureAugment
    config : FeatureConfig
        The features' configuration (for the gain of MFCCs).
    batch_size, seed, n_classes : int
    fill : np.ndarray [shape=(bands,)], optional
        Value of masked cells; default :func:`band_mean` of ``X``.
    class_weights : dict, optional
        ``{class: weight}``, applied as sample weights.

    Returns
    -------
    dataset : tf.data.Dataset
        ``(X, y)`` or ``(X, y, sample_weight)`` batches, repeating; give ``steps_per_epoch=steps`` to ``fit``.
    steps : int
    """
    import tensorflow as tf

    X = np.ascontiguousarray(X, dtype=np.float32)
    labels = np.asarray(labels, np.int32)
    fill = band_mean(X) if fill is None else np.asarray(fill, np.float32)
    gain = gain_vector(config)
    weights = (
        None if class_weights is None else np.array([class_weights.get(c, 1.0) for c in range(n_classes)], np.float32)
    )
    steps = int(np.ceil(len(X) / batch_size))
    row_shape = X.shape[1:]

    def gather(idx):
        return X[idx], labels[idx]

    def make(i, idx):
        x, y = tf.numpy_function(gather, [idx], (tf.float32, tf.int32), stateful=False)
        x.set_shape((None, *row_shape))
        y.set_shape((None,))
        return augment_batch(
            x,
            y,
            tf.stack([tf.constant(seed, tf.int64), i]),
            aug,
            fill=fill,
            gain=gain,
            n_classes=n_classes,
            class_weights=weights,
        )

    ds = (
        tf.data.Dataset.range(len(X))
        .shuffle(len(X), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .repeat()
        .enumerate()
        .map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return ds, steps
