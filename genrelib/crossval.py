"""Cross-validation by track: the honest way to compare model families on small data.

:func:`cross_validate` cuts the tracks of a data folder into ``folds`` stratified folds (whole tracks, never
segments), ``repeats`` times with different shuffles. Each fold in turn is the test part; the other tracks are
split once more, stratified, into training and validation parts (validation drives early stopping or the
choice of estimator). The features are extracted once, and every family sees the same folds for the same
``seed``, so families can be compared fold by fold. Each fold is a nested MLflow run under one parent run, which
records the mean and the standard deviation of every metric over the folds. No fold model is registered.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .dataset import Dataset, scan
from .errors import DatasetError, ModelError
from .features import FeatureConfig, extract
from .models import FAMILIES, KERAS_FAMILIES

logger = logging.getLogger(__name__)


def cv_splits(dataset: Dataset, *, folds: int = 5, repeats: int = 1, seed: int = 42,
              valid_size: float = 0.2) -> list[dict[str, str]]:
    """Track splits of repeated stratified K-fold cross-validation.

    Parameters
    ----------
    dataset : Dataset
    folds : int
        Number of folds, at least 2 and at most the number of tracks of the smallest genre.
    repeats : int
        Repetitions with different shuffles (seeds ``seed``, ``seed + 1``, ...).
    seed : int
    valid_size : float
        Share of each training part held out (stratified) for validation.

    Returns
    -------
    list of dict
        ``folds * repeats`` maps ``track_id -> "train" | "valid" | "test"``; across the folds of one repeat every
        track is in exactly one test part.

    Raises
    ------
    DatasetError
        For ``folds < 2``, ``repeats < 1``, or a genre with fewer tracks than folds (the counts are named).
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    if int(folds) != folds or folds < 2:
        raise DatasetError(f"--cv needs at least 2 folds, got {folds}; for one train/test split leave --cv out")
    if repeats < 1:
        raise DatasetError(f"repeats must be >= 1, got {repeats}")
    counts = dataset.counts()
    small = {g: n for g, n in counts.items() if n < max(folds, 3)}
    if small:
        raise DatasetError(f"{folds}-fold cross-validation needs at least {max(folds, 3)} tracks of every genre; "
                           f"{', '.join(f'{g} has {n}' for g, n in small.items())}. Use fewer folds or leave "
                           "those genres out")
    ids = np.array([t.track_id for t in dataset.tracks])
    y = dataset.labels()
    out = []
    for r in range(repeats):
        skf = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed + r)
        for rest, test in skf.split(ids, y):
            n_valid = max(int(round(valid_size * len(rest))), len(set(y[rest].tolist())))
            try:
                tr, va = train_test_split(rest, test_size=n_valid, stratify=y[rest], random_state=seed + r)
            except ValueError:  # a genre with a single track left in this fold's training part
                tr, va = train_test_split(rest, test_size=n_valid, random_state=seed + r)
            split = {i: "train" for i in ids[tr]}
            split.update({i: "valid" for i in ids[va]})
            split.update({i: "test" for i in ids[test]})
            out.append(split)
    return out


@dataclass
class CVResult:
    """What :func:`cross_validate` returns.

    Attributes
    ----------
    family : str
    folds : list of dict
        Per fold: ``repeat``, ``fold``, test tracks, and the flat test metrics (``test_track_accuracy``, ...).
    mean, std : dict
        Mean and standard deviation (ddof 1) of every metric over the folds.
    run_id : str or None
        The MLflow parent run.
    """

    family: str
    folds: list[dict]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None

    def table(self):
        """One row per fold (repeat, fold, test tracks, track and segment accuracy, macro F1)."""
        import pandas as pd

        cols = ["repeat", "fold", "test_tracks", "test_track_accuracy", "test_segment_accuracy",
                "test_track_f1_macro"]
        return pd.DataFrame(self.folds)[cols]


