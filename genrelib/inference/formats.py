"""Predictions as ``genrelib predict --format json`` and ``--format csv`` write them: one writer for the command
line and the web page (``genrelib app``), so that both give the same fields and columns."""

from __future__ import annotations

from genrelib.inference.predict import SongPrediction, flat_record, rows_for


def _tags(p: SongPrediction, top_tags: int, window: int | None = None) -> dict:
    if not top_tags:
        return {}
    note = {"tags_note": p.tags_note} if window is None and p.tags_note else {}
    return {"tags": [{"tag": t, "probability": q} for t, q in p.top_tags(top_tags, window=window)], **note}


def json_records(
    preds: list[SongPrediction], genres: list[str], *, top_k: int = 3, timeline: bool = False, top_tags: int = 0
) -> list[dict]:
    """The records of ``genrelib predict --format json``, one per song.

    Parameters
    ----------
    preds : list of SongPrediction
    genres : list of str
        The model's genres, in the order of its probabilities.
    top_k : int
        Genres in each ``top`` list.
    timeline : bool
        Also a ``windows`` list (``--timeline``): each window's start, probabilities and tags.
    top_tags : int
        The song's (and each window's) ``top_tags`` most probable musicnn tags (``--tags K``); 0: none.

    Returns
    -------
    list of dict
        ``path``, ``duration``, ``top`` (``{"genre", "probability"}``, best first), ``probabilities`` (genre ->
        probability), with tags ``tags`` (and ``tags_note`` for a song shorter than one musicnn patch), with the
        timeline ``windows``.
    """
    out = []
    for p in preds:
        rec = {
            "path": str(p.path),
            "duration": p.duration,
            "top": [{"genre": g, "probability": q} for g, q in p.top(genres, top_k)],
            "probabilities": dict(zip(genres, map(float, p.proba))),
            **_tags(p, top_tags),
        }
        if timeline:
            rec["windows"] = [
                {"start": float(s), "probabilities": dict(zip(genres, map(float, w))), **_tags(p, top_tags, i)}
                for i, (s, w) in enumerate(zip(p.starts, p.window_proba))
            ]
        out.append(rec)
    return out


def csv_table(
    preds: list[SongPrediction], genres: list[str], *, top_k: int = 3, timeline: bool = False, top_tags: int = 0
):
    """The table of ``genrelib predict --format csv`` (a DataFrame: one row per song, ``window_start`` -1, and with
    ``timeline`` one per window; columns of :func:`~genrelib.inference.predict.flat_record`)."""
    import pandas as pd

    return pd.DataFrame(
        [
            flat_record(r)
            for p in preds
            for r in rows_for(p, genres, top_k=top_k, per_window=timeline, top_tags=top_tags)
        ]
    )
