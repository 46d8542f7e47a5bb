"""Cross-validation by track (``genrelib train --cv K``)."""

import mlflow
import pytest

from genrelib import datasets
from genrelib.cli import main
from genrelib.errors import DatasetError
from genrelib.training.config import TrainConfig
from genrelib.training.crossval import cross_validate, cv_splits


def test_folds_are_by_track_and_cover_every_track_once_per_repeat(tiny_tree):
    ds = datasets.scan(tiny_tree)
    splits = cv_splits(ds, folds=3, repeats=2, seed=5)
    assert len(splits) == 6
    ids = {t.track_id for t in ds.tracks}
    for r in range(2):
        tests = [{t for t, p in s.items() if p == "test"} for s in splits[3 * r : 3 * r + 3]]
        assert set().union(*tests) == ids and sum(map(len, tests)) == len(ids)  # each track tested once
    for s in splits:
        assert set(s) == ids and set(s.values()) == {"train", "valid", "test"}
        genre_of = {t.track_id: t.genre for t in ds.tracks}
        assert {genre_of[t] for t, p in s.items() if p == "test"} == set(ds.genres)  # stratified
    assert splits == cv_splits(ds, folds=3, repeats=2, seed=5)  # reproducible
    assert splits[:3] != splits[3:]  # repeats shuffle differently


def test_bad_cv_settings_are_clear_errors(tiny_tree, capsys):
    ds = datasets.scan(tiny_tree)
    with pytest.raises(DatasetError, match="at least 2 folds"):
        cv_splits(ds, folds=1)
    with pytest.raises(DatasetError, match="needs at least 5 tracks of every genre; classical has 4"):
        cv_splits(ds, folds=5)
    assert main(["train", str(tiny_tree), "--model", "summary", "--cv", "1"]) == 2  # as the command line is read
    assert "error: argument --cv: must be a whole number >= 2, got '1'" in capsys.readouterr().err


def test_cross_validate_logs_folds_as_nested_runs(tiny_tree, capsys):
    assert main(["train", str(tiny_tree), "--model", "summary", "--cv", "2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("summary: 2-fold cross-validation by track, 1 repeat(s), seed 3\n")
    assert "track accuracy    " in out and "(mean +- sd over 2 folds)" in out
    parent = out.strip().splitlines()[-1].split()[3]
    run = mlflow.get_run(parent)
    assert {"cv_mean_test_track_accuracy", "cv_std_test_track_accuracy"} <= set(run.data.metrics)
    assert run.inputs.dataset_inputs[0].dataset.digest == datasets.scan(tiny_tree).manifest_hash()
    children = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent}'", search_all_experiments=True)
    assert len(children) == 2 and (children["status"] == "FINISHED").all()
    # the same seed gives the same folds and the same numbers; nothing was registered
    res = cross_validate(tiny_tree, TrainConfig(family="summary", seed=3), folds=2, log=False, n_jobs=1)
    assert res.mean["test_track_accuracy"] == pytest.approx(run.data.metrics["cv_mean_test_track_accuracy"])
    assert not mlflow.MlflowClient().search_registered_models()
