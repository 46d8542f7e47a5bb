"""Hyper-parameter search: the --param language, nested MLflow runs per trial, failed and pruned trials, the best
configuration trained once more, tested once and registered; the CLI verb and notebook 03's optional sweep."""

from pathlib import Path

import mlflow
import numpy as np
import pytest

from genrelib.errors import ModelError
from genrelib.training import OBJECTIVE, parse_param, parse_space, sweep, tune
from genrelib.training.config import TrainConfig

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"


def _children(parent_id):
    return mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
        search_all_experiments=True,
        output_format="list",
        order_by=["start_time ASC"],
    )


def test_param_language():
    p = parse_param("learning_rate=1e-4:3e-3", "seed_cnn")
    assert (p.low, p.high, p.log, p.choices) == (1e-4, 3e-3, True, None)
    assert parse_param("batch_size=16,32", "crnn").choices == (16, 32)
    assert parse_param("time_masks=0:2", "mel_cnn").type is int
    assert parse_param("logreg_c=0.01:10", "summary").log
    assert set(parse_space(None, "seed_cnn")) == {
        "learning_rate",
        "batch_size",
        "dropout",
        "l2",
        "filters",
        "mixup",
        "time_masks",
        "freq_masks",
    }
    assert set(parse_space("", "mel_cnn")) == {
        "learning_rate",
        "batch_size",
        "dropout",
        "filters",
        "mixup",
        "time_masks",
        "freq_masks",
    }
    assert set(parse_space([], "musicnn")) == {"logreg_c"}
    assert list(parse_space("dropout=0.1:0.5; filters=16,32", "crnn")) == ["dropout", "filters"]


@pytest.mark.parametrize(
    "text,family,message",
    [
        (
            "lr=1e-3",
            "seed_cnn",
            r"unknown parameter 'lr'; seed_cnn accepts learning_rate \(float, log scale\), "
            r"batch_size \(int\)",
        ),
        ("batch_size=big", "seed_cnn", r"batch_size takes whole numbers \(int\), got 'big'; seed_cnn accepts"),
        ("batch_size=16.5,32", "mel_cnn", r"batch_size takes whole numbers \(int\), got '16.5'"),
        ("dropout=a:0.5", "crnn", r"dropout takes numbers \(float\), got 'a'"),
        ("l2=1e-4:1e-2", "mel_cnn", r"l2 does not apply to mel_cnn \(it applies to seed_cnn\); mel_cnn accepts"),
        ("logreg_c=1", "seed_cnn", r"logreg_c does not apply to seed_cnn \(it applies to summary, musicnn\)"),
        ("dropout", "seed_cnn", r"give values as dropout=v1,v2,... \(choices\) or dropout=lo:hi \(a range\)"),
        ("dropout=0.5:0.1", "seed_cnn", "the low end of a range must be below the high end, got 0.5:0.1"),
        ("learning_rate=0:0.1", "seed_cnn", "log scale, so both ends must be > 0"),
        ("dropout=0.1:1.5", "seed_cnn", r"dropout must be >= 0 and < 1, got 1.5"),
        ("dropout=0.1:0.2:0.3", "seed_cnn", "a range is lo:hi"),
    ],
)
def test_bad_params_name_the_parameter_and_what_is_accepted(text, family, message):
    with pytest.raises(ModelError, match=message):
        parse_param(text, family)


def test_bad_spaces():
    with pytest.raises(ModelError, match="--param dropout is given twice"):
        parse_space(["dropout=0.1:0.2", "dropout=0.3,0.4"], "seed_cnn")
    with pytest.raises(ModelError, match="invalid configuration even at its high end: .*give aug_copies >= 1"):
        tune.check_space(parse_space(["pitch_shift=0:2"], "seed_cnn"), TrainConfig())
    tune.check_space(parse_space(["pitch_shift=0:2"], "seed_cnn"), TrainConfig(aug_copies=1, time_stretch=0.1))


