"""The model registry as users rely on it: versions carry their record; aliases move only to better models."""

import shutil

import mlflow

from genrelib import datasets
from genrelib.cli import main


def _alias_line(out: str) -> str:
    return [line for line in out.splitlines() if line.startswith("@summary")][0]


def test_family_alias_moves_only_to_a_version_at_least_as_good_on_the_same_data(tiny_tree, tmp_path, capsys):
    # issue 10 #2: a 2-epoch demo run took over genre-classifier@seed-cnn from a model trained on real audio
    args = ["train", str(tiny_tree), "--model", "summary", "--seed", "1"]
    assert main(args) == 0
    assert _alias_line(capsys.readouterr().out) == "@summary now points to version 1 (no version held it)"
    client = mlflow.MlflowClient()
    v1 = client.get_model_version("genre-classifier", "1")
    digest = datasets.scan(tiny_tree).manifest_hash()
    assert v1.tags["family"] == "summary" and v1.tags["dataset_digest"] == digest
    assert v1.tags["dataset_name"] == "genres (synthetic demo)" and v1.tags["split"] == "random"
    acc = v1.tags["test_track_accuracy"]
    assert v1.description.startswith(
        f"summary trained on genres (synthetic demo) (digest {digest}, split random); test per-track accuracy {acc}"
    )
    # where it came from (issue 21 #8): the command, the run's name; the score in four decimals (sorts as text)
    command = f"genrelib train {tiny_tree} --model summary --seed 1"
    assert v1.tags["source"] == command and v1.description.endswith(f"; from {command}")
    assert v1.tags["run_name"] == "train-summary · genres (synthetic demo) · seed 1"
    assert len(acc) == 6 and float(acc) == round(float(acc), 4)
    assert mlflow.get_run(v1.run_id).data.tags["genrelib.command"] == command
    # the same data and seed: as good, so the alias moves
    assert main(args) == 0
    assert _alias_line(capsys.readouterr().out) == (
        f"@summary now points to version 2 (test accuracy {acc} >= {acc} on the same data)"
    )
    # other data never takes the alias by itself ...
    other = tmp_path / "other"
    shutil.copytree(tiny_tree, other)
    next((other / "metal").glob("*.wav")).unlink()
    assert main(["train", str(other), "--model", "summary", "--seed", "1"]) == 0
    line = _alias_line(capsys.readouterr().out)
    assert line == (
        "@summary stays on version 2 (trained on genres (synthetic demo); this version on other data, "
        "other (synthetic demo)); use --promote to move it"
    )
    assert str(client.get_model_version_by_alias("genre-classifier", "summary").version) == "2"
    # ... unless asked
    assert main(["train", str(other), "--model", "summary", "--seed", "1", "--promote"]) == 0
    assert _alias_line(capsys.readouterr().out) == "@summary now points to version 4 (asked for (--promote))"
    assert str(client.get_model_version_by_alias("genre-classifier", "summary").version) == "4"


def test_the_experiment_opens_on_its_runs_in_the_mlflow_ui():
    # issue 10 #5: MLflow 3.17's UI opened genrelib's experiment on an empty GenAI traces page; the printed link
    # opens the Runs page (checked in headless Chromium: the bare link shows the GenAI overview, this one the runs)
    from genrelib import tracking

    exp_id = tracking.setup()
    exp = mlflow.get_experiment(exp_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert tracking.ui_url(port=5001) == f"http://127.0.0.1:5001/#/experiments/{exp_id}?workflowType=machine_learning"
    # an experiment made before the tag existed gets it on the next setup
    mlflow.MlflowClient().delete_experiment_tag(exp_id, "mlflow.experimentKind")
    tracking.setup()
    assert mlflow.get_experiment(exp_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_an_unknown_model_reference_lists_what_the_registry_holds(tiny_tree, capsys):
    # issue 10 #10: an unknown alias error should list the aliases that exist
    import pytest

    from genrelib.errors import ModelError
    from genrelib.inference.predict import load_model

    with pytest.raises(ModelError, match="nothing is registered as genre-classifier yet"):
        load_model("genre-classifier@crnn")
    assert main(["train", str(tiny_tree), "--model", "summary", "--seed", "1"]) == 0
    capsys.readouterr()
    with pytest.raises(ModelError, match=r"genre-classifier has aliases @summary \(version 1\) and versions 1-1"):
        load_model("genre-classifier@crnn")
