"""Training and evaluating the Keras families from a sharded feature store, never holding the data set in memory.

:func:`fit_stream` is what :func:`genrelib.training.fitting.fit` runs when its training part is a
:class:`~genrelib.features.stored.StoredFeatureSet` (``genrelib train DATA --model seed_cnn --store DIR``):

- the input standardization comes from per-band statistics accumulated shard by shard in float64
  (:func:`band_stats`, Chan's pairwise merge of each shard's two-pass mean and sum of squares), equal to the
  in-memory two-pass statistics to float64 rounding;
- the training stream (:func:`training_stream`) reads shards in a seeded random order, a new order every epoch,
  and draws rows at random from a bounded ``tf.data`` shuffle buffer of ``shuffle_buffer`` rows. What is in
  memory at once: that buffer, the shard being read and a few prefetched batches;
- validation rows are streamed the same way, unshuffled; augmentation (:mod:`genrelib.training.input_pipeline`'s
  :func:`~genrelib.training.input_pipeline.augment_batch`) applies to the training batches exactly as in memory.

On data that fits in memory the results are *not* bit-identical to the in-memory run with the same seed: the
in-memory recipe is ``model.fit(X, y, shuffle=True)``, whose global permutation of all rows comes from Keras's
own generator, while the stream's order comes from the shard order and the bounded buffer. The model, its initialization, the standardization and every other setting are the same, so the two runs
are two equally valid shuffles: their accuracies differ by what a different shuffle changes (measured in the
tests and in docs/scaling.md). The same seed gives the same stream, and so the same streamed model, again.
"""

from __future__ import annotations

import numpy as np

from genrelib.features.stored import StoredFeatureSet

#: Rows in the shuffle buffer unless told otherwise (about 66 MB of 130 x 128 mel rows, 8 MB of MFCC rows).
DEFAULT_SHUFFLE_BUFFER = 1024


