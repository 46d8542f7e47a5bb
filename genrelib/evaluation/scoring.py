"""Honest evaluation: metrics per segment and per track, confusion matrices, confidently wrong tracks.

A track's prediction aggregates its segments' probabilities by the mean log-probability (a geometric mean,
renormalized). Evaluation data must never have been seen in training or model selection: the split
functions of :mod:`genrelib.datasets` are by track, and :func:`genrelib.training.trainer.train` keeps the test part out.
"""

from __future__ import annotations

import logging

import numpy as np

from genrelib.errors import ModelError
from genrelib.evaluation.reports import Report, aggregate, genre_index, report_rows
from genrelib.features.featureset import FeatureSet
from genrelib.models.ensemble import is_ensemble

logger = logging.getLogger(__name__)


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
    and its track. ``fs`` is a FeatureSet or a stored part (a :class:`~genrelib.features.stored.StoredFeatureSet`,
    predicted shard by shard: only the probabilities and row ids are held, see
    :func:`genrelib.evaluation.stored.predict_stored`).

    Raises
    ------
    ModelError
        When the features do not fit the model, are empty, or have genres the model does not know.
    """
    if fs.config != model.feature_config:
        raise ModelError(
            f"feature configuration mismatch: the model takes {model.feature_config}, "
            f"the data was extracted with {fs.config}"
        )
    if len(fs) == 0:
        raise ModelError("nothing to evaluate: the feature set is empty")
    if not isinstance(fs, FeatureSet):
        from genrelib.evaluation.stored import predict_stored

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


def evaluate_ensemble(
    model, ds, *, n_jobs: int | None = None, progress: bool = False, n_wrong: int = 10, scheduler=None
) -> Report:
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
    from genrelib.features.extraction import extract

    sets = [extract(ds, m.feature_config, n_jobs=n_jobs, progress=progress, scheduler=scheduler) for m in model.members]
    have = [set(fs.track_ids.tolist()) for fs in sets]
    common = set.intersection(*have)
    for name, h in zip(model.member_names, have):
        if h - common:
            logger.warning(
                "%d tracks left out of the ensemble's evaluation: other members could not read them (%s could)",
                len(h - common),
                name,
            )
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


def log_report(report: Report, *, prefix: str | None = None, note: str = "") -> None:
    """Log a report to the active MLflow run: metrics, confusion-matrix figures, JSON and CSV reports.

    Names say which part was scored, the same in every kind of run, so that a training run and an evaluation run
    of the test tracks line up in MLflow's Compare: ``test_track_accuracy`` and ``figures/test_confusion_track.png``
    (``valid_...``, ``train_...`` for those parts; ``folder_...`` for a whole folder, which is no part of the
    model's split). ``prefix`` default: the report's part, else ``folder``. The run's description (the first
    thing on its page in the UI) gives the per-track accuracy (:meth:`Report.headline`), then ``note``.
    """
    from genrelib import plots, tracking

    prefix = prefix or report.part or "folder"
    if report.dataset is not None:  # the tracks scored, as the run's input: context test, validation, ... or evaluation
        from genrelib.datasets.demo import dataset_name

        context = tracking.PART_CONTEXTS.get(report.part, "evaluation")
        tracking.log_data(report.dataset, name=dataset_name(report.dataset), context=context)

    tracking.log_metrics(report.flat_metrics(prefix))
    # the run's description: the first thing on its page in the UI
    tracking.set_tags({"mlflow.note.content": report.headline(prefix, note)})
    if report.part is not None:
        tracking.log_metrics(
            {f"{prefix}_part_tracks_found": report.part_found, f"{prefix}_part_tracks_recorded": report.part_recorded}
        )
    for level in ("segment", "track"):
        fig = plots.plot_confusion_matrix(
            getattr(report, level).confusion,
            report.genres,
            normalize=True,
            title=f"{prefix} confusion matrix per {level} (normalized by row)",
        )
        tracking.log_figure(fig, f"figures/{prefix}_confusion_{level}.png")
        tracking.log_table(report.per_genre_table(level), f"reports/{prefix}_per_genre_{level}.csv", index=True)
    tracking.log_dict(report.to_dict(), f"reports/{prefix}_report.json")
    tracking.log_table(report.track_table(), f"reports/{prefix}_tracks.csv")


def split_tracks(model) -> dict[str, list[str]]:
    """The track ids of each part of the split a model was trained with.

    A model trained by :func:`genrelib.training.trainer.train` records them in ``info["split_tracks"]``; a model trained on
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
    from genrelib.datasets.splits import SPLIT_NAMES, gtzan_split_lists

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


