"""The shipped default model, rebuilt from audio: a linear head on pretrained musicnn features.

:func:`train_default` is what ``genrelib train-default DATA`` (and ``make default-model``) runs on the 153 real
GTZAN tracks that genrelib's developers have (the fault-filtered TRAIN and VALID parts):

1. the ``musicnn`` features of every track, pooled as the mean and standard deviation over its 3 s patches
   (:data:`DEFAULT_FEATURES`: 500 values per 30 s window);
2. grouped cross-validation (``blocks:5``: five consecutive GTZAN numbers of a genre stay together, an
   approximation of artists) of a standardized multinomial logistic regression for each C of :data:`C_GRID`;
   the best mean per-track accuracy chooses C (the smaller C on a tie);
3. the head fitted with that C on every track, kept as plain arrays (:class:`~genrelib.models.linear_head.LinearHead`)
   so that predicting needs neither scikit-learn nor TensorFlow;
4. the model folder (``genrelib-model.json``, ``model.npz``) and its ``MODEL_CARD.md`` written to ``out``
   (default: the package's own ``genrelib/data/default``), and the run logged to MLflow with its dataset input.

Which head and features: chosen by grouped cross-validation and the fault-filtered TRAIN->VALID holdout on these
tracks (the table is in the README, "The default model").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from genrelib.datasets.tracks import Dataset, scan
from genrelib.errors import DatasetError
from genrelib.evaluation.reports import aggregate
from genrelib.features.config import FeatureConfig
from genrelib.features.featureset import FeatureSet
from genrelib.models.base import GenreModel
from genrelib.models.linear_head import LinearHead

logger = logging.getLogger(__name__)

#: The features of the default model: musicnn (MSD), each 30 s window pooled as mean and std of its patches.
DEFAULT_FEATURES = FeatureConfig(kind="musicnn", embedding_model="MSD_musicnn", pooling="mean_std")
#: Regularization strengths tried by the grouped cross-validation.
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
DEFAULT_GROUP = "blocks:5"


@dataclass
class DefaultModelResult:
    """What :func:`train_default` returns."""

    model: GenreModel
    cv: dict[float, list[float]]  # C -> per-fold per-track accuracies
    C: float
    top: list[float]  # the chosen C's mean top probability on each fold's test tracks
    folder: Path | None
    features: FeatureSet
    run_id: str | None = None
    info: dict = field(default_factory=dict)

    def cv_table(self):
        """One row per C: folds, mean and sd of the per-track accuracy, whether it was chosen."""
        import pandas as pd

        return pd.DataFrame(
            [
                {"C": c, "folds": len(a), "mean": float(np.mean(a)), "sd": float(np.std(a)), "chosen": c == self.C}
                for c, a in self.cv.items()
            ]
        )


def fit_head(X: np.ndarray, labels: np.ndarray, *, C: float) -> LinearHead:
    """A standardized multinomial logistic regression of rows ``X`` on integer ``labels``, as a LinearHead.

    Deterministic: lbfgs from zeros, no random state involved.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=10000, tol=1e-6))
    pipe.fit(np.asarray(X, dtype=np.float64), labels)
    if len(pipe[-1].classes_) != labels.max() + 1:
        raise DatasetError("every genre needs training tracks; one has none")
    return LinearHead.from_pipeline(pipe)


