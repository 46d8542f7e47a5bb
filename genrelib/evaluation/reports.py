"""Metrics per segment and per track: aggregation of segment probabilities, accuracy and F1, the :class:`Report` of one
evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genrelib.errors import ModelError

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
    scope: str | None = None  # which tracks of the folder were scored, and why, in words
    dataset: object = None  # the Dataset scored (evaluate_folder); log_report records it as the run's input

    def flat_metrics(self, prefix: str = "test") -> dict[str, float]:
        """``{prefix}_{level}_{metric}`` for logging (e.g. ``test_track_accuracy``), per track first: MLflow's run
        page and Models tab list metrics in the order they were first logged, and per track is the headline."""
        out = {}
        for level in ("track", "segment"):
            for k, v in getattr(self, level).metrics.items():
                out[f"{prefix}_{level}_{k}"] = v
        return out

    def headline(self, prefix: str = "test", note: str = "") -> str:
        """The run's description in MLflow (markdown, shown above its metrics): the per-track accuracy first, then
        ``note``."""
        what = {
            "test": "held-out test tracks, never seen in training or model selection",
            "valid": "validation tracks",
            "train": "training tracks",
        }.get(prefix, "every track of the folder")
        m = self.track.metrics
        return (
            f"**{prefix} accuracy per track: {m['accuracy']:.3f}** on {len(self.track_ids)} {what} "
            f"(`{prefix}_track_accuracy`; macro F1 {m['f1_macro']:.3f}, per segment "
            f"{self.segment.metrics['accuracy']:.3f}).{' ' + note if note else ''}"
        )

    def to_dict(self) -> dict:
        """JSON-able summary: metrics, per-genre reports, confusion matrices, wrong tracks."""
        return {
            "genres": self.genres,
            "segment": {
                "metrics": self.segment.metrics,
                "per_genre": self.segment.per_genre,
                "confusion": self.segment.confusion.tolist(),
            },
            "track": {
                "metrics": self.track.metrics,
                "per_genre": self.track.per_genre,
                "confusion": self.track.confusion.tolist(),
            },
            "most_confidently_wrong": self.wrong,
            "part": None
            if self.part is None
            else {"name": self.part, "found": self.part_found, "recorded": self.part_recorded},
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
        """Per-genre precision, recall, F1 and support (a count of tracks or segments: integers) as a DataFrame."""
        import pandas as pd

        table = pd.DataFrame(getattr(self, level).per_genre).T
        if "support" in table:
            table["support"] = table["support"].astype(int)
        return table

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
    rep = classification_report(
        y_true, y_pred, labels=list(range(n)), target_names=genres, output_dict=True, zero_division=0
    )
    per_genre = {g: {k: float(v) for k, v in rep[g].items()} for g in genres}
    return LevelReport(
        metrics=metrics(y_true, y_pred),
        per_genre=per_genre,
        confusion=confusion_matrix(y_true, y_pred, labels=list(range(n))),
        y_true=np.asarray(y_true),
        y_pred=y_pred,
        proba=proba,
    )


def report_rows(
    genres: list[str], proba: np.ndarray, y: np.ndarray, track_ids: np.ndarray, *, n_wrong: int = 10
) -> Report:
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
    wrong = [
        {
            "track_id": str(keys[i]),
            "true": genres[y_track[i]],
            "predicted": genres[trk.y_pred[i]],
            "probability": float(P[i, trk.y_pred[i]]),
            "p_true": float(P[i, y_track[i]]),
        }
        for i in wrong_idx[np.argsort(-conf)][:n_wrong]
    ]
    return Report(genres=list(genres), segment=seg, track=trk, track_ids=keys, wrong=wrong)


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
        raise ModelError(
            f"the data has genres the model does not know: {unknown}; the model knows "
            f"{model_genres}. Remove those folders or train a model on them"
        )
    return index
