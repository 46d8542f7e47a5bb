"""Classify songs of any length: a :class:`Predictor` loads a model once and classifies many files.

Each song is streamed in 30 s windows (hop configurable; a short song is one window). For the CNN families each
window is cut into 3 s segments; a window's probabilities are the mean log-probability of its segments, and the
song's the mean log-probability of all its segments (of all its windows for the summary family). A ``musicnn``
model (the default) answers for the song from its 30 s windows' pooled patches, as it was trained, and draws its
timeline from the same network pass: a point every 3 s, each from the 15 s that start there. The model's own
feature configuration travels with it, so prediction extracts exactly the features it was trained on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from genrelib import audio
from genrelib.errors import AudioError, GenrelibError, ModelError
from genrelib.evaluation.reports import aggregate
from genrelib.features.compute import window_features
from genrelib.inference.default import NAMES as DEFAULT_NAMES
from genrelib.inference.default import load_default
from genrelib.models.ensemble import is_ensemble

logger = logging.getLogger(__name__)

#: Windows whose features are computed before the model is called once on all of them.
BATCH_WINDOWS = 8


def reference_model_path() -> Path:
    """Folder of the reference model shipped inside the package (trained on real GTZAN features)."""
    return Path(str(resources.files("genrelib") / "data" / "reference"))


def describe_model(ref, model) -> str:
    """One line: which model ``ref`` names, its family and the data it was trained on."""
    info = model.info
    data = info.get("trained_on") or info.get("data_root") or "unrecorded data"
    if info.get("synthetic_demo"):
        data += " (genrelib's synthetic demo music)"
    return (
        f"model: {ref} ({model.family}, {len(model.genres)} genres, trained on {data}"
        f"{', split ' + str(info['split']) if 'split' in info else ''})"
    )


def load_model(ref=None):
    """Load a :class:`~genrelib.models.base.GenreModel` from many kinds of reference.

    Parameters
    ----------
    ref : None, GenreModel, EnsembleModel, str or Path
        None or ``"default"``: the shipped default model (:mod:`genrelib.inference.default`: musicnn features
        and a linear head trained on 153 real GTZAN tracks). ``"reference"``: the older shipped reference model
        (the summary family on GTZAN's feature table). A local folder: a genrelib model folder or a
        downloaded MLflow model. Otherwise an MLflow reference: ``runs:/<id>/model``, ``models:/...``, a run id,
        ``genre-classifier/3``, ``genre-classifier@alias`` or ``genre-classifier``.

    Raises
    ------
    ModelError
        When nothing can be loaded from ``ref``.
    """
    from genrelib.models.base import META, GenreModel

    if isinstance(ref, GenreModel) or is_ensemble(ref):
        return ref
    if ref is None or str(ref) in DEFAULT_NAMES:
        return load_default()
    if str(ref) == "reference":
        path = reference_model_path()
        if not (path / META).exists():
            raise ModelError(
                f"no reference model shipped at {path}; train one with `genrelib train-reference` or pass --model"
            )
        return GenreModel.load(path)
    path = Path(str(ref)).expanduser()
    if path.is_dir():
        if (path / META).exists():
            return GenreModel.load(path)
        if (path / "MLmodel").exists() and (path / "artifacts" / "genre_model").is_dir():
            return GenreModel.load(path / "artifacts" / "genre_model")
        raise ModelError(f"{path} is neither a genrelib model folder nor an MLflow audio model")
    if path.suffix and path.exists():
        raise ModelError(f"{path} is a file; give a model folder, an MLflow URI or a registry name")
    from genrelib import tracking

    return GenreModel.load(tracking.download_genre_model(str(ref)))


def check_hop(hop_seconds: float | None) -> None:
    """Refuse a hop between windows that is not a finite number of seconds > 0 (None: no overlap)."""
    if hop_seconds is None:
        return
    if isinstance(hop_seconds, bool) or not isinstance(hop_seconds, int | float) or not 0 < hop_seconds < np.inf:
        raise GenrelibError(f"hop must be a finite number of seconds > 0 (or none: 30 s), got {hop_seconds!r}")


@dataclass
class SongPrediction:
    """The prediction for one song.

    Attributes
    ----------
    path : Path
    duration : float
        Seconds.
    starts : np.ndarray [shape=(n_windows,)]
        Start times in seconds of the timeline's windows: the model's 30 s windows, or, for a ``musicnn``
        model, a point every 3 s (one per patch), each from the :data:`TIMELINE_PATCHES` patches (15 s) that
        start there.
    window_proba : np.ndarray [shape=(n_windows, n_genres)]
    proba : np.ndarray [shape=(n_genres,)]
        The song's probabilities.
    tag_names : list of str
        Names of the musicnn tags (empty unless tags were asked for).
    window_tags : np.ndarray [shape=(n_windows, n_tags)] or None
        Each window's tag probabilities: the mean over its 3 s patches.
    tags : np.ndarray [shape=(n_tags,)] or None
        The song's tag probabilities: the mean over its windows.
    window_seconds : float
        How many seconds each timeline window covers (30, or 15 for a ``musicnn`` model's points; less for a
        shorter song).
    timeline_note : str or None
        What each point of the timeline covers, when it is not simply one 30 s window.
    """

    path: Path
    duration: float
    starts: np.ndarray
    window_proba: np.ndarray
    proba: np.ndarray
    tag_names: list[str] = field(default_factory=list)
    window_tags: np.ndarray | None = None
    tags: np.ndarray | None = None
    window_seconds: float = 30.0
    timeline_note: str | None = None

    def top(self, genres: list[str], k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most likely genres with their probabilities."""
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise GenrelibError(f"top k must be a whole number >= 1, got {k!r}")
        order = np.argsort(-self.proba)[:k]
        return [(genres[i], float(self.proba[i])) for i in order]

    def top_tags(self, k: int = 3, *, window: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` most probable musicnn tags of the song (or of one window); empty without tags."""
        t = self.tags if window is None else (None if self.window_tags is None else self.window_tags[window])
        if t is None:
            return []
        order = np.argsort(-t)[:k]
        return [(self.tag_names[i], float(t[i])) for i in order]

    @property
    def tags_note(self) -> str | None:
        """What to say about the song's tags beside them, or None: a song shorter than one 3 s musicnn patch
        is tagged from that one patch, padded with silence (:func:`genrelib.features.musicnn.patches`)."""
        from genrelib.features.musicnn import PATCH_SECONDS

        if self.tags is None or self.duration >= PATCH_SECONDS:
            return None
        return f"shorter than {PATCH_SECONDS:g} s: musicnn tags come from one zero-padded patch"


def predict_file(
    model, path: str | Path, *, hop_seconds: float | None = None, tag_model: str | None = None, on_window=None
) -> SongPrediction:
    """Classify one file with a loaded model, window by window (bounded memory for long files).

    Parameters
    ----------
    model : GenreModel
    path : str or Path
    hop_seconds : float, optional
        Hop between 30 s windows (default: no overlap).
    tag_model : str, optional
        Also give the tags of this musicnn network (:data:`genrelib.features.musicnn.MODELS`) per window and for the
        song, whatever model gives the genre. TensorFlow is imported only then (or for a TensorFlow model).
        A ``musicnn``-family model with the same network reuses its own features' tags.
    on_window : callable, optional
        Called with the seconds of the song analysed so far after each 30 s window (progress of a long song).

    Raises
    ------
    AudioError
        When the file cannot be read.

    Notes
    -----
    An ensemble (:mod:`genrelib.models.ensemble`) has each member classify the file as it would alone, and
    combines the members' window and song probabilities.
    """
    if is_ensemble(model):
        return _predict_ensemble(model, path, hop_seconds=hop_seconds, tag_model=tag_model, on_window=on_window)
    check_hop(hop_seconds)
    cfg = model.feature_config
    if cfg.kind == "musicnn":
        return _predict_musicnn(model, Path(path), hop_seconds=hop_seconds, tag_model=tag_model, on_window=on_window)
    path = Path(path)
    starts: list[float] = []
    window_rows: list[np.ndarray] = []  # each window's segment (or window) probabilities
    pending: list[np.ndarray] = []
    window_tags: list[np.ndarray] = []
    if tag_model is not None:
        from genrelib.features import musicnn

        musicnn.load(tag_model)  # an unknown model or bad weights: one clear error before any window

    def flush() -> None:
        if not pending:
            return
        P = model.predict_proba(np.concatenate(pending))
        k = 0
        for rows in pending:
            window_rows.append(P[k : k + len(rows)])
            k += len(rows)
        pending.clear()

    for start, y in audio.load_windows(
        path, sr=cfg.sr, seconds=cfg.window_seconds, hop_seconds=hop_seconds, min_fraction=cfg.min_fraction, pad=False
    ):
        X = window_features(y, cfg.sr, cfg)
        pending.append(X[None, :] if cfg.per_window else X)
        starts.append(start)
        if tag_model is not None:
            window_tags.append(musicnn.embed(y, cfg.sr, model=tag_model)[1].mean(axis=0))
        if len(pending) >= BATCH_WINDOWS:
            flush()
        if on_window is not None:
            on_window(start + len(y) / cfg.sr)
    flush()
    if not starts:
        raise AudioError(f"{path}: no audio windows could be cut from the file")
    rows = np.concatenate(window_rows)
    window_of_row = np.repeat(np.arange(len(window_rows)), [len(w) for w in window_rows])
    _, window_proba = aggregate(rows, window_of_row)
    song = aggregate(rows, np.zeros(len(rows)))[1][0]
    if not (np.isfinite(rows).all() and np.isfinite(song).all()):  # broken weights (a diverged training)
        raise ModelError(
            f"{path}: the model's probabilities are not finite (NaN or inf): the model is broken (did its training "
            "diverge?); use another model or train again"
        )
    pred = SongPrediction(
        path=path, duration=audio.duration(path), starts=np.array(starts), window_proba=window_proba, proba=song
    )
    if tag_model is not None:
        pred.tag_names = list(musicnn.TAGS[tag_model])
        pred.window_tags = np.asarray(window_tags, dtype=np.float64)
        pred.tags = pred.window_tags.mean(axis=0)
    return pred


#: Patches (3 s each) behind one point of a ``musicnn`` model's timeline: 15 s, a point every 3 s.
TIMELINE_PATCHES = 5


def _predict_musicnn(
    model, path: Path, *, hop_seconds: float | None, tag_model: str | None, on_window=None
) -> SongPrediction:
    """:func:`predict_file` for a ``musicnn`` model: one network pass per 30 s window gives the window's row (its
    patches pooled, as in training), the timeline's points (the patches pooled :data:`TIMELINE_PATCHES` at a time)
    and, for the same network, the tags."""
    from genrelib.features import musicnn
    from genrelib.features.compute import pool_patches

    cfg = model.feature_config
    step = cfg.patch_hop or musicnn.PATCH_SECONDS
    other_tags = tag_model is not None and tag_model != cfg.embedding_model
    if tag_model is not None:
        musicnn.load(tag_model)  # an unknown model or bad weights: one clear error before any window
    rows, patches, patch_starts, patch_tags, window_tags = [], [], [], [], []
    seen_until = -np.inf  # overlapping 30 s windows (a hop) repeat patches: the timeline takes each time once
    for start, y in audio.load_windows(
        path, sr=cfg.sr, seconds=cfg.window_seconds, hop_seconds=hop_seconds, min_fraction=cfg.min_fraction, pad=False
    ):
        emb, tags = musicnn.embed(y, cfg.sr, model=cfg.embedding_model, hop_seconds=cfg.patch_hop)
        P = np.concatenate([emb, tags], axis=1)
        rows.append(pool_patches(P, cfg.pooling))
        if other_tags:
            tags = musicnn.embed(y, cfg.sr, model=tag_model, hop_seconds=cfg.patch_hop)[1]
        window_tags.append(tags.mean(axis=0))
        times = start + step * np.arange(len(P))
        new = times > seen_until + 1e-6
        patches.append(P[new])
        patch_tags.append(tags[new])
        patch_starts.append(times[new])
        seen_until = max(seen_until, float(times[-1]))
        if on_window is not None:
            on_window(start + len(y) / cfg.sr)
    if not rows:
        raise AudioError(f"{path}: no audio windows could be cut from the file")
    song = aggregate(model.predict_proba(np.stack(rows)), np.zeros(len(rows)))[1][0]
    P, T, t0 = np.concatenate(patches), np.concatenate(patch_tags), np.concatenate(patch_starts)
    k = min(TIMELINE_PATCHES, len(P))
    spans = [slice(i, i + k) for i in range(len(P) - k + 1)]
    points = np.stack([pool_patches(P[s], cfg.pooling) for s in spans])
    pred = SongPrediction(
        path=path,
        duration=audio.duration(path),
        starts=np.array([t0[s.start] for s in spans]),
        window_proba=model.predict_proba(points),
        proba=song,
        window_seconds=float(t0[k - 1] - t0[0] + musicnn.PATCH_SECONDS),
    )
    pred.timeline_note = (
        f"a point every {step:g} s, each from the {pred.window_seconds:g} s that start there ({k} musicnn patches)"
    )
    if tag_model is not None:
        pred.tag_names = list(musicnn.TAGS[tag_model])
        pred.window_tags = np.stack([T[s].mean(axis=0) for s in spans]).astype(np.float64)
        pred.tags = np.mean(window_tags, axis=0).astype(np.float64)
    return pred


def _predict_ensemble(model, path, *, hop_seconds: float | None, tag_model: str | None, on_window) -> SongPrediction:
    # the tags, if asked, once (from the first member's pass over the file); progress from the first member only
    preds = [
        predict_file(
            m,
            path,
            hop_seconds=hop_seconds,
            tag_model=tag_model if k == 0 else None,
            on_window=on_window if k == 0 else None,
        )
        for k, m in enumerate(model.members)
    ]
    first = preds[0]
    if any(not np.array_equal(p.starts, first.starts) for p in preds[1:]):  # members agree on windows (checked)
        raise ModelError(f"{path}: the ensemble's members cut the file into different windows")
    return SongPrediction(
        path=first.path,
        duration=first.duration,
        starts=first.starts,
        window_proba=model.combine([p.window_proba for p in preds]),
        proba=model.combine([p.proba[None, :] for p in preds])[0],
        tag_names=first.tag_names,
        window_tags=first.window_tags,
        tags=first.tags,
    )


def rows_for(
    pred: SongPrediction,
    genres: list[str],
    *,
    path: str | None = None,
    top_k: int = 3,
    per_window: bool = False,
    top_tags: int = 0,
) -> list[dict]:
    """Records of a prediction: one for the song (``window_start`` -1) and, if asked, one per window.

    Keys as in ``genrelib predict --format json``: ``path`` (default the prediction's), ``window_start``,
    ``duration``, ``genre``, ``probability``, ``top`` (a list of ``{"genre", "probability"}``, best first, not a
    JSON string), ``p_<genre>``; with ``top_tags`` > 0 and tags in the prediction, ``tags`` (a list of ``{"tag",
    "probability"}``). :func:`flat_record` spreads the lists into columns for a table or CSV.
    """

    def rec(start: float, p: np.ndarray, window: int | None) -> dict:
        order = np.argsort(-p)
        r = {
            "path": str(pred.path) if path is None else path,
            "window_start": float(start),
            "duration": pred.duration,
            "genre": genres[order[0]],
            "probability": float(p[order[0]]),
            "top": [{"genre": genres[i], "probability": round(float(p[i]), 4)} for i in order[:top_k]],
            **{f"p_{g}": float(v) for g, v in zip(genres, p)},
        }
        if top_tags and pred.tags is not None:
            r["tags"] = [{"tag": t, "probability": round(q, 4)} for t, q in pred.top_tags(top_tags, window=window)]
        return r

    out = [rec(-1.0, pred.proba, None)]
    if per_window:
        out += [rec(s, p, i) for i, (s, p) in enumerate(zip(pred.starts, pred.window_proba))]
    return out


def flat_record(record: dict) -> dict:
    """A record of :func:`rows_for` with its lists spread into columns, for a table or CSV: ``top1_genre``,
    ``top1_probability``, ... and ``tag1``, ``tag1_probability``, ... in place of ``top`` and ``tags``."""
    out = {k: v for k, v in record.items() if k not in ("top", "tags")}
    for i, t in enumerate(record.get("top") or [], 1):
        out[f"top{i}_genre"], out[f"top{i}_probability"] = t["genre"], t["probability"]
    for i, t in enumerate(record.get("tags") or [], 1):
        out[f"tag{i}"], out[f"tag{i}_probability"] = t["tag"], t["probability"]
    return out


class Predictor:
    """Load a model once; classify many files of any length.

    Parameters
    ----------
    model : None, GenreModel, str or Path
        See :func:`load_model` (None: the shipped default model).
    hop_seconds : float, optional
        Hop between 30 s windows (default: no overlap).
    tag_model : str, optional
        Also give musicnn tags (e.g. ``"MSD_musicnn"``) with every prediction; see :func:`predict_file`.

    Examples
    --------
    >>> p = Predictor()                                   # doctest: +SKIP
    >>> song = p.predict("my_song.mp3")                   # doctest: +SKIP
    >>> song.top(p.genres, 3)                             # doctest: +SKIP
    """

    def __init__(self, model=None, *, hop_seconds: float | None = None, tag_model: str | None = None):
        check_hop(hop_seconds)  # before the model loads
        self.ref = "default" if model is None else str(getattr(model, "family", model))
        self.model = load_model(model)
        self.hop_seconds = hop_seconds
        self.tag_model = tag_model
        if tag_model is not None:
            from genrelib.features import musicnn

            musicnn.load(tag_model)  # fail here, once, rather than for every file

    @property
    def genres(self) -> list[str]:
        return list(self.model.genres)

    def describe(self) -> str:
        """One line: which model this is, its family and the data it was trained on."""
        return describe_model(self.ref, self.model)

    def demo_warning(self, paths) -> str | None:
        """A warning when a model trained on real music is asked about genrelib's synthetic demo songs (or the
        reverse), where its answers mean little; None otherwise."""
        from genrelib.datasets.demo import is_demo

        demo_songs = [p for p in paths if is_demo(p)]
        trained_on_demo = bool(self.model.info.get("synthetic_demo"))
        if demo_songs and not trained_on_demo and self.ref in ("reference", "default"):
            n = len(demo_songs)
            return (
                f"warning: {n} of these songs {'is' if n == 1 else 'are'} genrelib's synthetic demo "
                f"music; the {self.ref} model was trained on real music and its answers for synthetic songs say "
                "little: use a model trained on the demo data, e.g. --model genre-classifier@seed-cnn after "
                "make run-all"
            )
        if trained_on_demo and len(demo_songs) < len(paths):
            return (
                "warning: this model was trained on genrelib's synthetic demo music; its answers for real songs "
                "say nothing: train on real music, or use the shipped default model (leave --model out)"
            )
        return None

    def predict(self, path: str | Path, *, on_window=None) -> SongPrediction:
        """Classify one file (raises :class:`AudioError` for a bad file); ``on_window``: see :func:`predict_file`."""
        return predict_file(
            self.model, path, hop_seconds=self.hop_seconds, tag_model=self.tag_model, on_window=on_window
        )

    def predict_many(
        self, paths: list[str | Path], *, progress: bool = False
    ) -> tuple[list[SongPrediction], list[tuple[Path, str]]]:
        """Classify many files; a bad file is reported and the others are still classified.

        Returns
        -------
        predictions : list of SongPrediction
        failures : list of (path, reason)
        """
        from genrelib.progress import Progress

        paths = list(paths)
        # a bar on a terminal, else log lines (genrelib.progress); nothing for a single song
        bar = Progress(len(paths), "songs", bar=progress, unit="songs") if len(paths) > 1 else None
        preds, failures = [], []
        for p in paths:
            try:
                preds.append(self.predict(p))
            except GenrelibError as exc:
                logger.warning("skipping %s", exc)
                failures.append((Path(p), str(exc)))
            if bar is not None:
                bar.update(skipped=len(failures))
        if bar is not None:
            bar.close()
        return preds, failures

    def table(self, preds: list[SongPrediction], *, top_k: int = 3, per_window: bool = False, top_tags: int = 0):
        """Predictions as a flat DataFrame, one column per value (see :func:`rows_for`, :func:`flat_record`)."""
        import pandas as pd

        return pd.DataFrame(
            [
                flat_record(r)
                for p in preds
                for r in rows_for(p, self.genres, top_k=top_k, per_window=per_window, top_tags=top_tags)
            ]
        )
