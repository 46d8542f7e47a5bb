"""Cross-validation by track: the honest way to compare model families on small data.

:func:`cross_validate` cuts the tracks of a data folder into ``folds`` stratified folds (whole tracks, never
segments), ``repeats`` times with different shuffles. Each fold in turn is the test part; the other tracks are
split once more, stratified, into training and validation parts (validation drives early stopping or the
choice of estimator). The features are extracted once, and every family sees the same folds for the same
``seed``, so families can be compared fold by fold. Each fold is a nested MLflow run under one parent run, which
records the mean and the standard deviation of every metric over the folds. No fold model is registered.

GTZAN has no artist labels here (no public artist index with a license that allows shipping it was found), so
``group`` offers two approximations of artist-grouped folds on GTZAN file names (``<genre>.<5 digits>``), both
built on the observation (Sturm 2012, 2013) that GTZAN's excerpts of one artist mostly sit at consecutive numbers
of a genre:

- ``blocks:N``: a group is a block of N consecutive numbers of a genre (``rock.00000``-``rock.00009`` for N=10).
  Neighbours, which often share an artist, stay in one part of every fold; an artist whose run of numbers
  crosses a block boundary still leaks.
- ``ff-runs``: a group is a maximal run of consecutive numbers of a genre that the fault-filtered lists put in the
  same part. Those lists were made so that no artist is in two parts, so every change of part between
  neighbouring numbers is a change of artist: a run holds whole artists as far as artists are contiguous. The
  runs are coarse (6 to 29 per genre; rock.00000-rock.00009 is one), so few folds are possible on small data.

Either is refused on other file names (grouping by numbers would mean nothing there).
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from genrelib.datasets.splits import gtzan_split_lists, track_key
from genrelib.datasets.tracks import Dataset, scan
from genrelib.errors import DatasetError, ModelError
from genrelib.features.config import FeatureConfig
from genrelib.models import FAMILIES, KERAS_FAMILIES

logger = logging.getLogger(__name__)


#: The grouping options of :func:`cv_groups` (``blocks:N`` takes a block size).
GROUPINGS = ("blocks:N", "ff-runs")

_GTZAN_NAME = re.compile(r"^(?P<genre>[^/]+)/(?P=genre)\.(?P<number>\d{5})$")


def _ff_runs() -> dict[tuple[str, int], int]:
    """``(genre, number) -> run index``: runs of consecutive numbers of a genre in the same fault-filtered part.

    A number in no list (a replica, mislabeling or distortion) joins the run of the number before it (the next
    one at the start of a genre): it says nothing about where an artist changes.
    """
    part_of: dict[tuple[str, int], str] = {}
    for part, ids in gtzan_split_lists().items():
        for tid in ids:
            m = _GTZAN_NAME.match(track_key(tid))
            part_of[(m["genre"], int(m["number"]))] = part
    runs: dict[tuple[str, int], int] = {}
    for genre in sorted({g for g, _ in part_of}):
        listed = [part_of.get((genre, n)) for n in range(100)]
        first = next(p for p in listed if p)
        run, current = 0, first
        for n, part in enumerate(listed):
            if part and part != current:
                run, current = run + 1, part
            runs[(genre, n)] = run
    return runs


def cv_groups(dataset: Dataset, group: str) -> list[str]:
    """The group of every track of ``dataset`` (in its track order) for grouped cross-validation.

    Parameters
    ----------
    dataset : Dataset
        Tracks with GTZAN file names (``<genre>/<genre>.<5 digits>.<ext>``).
    group : str
        ``blocks:N`` or ``ff-runs`` (see the module docstring): approximations of artist groups on GTZAN.

    Returns
    -------
    list of str
        Group names such as ``rock:block0`` or ``rock:run0``; tracks of one group stay in one part of every fold.

    Raises
    ------
    DatasetError
        For an unknown grouping, a block size that is not a whole number >= 1, or tracks not named like GTZAN
        (a few named).
    """
    spec = str(group).strip()
    size = None
    if spec.startswith("blocks:"):
        try:
            size = int(spec.split(":", 1)[1])
        except ValueError:
            size = 0
        if size < 1:
            raise DatasetError(f"--group {spec}: the block size must be a whole number >= 1, e.g. blocks:10")
    elif spec != "ff-runs":
        raise DatasetError(
            f"unknown --group {spec!r}; use blocks:N (blocks of N consecutive GTZAN numbers of a "
            "genre, e.g. blocks:10) or ff-runs (runs of the fault-filtered lists)"
        )
    matches = [_GTZAN_NAME.match(track_key(t.track_id)) for t in dataset.tracks]
    bad = [t.track_id for t, m in zip(dataset.tracks, matches) if m is None]
    if bad:
        raise DatasetError(
            f"--group {spec} approximates GTZAN's artists from its file names (<genre>/<genre>.<5 digits>, e.g. "
            f"rock/rock.00012.wav), but {len(bad)} of the {len(dataset.tracks)} tracks under {dataset.root} are not "
            f"named so ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); leave --group out for other data"
        )
    if size is not None:
        return [f"{m['genre']}:block{int(m['number']) // size}" for m in matches]
    runs = _ff_runs()
    out = []
    for t, m in zip(dataset.tracks, matches):
        key = (m["genre"], int(m["number"]))
        if key not in runs:
            raise DatasetError(
                f"--group ff-runs: {t.track_id} is not a GTZAN genre's name (the fault-filtered lists "
                f"know {', '.join(sorted({g for g, _ in runs}))}); use blocks:N"
            )
        out.append(f"{key[0]}:run{runs[key]}")
    return out


def cv_splits(
    dataset: Dataset,
    *,
    folds: int = 5,
    repeats: int = 1,
    seed: int = 42,
    valid_size: float = 0.2,
    group: str | None = None,
) -> list[dict[str, str]]:
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
    group : str, optional
        ``blocks:N`` or ``ff-runs`` (:func:`cv_groups`): keep each group of tracks in one part (train, valid or
        test) of every fold, with sklearn's StratifiedGroupKFold; every genre then needs at least ``folds`` groups.

    Returns
    -------
    list of dict
        ``folds * repeats`` maps ``track_id -> "train" | "valid" | "test"``; across the folds of one repeat every
        track is in exactly one test part.

    Raises
    ------
    DatasetError
        For ``folds < 2``, ``repeats < 1``, or a genre with fewer tracks than folds (the counts are named); with
        ``group``, a genre with fewer groups than folds, and as :func:`cv_groups`.
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    if int(folds) != folds or folds < 2:
        raise DatasetError(f"--cv needs at least 2 folds, got {folds}; for one train/test split leave --cv out")
    if repeats < 1:
        raise DatasetError(f"repeats must be >= 1, got {repeats}")
    counts = dataset.counts()
    small = {g: n for g, n in counts.items() if n < max(folds, 3)}
    if small:
        raise DatasetError(
            f"{folds}-fold cross-validation needs at least {max(folds, 3)} tracks of every genre; "
            f"{', '.join(f'{g} has {n}' for g, n in small.items())}. Use fewer folds or leave "
            "those genres out"
        )
    ids = np.array([t.track_id for t in dataset.tracks])
    y = dataset.labels()
    if group:
        return _grouped_splits(
            dataset, ids, y, group, folds=int(folds), repeats=repeats, seed=seed, valid_size=valid_size
        )
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


def _grouped_splits(
    dataset: Dataset,
    ids: np.ndarray,
    y: np.ndarray,
    group: str,
    *,
    folds: int,
    repeats: int,
    seed: int,
    valid_size: float,
) -> list[dict[str, str]]:
    """:func:`cv_splits` with groups: StratifiedGroupKFold for the test part, and again inside the rest for the
    validation part (about ``valid_size`` of it), so that no group is in two parts of a fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.array(cv_groups(dataset, group))
    per_genre = {g: len({grp for grp, lab in zip(groups, y) if lab == i}) for i, g in enumerate(dataset.genres)}
    few = {g: n for g, n in per_genre.items() if n < folds}
    if few:
        raise DatasetError(
            f"{folds}-fold cross-validation grouped by {group} needs at least {folds} groups of every genre (a genre "
            f"with fewer would be missing from some test parts); {', '.join(f'{g} has {n}' for g, n in few.items())}. "
            "Use fewer folds, smaller groups (blocks:N with a smaller N), or leave those genres out"
        )
    inner = max(2, int(round(1 / valid_size))) if valid_size > 0 else 2
    out = []
    for r in range(repeats):
        sgkf = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + r)
        for rest, test in sgkf.split(ids, y, groups):
            # the validation part: one fold of a grouped split of the rest (fewer folds if the rest has few groups)
            n_inner = min(inner, len(set(groups[rest].tolist())))
            if n_inner < 2:
                raise DatasetError(
                    f"grouped by {group}, a fold's training part holds a single group; use smaller "
                    "groups or fewer folds"
                )
            # Of the inner folds, the first whose training part keeps every genre of the rest; else the first that
            # still has validation groups once the validation groups of a genre missing from training go back to
            # training (validation only stops early; a genre never trained on cannot be predicted).
            inner_folds = []
            for n in range(n_inner, 1, -1):  # fewer inner folds when a genre has fewer tracks than folds
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only 2"
                        inner_folds = list(
                            StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed + r).split(
                                rest, y[rest], groups[rest]
                            )
                        )
                    break
                except ValueError:
                    continue
            genres_rest = set(y[rest].tolist())
            candidates = []
            for a, b in inner_folds:
                lost = genres_rest - set(y[rest[a]].tolist())
                back = np.isin(y[rest[b]], list(lost))
                candidates.append((not lost, np.concatenate([a, b[back]]), b[~back]))
            usable = [c for c in candidates if len(c[2])]
            if not usable:
                raise DatasetError(
                    f"grouped by {group}, a fold of {folds} leaves no group for validation once every genre keeps a "
                    "training group (a genre has too few groups); use fewer folds, smaller groups (blocks:N with a "
                    "smaller N), or leave the genres with few groups out"
                )
            _, tr, va = next((c for c in usable if c[0]), usable[0])
            split = {i: "train" for i in ids[rest[tr]]}
            split.update({i: "valid" for i in ids[rest[va]]})
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

        cols = ["repeat", "fold", "test_tracks", "test_track_accuracy", "test_segment_accuracy", "test_track_f1_macro"]
        return pd.DataFrame(self.folds)[cols]