def test_cli_bad_param_is_one_clear_error_before_any_work(tmp_path, capsys):
    from genrelib.cli import main

    # the data folder does not even exist: the --param check comes first
    assert (
        main(["sweep", str(tmp_path / "nowhere"), "--model", "seed_cnn", "--trials", "2", "--param", "batch_size=big"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "genrelib: error: --param 'batch_size=big': batch_size takes "
        "whole numbers (int), got 'big'; seed_cnn accepts learning_rate"
    )
    assert main(["sweep", str(tmp_path), "--model", "summary", "--trials", "2", "--param", "dropout=0.1:0.3"]) == 2
    assert "dropout does not apply to summary" in capsys.readouterr().err


def test_cli_sweep_prints_the_trials_the_test_result_and_the_command_to_train_the_best(tiny_tree, capsys):
    from genrelib.cli import main

    assert (
        main(
            [
                "sweep",
                str(tiny_tree),
                "--model",
                "seed_cnn",
                "--trials",
                "2",
                "--epochs",
                "1",
                "--jobs",
                "1",
                "--param",
                "learning_rate=1e-4:1e-3",
                "--spec-augment",
                "--no-register",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "searched: learning_rate=0.0001:0.001 (log)" in out
    assert "the best configuration trained again (run " in out and "track " in out
    command = out.split("to train it again: ", 1)[1].strip()
    assert command.startswith(f"genrelib train {tiny_tree} --model seed_cnn --epochs 1 --learning-rate ")
    assert command.endswith("--time-masks 2 --freq-masks 2")  # the options not searched travel too
    runs = mlflow.search_runs(
        filter_string="tags.`genrelib.stage` = 'sweep-trial'", search_all_experiments=True, output_format="list"
    )
    assert len(runs) == 2 and all(r.data.params["train.time_masks"] == "2" for r in runs)


def test_sweep_nests_every_trial_and_retrains_the_best_once(tiny_tree):
    cfg = TrainConfig(family="seed_cnn", epochs=2, seed=3)
    res = sweep(tiny_tree, cfg, trials=3, space=["learning_rate=1e-4:3e-3", "dropout=0.1,0.4"], n_jobs=1)
    parent = mlflow.get_run(res.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["genrelib.stage"] == "sweep"
    children = _children(res.run_id)
    trials = [r for r in children if r.data.tags.get("genrelib.stage") == "sweep-trial"]
    best_runs = [r for r in children if r.data.tags.get("genrelib.stage") == "train"]
    assert len(trials) == 3 and len(best_runs) == 1
    values = []
    for r in trials:
        assert r.info.status == "FINISHED" and r.data.tags["genrelib.trial_state"] == "complete"
        assert {"train.learning_rate", "train.dropout", "train.epochs"} <= set(r.data.params)
        assert {OBJECTIVE, "valid_track_accuracy", "epoch/valid_loss"} <= set(r.data.metrics)
        assert not any(k.startswith("test_") for k in r.data.metrics)  # the search never sees the test tracks
        values.append(r.data.metrics[OBJECTIVE])
    assert res.best_value == pytest.approx(min(values))
    assert parent.data.metrics[f"best_{OBJECTIVE}"] == pytest.approx(min(values))
    assert float(parent.data.params["best.learning_rate"]) == pytest.approx(res.best_params["learning_rate"])
    assert float(parent.data.params["best.dropout"]) == res.best_params["dropout"]
    # the best configuration, trained again: the same model as its trial (same seed and data), tested once,
    # registered like any training run
    best = best_runs[0]
    assert best.info.run_id == res.result.run_id == parent.data.tags["genrelib.best_run_id"]
    assert float(best.data.params["train.learning_rate"]) == pytest.approx(res.best_params["learning_rate"])
    assert parent.data.metrics[f"best_retrained_{OBJECTIVE}"] == pytest.approx(res.best_value, rel=1e-4)
    assert "test_track_accuracy" in best.data.metrics
    assert parent.data.metrics["best_test_track_accuracy"] == best.data.metrics["test_track_accuracy"]
    assert res.result.registered_version is not None
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(res.run_id, "reports")} == {"reports/trials.csv"}
    assert list(res.table()["state"]) == ["complete"] * 3
    cmd = res.command("DATA")
    assert cmd.startswith("genrelib train DATA --model seed_cnn --epochs 2 --seed 3 --learning-rate ")
    assert tune.describe(res)["value"]["trials complete / pruned / failed"] == "3 / 0 / 0"


def test_failed_and_pruned_trials_are_recorded_and_the_search_goes_on(tiny_tree, monkeypatch):
    import optuna

    import genrelib.training.fitting as fit_module
    import genrelib.training.trainer as trainer_module

    class PruneTrialTwo(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number == 2

    real_fit, calls = fit_module.fit, []

    def fit_failing_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom in trial 1")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(fit_module, "fit", fit_failing_second)  # the trials' fits
    monkeypatch.setattr(trainer_module, "fit", fit_failing_second)  # the best trial's retraining
    res = sweep(
        tiny_tree,
        TrainConfig(family="mel_cnn", epochs=2, seed=2),
        trials=3,
        space=["dropout=0.2,0.3"],
        pruner=PruneTrialTwo(),
        n_jobs=1,
        register=False,
    )
    assert [r["state"] for r in res.trials] == ["complete", "failed", "pruned"]
    assert res.trials[1]["error"] == "RuntimeError: boom in trial 1"
    runs = {r.data.tags["genrelib.trial"]: r for r in _children(res.run_id) if "genrelib.trial" in r.data.tags}
    assert runs["1"].info.status == "FAILED" and runs["1"].data.tags["genrelib.trial_state"] == "failed"
    assert "boom in trial 1" in runs["1"].data.tags["genrelib.error"]
    assert runs["2"].data.tags["genrelib.trial_state"] == "pruned" and runs["2"].info.status == "FINISHED"
    assert res.trials[2]["epochs"] == 1  # pruned at its first report
    assert OBJECTIVE not in runs["2"].data.metrics
    parent = mlflow.get_run(res.run_id)
    assert parent.info.status == "FINISHED"
    assert (
        parent.data.metrics["trials_complete"],
        parent.data.metrics["trials_failed"],
        parent.data.metrics["trials_pruned"],
    ) == (1, 1, 1)
    assert res.best_params == {"dropout": res.trials[0]["dropout"]}  # the only completed trial


def test_no_completed_trial_is_an_error_and_fails_the_parent(tiny_tree, monkeypatch):
    import genrelib.training.fitting as fit_module
    import genrelib.training.trainer as trainer_module

    def broken(*args, **kwargs):
        raise RuntimeError("no luck")

    monkeypatch.setattr(fit_module, "fit", broken)
    monkeypatch.setattr(trainer_module, "fit", broken)
    with pytest.raises(
        ModelError,
        match=r"none of the 2 trials completed \(2 failed, 0 pruned\); first error: "
        r"RuntimeError: no luck; see the trial runs under MLflow run",
    ):
        sweep(tiny_tree, TrainConfig(family="summary", seed=1), trials=2, n_jobs=1)
    parents = mlflow.search_runs(
        filter_string="tags.`genrelib.stage` = 'sweep'", search_all_experiments=True, output_format="list"
    )
    assert [p.info.status for p in parents] == ["FAILED"]


def test_sweep_of_the_summary_family_searches_the_logistic_regression_c(tiny_tree):
    res = sweep(tiny_tree, TrainConfig(family="summary", seed=1), trials=2, n_jobs=1, register=False)
    assert set(res.best_params) == {"logreg_c"}
    assert res.result.model.info["chosen"] == f"logreg_C{res.best_params['logreg_c']:g}"
    assert list(res.result.model.info["validation_accuracy"]) == [res.result.model.info["chosen"]]
    assert all(np.isfinite(r[OBJECTIVE]) for r in res.trials)


def test_notebook_03_with_augmentation_and_a_small_sweep(tiny_tree, tmp_path):
    from genrelib.pipeline import run_notebook

    nb = run_notebook(
        "03_train",
        parameters={
            "data_dir": str(tiny_tree),
            "epochs": 1,
            "n_jobs": 1,
            "sweep_trials": 2,
            "sweep_params": "learning_rate=1e-4:1e-3 dropout=0.2,0.3",
            "time_masks": 1,
            "mixup": 0.2,
            "aug_copies": 1,
            "pitch_shift": 1.0,
        },
        notebooks_dir=NB_DIR,
        out_dir=tmp_path / "out",
    )
    run = mlflow.get_run(nb.run_id)  # the notebook's run is the sweep's parent
    assert run.data.tags["genrelib.stage"] == "sweep" and run.info.status == "FINISHED"
    assert run.data.params["sweep.space"] == "learning_rate=0.0001:0.001 (log); dropout=0.2,0.3"
    children = _children(nb.run_id)
    assert sorted(r.data.tags["genrelib.stage"] for r in children) == ["sweep-trial", "sweep-trial", "train"]
    best = next(r for r in children if r.data.tags["genrelib.stage"] == "train")
    assert (best.data.params["train.time_masks"], best.data.params["train.aug_copies"]) == ("1", "1")
    figures = {a.path for a in mlflow.MlflowClient().list_artifacts(best.info.run_id, "figures")}
    assert "figures/augmented_examples.png" in figures
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(nb.run_id, "notebook")} == {
        "notebook/03_train.ipynb",
        "notebook/03_train.html",
    }


def test_cli_sweep_says_where_the_alias_went_and_does_not_claim_a_move_that_did_not_happen(tiny_tree, capsys):
    from genrelib.cli import main

    argv = ["sweep", str(tiny_tree), "--model", "summary", "--trials", "2", "--jobs", "1"]
    assert main(argv) == 0
    assert "@summary now points to version 1 (no version held it)" in capsys.readouterr().out
    # the holder now claims a score no retrained model can reach: the alias must stay, and the output say so
    mlflow.MlflowClient().set_model_version_tag("genre-classifier", "1", "test_track_accuracy", "1.01")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "registered as genre-classifier/2; model URI " in out
    assert "@summary stays on version 1 (test accuracy 1.01 > " in out
    assert "(alias @summary)" not in out
    assert str(mlflow.MlflowClient().get_model_version_by_alias("genre-classifier", "summary").version) == "1"