def grouped_cv(
    fs: FeatureSet, ds: Dataset, *, grid=C_GRID, folds: int = 5, repeats: int = 3, seed: int = 42, group=DEFAULT_GROUP
) -> tuple[dict[float, list[float]], dict[float, list[float]]]:
    """Per-track test accuracy of :func:`fit_head` for each C over grouped folds (the same folds for every C), and
    the mean top probability on each fold's test tracks (to hold against the accuracy: is it a chance of being
    right?).

    Training uses the train and validation parts of each fold (the head has no early stopping to validate).
    """
    from genrelib.training.crossval import cv_splits

    splits = cv_splits(ds, folds=folds, repeats=repeats, seed=seed, group=group)
    genre_index = {g: i for i, g in enumerate(fs.genres)}
    y = np.array([genre_index[g] for g in fs.row_genres])
    ids = np.asarray(fs.track_ids)
    out: dict[float, list[float]] = {float(c): [] for c in grid}
    top: dict[float, list[float]] = {float(c): [] for c in grid}
    for split in splits:
        test = np.array([split.get(t) == "test" for t in ids])
        for c in grid:
            head = fit_head(fs.X[~test], y[~test], C=float(c))
            keys, P = aggregate(head.predict_proba(fs.X[test]), ids[test])
            truth = {t: label for t, label in zip(ids[test], y[test])}
            out[float(c)].append(float(np.mean([P[i].argmax() == truth[k] for i, k in enumerate(keys)])))
            top[float(c)].append(float(P.max(axis=1).mean()))
    return out, top


def train_default(
    data: str | Path | Dataset,
    *,
    out: str | Path | None = None,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 42,
    group: str = DEFAULT_GROUP,
    grid=C_GRID,
    n_jobs: int | None = None,
    progress: bool = True,
    log: bool = True,
    table: str | Path | None = None,
) -> DefaultModelResult:
    """Train the default model on ``data`` (``<genre>/<file>``) and write it to ``out``.

    Parameters
    ----------
    data : path or Dataset
    out : path, optional
        The model folder to write (default :func:`genrelib.inference.default_model_path`, the shipped one);
        None with ``out=False``-like use is not supported: the model is always written.
    folds, repeats, seed, group : grouped cross-validation (:func:`genrelib.training.cv_splits`)
    grid : C values to try
    table : path, optional
        Also write the feature table (``X``, ``track_ids``, ``genres``) as ``.npz``: what the test that checks the
        shipped model rebuilds the head from.

    Returns
    -------
    DefaultModelResult
    """
    from genrelib.features.extraction import extract
    from genrelib.inference.default import MODEL_CARD, default_model_path

    ds = data if isinstance(data, Dataset) else scan(data)
    if len(ds.genres) < 2:
        raise DatasetError(f"{ds.root}: the default model needs at least two genres; found {ds.genres}")
    fs = extract(ds, DEFAULT_FEATURES, n_jobs=n_jobs, progress=progress)
    cv, top = grouped_cv(fs, ds, grid=grid, folds=folds, repeats=repeats, seed=seed, group=group)
    best = max(cv, key=lambda c: (round(float(np.mean(cv[c])), 6), -c))
    genre_index = {g: i for i, g in enumerate(fs.genres)}
    head = fit_head(fs.X, np.array([genre_index[g] for g in fs.row_genres]), C=best)
    info = {
        "trained_on": f"{len(ds.tracks)} tracks of {ds.root.name} ({', '.join(f'{g} {n}' for g, n in ds.counts().items())})",
        "manifest_hash": ds.manifest_hash(),
        "tracks": len(ds.tracks),
        "head": f"StandardScaler + multinomial LogisticRegression, C={best:g}",
        "C": best,
        "cv": f"{folds}-fold x {repeats} grouped ({group}), seed {seed}",
        "cv_mean_track_accuracy": float(np.mean(cv[best])),
        "cv_sd_track_accuracy": float(np.std(cv[best])),
        "cv_mean_top_probability": float(np.mean(top[best])),
        "cv_mean_track_accuracy_by_C": {f"{c:g}": float(np.mean(a)) for c, a in cv.items()},
        "trained": date.today().isoformat(),
        "name": "genrelib default (musicnn MSD + linear head)",
    }
    model = GenreModel("musicnn", list(fs.genres), DEFAULT_FEATURES, head, info)
    folder = Path(out) if out is not None else default_model_path()
    model.save(folder)
    result = DefaultModelResult(model=model, cv=cv, C=best, top=top[best], folder=folder, features=fs, info=info)
    (folder / MODEL_CARD).write_text(model_card(result))
    if table is not None:
        np.savez_compressed(table, X=fs.X, track_ids=fs.track_ids, row_genres=fs.row_genres, genres=np.array(fs.genres))
    if log:
        result.run_id = _log(result, ds, group=group)
    return result