def cross_validate(data: str | Path | Dataset, config, *, folds: int = 5, repeats: int = 1,
                   feature_config: FeatureConfig | None = None, log: bool = True, run_name: str | None = None,
                   parent_run_id: str | None = None, n_jobs: int | None = None, progress: bool = False,
                   tracking_uri: str | None = None) -> CVResult:
    """Repeated stratified K-fold cross-validation of one family by track (see the module docstring).

    Parameters
    ----------
    data : path or Dataset
    config : genrelib.train.TrainConfig
        The family and its training settings; ``config.seed`` seeds the folds and every fit.
    folds, repeats : int
        See :func:`cv_splits`.
    feature_config : FeatureConfig, optional
        Default: the family's.
    log : bool
        Log a parent MLflow run with one nested run per fold.

    Returns
    -------
    CVResult
    """
    from . import evaluate as ev
    from .train import feature_config_for, fit, with_copies

    ds = data if isinstance(data, Dataset) else scan(data)
    fcfg = feature_config or feature_config_for(config.family)
    if fcfg.kind != FAMILIES[config.family]:
        raise ModelError(f"{config.family} needs {FAMILIES[config.family]!r} features, not {fcfg.kind!r}")
    splits = cv_splits(ds, folds=folds, repeats=repeats, seed=config.seed, valid_size=config.valid_size)
    fs = extract(ds, fcfg, n_jobs=n_jobs, progress=progress)
    result = CVResult(family=config.family, folds=[])

    def one_fold(i: int, split: dict[str, str]) -> dict:
        parts = fs.split(split)
        if not len(parts["test"]):
            raise DatasetError(f"fold {i + 1} has no readable test track; use fewer folds")
        # waveform copies (config.aug_copies) of this fold's training tracks only; cached per track
        train_rows, _ = with_copies(parts["train"], ds, config, n_jobs=n_jobs)
        model, _ = fit(train_rows, parts["valid"], config)
        report = ev.evaluate(model, parts["test"])
        row = {"repeat": i // folds + 1, "fold": i % folds + 1, "test_tracks": len(report.track_ids),
               **report.flat_metrics("test")}
        if log:
            from . import tracking

            tracking.log_metrics({k: v for k, v in row.items() if k.startswith("test_")})
            tracking.log_dict({"split": split}, "data/split.json")
        return row

    def run_all() -> None:
        for i, split in enumerate(splits):
            if log:
                from . import tracking

                with tracking.start_run(f"cv-{config.family}-r{i // folds + 1}-f{i % folds + 1}",
                                        parent_run_id=result.run_id,
                                        tags={"genrelib.stage": "cv-fold", "genrelib.family": config.family}):
                    result.folds.append(one_fold(i, split))
            else:
                result.folds.append(one_fold(i, split))
            logger.info("fold %d/%d: track accuracy %.3f", i + 1, len(splits),
                        result.folds[-1]["test_track_accuracy"])
        keys = [k for k in result.folds[0] if k.startswith("test_")]
        values = {k: np.array([f[k] for f in result.folds], dtype=float) for k in keys}
        result.mean = {k: float(v.mean()) for k, v in values.items()}
        result.std = {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()}

    if not log:
        run_all()
        return result
    from . import tracking

    params = {**{f"train.{k}": v for k, v in asdict(config).items()},
              **{f"features.{k}": v for k, v in fcfg.to_dict().items()},
              "cv.folds": folds, "cv.repeats": repeats, "data.root": str(ds.root), "data.tracks": len(ds.tracks),
              "data.manifest_hash": ds.manifest_hash()}
    with tracking.start_run(run_name or f"cv-{config.family}", parent_run_id=parent_run_id, params=params,
                            uri=tracking_uri, tags={"genrelib.stage": "cv", "genrelib.family": config.family}) as run:
        result.run_id = run.info.run_id
        from .train import data_name

        tracking.log_dataset(ds.table(), name=data_name(ds), source=str(ds.root), digest=ds.manifest_hash())
        run_all()
        tracking.log_metrics({**{f"cv_mean_{k}": v for k, v in result.mean.items()},
                              **{f"cv_std_{k}": v for k, v in result.std.items()}})
        tracking.log_table(result.table(), "reports/cv_folds.csv")
    return result


__all__ = ["cv_splits", "cross_validate", "CVResult", "KERAS_FAMILIES"]
