"""Predicting a stored part (:class:`~genrelib.features.stored.StoredFeatureSet`) shard by shard: only the
probabilities and row ids are held.
"""

from __future__ import annotations

import numpy as np

from genrelib.features.stored import StoredFeatureSet


def predict_stored(model, part: StoredFeatureSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``model``'s probabilities for every row of a stored part, predicted shard by shard (the part's
    configuration and size are checked by :func:`genrelib.evaluation.scoring.predict_rows`, which calls this).

    Returns
    -------
    proba : ndarray, rows x ``model.genres``
    y : ndarray of int64
        Each row's genre as an index into ``model.genres``.
    track_ids : ndarray
        Each row's track.

    Raises
    ------
    ModelError
        When the part has a genre the model does not know.
    """
    from genrelib.evaluation.reports import genre_index

    index = genre_index(model.genres, part.index["genre"])
    proba, ids, y = [], [], []
    for _, shard in part.iter_shards(columns=("x",)):
        proba.append(model.predict_proba(shard["x"]))
        ids.append(shard["track_ids"])
        y.append(np.array([index[part.genres[k]] for k in shard["labels"]], np.int64))
    return np.concatenate(proba), np.concatenate(y), np.concatenate(ids)
