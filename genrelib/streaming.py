"""Training and evaluating the Keras families from a sharded feature store, never holding the data set in memory.

:func:`fit_stream` is what :func:`genrelib.train.fit` runs when its training part is a
:class:`~genrelib.store.StoredFeatureSet` (``genrelib train DATA --model seed_cnn --store DIR``):

- the input standardization comes from per-band statistics accumulated shard by shard in float64
  (:func:`band_stats`, Chan's pairwise merge of each shard's two-pass mean and sum of squares), equal to the
  in-memory two-pass statistics to float64 rounding;
- the training stream (:func:`training_stream`) reads shards in a seeded random order, a new order every epoch,
  and draws batches at random from a bounded buffer of ``shuffle_buffer`` rows plus the shard just read. What
  is in memory at once: that buffer and a few prefetched batches;
- validation rows are streamed the same way, unshuffled; augmentation (:mod:`genrelib.input_pipeline`'s
  :func:`~genrelib.input_pipeline.augment_batch`) applies to the training batches exactly as in memory.

On data that fits in memory the results are *not* bit-identical to the in-memory run with the same seed: the
in-memory recipe is ``model.fit(X, y, shuffle=True)``, whose global permutation of all rows comes from Keras's
own generator, while the stream's order comes from the shard order and the bounded buffer. The model, its initialization, the standardization and every other setting are the same, so the two runs
are two equally valid shuffles: their accuracies differ by what a different shuffle changes (measured in the
tests and in docs/scaling.md). The same seed gives the same stream, and so the same streamed model, again.
"""

from __future__ import annotations

import numpy as np

from .store import StoredFeatureSet

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
    from .models._blocks import STANDARDIZE, VAR_FLOOR

    try:
        layer = model.get_layer(STANDARDIZE)
    except ValueError:
        return
    shape = tuple(layer.adapt_mean.shape)
    layer.adapt_mean.assign(np.asarray(mean, np.float64).reshape(shape).astype(np.float32))
    layer.adapt_variance.assign(np.maximum(np.asarray(var, np.float64), VAR_FLOOR).reshape(shape).astype(np.float32))
    layer.finalize_state()


def _rows(part: StoredFeatureSet, *, seed: int | None):
    """A tf.data stream of ``(rows, labels)`` chunks, one per shard: seeded random shard order and in-shard
    permutation, a new one every pass (``seed`` None: stored order)."""
    import tensorflow as tf

    shards = part.shards()
    passes = [0]

    def gen():
        rng = None if seed is None else np.random.default_rng([seed, passes[0]])
        passes[0] += 1
        order = shards if rng is None else [shards[i] for i in rng.permutation(len(shards))]
        for s in order:
            d = part.read_shard(s, columns=("x",))
            x, y = d["x"], d["labels"].astype(np.int32)
            if rng is not None:
                p = rng.permutation(len(x))
                x, y = x[p], y[p]
            yield x, y

    spec = (tf.TensorSpec((None, *part.config.row_shape), tf.float32), tf.TensorSpec((None,), tf.int32))
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


def training_stream(part: StoredFeatureSet, *, batch_size: int, seed: int,
                    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER):
    """Shuffled ``(x, label)`` batches of ``part``, one pass per iteration (x without the channel axis).

    The bounded shuffle runs in numpy on whole shards rather than row by row in tf.data (``unbatch``, ``shuffle``,
    ``batch``; not clearly faster on the shared machine: an epoch from the store at 0.56x of the in-memory speed
    before, 0.61x and 0.52x after). Shards come in a seeded random order, a new one each pass; each shard's rows
    join a buffer, the buffer is permuted, and all but ``shuffle_buffer`` of its rows leave as full batches; at
    the end of a pass the rest leaves, permuted. Each batch is a uniform random draw from the
    buffer, as with ``tf.data.Dataset.shuffle``; at most ``shuffle_buffer`` plus one shard's rows are held.
    """
    import tensorflow as tf

    shards = part.shards()
    passes = [0]
    buffer_rows, batch = max(0, int(shuffle_buffer)), int(batch_size)

    def gen():
        rng = np.random.default_rng([seed, passes[0]])
        passes[0] += 1
        bx = np.zeros((0, *part.config.row_shape), np.float32)
        by = np.zeros(0, np.int32)
        for i in rng.permutation(len(shards)):
            d = part.read_shard(shards[i], columns=("x",))
            bx = np.concatenate([bx, d["x"]])
            by = np.concatenate([by, d["labels"].astype(np.int32)])
            out = (len(bx) - buffer_rows) // batch * batch
            if out <= 0:
                continue
            p = rng.permutation(len(bx))
            bx, by = bx[p], by[p]
            for k in range(0, out, batch):
                yield bx[k : k + batch], by[k : k + batch]
            bx, by = bx[out:], by[out:]
        p = rng.permutation(len(bx))
        bx, by = bx[p], by[p]
        for k in range(0, len(bx), batch):
            yield bx[k : k + batch], by[k : k + batch]

    spec = (tf.TensorSpec((None, *part.config.row_shape), tf.float32), tf.TensorSpec((None,), tf.int32))
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


