"""Fitting one model on a training and a validation part: seeds, class weights, early stopping, augmentation copies."""

from __future__ import annotations

import logging
import time

import numpy as np

from genrelib.datasets.tracks import Dataset
from genrelib.errors import ModelError
from genrelib.features.featureset import FeatureSet
from genrelib.models import FAMILIES, KERAS_FAMILIES, build_keras
from genrelib.models._blocks import adapt
from genrelib.models.base import GenreModel
from genrelib.training.config import TrainConfig

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, make TensorFlow's kernels deterministic and run its ops one at a time
    (:func:`one_op_at_a_time`)."""
    import keras
    import tensorflow as tf

    one_op_at_a_time()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    tf.get_logger().setLevel("ERROR")  # retracing notices when several models are built in one process


_WARNED: list[bool] = []  # one_op_at_a_time's warning, once a process


def one_op_at_a_time() -> bool:
    """Set TensorFlow's inter-op parallelism to 1 (each op still uses all intra-op threads), if TensorFlow has
    not started yet; returns whether it is 1.

    Op determinism alone does not make a CPU fit repeatable: with several inter-op threads, independent ops run
    side by side and the gradient that the first batch normalization of mel_cnn (32 x 130 x 128 x 32 values a
    batch) passes back to the first convolution came out different in about half of 24 identical steps in one
    process (its inputs bitwise equal), so two runs of `train --seed 42` on the 300-track demo ended one epoch
    with val loss 1.677 and 1.686. With one inter-op thread they are equal (issue 21 #3b, README "The same
    seed, the same model"). TensorFlow fixes its thread pools when it starts, so a process that used TensorFlow
    before the first fit keeps its setting: a warning says so.
    """
    import os

    import tensorflow as tf

    if tf.config.threading.get_inter_op_parallelism_threads() == 1:
        return True
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started in this process
        if os.environ.get("TF_NUM_INTEROP_THREADS") == "1":
            return True
        if not _WARNED:
            _WARNED.append(True)
            logger.warning(
                "TensorFlow started before this fit with several inter-op threads: the same seed may train slightly "
                "different weights; set TF_NUM_INTEROP_THREADS=1 before TensorFlow starts for a repeatable fit"
            )
        return False
    return True


def epoch_lines(family: str, epochs: int):
    """A Keras callback that logs one line per epoch on the progress logger (Keras itself is silent, verbose=0):
    ``seed_cnn epoch 3/30: loss 1.234, val loss 1.301, val accuracy 0.567, 4 s``. The CLI shows these lines on
    stderr, on a terminal too (``record.every_time``), so a long training run is never minutes of silence."""
    import keras

    from genrelib.progress import logger as progress

    class EpochLines(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            shown = ", ".join(
                f"{label} {logs[key]:.3f}"
                for key, label in (("loss", "loss"), ("val_loss", "val loss"), ("val_accuracy", "val accuracy"))
                if key in logs
            )
            progress.info(
                "%s epoch %d/%d: %s, %.0f s",
                family,
                epoch + 1,
                epochs,
                shown,
                time.perf_counter() - self.start,
                extra={"every_time": True},
            )

    return EpochLines()


def fit(
    train: FeatureSet, valid: FeatureSet, config: TrainConfig, *, callbacks: tuple = ()
) -> tuple[GenreModel, dict[str, list[float]]]:
    """Train ``config.family`` on ``train``, selecting (early stopping / candidate choice) on ``valid``.

    Returns
    -------
    model : GenreModel
    history : dict
        Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (Keras families), or the validation
        accuracy of every candidate (summary and musicnn families).
    """
    if FAMILIES[config.family] != train.config.kind:
        raise ModelError(f"{config.family} trains on {FAMILIES[config.family]!r} features, got {train.config.kind!r}")
    if len(train) == 0 or len(valid) == 0:
        raise ModelError(
            f"empty training ({len(train)} rows) or validation ({len(valid)} rows) part; use more tracks per genre"
        )
    genres = list(train.genres)
    y_train, y_valid = train.labels, valid.labels
    n_classes = len(genres)
    info = {"train_rows": len(train), "valid_rows": len(valid)}
    if config.family not in KERAS_FAMILIES:  # a scikit-learn pipeline chosen on validation
        import importlib

        select = importlib.import_module(f"genrelib.models.{config.family}").select
        name, est, scores = select(train.X, y_train, valid.X, y_valid, seed=config.seed, C=config.logreg_c)
        info.update({"chosen": name, "validation_accuracy": scores})
        history = {f"val_accuracy_{k}": [v] for k, v in scores.items()}
        model = GenreModel(config.family, genres, train.config, est, info)
        check_finite(model, history, valid, config)
        return model, history

    import keras

    seed_everything(config.seed)
    model = build_keras(config.family, train.config.row_shape, n_classes, **config.build_kwargs())
    stored = not isinstance(train, FeatureSet)  # a StoredFeatureSet (--store): streamed from its shards
    if not stored:
        adapt(model, train.X)  # input standardization from the training rows only
    weights = None
    if config.class_weights:
        from sklearn.utils.class_weight import compute_class_weight

        present = np.unique(y_train)
        w = compute_class_weight("balanced", classes=present, y=y_train)
        weights = {int(c): float(v) for c, v in zip(present, w)}
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    # a loss that is NaN or inf never comes back: stop at once (check_finite then refuses the model)
    stop = [stop, keras.callbacks.TerminateOnNaN()]
    aug = config.feature_augment()
    t0 = time.perf_counter()
    callbacks = (*callbacks, epoch_lines(config.family, config.epochs))
    if stored:
        from genrelib.training.streaming import fit_stream

        hist = fit_stream(model, train, valid, config, class_weight=weights, callbacks=[*stop, *callbacks])
    elif not aug.active:  # the original recipe
        hist = model.fit(
            train.X[..., None],
            y_train,
            validation_data=(valid.X[..., None], y_valid),
            epochs=config.epochs,
            batch_size=config.batch_size,
            class_weight=weights,
            callbacks=[*stop, *callbacks],
            verbose=0,
            shuffle=True,
        )
    else:
        from genrelib.training.input_pipeline import training_dataset

        stream, steps = training_dataset(
            train.X,
            y_train,
            aug,
            train.config,
            batch_size=config.batch_size,
            seed=config.seed,
            n_classes=n_classes,
            class_weights=weights,
        )
        if aug.mixup:
            # Mixed labels are soft, so training takes one-hot labels and categorical cross-entropy; on the
            # (unmixed) one-hot validation labels that is the sparse cross-entropy the family compiles with, so
            # val_loss, early stopping and the curves mean what they mean without mixup.
            model.compile(optimizer=model.optimizer, loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
            valid_y = np.eye(n_classes, dtype=np.float32)[y_valid]
        else:
            valid_y = y_valid
        hist = model.fit(
            stream,
            steps_per_epoch=steps,
            validation_data=(valid.X[..., None], valid_y),
            epochs=config.epochs,
            callbacks=[*stop, *callbacks],
            verbose=0,
            shuffle=False,
        )
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    info.update(
        {
            "epochs_run": len(history["loss"]),
            "train_seconds": time.perf_counter() - t0,
            "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        }
    )
    trained = GenreModel(config.family, genres, train.config, model, info)
    check_finite(trained, history, valid, config)
    return trained, history


#: Validation rows whose probabilities :func:`check_finite` computes (enough to catch broken weights, quick).
CHECK_ROWS = 256


def check_finite(model: GenreModel, history: dict[str, list[float]], valid: FeatureSet, config: TrainConfig) -> None:
    """Refuse a model whose training diverged: a loss (or validation score) that is NaN or infinite, or
    probabilities that are not finite on validation rows.

    Raises
    ------
    ModelError
        One line naming the epoch and what to change; the model is then never evaluated, logged or registered.
    """
    lr = "the family's default" if config.learning_rate is None else f"{config.learning_rate:g}"
    for name, values in history.items():
        bad = [i for i, v in enumerate(values) if not np.isfinite(v)]
        if bad:
            raise ModelError(
                f"training diverged: {name} became {values[bad[0]]} at epoch {bad[0] + 1} (learning rate "
                f"{lr}); nothing was logged or registered; use a smaller --learning-rate"
            )
    if isinstance(valid, FeatureSet) and len(valid):
        P = model.predict_proba(valid.X[:CHECK_ROWS])
        if not np.isfinite(P).all():
            raise ModelError(
                "training diverged: the trained model's probabilities are not finite (NaN or inf) on validation "
                f"rows (learning rate {lr}); nothing was logged or registered; use a smaller "
                "--learning-rate"
            )


def with_copies(
    train_part: FeatureSet, ds: Dataset, config: TrainConfig, *, n_jobs: int | None = None, progress: bool = False
) -> tuple[FeatureSet, list[dict]]:
    """The training rows plus the precomputed waveform copies of their tracks (``config.aug_copies`` per track).

    Only the tracks of ``train_part`` get copies, so give it the training part of a split, never the validation
    or test part. Copies are cached per track (:func:`genrelib.training.copies.copies`).

    Returns
    -------
    train_part : FeatureSet
        ``train_part`` unchanged when no copies are asked for; else its rows followed by those of the copies
        (track ids ``<track>#aug<k>``).
    settings : list of dict
        Each copy's random settings (empty without copies).
    """
    from genrelib.training import copies as wave_copies

    wave = config.wave_augment()
    if not wave.active:
        return train_part, []
    ids = set(train_part.tracks)
    tracks = [t for t in ds.tracks if t.track_id in ids]
    copies, settings = wave_copies.copies(
        tracks, train_part.config, wave, seed=config.seed, genres=train_part.genres, n_jobs=n_jobs, progress=progress
    )
    logger.info("%d augmented copies of %d training tracks: %d rows", len(settings), len(tracks), len(copies))
    return wave_copies.concat(train_part, copies), settings
