"""Training: :func:`fit` trains one family on feature sets; :func:`train` runs the whole job on a data folder.

The job scans the folder, extracts (or reads cached) features of the family's kind, splits by track
(random stratified or GTZAN fault-filtered), trains on the training part with early stopping on the validation
part, evaluates on the test part (never seen in training or model selection), logs everything to MLflow and
registers the model as ``genre-classifier``.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .config import SEED
from .dataset import SPLIT_FILE_FORMAT, SPLIT_NAMES, Dataset, make_split, scan, split_counts
from .errors import DatasetError, GenrelibError, ModelError
from .features import FeatureConfig, FeatureSet, extract
from .models import FAMILIES, KERAS_FAMILIES, build_keras, check_family
from .models._blocks import adapt
from .models.base import GenreModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (logged as parameters).

    Attributes
    ----------
    family : str
        ``seed_cnn``, ``mel_cnn``, ``crnn``, ``summary`` or ``musicnn``.
    epochs : int
        Upper bound on epochs (Keras families); early stopping usually ends sooner.
    batch_size : int
    patience : int
        Epochs without improvement of the validation loss before stopping; the best weights are restored.
    learning_rate : float or None
        None: the family's default (1e-4 for seed_cnn as in the notebook, 1e-3 for the others).
    class_weights : bool
        Weight classes inversely to their frequency.
    seed : int
        Seeds the split, weight initialization, shuffling and dropout.
    split : str
        ``random``, ``gtzan-ff`` or ``file`` (a user's lists, ``split_file``).
    split_file : str
        The user's train / valid / test lists (:func:`genrelib.dataset.read_split_file`: a folder of
        ``train*.txt``, ``valid*.txt``, ``test*.txt``, three files ``train.txt,valid.txt,test.txt``, or one file of
        ``<part> <track>`` lines). Given with the default ``split="random"``, the split becomes ``file``.
    test_size, valid_size : float
        Random split: test share of all tracks, validation share of the rest.
    force : bool
        Train even when :func:`split_problems` finds the split unfit for an honest test result (a genre with
        no training or no test tracks, a tiny test part); the problems are logged and kept in ``model.info``.
    dropout, l2 : float or None
        Keras families: the dropout rate before the output (seed_cnn: after each dense layer) and seed_cnn's L2
        factor; None: the family's default (0.3; 0.001).
    filters : int or None
        Keras families: filters of the first convolution block (the later blocks keep the family's ratios:
        mel_cnn f-2f-2f-4f, crnn f-2f-2f, seed_cnn f-f-f); None: the family's default (32).
    logreg_c : float or None
        summary and musicnn: train only the logistic regression with this C instead of choosing among the
        candidates on validation; None: choose (the default).
    time_masks, freq_masks, time_mask_width, freq_mask_width, gain_db, noise_std, mixup
        On-the-fly augmentation of the training segments (Keras families; :class:`genrelib.augment.FeatureAugment`):
        SpecAugment masks (how many per segment, widest as a share of the frames / bands), random gain in +- dB,
        Gaussian noise (sd in dB), mixup alpha. 0: off (the default).
    aug_copies, pitch_shift, time_stretch, time_shift, noise_snr
        Precomputed, cached waveform copies of each training track (Keras families;
        :class:`genrelib.augment.WaveAugment`): how many, and each copy's random pitch shift (+- semitones), tempo
        change (rate in 1 +- time_stretch), circular time shift (+- seconds), white noise at an SNR in dB
        (None: no noise). 0: no copies (the default).
    """

    family: str = "seed_cnn"
    epochs: int = 30
    batch_size: int = 32
    patience: int = 5
    learning_rate: float | None = None
    class_weights: bool = False
    seed: int = SEED
    split: str = "random"
    split_file: str = ""
    test_size: float = 0.2
    valid_size: float = 0.2
    force: bool = False
    dropout: float | None = None
    l2: float | None = None
    filters: int | None = None
    logreg_c: float | None = None
    time_masks: int = 0
    freq_masks: int = 0
    time_mask_width: float = 0.1
    freq_mask_width: float = 0.1
    gain_db: float = 0.0
    noise_std: float = 0.0
    mixup: float = 0.0
    aug_copies: int = 0
    pitch_shift: float = 0.0
    time_stretch: float = 0.0
    time_shift: float = 0.0
    noise_snr: float | None = None

    def __post_init__(self) -> None:
        check_family(self.family)
        if self.split_file and self.split == "random":  # the default split: the file says what the split is
            object.__setattr__(self, "split", "file")
        if self.split == "file" and not self.split_file:
            raise DatasetError("split 'file' needs the lists: --split-file FILE (TrainConfig(split_file=...)); "
                               f"{SPLIT_FILE_FORMAT}")
        if self.split_file and self.split != "file":
            raise DatasetError(f"--split {self.split} and --split-file {self.split_file} contradict each other; "
                               "give one of them")
        if self.epochs < 1:
            raise ModelError(f"epochs must be >= 1, got {self.epochs}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ModelError(f"batch_size must be a whole number >= 1, got {self.batch_size!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ModelError(f"learning_rate must be > 0 (or None: the family's default), got {self.learning_rate!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ModelError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.l2 is not None and not self.l2 >= 0:
            raise ModelError(f"l2 must be >= 0, got {self.l2!r}")
        if self.filters is not None and (int(self.filters) != self.filters or self.filters < 1):
            raise ModelError(f"filters must be a whole number >= 1, got {self.filters!r}")
        if self.logreg_c is not None and not self.logreg_c > 0:
            raise ModelError(f"logreg_c must be > 0, got {self.logreg_c!r}")
        fa, wa = self.feature_augment(), self.wave_augment()  # each checks its own values
        keras_only = [n for n, on in (("augmentation", fa.active or wa.active), ("dropout", self.dropout is not None),
                                      ("l2", self.l2 is not None), ("filters", self.filters is not None)) if on]
        if self.family not in KERAS_FAMILIES and keras_only:
            raise ModelError(f"{', '.join(keras_only)} applies to the Keras families ({', '.join(KERAS_FAMILIES)}), "
                             f"not to {self.family}")
        if self.l2 is not None and self.family != "seed_cnn":
            raise ModelError(f"l2 applies to seed_cnn only ({self.family} has no weight penalty)")
        if self.logreg_c is not None and self.family in KERAS_FAMILIES:
            raise ModelError(f"logreg_c applies to the summary and musicnn families, not to {self.family}")

    def feature_augment(self):
        """The on-the-fly augmentation settings (:class:`genrelib.augment.FeatureAugment`)."""
        from .augment import FeatureAugment

        return FeatureAugment(time_masks=self.time_masks, freq_masks=self.freq_masks,
                              time_mask_width=self.time_mask_width, freq_mask_width=self.freq_mask_width,
                              gain_db=self.gain_db, noise_std=self.noise_std, mixup=self.mixup)

    def wave_augment(self):
        """The waveform-copy settings (:class:`genrelib.augment.WaveAugment`)."""
        from .augment import WaveAugment

        return WaveAugment(copies=self.aug_copies, pitch_shift=self.pitch_shift, time_stretch=self.time_stretch,
                           time_shift=self.time_shift, noise_snr=self.noise_snr)

    @property
    def augmented(self) -> bool:
        """Whether any augmentation is on."""
        return self.feature_augment().active or self.wave_augment().active

    def build_kwargs(self) -> dict:
        """Keyword arguments of the family's ``build`` that differ from its defaults."""
        kw = {name: getattr(self, name) for name in ("learning_rate", "dropout", "l2")
              if getattr(self, name) is not None}
        if self.filters is not None:
            f = int(self.filters)
            kw["filters"] = {"seed_cnn": f, "mel_cnn": (f, 2 * f, 2 * f, 4 * f), "crnn": (f, 2 * f, 2 * f)}[self.family]
        return kw


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, and make TensorFlow's kernels deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    tf.get_logger().setLevel("ERROR")  # retracing notices when several models are built in one process


def fit(train: FeatureSet, valid: FeatureSet, config: TrainConfig, *, callbacks: tuple = ()) -> tuple[
        GenreModel, dict[str, list[float]]]:
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
        raise ModelError(f"empty training ({len(train)} rows) or validation ({len(valid)} rows) part; "
                         "use more tracks per genre")
    genres = list(train.genres)
    y_train, y_valid = train.labels, valid.labels
    n_classes = len(genres)
    info = {"train_rows": len(train), "valid_rows": len(valid)}
    if config.family not in KERAS_FAMILIES:  # a scikit-learn pipeline chosen on validation
        import importlib

        select = importlib.import_module(f".models.{config.family}", __package__).select
        name, est, scores = select(train.X, y_train, valid.X, y_valid, seed=config.seed, C=config.logreg_c)
        info.update({"chosen": name, "validation_accuracy": scores})
        history = {f"val_accuracy_{k}": [v] for k, v in scores.items()}
        return GenreModel(config.family, genres, train.config, est, info), history

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
    aug = config.feature_augment()
    t0 = time.perf_counter()
    if stored:
        from .streaming import fit_stream

        hist = fit_stream(model, train, valid, config, class_weight=weights, callbacks=[stop, *callbacks])
    elif not aug.active:  # the original recipe
        hist = model.fit(train.X[..., None], y_train, validation_data=(valid.X[..., None], y_valid),
                         epochs=config.epochs, batch_size=config.batch_size, class_weight=weights,
                         callbacks=[stop, *callbacks], verbose=0, shuffle=True)
    else:
        from .input_pipeline import training_dataset

        stream, steps = training_dataset(train.X, y_train, aug, train.config, batch_size=config.batch_size,
                                         seed=config.seed, n_classes=n_classes, class_weights=weights)
        if aug.mixup:
            # Mixed labels are soft, so training takes one-hot labels and categorical cross-entropy; on the
            # (unmixed) one-hot validation labels that is the sparse cross-entropy the family compiles with, so
            # val_loss, early stopping and the curves mean what they mean without mixup.
            model.compile(optimizer=model.optimizer, loss=keras.losses.CategoricalCrossentropy(),
                          metrics=["accuracy"])
            valid_y = np.eye(n_classes, dtype=np.float32)[y_valid]
        else:
            valid_y = y_valid
        hist = model.fit(stream, steps_per_epoch=steps, validation_data=(valid.X[..., None], valid_y),
                         epochs=config.epochs, callbacks=[stop, *callbacks], verbose=0, shuffle=False)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    info.update({"epochs_run": len(history["loss"]), "train_seconds": time.perf_counter() - t0,
                 "best_epoch": int(np.argmin(history["val_loss"])) + 1})
    return GenreModel(config.family, genres, train.config, model, info), history


def feature_config_for(family: str, *, kind: str = "", **overrides) -> FeatureConfig:
    """The feature configuration a family trains on: the family's kind (:data:`genrelib.models.FAMILIES`), or
    ``kind`` when one is given (``""``: the family's), and ``overrides`` of the other fields."""
    family_kind = FAMILIES[check_family(family)]
    return FeatureConfig(kind=kind or family_kind, **overrides)


def with_copies(train_part: FeatureSet, ds: Dataset, config: TrainConfig, *, n_jobs: int | None = None,
                progress: bool = False) -> tuple[FeatureSet, list[dict]]:
    """The training rows plus the precomputed waveform copies of their tracks (``config.aug_copies`` per track).

    Only the tracks of ``train_part`` get copies, so give it the training part of a split, never the validation
    or test part. Copies are cached per track (:func:`genrelib.augment.copies`).

    Returns
    -------
    train_part : FeatureSet
        ``train_part`` unchanged when no copies are asked for; else its rows followed by those of the copies
        (track ids ``<track>#aug<k>``).
    settings : list of dict
        Each copy's random settings (empty without copies).
    """
    from . import augment

    wave = config.wave_augment()
    if not wave.active:
        return train_part, []
    ids = set(train_part.tracks)
    tracks = [t for t in ds.tracks if t.track_id in ids]
    copies, settings = augment.copies(tracks, train_part.config, wave, seed=config.seed, genres=train_part.genres,
                                      n_jobs=n_jobs, progress=progress)
    logger.info("%d augmented copies of %d training tracks: %d rows", len(settings), len(tracks), len(copies))
    return augment.concat(train_part, copies), settings


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: GenreModel
    history: dict
    split: dict[str, str]
    split_sizes: dict[str, dict[str, int]]
    features: FeatureSet
    report: object | None = None
    run_id: str | None = None
    model_uri: str | None = None
    registered_version: str | None = None
    extra: dict = field(default_factory=dict)
    config: TrainConfig | None = None


#: A split other than ``random`` (whose sizes come from fixed lists, not from the data) needs at least this
#: many test tracks, and this many of every genre, for its test accuracy to mean something.
MIN_TEST_TRACKS = 10
MIN_TEST_PER_GENRE = 2


def split_problems(sizes: dict[str, dict[str, int]], *, kind: str = "random") -> list[str]:
    """What keeps a split from giving an honest test result; empty when nothing does.

    The rule: every genre of the data needs at least one training and one test track, and the validation
    part must not be empty. For a split from fixed lists (``gtzan-ff``, on a folder that holds part of GTZAN),
    the test part also needs at least :data:`MIN_TEST_TRACKS` tracks and :data:`MIN_TEST_PER_GENRE` of every
    genre. A ``random`` split is stratified, keeps a track of every genre in every part and refuses genres of
    fewer than 3 tracks (:func:`genrelib.dataset.random_split`); its test size is the user's ``test_size``.

    Parameters
    ----------
    sizes : dict
        Tracks per part and genre, as :func:`genrelib.dataset.split_counts` gives them.
    kind : str
        The split's kind.
    """
    genres = list(sizes["train"])
    problems = []
    for part, what in (("train", "training"), ("test", "test")):
        missing = [g for g in genres if sizes[part][g] == 0]
        if missing and len(missing) < len(genres):
            problems.append(f"no {what} tracks for {', '.join(missing)}")
        elif missing:
            problems.append(f"no {what} tracks at all")
    if not sum(sizes["valid"].values()):
        problems.append("no validation tracks at all")
    n_test = sum(sizes["test"].values())
    few = [f"{g} {n}" for g, n in sizes["test"].items() if 0 < n < MIN_TEST_PER_GENRE]
    if kind != "random" and n_test and (n_test < MIN_TEST_TRACKS or few):
        problems.append(f"the test part has {n_test} tracks (an honest test part needs at least {MIN_TEST_TRACKS}, "
                        f"and {MIN_TEST_PER_GENRE} of every genre{'; ' + ', '.join(few) if few else ''})")
    return problems


def check_split(split: dict[str, str], ds: Dataset, config: TrainConfig) -> list[str]:
    """Refuse a split that cannot give an honest test result, unless ``config.force``; return its problems.

    Raises
    ------
    DatasetError
        When :func:`split_problems` finds problems and ``config.force`` is false, or, forced or not, when the
        training or the validation part is empty. The message gives the tracks per genre and part, the tracks
        left out of the split, and the fix.
    """
    sizes = split_counts(split, ds)
    problems = split_problems(sizes, kind=config.split)
    # With no training or no validation track at all there is nothing to fit or to stop on: forcing cannot help.
    hopeless = not sum(sizes["train"].values()) or not sum(sizes["valid"].values())
    if problems and (hopeless or not config.force):
        per_genre = ", ".join(f"{g} {sizes['train'][g]}/{sizes['valid'][g]}/{sizes['test'][g]}" for g in ds.genres)
        left = len(ds.tracks) - len(split)
        lists = "the fault-filtered lists" if config.split != "file" else f"the lists of {config.split_file}"
        left_text = (f"; {left} tracks of the folder are in none of {lists} and are left out"
                     if left and config.split != "random" else "")
        fix = ("Use --split random (TrainConfig(split='random')) to split these tracks by genre, or --force "
               "(TrainConfig(force=True)) to train on this split anyway")
        if config.split == "file":
            fix = f"Add tracks of these genres to the lists of {config.split_file}, or u{fix[1:]}"
        if hopeless:
            fix = (("Add training and validation tracks to the split file, or u" if config.split == "file" else "U") +
                   "se --split random (TrainConfig(split='random')) to split these tracks by genre (--force cannot "
                   "help: there is nothing to train or to validate on)")
        raise DatasetError(
            f"the {config.split} split of {ds.root} cannot give an honest test result: {'; '.join(problems)} "
            f"(tracks per genre train/valid/test: {per_genre}{left_text}). {fix}"
        )
    return problems


def config_split(ds: Dataset, config: TrainConfig) -> dict[str, str]:
    """The track split ``config`` asks for (``track_id -> part``; see :func:`genrelib.dataset.make_split`)."""
    return make_split(ds, kind=config.split, seed=config.seed, test_size=config.test_size,
                      valid_size=config.valid_size, split_file=config.split_file or None)


def split_file_record(ds: Dataset, config: TrainConfig) -> dict:
    """For a ``file`` split: the files, the lists' digest and how they meet ``ds`` (listed, matched, missing
    track keys); empty for other splits. Logged as ``split.*`` parameters and kept in ``model.info``."""
    if config.split != "file":
        return {}
    from .dataset import read_split_file, split_file_coverage

    sf = read_split_file(config.split_file)
    return {"files": sf.names(), "digest": sf.digest, **split_file_coverage(ds, sf)}


def training_features(ds: Dataset, fcfg: FeatureConfig, config: TrainConfig, *, n_jobs: int | None = None,
                      progress: bool = False, scheduler=None, store: str | Path | None = None):
    """The features a training job (train, ``train --cv``, sweep) fits on: :func:`genrelib.features.extract`
    (cached; on a Dask cluster with ``scheduler``), or with ``store`` the sharded store under that root
    (:func:`genrelib.store.extract_to_store`, resuming what is there), whose parts are read lazily and whose Keras
    fits stream (:mod:`genrelib.streaming`).

    Raises
    ------
    ModelError
        With ``store`` and waveform copies (``config.aug_copies``): copies are not written to a store.
    """
    if store is None:
        return extract(ds, fcfg, n_jobs=n_jobs, progress=progress, scheduler=scheduler)
    from .store import extract_to_store

    if config.wave_augment().active:
        raise ModelError("waveform copies (--aug-copies) are not written to a feature store; leave out "
                         "--aug-copies or --store")
    return extract_to_store(ds, fcfg, store, n_jobs=n_jobs, scheduler=scheduler, progress=progress)


def split_features(fs: FeatureSet, ds: Dataset, config: TrainConfig) -> tuple[dict[str, str], dict[str, FeatureSet]]:
    """The track split of ``config``, checked by :func:`check_split`, and the feature set cut along it."""
    split = config_split(ds, config)
    # Tracks that could not be decoded have no rows; they simply drop out of every part.
    have = set(fs.tracks)
    check_split({t: p for t, p in split.items() if t in have}, ds, config)
    return split, fs.split(split)


def train(
    data: str | Path | Dataset,
    config: TrainConfig,
    *,
    feature_config: FeatureConfig | None = None,
    evaluate_test: bool = True,
    log: bool = True,
    register: bool = True,
    promote: str = "auto",
    run_name: str | None = None,
    parent_run_id: str | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    tracking_uri: str | None = None,
    tags: dict | None = None,
    scheduler: str | None = None,
    store: str | Path | None = None,
) -> TrainResult:
    """The training job on a data folder: features, split, fit, test evaluation, MLflow logging, registry.

    Parameters
    ----------
    data : path or Dataset
        A folder laid out ``<root>/<genre>/<file>`` or a scanned dataset.
    config : TrainConfig
    feature_config : FeatureConfig, optional
        Default: :func:`feature_config_for` the family.
    evaluate_test : bool
        Evaluate on the test part and log the report.
    log, register : bool
        Log to MLflow; register the model as ``genre-classifier``.
    promote : {"auto", "always", "never"}
        Whether the family's registry alias (``genre-classifier@seed-cnn``) moves to the new version:
        ``auto`` when it is at least as good as the current holder on the same data set
        (:func:`genrelib.tracking.promote`).
    run_name, parent_run_id : str, optional
        MLflow run name; a parent run to nest under (as ``make run-all`` does).
    tracking_uri : str, optional
        MLflow store (default: see :func:`genrelib.tracking.tracking_uri`).
    tags : dict, optional
        Extra run tags.
    scheduler : str, optional
        A Dask scheduler address: extract the features on that cluster (:func:`genrelib.features.extract`).
    store : path, optional
        A feature store root: extract into it (:func:`genrelib.store.extract_to_store`, resuming what is there)
        and train from it without reading the data set into memory (Keras families stream their shards,
        :mod:`genrelib.streaming`; summary and musicnn read their small per-window rows).

    Returns
    -------
    TrainResult
    """
    from . import evaluate as ev
    from .demo import is_demo

    ds = data if isinstance(data, Dataset) else scan(data)
    fcfg = feature_config or feature_config_for(config.family)
    if fcfg.kind != FAMILIES[config.family]:
        raise ModelError(f"{config.family} needs {FAMILIES[config.family]!r} features, not {fcfg.kind!r}")
    split = config_split(ds, config)
    check_split(split, ds, config)  # refuse before any feature extraction or fitting
    file_record = split_file_record(ds, config)
    left_out = [t.track_id for t in ds.tracks if t.track_id not in split]
    if left_out:
        logger.info("%s split: %d tracks are in no part and are left out", config.split, len(left_out))
    fs = training_features(ds, fcfg, config, n_jobs=n_jobs, progress=progress, scheduler=scheduler, store=store)
    have = set(fs.tracks)  # tracks that could not be decoded have no rows and drop out of every part
    problems = check_split({t: p for t, p in split.items() if t in have}, ds, config)
    if problems:
        logger.warning("training anyway (force): %s", "; ".join(problems))
    parts = fs.split(split)
    sizes = split_counts({t: p for t, p in split.items() if t in have}, ds)
    # Waveform copies of the training tracks only (never of validation or test tracks), cached per track.
    train_rows, copy_settings = with_copies(parts["train"], ds, config, n_jobs=n_jobs, progress=progress)
    result_extra = {"data_root": str(ds.root), "manifest_hash": ds.manifest_hash(), "skipped": fs.skipped,
                    "left_out": left_out, "split_problems": problems, "augment_copies": copy_settings,
                    "split_file": file_record}

    trained: dict[str, GenreModel] = {}  # the model once fitted, kept if a later step fails

    def _run() -> TrainResult:
        from . import tracking

        callbacks = (tracking.keras_epoch_logger(),) if (log and config.family in KERAS_FAMILIES) else ()
        model, history = fit(train_rows, parts["valid"], config, callbacks=callbacks)
        trained["model"] = model
        if copy_settings:
            model.info["augmented_rows"] = len(train_rows) - len(parts["train"])
        # The split's own track lists travel with the model: `evaluate --part test` scores exactly these
        # tracks (found in any folder by genre/stem), and never re-splits a folder.
        model.info.update({"split": config.split, "seed": config.seed, "test_size": config.test_size,
                           "valid_size": config.valid_size, "manifest_hash": ds.manifest_hash(),
                           "data_root": str(ds.root), "synthetic_demo": is_demo(ds.root),
                           "genrelib_version": __version__,
                           "split_tracks": {p: sorted(t for t, q in split.items() if q == p and t in have)
                                            for p in SPLIT_NAMES},
                           "split_left_out": len(left_out), "split_problems": problems})
        if file_record:
            model.info["split_file"] = {k: v for k, v in file_record.items() if k != "missing"}
            model.info["split_file"]["missing"] = len(file_record["missing"])
        if model.is_keras:
            # Early stopping never triggered and the last epoch was the best: the validation loss was still
            # falling, so the run stopped at --epochs rather than at a minimum.
            model.info["still_improving"] = bool(model.info["best_epoch"] == model.info["epochs_run"] == config.epochs)
        res = TrainResult(model=model, history=history, split=split, split_sizes=sizes, features=fs,
                          extra=result_extra, config=config)
        if evaluate_test and len(parts["test"]):  # (empty only when forced)
            res.report = ev.evaluate(model, parts["test"])  # a stored part: predicted shard by shard
        if log:
            tracking.log_dataset(ds.table(split), name=data_name(ds), source=str(ds.root), digest=ds.manifest_hash())
            tracking.log_dict({"split": split, "sizes": sizes, **({"split_file": file_record} if file_record else {})},
                              "data/split.json")
            tracking.log_dict(ds.manifest(), "data/manifest.json")
            tracking.log_metrics({**{f"tracks_{p}": sum(c.values()) for p, c in sizes.items()},
                                  "tracks_left_out": len(left_out)})
            if config.family in KERAS_FAMILIES:
                tracking.log_figure(history_figure(model, history), "figures/training_curves.png")
                tracking.log_text(summary_text(model), "model_summary.txt")
                tracking.log_image(architecture_diagram(model.estimator), "figures/architecture.png")
                tracking.log_metrics({"epochs_run": model.info["epochs_run"],
                                      "best_epoch": model.info["best_epoch"],
                                      "train_seconds": model.info["train_seconds"]})
                tracking.set_tags({"genrelib.still_improving": str(model.info["still_improving"]).lower()})
                if config.augmented:
                    from . import plots

                    tracking.log_figure(plots.plot_augmented_examples(augmented_examples(res), kind=fcfg.kind),
                                        "figures/augmented_examples.png")
                if copy_settings:
                    import pandas as pd

                    tracking.log_metrics({"train_rows_augmented": model.info["augmented_rows"]})
                    tracking.log_table(pd.DataFrame(copy_settings), "reports/augment_copies.csv")
            else:
                tracking.log_metrics({f"valid_accuracy_{k}": v
                                      for k, v in model.info["validation_accuracy"].items()})
                tracking.log_params({"chosen_estimator": model.info["chosen"]})
            if res.report is not None:
                ev.log_report(res.report, prefix="test")
            logged = tracking.log_genre_model(
                model, register=register, dataset_name=data_name(ds), promote_alias=promote,
                test_track_accuracy=None if res.report is None else res.report.track.metrics["accuracy"])
            res.model_uri, res.registered_version = logged["model_uri"], logged.get("version")
            res.extra["alias_reason"] = logged.get("alias_reason")
        return res

    if not log:
        return _run()
    from . import tracking

    params = {**{f"train.{k}": v for k, v in asdict(config).items()},
              **{f"features.{k}": v for k, v in fcfg.to_dict().items()},
              "data.root": str(ds.root), "data.tracks": len(ds.tracks), "data.genres": ",".join(ds.genres),
              "data.skipped": len(fs.skipped), "data.manifest_hash": ds.manifest_hash(),
              **{f"split.{k}": (len(v) if k == "missing" else v) for k, v in file_record.items()}}
    with tracking.start_run(run_name or f"train-{config.family}", parent_run_id=parent_run_id, params=params,
                            uri=tracking_uri,
                            tags={"genrelib.stage": "train", "genrelib.family": config.family, **(tags or {})}) as run:
        try:
            res = _run()
        except Exception as exc:
            if "model" not in trained:
                raise
            raise keep_unlogged_model(trained["model"], exc, run_id=run.info.run_id) from exc
        res.run_id = run.info.run_id
    return res


#: Where :func:`train` saves a trained model that could not be logged to MLflow (relative to the working folder).
UNLOGGED_DIR = Path("results") / "unlogged-models"


def keep_unlogged_model(model: GenreModel, exc: BaseException, *, run_id: str) -> GenrelibError:
    """Save a trained model whose evaluation or logging failed, and return the error that says so.

    The model goes to ``results/unlogged-models/<family>-<run id>`` (:data:`UNLOGGED_DIR`), a folder that
    ``genrelib predict --model``, ``genrelib evaluate`` and :func:`genrelib.predict.load_model` read; the run gets
    a ``genrelib.unlogged_model`` tag naming it (when the store still takes tags).

    Returns
    -------
    GenrelibError
        One line: what failed, and where the model is (or that saving it failed too).
    """
    from . import tracking

    first = (str(exc).strip().splitlines() or [""])[0][:300]
    what = f"training finished, but evaluating or logging the model failed ({type(exc).__name__}: {first})"
    folder = UNLOGGED_DIR / f"{model.family}-{run_id}"
    try:
        model.save(folder)
    except Exception as again:  # noqa: BLE001 - reported, with the first failure, in the error returned
        return GenrelibError(f"{what}; saving the model to {folder} failed too ({type(again).__name__}: {again}), "
                             f"so it is lost; MLflow run {run_id} is marked FAILED")
    try:
        tracking.set_tags({"genrelib.unlogged_model": str(folder.resolve())})
    except Exception as tag_exc:  # noqa: BLE001 - the store is what failed; the model is safe, say so below
        logger.warning("could not tag run %s with the saved model's folder: %s", run_id, tag_exc)
    return GenrelibError(f"{what}; the trained model is saved in {folder} (use it with --model {folder}); MLflow run "
                         f"{run_id} is marked FAILED")


def data_name(ds: Dataset) -> str:
    """What a data folder is called in MLflow: its folder name, marked when it is genrelib's synthetic demo."""
    from .demo import is_demo

    return f"{ds.root.name} (synthetic demo)" if is_demo(ds.root) else ds.root.name


def describe(result: TrainResult):
    """A one-column table of what a training run produced."""
    import pandas as pd

    info = result.model.info
    sizes = {p: sum(c.values()) for p, c in result.split_sizes.items()}
    facts = {"family": result.model.family, "run id": result.run_id, "registered version": result.registered_version,
             "tracks train / valid / test": f"{sizes['train']} / {sizes['valid']} / {sizes['test']}",
             "rows train / valid": f"{info.get('train_rows')} / {info.get('valid_rows')}"}
    if result.model.is_keras:
        facts.update({"epochs run": info["epochs_run"], "best epoch": info["best_epoch"],
                      "training seconds": round(info["train_seconds"], 1)})
        if info.get("still_improving"):
            facts["still improving"] = (f"yes: validation loss was still falling at the last epoch "
                                        f"({info['epochs_run']}); more epochs would likely help")
    else:
        facts["chosen estimator"] = info["chosen"]
    if result.config is not None and result.config.augmented:
        from .augment import describe as describe_augmentation

        facts["augmentation (training tracks only)"] = describe_augmentation(result.config.feature_augment(),
                                                                             result.config.wave_augment())
        if info.get("augmented_rows"):
            facts["rows of augmented copies"] = info["augmented_rows"]
    if result.extra.get("left_out"):
        facts["tracks left out of the split"] = len(result.extra["left_out"])
    if result.extra.get("split_problems"):
        facts["split problems (trained anyway, force)"] = "; ".join(result.extra["split_problems"])
    if result.report is not None:
        facts["test accuracy per segment"] = round(result.report.segment.metrics["accuracy"], 4)
        facts["test accuracy per track"] = round(result.report.track.metrics["accuracy"], 4)
    return pd.DataFrame({"value": {k: str(v) for k, v in facts.items()}})


def augmented_examples(result: TrainResult, *, n_tracks: int = 2, variants: int = 2) -> dict:
    """One segment of a training track of each of the first ``n_tracks`` genres, original and augmented as the
    run's configuration augments it (for :func:`genrelib.plots.plot_augmented_examples`).

    Returns
    -------
    dict
        ``{track_id: {label: S}}`` (see :func:`genrelib.augment.examples`).
    """
    from . import augment
    from .dataset import Track

    config = result.config
    if config is None:
        raise ModelError("this result records no training configuration; give one trained by genrelib.train.train")
    genre_of = dict(zip(result.features.track_ids.tolist(), result.features.row_genres.tolist()))
    root = Path(result.extra["data_root"])
    tracks, seen = [], set()
    for tid in sorted(t for t, p in result.split.items() if p == "train" and t in genre_of):
        if genre_of[tid] not in seen and len(tracks) < n_tracks:
            seen.add(genre_of[tid])
            tracks.append(Track(root / tid, genre_of[tid], tid))
    return augment.examples(tracks, result.features.config, config.feature_augment(), config.wave_augment(),
                            seed=config.seed, variants=variants)


def summary_text(model: GenreModel) -> str:
    """``model.summary()`` of a Keras model, or the scikit-learn pipeline's description."""
    if not model.is_keras:
        return repr(model.estimator)
    lines: list[str] = []
    model.estimator.summary(print_fn=lambda s, **kw: lines.append(s))
    return "\n".join(lines)


def loss_label(model: object) -> str:
    """What a Keras model's training loss is made of: ``"cross-entropy"``, plus the weight penalties its layers
    add to it (``"cross-entropy + L2"`` for seed_cnn's L2-regularized kernels).

    Parameters
    ----------
    model : keras.Model
    """
    penalties: set[str] = set()
    layers = list(model.layers)
    while layers:
        layer = layers.pop()
        layers += list(getattr(layer, "layers", []))  # nested models and blocks
        for attr in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer"):
            reg = getattr(layer, attr, None)
            if reg is not None:
                penalties.add(type(reg).__name__)
    return " + ".join(["cross-entropy", *sorted(penalties)])


def history_figure(model: GenreModel, history: dict):
    """Training curves of a Keras model (loss and segment accuracy per epoch), the loss named as the model
    computes it."""
    from . import plots

    return plots.plot_history(history, title=f"{model.family} training curves",
                              loss_label=loss_label(model.estimator))


def architecture_diagram(model):
    """The visualkeras layered diagram of a Keras model as a PIL image.

    visualkeras 0.2 reads ``layer.output_shape``, which Keras 3 removed; the shim below gives each layer that
    attribute from its output tensor for the duration of the call.
    """
    import visualkeras

    patched = []
    for layer in model.layers:
        if not hasattr(layer, "output_shape"):
            try:
                shape = tuple(layer.output.shape)
            except (AttributeError, ValueError):
                continue
            try:
                object.__setattr__(layer, "output_shape", shape)
            except (AttributeError, TypeError):
                type(layer).output_shape = property(lambda self: tuple(self.output.shape))
            patched.append(layer)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The legend_text_spacing_offset", category=UserWarning)
            return visualkeras.layered_view(model, legend=True, scale_xy=1.5, scale_z=0.5, max_z=40)
    finally:
        for layer in patched:
            try:
                object.__delattr__(layer, "output_shape")
            except (AttributeError, TypeError):
                pass