def cross_validate(
    data: str | Path | Dataset,
    config,
    *,
    folds: int = 5,
    repeats: int = 1,
    group: str | None = None,
    feature_config: FeatureConfig | None = None,
    log: bool = True,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    tracking_uri: str | None = None,
    scheduler=None,
    store: str | Path | None = None,
) -> CVResult:
    """Repeated stratified K-fold cross-validation of one family by track (see the module docstring).

    Parameters
    ----------
    data : path or Dataset
    config : genrelib.training.config.TrainConfig
        The family and its training settings; ``config.seed`` seeds the folds and every fit.
    folds, repeats : int
        See :func:`cv_splits`.
    group : str, optional
        ``blocks:N`` or ``ff-runs``: grouped folds on GTZAN names, approximating artist groups (:func:`cv_groups`).
    feature_config : FeatureConfig, optional
        Default: the family's.
    log : bool
        Log a parent MLflow run with one nested run per fold.
    scheduler : str, optional
        A Dask scheduler address (or ``local:N``): extract the features on that cluster.
    store : path, optional
        A feature store root: extract into it (resuming what is there); every fold reads its parts lazily and
        the Keras families stream from the shards (:func:`genrelib.training.splits.training_features`).

    Returns
    -------
    CVResult
    """
    from genrelib import evaluation as ev
    from genrelib.training.config import feature_config_for
    from genrelib.training.fitting import fit, with_copies
    from genrelib.training.splits import check_genres, training_features

    ds = data if isinstance(data, Dataset) else scan(data)
    check_genres(ds)  # before any extraction
    fcfg = feature_config or feature_config_for(config.family)
    if fcfg.kind != FAMILIES[config.family]:
        raise ModelError(f"{config.family} needs {FAMILIES[config.family]!r} features, not {fcfg.kind!r}")
    splits = cv_splits(ds, folds=folds, repeats=repeats, seed=config.seed, valid_size=config.valid_size, group=group)
    fs = training_features(ds, fcfg, config, n_jobs=n_jobs, progress=progress, scheduler=scheduler, store=store)
    result = CVResult(family=config.family, folds=[])

    def one_fold(i: int, split: dict[str, str]) -> dict:
        parts = fs.split(split)
        if not len(parts["test"]):
            raise DatasetError(f"fold {i + 1} has no readable test track; use fewer folds")
        # waveform copies (config.aug_copies) of this fold's training tracks only; cached per track
        train_rows, _ = with_copies(parts["train"], ds, config, n_jobs=n_jobs)
        model, _ = fit(train_rows, parts["valid"], config)
        report = ev.evaluate(model, parts["test"])
        row = {
            "repeat": i // folds + 1,
            "fold": i % folds + 1,
            "test_tracks": len(report.track_ids),
            **report.flat_metrics("test"),
        }
        if log:
            from genrelib import tracking

            tracking.log_metrics({k: v for k, v in row.items() if k.startswith("test_")})
            tracking.log_dict({"split": split}, "data/split.json")
        return row

    def run_all() -> None:
        for i, split in enumerate(splits):
            if log:
                from genrelib import tracking

                with tracking.start_run(
                    f"cv-{config.family}-r{i // folds + 1}-f{i % folds + 1}",
                    parent_run_id=result.run_id,
                    tags={"genrelib.stage": "cv-fold", "genrelib.family": config.family},
                ):
                    result.folds.append(one_fold(i, split))
            else:
                result.folds.append(one_fold(i, split))
            logger.info("fold %d/%d: track accuracy %.3f", i + 1, len(splits), result.folds[-1]["test_track_accuracy"])
        keys = [k for k in result.folds[0] if k.startswith("test_")]
        values = {k: np.array([f[k] for f in result.folds], dtype=float) for k in keys}
        result.mean = {k: float(v.mean()) for k, v in values.items()}
        result.std = {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()}

    if not log:
        run_all()
        return result
    from genrelib import tracking
    from genrelib.training.trainer import run_title

    params = {
        **{f"train.{k}": v for k, v in asdict(config).items()},
        **{f"features.{k}": v for k, v in fcfg.to_dict().items()},
        "cv.folds": folds,
        "cv.repeats": repeats,
        "cv.group": group or "none",
        "data.root": str(ds.root.resolve()),
        "data.tracks": len(ds.tracks),
        "data.manifest_hash": ds.manifest_hash(),
    }
    with tracking.start_run(
        run_name or run_title("cv", config, ds, f"{folds}x{repeats} folds"),
        parent_run_id=parent_run_id,
        params=params,
        uri=tracking_uri,
        tags={"genrelib.stage": "cv", "genrelib.family": config.family},
    ) as run:
        result.run_id = run.info.run_id
        from genrelib.training.trainer import data_name

        tracking.log_data(ds, name=data_name(ds), context="training")  # every track trains and tests in turn
        run_all()
        tracking.log_metrics(
            {**{f"cv_mean_{k}": v for k, v in result.mean.items()}, **{f"cv_std_{k}": v for k, v in result.std.items()}}
        )
        tracking.log_table(result.table(), "reports/cv_folds.csv")
    return result


__all__ = ["cv_splits", "cv_groups", "cross_validate", "CVResult", "GROUPINGS", "KERAS_FAMILIES"]