def _log(result: DefaultModelResult, ds: Dataset, *, group: str) -> str:
    import pandas as pd

    from genrelib import tracking
    from genrelib.datasets.demo import is_demo
    from genrelib.inference.default import MODEL_CARD

    tracking.setup()
    params = {"default.C": result.C, "default.group": group, "default.features": "musicnn mean_std (MSD)"}
    with tracking.start_run("train-default", params=params, tags={"genrelib.stage": "default-model"}) as run:
        table = pd.DataFrame([{"track_id": t.track_id, "genre": t.genre} for t in ds.tracks])
        name = f"{ds.root.name} (synthetic)" if is_demo(ds.root) else ds.root.name
        tracking.log_dataset(table, name=name, source=str(ds.root.resolve()), digest=ds.manifest_hash())
        tracking.log_metrics(
            {
                "cv_track_accuracy": result.info["cv_mean_track_accuracy"],
                "cv_track_accuracy_sd": result.info["cv_sd_track_accuracy"],
            }
        )
        tracking.log_table(result.cv_table(), "reports/default_model_cv.csv")
        tracking.log_text((result.folder / MODEL_CARD).read_text(), "MODEL_CARD.md")
        return run.info.run_id


def model_card(result: DefaultModelResult) -> str:
    """The model card: what the default model is, what it was trained on, how it was measured, what it knows."""
    info, fs = result.info, result.features
    rows = "\n".join(
        f"| {r.C:g} | {r.folds} | {r.mean:.3f} | {r.sd:.3f} |{' chosen' if r.chosen else ''}"
        for r in result.cv_table().itertuples()
    )
    return f"""# Model card: genrelib's default genre model

**What it is.** A linear head (standardization and a multinomial logistic regression, C = {result.C:g}) on the
pretrained musicnn network's features (Pons & Serra 2019, the MSD model: 200-d penultimate embedding and 50
Last.fm tag probabilities per 3 s patch, pooled over each 30 s window as their mean and standard deviation:
500 values). The network's weights are genrelib's converted copy of musicnn 0.1.0 (ISC license,
`genrelib/data/musicnn/`, run by onnxruntime); the head's parameters are `model.npz` here. Predicting needs
neither TensorFlow nor scikit-learn.

**Trained on** {info["trained_on"]}: real GTZAN tracks (Tzanetakis & Cook 2002) of the fault-filtered (Kereliuk,
Sturm & Larsen 2015) TRAIN and VALID parts, one 30 s clip each, recorded around 2000. No track of the
fault-filtered TEST part was used for anything: it is how the model is judged.

**Genres it knows:** {", ".join(fs.genres)}. That is all it can answer. A song of another genre (electronic,
folk, k-pop, ...) still gets one of these ten, the nearest in musicnn's terms; its probabilities then say which of
the ten it resembles, not what it is.

**How sure it is.** Its probabilities are a score, not a calibrated chance of being right: on the held-out tracks
of the cross-validation below its mean top probability was {info["cv_mean_top_probability"]:.2f} against an
accuracy of {info["cv_mean_track_accuracy"]:.2f}, and on music unlike GTZAN's it can be as sure and more wrong.

**Measured by grouped cross-validation** ({info["cv"]}: five consecutive GTZAN numbers of a genre stay in one part,
an approximation of artists; per-track accuracy over the test folds; rebuilt by `genrelib train-default DATA`):

| C | folds | mean | sd | |
|---|---|---|---|---|
{rows}

Grouping by blocks is optimistic (an artist's tracks can cross a block border); grouping by whole runs of the
fault-filtered lists is pessimistic (a genre's only run leaves training). Expect lower accuracy on music unlike
GTZAN's (modern production, other genres). Data digest: `{info["manifest_hash"]}`.
"""
