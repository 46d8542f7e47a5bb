"""The personal-data test: classify a folder of your own songs, and score the model when it is labelled.

A folder laid out ``<genre>/<song>`` is labelled by its subfolders; songs directly in the folder (or a folder
with no subfolders) get predictions only. Genres the model does not know are reported separately and not
counted as errors. Every song is classified over all its 30 s windows (see :mod:`genrelib.inference.predict`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrelib.datasets.tracks import find_audio
from genrelib.errors import DatasetError
from genrelib.evaluation.reports import metrics
from genrelib.inference.predict import Predictor, SongPrediction

logger = logging.getLogger(__name__)


@dataclass
class PersonalResult:
    """What :func:`personal_test` found.

    Attributes
    ----------
    songs : pandas.DataFrame
        One row per classified song: song, true genre ("" when unlabelled), predicted genre, probability,
        top 3, duration, windows, whether the true genre is known to the model.
    windows : pandas.DataFrame
        One row per window: song, start, true genre, predicted genre, probability, every genre's probability.
    predictions : list of SongPrediction
    failures : list of (path, reason)
        Files that could not be classified.
    genres : list of str
        The model's genres.
    unknown : dict
        True genres the model does not know -> their songs (not scored).
    song_metrics, window_metrics : dict or None
        Accuracy, precision, recall, F1 over the labelled songs whose genre the model knows.
    song_confusion, window_confusion : np.ndarray or None
        Counts over the model's genres (rows true).
    run_id : str or None
        The MLflow run it was logged to.
    model_description : str
        Which model answered (its reference, family and training data).
    warning : str or None
        Set when the model and the songs do not fit (real-music model on synthetic demo songs, or the reverse).
    """

    songs: object
    windows: object
    predictions: list[SongPrediction]
    failures: list[tuple[Path, str]]
    genres: list[str]
    unknown: dict[str, list[str]] = field(default_factory=dict)
    song_metrics: dict | None = None
    window_metrics: dict | None = None
    song_confusion: np.ndarray | None = None
    window_confusion: np.ndarray | None = None
    run_id: str | None = None
    model_description: str = ""
    warning: str | None = None

    @property
    def labelled(self) -> bool:
        return self.song_metrics is not None

    def song_table(self):
        """The songs as a user reads them: no bookkeeping column, and no ``true`` column when nothing is labelled."""
        if not len(self.songs):
            return self.songs
        drop = ["known_genre"] + ([] if (self.songs["true"] != "").any() else ["true"])
        return self.songs.drop(columns=drop)

    def song_name(self, i: int) -> str:
        """Song ``i`` as the song table names it (its path under the folder)."""
        return str(self.songs["song"].iloc[i]) if len(self.songs) > i else self.predictions[i].path.name

    def true_genre(self, i: int) -> str:
        """The genre folder of song ``i`` ("" when the folder is not labelled)."""
        return str(self.songs["true"].iloc[i]) if len(self.songs) > i else ""

    def timeline(self, i: int):
        """Figure: genre probabilities over time for song ``i``; the title names the song and, when the folder
        says it, its true genre (and whether the model knows that genre)."""
        from genrelib.plots import plot_timeline

        p = self.predictions[i]
        true = self.true_genre(i)
        unknown = "" if not true or true in self.genres else ", unknown to the model"
        return plot_timeline(
            p.starts,
            p.window_proba,
            self.genres,
            title=f"{self.song_name(i)}: genre over time" + (f" (true genre: {true}{unknown})" if true else ""),
            window_seconds=p.window_seconds,
        )

    def timeline_names(self) -> list[str]:
        """Artifact names of the timeline figures, one per song, named for the song: ``figures/timeline_<genre
        folder>-<song>.png`` (characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``; a name
        taken twice gets the file's extension)."""
        names: list[str] = []
        for i, p in enumerate(self.predictions):
            stem = Path(self.song_name(i)).with_suffix("").as_posix().replace("/", "-")
            name = "figures/timeline_" + re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
            names.append(f"{name}_{p.path.suffix.lstrip('.')}.png" if f"{name}.png" in names else f"{name}.png")
        return names

    def confusion_figure(self, level: str = "song"):
        """The confusion matrix per ``song`` or ``window``, normalized by row, over the genres that occur (as true
        or predicted genre), not every genre of the model; None, and a printed line, when the folder is not
        labelled."""
        from genrelib.plots import plot_confusion_matrix

        if not self.labelled:
            print("no confusion matrix: the folder is not labelled <genre>/<song>")
            return None
        cm = np.asarray(self.song_confusion if level == "song" else self.window_confusion)
        present = np.flatnonzero(cm.sum(axis=0) + cm.sum(axis=1))
        return plot_confusion_matrix(
            cm[np.ix_(present, present)],
            [self.genres[k] for k in present],
            normalize=True,
            title=f"personal songs: confusion per {level} (the {len(present)} genres that occur)",
        )


def _tags_text(p: SongPrediction, k: int, *, window: int | None = None) -> str:
    return ", ".join(f"{t} {q:.2f}" for t, q in p.top_tags(k, window=window))


def _true_genre(path: Path, folder: Path) -> str:
    rel = path.relative_to(folder)
    return rel.parts[0] if len(rel.parts) > 1 else ""


def _log_songs(result: PersonalResult, folder: Path) -> None:
    """The songs tested as the run's input (context ``evaluation``): each song's path under the folder and its
    genre folder ("" when unlabelled); digest from their names, sizes and modification times."""
    import hashlib
    import json

    import pandas as pd

    from genrelib import tracking

    folder = Path(folder)
    paths = sorted({p.path for p in result.predictions} | {Path(p) for p, _ in result.failures})
    rows = [[str(p.relative_to(folder)), _true_genre(p, folder)] for p in paths if p.is_relative_to(folder)]
    signature = [
        [r[0], *((p.stat().st_size, int(p.stat().st_mtime)) if p.exists() else ())] for r, p in zip(rows, paths)
    ]
    digest = hashlib.sha256(json.dumps(signature).encode()).hexdigest()[:16]
    tracking.log_dataset(
        pd.DataFrame(rows, columns=["song", "genre"]),
        name=folder.resolve().name,
        source=str(folder.resolve()),
        digest=digest,
        context="evaluation",
    )


def personal_test(
    folder: str | Path,
    *,
    model=None,
    hop_seconds: float | None = None,
    log: bool = True,
    parent_run_id: str | None = None,
    run_name: str | None = None,
    tags: dict | None = None,
    progress: bool = False,
    top_tags: int = 0,
    tag_model: str = "MSD_musicnn",
    warn=None,
) -> PersonalResult:
    """Classify every song under ``folder`` and, where it is labelled ``<genre>/<song>``, score the model.

    Parameters
    ----------
    folder : path
        Your songs, any length, any format genrelib reads.
    model : see :func:`genrelib.inference.predict.load_model` (default: the shipped default model)
    hop_seconds : float, optional
        Hop between 30 s windows (default: no overlap).
    log : bool
        Log the test as its own MLflow run (metrics, timelines, confusion matrices, tables).
    top_tags : int
        Also list each song's (and window's) ``top_tags`` most probable musicnn tags (column ``tags``).
    tag_model : str
        The musicnn network that gives the tags.
    warn : callable, optional
        Called with the warning (see ``PersonalResult.warning``) before any song is classified, so that it comes
        before the progress lines (the CLI prints it on stderr); it is logged at WARNING either way.

    Raises
    ------
    DatasetError
        When the folder does not exist or holds no audio.
    """
    import pandas as pd
    from sklearn.metrics import confusion_matrix

    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder; give a folder of songs, optionally as <genre>/<song>")
    files = find_audio([folder])
    predictor = Predictor(model, hop_seconds=hop_seconds, tag_model=tag_model if top_tags else None)
    genres = predictor.genres
    warning = predictor.demo_warning(files)
    if warning:  # first, not after minutes of progress
        logger.warning(warning)
        if warn is not None:
            warn(warning)
    preds, failures = predictor.predict_many(files, progress=progress)
    index = {g: i for i, g in enumerate(genres)}
    song_rows, window_rows = [], []
    unknown: dict[str, list[str]] = {}
    for p in preds:
        true = _true_genre(p.path, folder)
        name = p.path.relative_to(folder).as_posix()
        known = true in index
        if true and not known:
            unknown.setdefault(true, []).append(name)
        top = p.top(genres, 3)
        song_rows.append(
            {
                "song": name,
                "true": true,
                "predicted": top[0][0],
                "probability": top[0][1],
                "top3": ", ".join(f"{g} {q:.2f}" for g, q in top),
                "duration_s": round(p.duration, 1),
                "windows": len(p.starts),
                "known_genre": known,
                **({"tags": _tags_text(p, top_tags)} if top_tags else {}),
            }
        )
        for i, (s, wp) in enumerate(zip(p.starts, p.window_proba)):
            k = int(np.argmax(wp))
            window_rows.append(
                {
                    "song": name,
                    "start_s": float(s),
                    "true": true,
                    "predicted": genres[k],
                    "probability": float(wp[k]),
                    **({"tags": _tags_text(p, top_tags, window=i)} if top_tags else {}),
                    **{f"p_{g}": float(v) for g, v in zip(genres, wp)},
                }
            )
    songs = pd.DataFrame(song_rows)
    windows = pd.DataFrame(window_rows)
    result = PersonalResult(
        songs=songs,
        windows=windows,
        predictions=preds,
        failures=failures,
        genres=genres,
        unknown=unknown,
        model_description=predictor.describe(),
        warning=warning,
    )
    scored = songs[songs["known_genre"]] if len(songs) else songs
    if len(scored):
        labels = list(range(len(genres)))
        y_true = scored["true"].map(index).to_numpy()
        y_pred = scored["predicted"].map(index).to_numpy()
        result.song_metrics = metrics(y_true, y_pred)
        result.song_confusion = confusion_matrix(y_true, y_pred, labels=labels)
        w = windows[windows["true"].isin(index)]
        wt, wp = w["true"].map(index).to_numpy(), w["predicted"].map(index).to_numpy()
        result.window_metrics = metrics(wt, wp)
        result.window_confusion = confusion_matrix(wt, wp, labels=labels)
    if log:
        _log(
            result,
            folder=folder,
            model=model,
            hop_seconds=hop_seconds,
            parent_run_id=parent_run_id,
            run_name=run_name or f"personal-test · {model or 'default'} · {Path(folder).resolve().name}",
            tags=tags,
            top_tags=top_tags,
        )
    return result


def summary_table(result: PersonalResult):
    """Scores per song and per window (when labelled), plus counts of unknown genres and unreadable files.

    A table to read: every score with three decimals (text, so that each column shows them alike; the numbers are
    in ``result.song_metrics`` and ``result.window_metrics``), counts as integers.
    """
    import pandas as pd

    rows = {}
    if result.labelled:
        rows["per song"] = {k: f"{v:.3f}" for k, v in result.song_metrics.items()}
        rows["per window"] = {k: f"{v:.3f}" for k, v in result.window_metrics.items()}
    df = pd.DataFrame(rows).T if rows else pd.DataFrame(index=["(not labelled: predictions only)"])
    df["songs scored" if result.labelled else "songs"] = (
        int(result.songs["known_genre"].sum()) if result.labelled else len(result.songs)
    )
    df["unknown genres"] = ", ".join(f"{g} ({len(s)})" for g, s in result.unknown.items()) or "none"
    df["unreadable files"] = len(result.failures)
    return df


def _log(
    result: PersonalResult, *, folder, model, hop_seconds, parent_run_id, run_name, tags=None, top_tags: int = 0
) -> None:
    from genrelib import tracking

    params = {
        "folder": str(Path(folder).resolve()),
        "model": str(model or "default"),
        "hop_seconds": hop_seconds,
        "top_tags": top_tags,
        "songs": len(result.predictions),
        "failed": len(result.failures),
        "unknown_genres": ",".join(sorted(result.unknown)) or "none",
    }
    with tracking.start_run(
        run_name, params=params, parent_run_id=parent_run_id, tags={"genrelib.stage": "personal-test", **(tags or {})}
    ) as run:
        if result.labelled:
            tracking.log_metrics({f"personal_song_{k}": v for k, v in result.song_metrics.items()})
            tracking.log_metrics({f"personal_window_{k}": v for k, v in result.window_metrics.items()})
            for level in ("song", "window"):
                tracking.log_figure(result.confusion_figure(level), f"figures/personal_confusion_{level}.png")
        for i, name in enumerate(result.timeline_names()):
            tracking.log_figure(result.timeline(i), name)
        tracking.log_table(result.songs, "reports/personal_songs.csv")
        tracking.log_table(result.windows, "reports/personal_windows.csv")
        tracking.log_dict(
            {"failures": [[str(p), r] for p, r in result.failures], "unknown": result.unknown},
            "reports/personal_problems.json",
        )
        _log_songs(result, folder)
        result.run_id = run.info.run_id
