"""Comparing the runs of a data set: a leaderboard, a bar chart of the families, the best runs' confusion matrices.

Reads MLflow only through :mod:`genrelib.tracking`. The runs compared are the finished ones of genrelib's
experiment tagged ``genrelib.stage`` = ``train`` (one split: per-track accuracy on its test tracks), ``cv``
(cross-validation, :mod:`genrelib.training.crossval`: the mean and standard deviation of the folds' test per-track
accuracy) and ``ensemble`` (:mod:`genrelib.training.ensemble`: its test per-track accuracy); of one data set when a data
folder is given (runs whose ``data.manifest_hash`` parameter is that folder's), else of every data set.
Notebook 06 shows and logs all three.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genrelib.errors import GenrelibError

logger = logging.getLogger(__name__)

#: Stages whose runs are compared.
STAGES = ("train", "cv", "ensemble")
#: Columns of :func:`leaderboard`.
COLUMNS = [
    "rank",
    "family",
    "stage",
    "configuration",
    "test_track_accuracy",
    "spread",
    "test_tracks",
    "data",
    "run_name",
    "run_id",
]
#: TrainConfig fields the configuration summary always names (the rest only when they differ from the default).
_ALWAYS = ("split", "seed")
_SKIP = ("family", "epochs", "force", "test_size", "valid_size")


def _param(row, key: str, default=None):
    value = row.get(f"params.{key}")
    return default if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _metric(row, key: str) -> float:
    value = row.get(f"metrics.{key}")
    return float("nan") if value is None else float(value)


def configuration(row) -> str:
    """A short summary of a run's configuration (one row of :func:`genrelib.tracking.runs.search_runs`): split and seed,
    epochs run (Keras) or the chosen scikit-learn pipeline, every training option that differs from its default;
    for cross-validation the folds; for an ensemble its members and weights."""
    from dataclasses import MISSING, fields

    from genrelib.models import KERAS_FAMILIES
    from genrelib.training.config import TrainConfig

    stage = row.get("tags.genrelib.stage")
    if stage == "ensemble":
        families = str(_param(row, "ensemble.families", "")).split(",")
        weights = [float(w) for w in str(_param(row, "ensemble.weights", "")).split(",") if w]
        versions = str(_param(row, "ensemble.versions", "")).split(",")
        versions += [""] * (len(families) - len(versions))
        total = sum(weights) or 1.0
        return " + ".join(f"{f}{f' v{v}' if v else ''} {w / total:.2g}" for f, w, v in zip(families, weights, versions))
    family = _param(row, "train.family", row.get("tags.genrelib.family"))
    parts = [f"{k} {_param(row, f'train.{k}')}" for k in _ALWAYS if _param(row, f"train.{k}") is not None]
    if family in KERAS_FAMILIES:
        run = _metric(row, "epochs_run")
        parts.append(
            f"{int(run)} of {_param(row, 'train.epochs')} epochs"
            if not np.isnan(run)
            else f"epochs {_param(row, 'train.epochs')}"
        )
    elif _param(row, "chosen_estimator") is not None:
        parts.append(str(_param(row, "chosen_estimator")))
    for f in fields(TrainConfig):
        if f.name in _ALWAYS or f.name in _SKIP or f.default is MISSING:
            continue
        value = _param(row, f"train.{f.name}")
        if value is not None and str(value) != str(f.default):
            parts.append(f"{f.name} {value}")
    if stage == "cv":
        parts.insert(0, f"{_param(row, 'cv.folds')}-fold x {_param(row, 'cv.repeats')}")
    return ", ".join(parts)


def leaderboard(data_dir: str | Path = "", *, stages: Sequence[str] | str = STAGES, uri: str | None = None):
    """The finished runs of a data set, best per-track test accuracy first.

    Parameters
    ----------
    data_dir : path or ""
        A data folder: only runs on exactly this data (its manifest hash, which changes when a file changes);
        ``""``: runs on any data.
    stages : sequence of str or str
        Which runs: ``train``, ``cv``, ``ensemble`` (a string: comma-separated).
    uri : str, optional
        MLflow store (default: :func:`genrelib.tracking.backend.tracking_uri`).

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`: ``test_track_accuracy`` is a train or ensemble run's per-track test accuracy, or a cv run's
        mean over folds with their standard deviation in ``spread`` (NaN for single runs); ``test_tracks`` the test
        tracks it was measured on (for cv: all tracks of the data, each tested once per repeat).

    Raises
    ------
    GenrelibError
        When no run matches (the message says what was looked for and where).
    """
    import pandas as pd

    from genrelib import tracking

    stages = [s.strip() for s in (stages.split(",") if isinstance(stages, str) else stages) if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise GenrelibError(f"unknown stages {unknown}; choose among {', '.join(STAGES)}")
    flt = "attributes.status = 'FINISHED'"
    what = "runs"
    if str(data_dir):
        from genrelib.datasets.tracks import scan

        digest = scan(data_dir).manifest_hash()
        flt += f" and params.`data.manifest_hash` = '{digest}'"
        what = f"runs on {data_dir} (manifest hash {digest})"
    runs = tracking.search_runs(flt, uri=uri)
    if len(runs) and "tags.genrelib.stage" in runs:
        runs = runs[runs["tags.genrelib.stage"].isin(stages)]
    if not len(runs):
        raise GenrelibError(
            f"no finished {', '.join(stages)} {what} in {tracking.tracking_uri()}; train a model "
            'first (genrelib train, make train), or give data_dir "" for every data set'
        )
    rows = []
    for _, r in runs.iterrows():
        stage = r["tags.genrelib.stage"]
        cv = stage == "cv"
        acc = _metric(r, "cv_mean_test_track_accuracy" if cv else "test_track_accuracy")
        tracks = (
            _param(r, "data.tracks")
            if cv
            else (_metric(r, "tracks_test") if stage == "train" else _metric(r, "test_part_tracks_found"))
        )
        root = _param(r, "data.root")
        rows.append(
            {
                "family": r.get("tags.genrelib.family") or _param(r, "train.family"),
                "stage": stage,
                "configuration": configuration(r),
                "test_track_accuracy": acc,
                "spread": _metric(r, "cv_std_test_track_accuracy") if cv else float("nan"),
                "test_tracks": None if tracks is None or np.isnan(float(tracks)) else int(float(tracks)),
                "data": Path(str(root)).name if root else "",
                "run_name": r.get("tags.mlflow.runName", ""),
                "run_id": r["run_id"],
            }
        )
    board = (
        pd.DataFrame(rows)
        .sort_values("test_track_accuracy", ascending=False, na_position="last", kind="stable")
        .reset_index(drop=True)
    )
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    board["test_tracks"] = board["test_tracks"].astype("Int64")  # a count: 60, not 60.0 (<NA> when unrecorded)
    return board[COLUMNS]


def leaderboard_table(board):
    """The leaderboard as a table to read: accuracies with three decimals, ``spread`` only where there is one
    (cross-validation runs; "single run" for the others), counts as integers.

    Parameters
    ----------
    board : pandas.DataFrame
        What :func:`leaderboard` returned.

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    return (
        board.style.hide(axis="index")
        .format("{:.3f}", subset=["test_track_accuracy"], na_rep="no test tracks")
        .format("± {:.3f}", subset=["spread"], na_rep="single run")
        .format(na_rep="-", subset=["test_tracks"])
    )


def best_per_family(board):
    """The best run of each family (first in the leaderboard's order; runs without an accuracy left out)."""
    scored = board.dropna(subset=["test_track_accuracy"])
    return scored.drop_duplicates("family", keep="first").reset_index(drop=True)


def plot_leaderboard(board, *, title: str = "Best run of each family: per-track test accuracy", ax=None):
    """Bar chart of the families, best run each; error bars (one standard deviation over folds) for a
    cross-validation run; each bar labelled with its accuracy and stage. Returns the Figure."""
    from genrelib.plots import _axes, _close

    best = best_per_family(board)
    fig, ax = _axes(ax, (max(5.0, 1.3 * len(best) + 2), 4.2))
    colors = {"train": "tab:blue", "cv": "tab:orange", "ensemble": "tab:green"}
    x = np.arange(len(best))
    ax.bar(x, best["test_track_accuracy"], color=[colors.get(s, "tab:gray") for s in best["stage"]])
    cv = (best["stage"] == "cv").to_numpy()
    if cv.any():
        ax.errorbar(
            x[cv],
            best["test_track_accuracy"][cv],
            yerr=best["spread"][cv].fillna(0),
            fmt="none",
            ecolor="black",
            capsize=6,
            elinewidth=1.2,
        )
    for xi, (_, r) in zip(x, best.iterrows()):
        label = (
            f"{r.test_track_accuracy:.2f} ± {r.spread:.2f}\ncv"
            if r.stage == "cv"
            else f"{r.test_track_accuracy:.2f}\n{r.stage}"
        )
        top = r.test_track_accuracy + (r.spread if r.stage == "cv" and not np.isnan(r.spread) else 0)
        ax.text(xi, min(top, 1.0) + 0.02, label, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, best["family"])
    ax.set_ylim(0, 1.18)
    ax.set_ylabel("per-track test accuracy")
    ax.set_xlabel("family (best run; cv: mean ± sd over folds)")
    if not len(best):
        ax.text(0.5, 0.5, "no run with a test accuracy", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    return _close(fig)


def plot_confusions(board, *, n: int = 2, uri: str | None = None):
    """The per-track test confusion matrices (normalized by row) of the best runs of the ``n`` best families, side
    by side: for each family the best run that logged one (``reports/test_report.json``: train and ensemble runs;
    cross-validation runs log none). Returns the Figure."""
    import matplotlib.pyplot as plt

    from genrelib import tracking
    from genrelib.plots import plot_confusion_matrix

    if uri:
        tracking.setup(uri)
    found = []
    for _, r in board.dropna(subset=["test_track_accuracy"]).iterrows():
        if len(found) == n:
            break
        if r.stage == "cv" or r.family in {f.family for f, _ in found}:
            continue
        report = tracking.load_run_dict(r.run_id, "reports/test_report.json")
        if report is not None:
            found.append((r, report))
    fig, axes = plt.subplots(
        1, max(len(found), 1), figsize=(7.2 * max(len(found), 1), 6.6), layout="constrained", squeeze=False
    )
    for ax, (r, report) in zip(axes[0], found):
        stage = "" if r.stage == r.family else f" ({r.stage})"
        config = r.configuration if len(r.configuration) <= 48 else r.configuration[:45] + "..."
        plot_confusion_matrix(
            report["track"]["confusion"],
            report["genres"],
            ax=ax,
            title=f"#{r['rank']} {r.family}{stage}, run {r.run_id[:8]}: track accuracy "
            f"{r.test_track_accuracy:.2f}\n{config}",
        )
    if not found:
        axes[0][0].text(0.5, 0.5, "no run with a test report", ha="center", va="center")
        axes[0][0].set_axis_off()
    plt.close(fig)
    return fig


def log_comparison(board, figures: dict | None = None):
    """Log the leaderboard (``reports/leaderboard.csv``), the figures (``{artifact path: Figure}``) and the best
    run's accuracy and id to the active MLflow run. Returns a table of what was logged."""
    import pandas as pd

    from genrelib import tracking

    tracking.log_table(board, "reports/leaderboard.csv")
    logged = [("reports/leaderboard.csv", f"{len(board)} run{'' if len(board) == 1 else 's'}")]
    for path, fig in (figures or {}).items():
        tracking.log_figure(fig, path)
        logged.append((path, "figure"))
    scored = board.dropna(subset=["test_track_accuracy"])
    tracking.log_metrics({"runs_compared": len(board), "families_compared": board["family"].nunique()})
    if len(scored):
        best = scored.iloc[0]
        tracking.log_metrics({"best_test_track_accuracy": best.test_track_accuracy})
        tracking.set_tags({"genrelib.best_run_id": best.run_id, "genrelib.best_family": best.family})
    return pd.DataFrame(logged, columns=["artifact", "what"])
