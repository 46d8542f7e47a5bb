"""Honest evaluation: metrics per segment and per track, confusion matrices, confidently wrong tracks.

A track's prediction aggregates its segments' probabilities by the mean log-probability (a geometric mean,
renormalized). Evaluation data must never have been seen in training or model selection: the split
functions of :mod:`genrelib.dataset` are by track, and :func:`genrelib.train.train` keeps the test part out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .errors import ModelError
from .features import FeatureSet
from .models.ensemble import is_ensemble

logger = logging.getLogger(__name__)

EPS = 1e-12


def aggregate(proba: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Combine row probabilities per group by mean log-probability.

    Parameters
    ----------
    proba : np.ndarray [shape=(n, n_classes)]
    groups : np.ndarray [shape=(n,)]
        Group key of each row (e.g. track ids).

    Returns
    -------
    keys : np.ndarray [shape=(n_groups,)]
        Groups in first-seen order.
    P : np.ndarray [shape=(n_groups, n_classes)]
        Rows sum to 1.
    """
    groups = np.asarray(groups)
    keys, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(first)
    logp = np.log(np.clip(proba, EPS, 1.0))
    sums = np.zeros((len(keys), proba.shape[1]))
    np.add.at(sums, inverse, logp)
    mean = sums / np.bincount(inverse, minlength=len(keys))[:, None]
    P = np.exp(mean - mean.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    return keys[order], P[order]


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and weighted / macro precision, recall and F1 (over the genres that occur)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    out = {"accuracy": float(accuracy_score(y_true, y_pred))}
    # Averages over the genres that occur (as true or predicted labels): a genre absent from a small test
    # folder must not count as a zero in the macro average.
    for avg in ("weighted", "macro"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
        out.update({f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)})
    return out


@dataclass
class LevelReport:
    """Results at one level (segment or track)."""

    metrics: dict[str, float]
    per_genre: dict[str, dict[str, float]]
    confusion: np.ndarray  # counts, rows = true genre
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray

    @property
    def confusion_normalized(self) -> np.ndarray:
        """Each row divided by its count (recall on the diagonal); rows of absent genres stay 0."""
        rows = self.confusion.sum(axis=1, keepdims=True)
        return np.divide(self.confusion, rows, out=np.zeros(self.confusion.shape), where=rows > 0)


@dataclass
class Report:
    """Segment- and track-level evaluation of one model on one labelled feature set."""

    genres: list[str]
    segment: LevelReport
    track: LevelReport
    track_ids: np.ndarray
    wrong: list[dict] = field(default_factory=list)
    part: str | None = None  # the part of the model's split evaluated on (None: a whole folder)
    part_found: int | None = None  # tracks of that part found in the folder
    part_recorded: int | None = None  # tracks of that part the model records
    members: list[Report] = field(default_factory=list)  # an ensemble's members, on the same tracks

    def flat_metrics(self, prefix: str = "test") -> dict[str, float]:
        """``{prefix}_{level}_{metric}`` for logging (e.g. ``test_track_accuracy``)."""
        out = {}
        for level in ("segment", "track"):
            for k, v in getattr(self, level).metrics.items():
                out[f"{prefix}_{level}_{k}"] = v
        return out

    def to_dict(self) -> dict:
        """JSON-able summary: metrics, per-genre reports, confusion matrices, wrong tracks."""
        return {
            "genres": self.genres,
            "segment": {"metrics": self.segment.metrics, "per_genre": self.segment.per_genre,
                        "confusion": self.segment.confusion.tolist()},
            "track": {"metrics": self.track.metrics, "per_genre": self.track.per_genre,
                      "confusion": self.track.confusion.tolist()},
            "most_confidently_wrong": self.wrong,
            "part": None if self.part is None else {"name": self.part, "found": self.part_found,
                                                    "recorded": self.part_recorded},
        }

    def metrics_table(self):
        """Metrics (rows) per level (columns: segment, track)."""
        import pandas as pd

        return pd.DataFrame({"segment": self.segment.metrics, "track": self.track.metrics})

    def wrong_table(self):
        """The most confidently wrong tracks."""
        import pandas as pd

        return pd.DataFrame(self.wrong, columns=["track_id", "true", "predicted", "probability", "p_true"])

    def per_genre_table(self, level: str = "track"):
        """Per-genre precision, recall, F1 and support as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(getattr(self, level).per_genre).T

    def track_table(self):
        """One row per track: id, true genre, predicted genre, its probability, and every genre's probability."""
        import pandas as pd

        P = self.track.proba
        df = pd.DataFrame(P, columns=[f"p_{g}" for g in self.genres])
        df.insert(0, "track_id", self.track_ids)
        df.insert(1, "true", [self.genres[i] for i in self.track.y_true])
        df.insert(2, "predicted", [self.genres[i] for i in self.track.y_pred])
        df.insert(3, "probability", P[np.arange(len(P)), self.track.y_pred])
        return df


def _level(y_true, proba, genres) -> LevelReport:
    from sklearn.metrics import classification_report, confusion_matrix

    n = len(genres)
    y_pred = proba.argmax(axis=1)
    rep = classification_report(y_true, y_pred, labels=list(range(n)), target_names=genres, output_dict=True,
                                zero_division=0)
    per_genre = {g: {k: float(v) for k, v in rep[g].items()} for g in genres}
    return LevelReport(metrics=metrics(y_true, y_pred), per_genre=per_genre,
                       confusion=confusion_matrix(y_true, y_pred, labels=list(range(n))),
                       y_true=np.asarray(y_true), y_pred=y_pred, proba=proba)


def genre_index(model_genres: list[str], present) -> dict[str, int]:
    """Each of the model's genres -> its index, after checking that every genre in ``present`` is one of them.

    Raises
    ------
    ModelError
        When ``present`` holds a genre the model does not know.
    """
    index = {g: i for i, g in enumerate(model_genres)}
    unknown = sorted(set(present) - set(index))
    if unknown:
        raise ModelError(f"the data has genres the model does not know: {unknown}; the model knows "
                         f"{model_genres}. Remove those folders or train a model on them")
    return index


def labels_for(model_genres: list[str], fs: FeatureSet) -> np.ndarray:
    """Rows' labels as indices into the model's genres.

    Raises
    ------
    ModelError
        When the data holds a genre the model does not know.
    """
    index = genre_index(model_genres, fs.row_genres.tolist())
    return np.array([index[g] for g in fs.row_genres], dtype=np.int64)


def predict_rows(model, fs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``model``'s probabilities for every row of ``fs``, each row's true genre (an index into ``model.genres``)
    and its track. ``fs`` is a FeatureSet or a stored part (a :class:`~genrelib.store.StoredFeatureSet`,
    predicted shard by shard: only the probabilities and row ids are held, see
    :func:`genrelib.streaming.predict_stored`).

    Raises
    ------
    ModelError
        When the features do not fit the model, are empty, or have genres the model does not know.
    """
    if fs.config != model.feature_config:
        raise ModelError(f"feature configuration mismatch: the model takes {model.feature_config}, "
                         f"the data was extracted with {fs.config}")
    if len(fs) == 0:
        raise ModelError("nothing to evaluate: the feature set is empty")
    if not isinstance(fs, FeatureSet):
        from .streaming import predict_stored

        return predict_stored(model, fs)
    return model.predict_proba(fs.X), labels_for(model.genres, fs), fs.track_ids


def evaluate(model, fs: FeatureSet, *, n_wrong: int = 10) -> Report:
    """Evaluate a :class:`~genrelib.models.base.GenreModel` on a labelled feature set.

    Parameters
    ----------
    model : GenreModel
    fs : FeatureSet or StoredFeatureSet
        Features of the same kind and configuration as the model's; a stored part is predicted shard by shard.
    n_wrong : int
        How many of the most confidently wrong tracks to list.

    Raises
    ------
    ModelError
        When the features do not fit the model or the data has genres the model does not know.
    """
    return report_rows(model.genres, *predict_rows(model, fs), n_wrong=n_wrong)


def report_rows(genres: list[str], proba: np.ndarray, y: np.ndarray, track_ids: np.ndarray, *,
                n_wrong: int = 10) -> Report:
    """The report of row probabilities: the rows' level ("segment") and the tracks' (rows aggregated by
    :func:`aggregate`), with the most confidently wrong tracks.

    Parameters
    ----------
    genres : list of str
    proba : np.ndarray [shape=(n_rows, len(genres))]
    y : np.ndarray [shape=(n_rows,)]
        True label of each row (index into ``genres``).
    track_ids : np.ndarray [shape=(n_rows,)]
    """
    seg = _level(y, proba, genres)
    keys, P = aggregate(proba, track_ids)
    first = {t: y[i] for i, t in reversed(list(enumerate(track_ids)))}
    y_track = np.array([first[k] for k in keys])
    trk = _level(y_track, P, genres)
    wrong_idx = np.where(trk.y_pred != y_track)[0]
    conf = P[wrong_idx, trk.y_pred[wrong_idx]]
    wrong = [{"track_id": str(keys[i]), "true": genres[y_track[i]], "predicted": genres[trk.y_pred[i]],
              "probability": float(P[i, trk.y_pred[i]]), "p_true": float(P[i, y_track[i]])}
             for i in wrong_idx[np.argsort(-conf)][:n_wrong]]
    return Report(genres=list(genres), segment=seg, track=trk, track_ids=keys, wrong=wrong)


def evaluate_ensemble(model, ds, *, n_jobs: int | None = None, progress: bool = False, n_wrong: int = 10,
                      scheduler=None) -> Report:
    """Evaluate an :class:`~genrelib.models.ensemble.EnsembleModel` and each of its members on the same tracks.

    Each member extracts its own features of ``ds`` (cached) and aggregates its rows per 30 s window; the
    ensemble combines the members' window probabilities (:meth:`~genrelib.models.ensemble.EnsembleModel.combine`),
    and its report is built from those windows as any model's from its rows (:func:`report_rows`): the "segment"
    level is the window, a track the mean log-probability of its windows. Only tracks (and windows) every member
    could read are scored, by every member and the ensemble alike.

    Parameters
    ----------
    model : EnsembleModel
    ds : Dataset

    Returns
    -------
    Report
        The ensemble's; ``report.members`` holds each member's report on the same tracks.
    """
    from .features import extract

    sets = [extract(ds, m.feature_config, n_jobs=n_jobs, progress=progress, scheduler=scheduler)
            for m in model.members]
    have = [set(fs.track_ids.tolist()) for fs in sets]
    common = set.intersection(*have)
    for name, h in zip(model.member_names, have):
        if h - common:
            logger.warning("%d tracks left out of the ensemble's evaluation: other members could not read them "
                           "(%s could)", len(h - common), name)
    if not common:
        raise ModelError(f"no track of {ds.root} could be read by every member of the ensemble")
    members, windows = [], []
    for m, fs in zip(model.members, sets):
        fs = fs.select(sorted(common))
        proba = m.predict_proba(fs.X)
        members.append(report_rows(m.genres, proba, labels_for(m.genres, fs), fs.track_ids, n_wrong=n_wrong))
        keys, P = aggregate(proba, np.array([f"{t}\n{w}" for t, w in zip(fs.track_ids, fs.window)]))
        windows.append(dict(zip(keys.tolist(), P)))
    keys = [k for k in windows[0] if all(k in w for w in windows[1:])]
    P = model.combine([np.stack([w[k] for k in keys]) for w in windows])
    track_ids = np.array([k.split("\n")[0] for k in keys])
    genre_of = dict(zip(sets[0].track_ids.tolist(), sets[0].row_genres.tolist()))
    index = {g: i for i, g in enumerate(model.genres)}
    y = np.array([index[genre_of[t]] for t in track_ids], dtype=np.int64)
    report = report_rows(model.genres, P, y, track_ids, n_wrong=n_wrong)
    report.members = members
    return report


def log_report(report: Report, *, prefix: str = "test") -> None:
    """Log a report to the active MLflow run: metrics, confusion-matrix figures, JSON and CSV reports."""
    from . import plots, tracking

    tracking.log_metrics(report.flat_metrics(prefix))
    if report.part is not None:
        tracking.log_metrics({f"{prefix}_part_tracks_found": report.part_found,
                              f"{prefix}_part_tracks_recorded": report.part_recorded})
    for level in ("segment", "track"):
        fig = plots.plot_confusion_matrix(getattr(report, level).confusion, report.genres, normalize=True,
                                          title=f"{prefix} confusion matrix per {level} (normalized by row)")
        tracking.log_figure(fig, f"figures/{prefix}_confusion_{level}.png")
        tracking.log_table(report.per_genre_table(level), f"reports/{prefix}_per_genre_{level}.csv", index=True)
    tracking.log_dict(report.to_dict(), f"reports/{prefix}_report.json")
    tracking.log_table(report.track_table(), f"reports/{prefix}_tracks.csv")


def split_tracks(model) -> dict[str, list[str]]:
    """The track ids of each part of the split a model was trained with.

    A model trained by :func:`genrelib.train.train` records them in ``info["split_tracks"]``; a model trained on
    the GTZAN fault-filtered split without that record (the reference model) uses the fault-filtered lists.

    Returns
    -------
    dict
        ``{"train": [...], "valid": [...], "test": [...]}`` of ids like ``blues/blues.00012.wav``.

    Raises
    ------
    ModelError
        When the model records neither its tracks nor a fault-filtered split (a model trained by genrelib 0.1 on
        a random split): rebuilding a random split on some folder would put training tracks into "test".
    """
    from .dataset import SPLIT_NAMES, gtzan_split_lists

    info = model.info
    recorded = info.get("split_tracks")
    if recorded:
        return {p: list(recorded.get(p, [])) for p in SPLIT_NAMES}
    kind = str(info.get("split", ""))
    if kind.startswith("gtzan"):  # "gtzan-ff", or the reference model's "gtzan-ff (fault-filtered)"
        return gtzan_split_lists()
    raise ModelError(
        f"the model does not record the tracks of its split ({kind or 'no split'} recorded, but not which tracks "
        "were in which part), so its test part cannot be told apart from its training tracks; evaluate a whole "
        "folder of tracks it never saw (leave out --part / part=None), or retrain it with this genrelib, which "
        "stores the track lists with the model"
    )


def evaluate_folder(model, data, *, part: str | None = None, n_jobs: int | None = None,
                    progress: bool = False, scheduler=None, store=None) -> Report:
    """Evaluate a model on a labelled folder, or on the tracks of the folder in one part of the model's split.

    Parameters
    ----------
    model : GenreModel or EnsembleModel
        An ensemble is evaluated by :func:`evaluate_ensemble` (its report holds its members' on the same tracks).
    data : path or Dataset
        A folder laid out ``<root>/<genre>/<file>``.
    part : {"train", "valid", "test"}, optional
        Evaluate only the tracks of the folder that are in this part of the model's own split (its recorded
        track lists, see :func:`split_tracks`), matched by genre folder and file stem
        (:func:`genrelib.dataset.track_key`), whatever folder is given: the folder is never re-split, and a track
        the model trained on (train or valid) is never scored as test. The report says how many of the part's
        tracks were found (``part_found`` of ``part_recorded``). Default: every track of the folder.
    n_jobs : int, optional
        Feature-extraction processes.
    progress : bool
        Show a progress bar.
    scheduler : str, optional
        A Dask scheduler address (or ``local:N``): extract the features on that cluster.
    store : path, optional
        A feature store root: extract into it (resuming what is there) and predict shard by shard, never
        holding the folder's features in memory. Not for ensembles (each member extracts its own features).

    Raises
    ------
    ModelError
        When the folder has genres the model does not know (listed), when the model does not record its
        split's tracks, when none of the part's tracks is in the folder, or for ``store`` with an ensemble.
    """
    from .dataset import SPLIT_NAMES, Dataset, scan, track_key
    from .features import extract

    if store is not None and is_ensemble(model):
        raise ModelError("--store evaluates one model; an ensemble's members each extract their own features: "
                         "leave out --store, or evaluate the members one by one with it")
    ds = data if isinstance(data, Dataset) else scan(data)
    unknown = sorted(set(ds.genres) - set(model.genres))
    if unknown:
        raise ModelError(f"{ds.root} has genres the model does not know: {unknown}; it knows {model.genres}")
    found = recorded = None
    if part is not None:
        if part not in SPLIT_NAMES:
            raise ModelError(f"unknown part {part!r}; use one of {', '.join(SPLIT_NAMES)}")
        lists = split_tracks(model)
        wanted = {track_key(t) for t in lists[part]}
        # A track the model learned from, or was selected on, is never scored as a held-out one, even if a
        # (corrupt or hand-edited) record also lists it under test.
        seen = set()
        for p in SPLIT_NAMES[: SPLIT_NAMES.index(part)]:
            seen |= {track_key(t) for t in lists[p]}
        if wanted & seen:
            logger.warning("%d of the model's %s tracks are also recorded as train/valid; they are left out",
                           len(wanted & seen), part)
        wanted -= seen
        recorded = len(wanted)
        tracks = [t for t in ds.tracks if track_key(t.track_id) in wanted]
        found = len({track_key(t.track_id) for t in tracks})
        if not tracks:
            example = next(iter(sorted(wanted)), "none recorded")
            raise ModelError(
                f"none of the model's {recorded} {part} tracks is in {ds.root} (tracks are matched by genre folder "
                f"and file name, e.g. {example}); give the folder the model was trained on, or evaluate a whole "
                "folder of tracks it never saw without --part (part=None)"
            )
        if found < recorded:
            logger.info("found %d of the model's %d %s tracks in %s", found, recorded, part, ds.root)
        ds = Dataset(root=ds.root, tracks=tracks, genres=[g for g in ds.genres if any(t.genre == g for t in tracks)],
                     skipped=ds.skipped)
    if is_ensemble(model):  # each member its own features; see genrelib.models.ensemble
        report = evaluate_ensemble(model, ds, n_jobs=n_jobs, progress=progress, scheduler=scheduler)
    elif store is not None:
        from .store import extract_to_store

        report = evaluate(model, extract_to_store(ds, model.feature_config, store, n_jobs=n_jobs, scheduler=scheduler,
                                                  progress=progress))
    else:
        report = evaluate(model, extract(ds, model.feature_config, n_jobs=n_jobs, progress=progress,
                                         scheduler=scheduler))
    for r in (report, *report.members):
        r.part, r.part_found, r.part_recorded = part, found, recorded
    return report