def evaluate_folder(
    model,
    data,
    *,
    part: str | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    scheduler=None,
    store=None,
) -> Report:
    """Evaluate a model on a labelled folder, or on the tracks of the folder in one part of the model's split.

    Parameters
    ----------
    model : GenreModel or EnsembleModel
        An ensemble is evaluated by :func:`evaluate_ensemble` (its report holds its members' on the same tracks).
    data : path or Dataset
        A folder laid out ``<root>/<genre>/<file>``.
    part : {"train", "valid", "test", "auto"}, optional
        ``"auto"``: the test part when the folder holds tracks the model trained or was selected on, else every
        track (:func:`auto_part`; the report's ``scope`` says which). Evaluate only the tracks of the folder that are in this part of the model's own split (its recorded
        track lists, see :func:`split_tracks`), matched by genre folder and file stem
        (:func:`genrelib.datasets.splits.track_key`), whatever folder is given: the folder is never re-split, and a track
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
    from genrelib.datasets.splits import SPLIT_NAMES, track_key
    from genrelib.datasets.tracks import Dataset, scan
    from genrelib.features.extraction import extract

    if store is not None and is_ensemble(model):
        raise ModelError(
            "--store evaluates one model; an ensemble's members each extract their own features: "
            "leave out --store, or evaluate the members one by one with it"
        )
    ds = data if isinstance(data, Dataset) else scan(data)
    unknown = sorted(set(ds.genres) - set(model.genres))
    if unknown:
        raise ModelError(f"{ds.root} has genres the model does not know: {unknown}; it knows {model.genres}")
    found = recorded = None
    scope = None
    if part == "auto":
        part, scope = auto_part(model, ds)
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
            logger.warning(
                "%d of the model's %s tracks are also recorded as train/valid; they are left out",
                len(wanted & seen),
                part,
            )
        wanted -= seen
        recorded = len(wanted)
        tracks = [t for t in ds.tracks if track_key(t.track_id) in wanted]
        found = len({track_key(t.track_id) for t in tracks})
        if not tracks and scope and scope.startswith("test part"):
            raise ModelError(
                f"{ds.root} holds tracks the model trained or was validated on and none of its {recorded} test "
                "tracks; give --part all to score every track anyway (not a held-out score), or --part train / "
                "--part valid"
            )
        if not tracks:
            example = next(iter(sorted(wanted)), "none recorded")
            raise ModelError(
                f"none of the model's {recorded} {part} tracks is in {ds.root} (tracks are matched by genre folder "
                f"and file name, e.g. {example}); give the folder the model was trained on, or evaluate a whole "
                "folder of tracks it never saw without --part (part=None)"
            )
        if found < recorded:
            logger.info("found %d of the model's %d %s tracks in %s", found, recorded, part, ds.root)
        ds = Dataset(
            root=ds.root,
            tracks=tracks,
            genres=[g for g in ds.genres if any(t.genre == g for t in tracks)],
            skipped=ds.skipped,
        )
    if is_ensemble(model):  # each member its own features; see genrelib.models.ensemble
        report = evaluate_ensemble(model, ds, n_jobs=n_jobs, progress=progress, scheduler=scheduler)
    elif store is not None:
        from genrelib.features.store import extract_to_store

        report = evaluate(
            model,
            extract_to_store(ds, model.feature_config, store, n_jobs=n_jobs, scheduler=scheduler, progress=progress),
        )
    else:
        report = evaluate(
            model, extract(ds, model.feature_config, n_jobs=n_jobs, progress=progress, scheduler=scheduler)
        )
    for r in (report, *report.members):
        r.part, r.part_found, r.part_recorded = part, found, recorded
        r.scope = scope or (f"the {part} part of the model's split" if part else "every track of the folder")
        r.dataset = ds
    return report


def auto_part(model, ds) -> tuple[str | None, str]:
    """Which tracks of a folder to score when no part is asked for (``part="auto"``), and why, in words.

    A folder that holds tracks the model trained on or was selected on (its recorded train and valid lists) is
    scored on the model's test part only: mixed in, the training tracks would inflate the score silently. A folder
    with none of them is scored whole. A model that records no track lists (the reference, the shipped default, a
    model trained elsewhere) cannot tell them apart: the folder is scored whole and the scope says so.

    Returns
    -------
    part : {"test", None}
    scope : str
        For the user: which tracks are scored and why.
    """
    from genrelib.datasets.splits import track_key

    recorded = model.info.get("split_tracks") if hasattr(model, "info") else None
    if not recorded:
        return (
            None,
            "every track of the folder (the model records no track lists, so tracks it trained on cannot be left out)",
        )
    seen = {track_key(t) for p in ("train", "valid") for t in recorded.get(p, [])}
    used = sum(track_key(t.track_id) in seen for t in ds.tracks)
    if not used:
        return None, "every track of the folder (none of them in the model's train or valid part)"
    return "test", (
        f"test part of the model's split only: {used} of the folder's {len(ds.tracks)} tracks are in its train or "
        "valid part and are not scored (--part all scores every track, not a held-out score)"
    )