def band_stats(part: StoredFeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (last axis) mean and variance of every row of ``part``, read shard by shard, in float64."""
    n, mean, m2 = 0, None, None
    for _, shard in part.iter_shards(columns=("x",)):
        X = shard["x"].reshape(-1, shard["x"].shape[-1])
        if len(X) == 0:
            continue
        k = len(X)
        mu = X.mean(axis=0, dtype=np.float64)
        s2 = ((X - mu) ** 2).sum(axis=0, dtype=np.float64)
        if mean is None:
            n, mean, m2 = k, mu, s2
            continue
        delta = mu - mean
        total = n + k
        mean = mean + delta * (k / total)
        m2 = m2 + s2 + delta**2 * (n * k / total)
        n = total
    if mean is None:
        raise ValueError("no rows to compute statistics from")
    return mean, m2 / n


def set_standardization(model, mean: np.ndarray, var: np.ndarray) -> None:
    """Set ``model``'s input standardization (as :func:`genrelib.models._blocks.adapt` does from arrays)."""
    from genrelib.models._blocks import STANDARDIZE, VAR_FLOOR

    try:
        layer = model.get_layer(STANDARDIZE)
    except ValueError:
        return
    shape = tuple(layer.adapt_mean.shape)
    layer.adapt_mean.assign(np.asarray(mean, np.float64).reshape(shape).astype(np.float32))
    layer.adapt_variance.assign(np.maximum(np.asarray(var, np.float64), VAR_FLOOR).reshape(shape).astype(np.float32))
    layer.finalize_state()


def _shards(part: StoredFeatureSet, *, seed: int | None):
    """A tf.data stream of ``(rows, labels)`` chunks, one per shard: in a seeded random order, a new one every
    pass (``seed`` None: the stored order).

    The stream is native tf.data (the shard positions) with one ``tf.numpy_function`` per shard that reads it,
    not ``tf.data.Dataset.from_generator``: a Python generator feeding ``model.fit`` kept the two cores busy
    handing the interpreter lock back and forth (system time 13 s against 2 s for the same epoch) and trained at
    0.55x of the in-memory speed even when it only yielded batches already in memory; with a shard read per
    ``numpy_function`` call an epoch of 19,600 segments took 17.3 and 16.6 s against 22.7 and 16.0 s in memory,
    and 0.77-0.99x of in memory on 196,000 segments (docs/scaling.md).
    """
    import tensorflow as tf

    shards = part.shards()
    row_shape = tuple(part.config.row_shape)

    def read(i):
        d = part.read_shard(shards[int(i)], columns=("x",))
        return np.ascontiguousarray(d["x"], np.float32), d["labels"].astype(np.int32)

    def load(i):
        x, y = tf.numpy_function(read, [i], (tf.float32, tf.int32))
        x.set_shape((None, *row_shape))
        y.set_shape((None,))
        return x, y

    order = tf.data.Dataset.range(len(shards))
    if seed is not None:
        order = order.shuffle(max(1, len(shards)), seed=seed, reshuffle_each_iteration=True)
    return order.map(load)


def training_stream(
    part: StoredFeatureSet, *, batch_size: int, seed: int, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER
):
    """Shuffled ``(x, label)`` batches of ``part``, one pass per iteration (x without the channel axis).

    Shards come in a seeded random order, a new one each pass (:func:`_shards`); their rows go through a seeded
    ``tf.data`` shuffle buffer of ``shuffle_buffer`` rows (a new draw each pass) and leave in batches of
    ``batch_size``. Each row leaves once per pass. At most ``shuffle_buffer`` rows, the shard being read and a
    few prefetched batches are held.
    """
    return (
        _shards(part, seed=seed)
        .unbatch()  # the row buffer's seed differs from the shard order's
        .shuffle(max(1, int(shuffle_buffer)), seed=seed + 1, reshuffle_each_iteration=True)
        .batch(int(batch_size))
    )


def fit_stream(
    model,
    train: StoredFeatureSet,
    valid: StoredFeatureSet,
    config,
    *,
    class_weight: dict | None,
    callbacks: list,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
):
    """Fit a Keras model from the store (see the module's description); returns Keras's History."""
    import keras
    import tensorflow as tf

    from genrelib.training.input_pipeline import augment_batch, gain_vector

    mean, var = band_stats(train)
    set_standardization(model, mean, var)
    n_classes = len(train.genres)
    aug = config.feature_augment()
    weights = (
        None if class_weight is None else np.array([class_weight.get(c, 1.0) for c in range(n_classes)], np.float32)
    )
    batches = training_stream(train, batch_size=config.batch_size, seed=config.seed, shuffle_buffer=shuffle_buffer)
    steps = int(np.ceil(len(train) / config.batch_size))
    valid_y = lambda y: y
    if aug.active:
        fill = mean.astype(np.float32)  # the training rows' band means, as in memory (band_mean)
        gain = gain_vector(train.config)

        def make(i, xy):
            x, y = xy
            return augment_batch(
                x,
                y,
                tf.stack([tf.constant(config.seed, tf.int64), i]),
                aug,
                fill=fill,
                gain=gain,
                n_classes=n_classes,
                class_weights=weights,
            )

        stream = batches.repeat().enumerate().map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if aug.mixup:  # soft labels: categorical cross-entropy, one-hot validation labels (as fit does in memory)
            model.compile(optimizer=model.optimizer, loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
            valid_y = lambda y: tf.one_hot(y, n_classes, dtype=tf.float32)
    elif weights is not None:
        w = tf.constant(weights)
        stream = batches.repeat().map(lambda x, y: (x[..., None], y, tf.gather(w, y)))
    else:
        stream = batches.repeat().map(lambda x, y: (x[..., None], y))
    # Both streams repeat and say how many batches a pass has: Keras then reads exactly one pass per epoch.
    val = (
        _shards(valid, seed=None)
        .unbatch()
        .batch(512)
        .map(lambda x, y: (x[..., None], valid_y(y)))
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    return model.fit(
        stream.prefetch(tf.data.AUTOTUNE),
        steps_per_epoch=steps,
        validation_data=val,
        validation_steps=int(np.ceil(len(valid) / 512)),
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=0,
        shuffle=False,
    )
