"""The five notebooks: committed clean and parameterized; run end to end by papermill on tiny data."""

import json
from pathlib import Path

import mlflow
import nbformat
import pytest

from genrelib import demo, tracking
from genrelib.pipeline import NOTEBOOKS, NotebookError, run_all, run_notebook

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebooks_are_clean_and_parameterized(name):
    nb = json.loads((NB_DIR / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    assert nb["cells"][0]["cell_type"] == "markdown"
    for c in code:
        src = "".join(c["source"])
        assert "def " not in src and "class " not in src and "try:" not in src and "!pip" not in src
        assert "/work/" not in src and "/home/" not in src
    assert nb["metadata"]["kernelspec"]["name"] == "genrelib"


def test_make_run_all_pipeline_on_tiny_data(tmp_path):
    data, personal = tmp_path / "genres", tmp_path / "personal"
    demo.make_demo(data, per_genre=4, seconds=7.0, seed=3, genres=("classical", "metal", "reggae"), n_jobs=1)
    demo.make_personal(personal, n=2, seed=3, min_seconds=35, max_seconds=40, genres=("metal", "reggae"), n_jobs=1)
    out = tmp_path / "out"
    parent, runs = run_all(data_dir=data, personal_dir=personal,
                           parameters={"epochs": 1, "n_jobs": 1, "family": "crnn"},
                           notebooks_dir=NB_DIR, out_dir=out)
    assert [r.name for r in runs] == list(NOTEBOOKS)
    client = mlflow.MlflowClient()
    assert client.get_run(parent).info.status == "FINISHED"
    for r in runs:
        nb = nbformat.read(r.output, as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors, (r.name, errors)
        assert r.html.exists() and r.html.stat().st_size > 1000
        run = client.get_run(r.run_id)
        assert run.data.tags["mlflow.parentRunId"] == parent, r.name
        assert run.info.status == "FINISHED", r.name
        names = {a.path for a in client.list_artifacts(r.run_id, "notebook")}
        assert {f"notebook/{r.name}.ipynb", f"notebook/{r.name}.html"} <= names
    train_run = client.get_run(runs[2].run_id)
    assert train_run.data.params["train.epochs"] == "1"  # the command-line parameter reached the run
    assert "test_track_accuracy" in train_run.data.metrics
    assert train_run.data.params["train.family"] == "crnn"
    evaluated = client.get_run(runs[3].run_id)
    assert "eval_track_accuracy" in evaluated.data.metrics
    assert evaluated.data.params["model"] == "genre-classifier@crnn"  # 04 took the model 03 trained
    eda = {a.path for a in client.list_artifacts(runs[0].run_id, "figures")}
    assert {"figures/class_distribution.png", "figures/mel_spectrogram.png", "figures/mfcc.png"} <= eda
    pers = client.get_run(runs[4].run_id)
    assert "personal_song_accuracy" in pers.data.metrics and "personal_window_accuracy" in pers.data.metrics


def test_failing_cell_fails_the_run(tmp_path):
    parent = tracking.create_parent_run("failing")
    with pytest.raises(NotebookError, match=r"01_eda: cell \d+ failed: DatasetError: data folder .* does not exist"):
        run_notebook("01_eda", parameters={"data_dir": str(tmp_path / "missing")}, notebooks_dir=NB_DIR,
                     out_dir=tmp_path / "out", parent_run_id=parent)
    assert (tmp_path / "out" / "01_eda.ipynb").exists()  # kept, with the failed cell marked


def test_command_line_parameter_reaches_the_run(tiny_tree, tmp_path, capsys):
    from genrelib.cli import main

    assert main(["notebook", "02_features", "--data", str(tiny_tree), "-p", "n_mfcc", "13", "-p", "n_jobs", "1",
                 "--notebooks-dir", str(NB_DIR), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    run_id = out.split("MLflow run ")[-1].strip()
    run = mlflow.get_run(run_id)
    assert run.data.params["features.n_mfcc"] == "13"  # given as "-p n_mfcc 13", parsed as an int
    assert run.data.tags["genrelib.notebook"] == "02_features"