def fit_stream(model, train: StoredFeatureSet, valid: StoredFeatureSet, config, *, class_weight: dict | None,
               callbacks: list, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER):
    """Fit a Keras model from the store (see the module's description); returns Keras's History."""
    import keras
    import tensorflow as tf

    from .input_pipeline import augment_batch, gain_vector

    mean, var = band_stats(train)
    set_standardization(model, mean, var)
    n_classes = len(train.genres)
    aug = config.feature_augment()
    weights = None if class_weight is None else np.array([class_weight.get(c, 1.0) for c in range(n_classes)],
                                                         np.float32)
    batches = training_stream(train, batch_size=config.batch_size, seed=config.seed, shuffle_buffer=shuffle_buffer)
    steps = int(np.ceil(len(train) / config.batch_size))
    valid_y = (lambda y: y)
    if aug.active:
        fill = mean.astype(np.float32)  # the training rows' band means, as in memory (band_mean)
        gain = gain_vector(train.config)

        def make(i, xy):
            x, y = xy
            return augment_batch(x, y, tf.stack([tf.constant(config.seed, tf.int64), i]), aug, fill=fill, gain=gain,
                                 n_classes=n_classes, class_weights=weights)

        stream = batches.repeat().enumerate().map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if aug.mixup:  # soft labels: categorical cross-entropy, one-hot validation labels (as fit does in memory)
            model.compile(optimizer=model.optimizer, loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
            valid_y = (lambda y: tf.one_hot(y, n_classes, dtype=tf.float32))
    elif weights is not None:
        w = tf.constant(weights)
        stream = batches.repeat().map(lambda x, y: (x[..., None], y, tf.gather(w, y)))
    else:
        stream = batches.repeat().map(lambda x, y: (x[..., None], y))
    # Both streams repeat and say how many batches a pass has: Keras then reads exactly one pass per epoch.
    val = (_rows(valid, seed=None).unbatch().batch(512).map(lambda x, y: (x[..., None], valid_y(y)))
           .repeat().prefetch(tf.data.AUTOTUNE))
    return model.fit(stream.prefetch(tf.data.AUTOTUNE), steps_per_epoch=steps, validation_data=val,
                     validation_steps=int(np.ceil(len(valid) / 512)), epochs=config.epochs, callbacks=callbacks,
                     verbose=0, shuffle=False)


def evaluate_stored(model, part: StoredFeatureSet, *, n_wrong: int = 10):
    """:func:`genrelib.evaluate.evaluate` on a stored part, predicting shard by shard (only the probabilities,
    ``rows x genres``, are kept)."""
    from .errors import ModelError
    from .evaluate import report_rows

    if part.config != model.feature_config:
        raise ModelError(f"feature configuration mismatch: the model takes {model.feature_config}, "
                         f"the data was extracted with {part.config}")
    if len(part) == 0:
        raise ModelError("nothing to evaluate: the feature set is empty")
    index = {g: i for i, g in enumerate(model.genres)}
    unknown = sorted(set(part.index["genre"]) - set(index))
    if unknown:
        raise ModelError(f"the data has genres the model does not know: {unknown}; the model knows "
                         f"{model.genres}. Remove those folders or train a model on them")
    proba, ids, y = [], [], []
    for _, shard in part.iter_shards(columns=("x",)):
        proba.append(model.predict_proba(shard["x"]))
        ids.append(shard["track_ids"])
        y.append(np.array([index[part.genres[k]] for k in shard["labels"]], np.int64))
    return report_rows(model.genres, np.concatenate(proba), np.concatenate(y), np.concatenate(ids), n_wrong=n_wrong)
