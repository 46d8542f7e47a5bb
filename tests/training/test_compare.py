"""The comparison of a data set's runs: leaderboard, family bar chart, confusion matrices of the best two."""

import matplotlib.figure
import mlflow
import numpy as np
import pytest

from genrelib import tracking
from genrelib.datasets.tracks import scan
from genrelib.errors import GenrelibError
from genrelib.training import compare

GENRES = ["classical", "metal", "reggae"]


def _run(name, stage, family, *, digest, params=None, metrics=None, confusion=None):
    with tracking.start_run(
        name,
        params={"data.manifest_hash": digest, "data.root": "/x/genres", **(params or {})},
        tags={"genrelib.stage": stage, "genrelib.family": family},
    ) as run:
        tracking.log_metrics(metrics or {})
        if confusion is not None:
            tracking.log_dict({"genres": GENRES, "track": {"confusion": confusion}}, "reports/test_report.json")
    return run.info.run_id


@pytest.fixture
def runs(tiny_tree):
    digest = scan(tiny_tree).manifest_hash()
    eye = np.eye(3, dtype=int).tolist()
    ids = {
        "cnn": _run(
            "train-seed_cnn",
            "train",
            "seed_cnn",
            digest=digest,
            params={
                "train.family": "seed_cnn",
                "train.epochs": 30,
                "train.split": "random",
                "train.seed": 42,
                "train.mixup": 0.2,
            },
            metrics={"test_track_accuracy": 0.6, "tracks_test": 30, "epochs_run": 12},
            confusion=[[8, 2, 0], [1, 9, 0], [3, 3, 4]],
        ),
        "summary": _run(
            "train-summary",
            "train",
            "summary",
            digest=digest,
            params={"train.family": "summary", "train.split": "random", "train.seed": 42, "chosen_estimator": "logreg"},
            metrics={"test_track_accuracy": 0.7, "tracks_test": 30},
            confusion=eye,
        ),
        "cv": _run(
            "cv-summary",
            "cv",
            "summary",
            digest=digest,
            params={"train.family": "summary", "train.seed": 42, "cv.folds": 5, "cv.repeats": 1, "data.tracks": 150},
            metrics={"cv_mean_test_track_accuracy": 0.8, "cv_std_test_track_accuracy": 0.05},
        ),
        "ensemble": _run(
            "ensemble",
            "ensemble",
            "ensemble",
            digest=digest,
            params={"ensemble.families": "seed_cnn,summary", "ensemble.weights": "1,3"},
            metrics={"test_track_accuracy": 0.75, "test_part_tracks_found": 30},
            confusion=[[10, 0, 0], [0, 9, 1], [2, 0, 8]],
        ),
        "other_data": _run(
            "train-crnn",
            "train",
            "crnn",
            digest="0123456789abcdef",
            params={"train.family": "crnn"},
            metrics={"test_track_accuracy": 0.99},
        ),
        "evaluate": _run("evaluate-x", "evaluate", "seed_cnn", digest=digest, metrics={"test_track_accuracy": 1.0}),
    }
    return ids


def test_leaderboard_of_one_data_set(runs, tiny_tree):
    board = compare.leaderboard(tiny_tree)
    assert list(board.columns) == compare.COLUMNS
    assert list(board["run_id"]) == [runs["cv"], runs["ensemble"], runs["summary"], runs["cnn"]]
    assert list(board["rank"]) == [1, 2, 3, 4]
    cv = board.iloc[0]
    assert (cv.stage, cv.test_track_accuracy, cv.spread, cv.test_tracks) == ("cv", 0.8, 0.05, 150)
    assert cv.configuration.startswith("5-fold x 1")
    assert board.iloc[1].configuration == "seed_cnn 0.25 + summary 0.75"
    cnn = board.iloc[3]
    assert cnn.configuration == "split random, seed 42, 12 of 30 epochs, mixup 0.2" and np.isnan(cnn.spread)
    assert board.iloc[2].configuration == "split random, seed 42, logreg"
    # every data set; one stage
    assert runs["other_data"] in set(compare.leaderboard("")["run_id"])
    assert set(compare.leaderboard("", stages="train")["stage"]) == {"train"}
    # the table a notebook shows (issue 21 #21): counts as integers, no "spread NaN" for single runs, 3 decimals
    assert str(board["test_tracks"].dtype) == "Int64"
    html = compare.leaderboard_table(board).to_html()
    assert "nan" not in html.lower() and "single run" in html and "± 0.050" in html and ">150<" in html
    assert ">0.800<" in html and "150.0" not in html


def test_no_runs_or_unknown_stage_is_a_clear_error(tiny_tree):
    with pytest.raises(GenrelibError, match=r"no finished train, cv, ensemble runs on .* \(manifest hash"):
        compare.leaderboard(tiny_tree)
    with pytest.raises(GenrelibError, match=r"unknown stages \['sweep'\]"):
        compare.leaderboard("", stages="train,sweep")


def test_figures_and_logging(runs, tiny_tree):
    board = compare.leaderboard(tiny_tree)
    best = compare.best_per_family(board)
    assert list(best["family"]) == ["summary", "ensemble", "seed_cnn"]  # summary's best is its cv run
    fig = compare.plot_leaderboard(board)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["summary", "ensemble", "seed_cnn"]
    assert [round(p.get_height(), 2) for p in ax.patches] == [0.8, 0.75, 0.6]
    conf = compare.plot_confusions(board, n=2)
    titles = [a.get_title() for a in conf.axes if a.get_title()]
    assert len(titles) == 2 and titles[0].startswith("#2 ensemble, run") and titles[1].startswith("#3 summary (train)")
    with tracking.start_run("06") as run:
        logged = compare.log_comparison(board, {"figures/leaderboard.png": fig, "figures/confusions.png": conf})
    assert list(logged["artifact"]) == ["reports/leaderboard.csv", "figures/leaderboard.png", "figures/confusions.png"]
    assert logged["what"].iloc[0] == f"{len(board)} runs"
    with tracking.start_run("06, one run"):
        assert compare.log_comparison(board.iloc[:1])["what"].iloc[0] == "1 run"  # not "1 runs"
    data = mlflow.get_run(run.info.run_id).data
    assert data.metrics["best_test_track_accuracy"] == 0.8 and data.tags["genrelib.best_run_id"] == runs["cv"]
    assert tracking.load_run_dict(run.info.run_id, "reports/nothing.json") is None
