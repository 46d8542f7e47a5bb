"""The six notebooks: committed clean and parameterized; run end to end by papermill on tiny data."""

import json
from pathlib import Path

import mlflow
import nbformat
import papermill as pm
import pytest

from genrelib import tracking
from genrelib.datasets import demo
from genrelib.pipeline import (
    KERNEL,
    NOTEBOOKS,
    NotebookError,
    kernel_metadata,
    normalize_notebook,
    run_all,
    run_notebook,
)

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebooks_are_clean_and_parameterized(name):
    nb = json.loads((NB_DIR / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    # papermill reads every line (a comment like `("" = none)` made it skip the parameter, silently)
    assigned = [line.split(":")[0] for line in "".join(params[0]["source"]).splitlines() if line.strip()]
    assert list(pm.inspect_notebook(str(NB_DIR / f"{name}.ipynb"))) == assigned
    assert nb["cells"][0]["cell_type"] == "markdown"
    for c in code:
        src = "".join(c["source"])
        assert "def " not in src and "class " not in src and "try:" not in src and "!pip" not in src
        assert "/work/" not in src and "/home/" not in src
    assert nb["metadata"]["kernelspec"]["name"] == "genrelib"


@pytest.fixture(scope="module")
def kernel_meta():
    """What JupyterLab writes into a notebook it opens on the genrelib kernel (the kernel started and asked)."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        pytest.skip(f"the {KERNEL} kernel is not installed (make env installs it)")
    return kernel_metadata()


def test_committed_notebooks_are_what_jupyterlab_writes_on_open(kernel_meta):
    # issue 10 item 10: JupyterLab marked every notebook modified as soon as it opened, because it wrote the
    # kernel's full language_info over the committed {"name": "python"} (seen in headless Chromium: the dot on the
    # tab, and the saved file's diff); any difference, the Python version included, does it
    assert kernel_meta["kernelspec"] == {"display_name": "Python (genrelib)", "language": "python", "name": "genrelib"}
    fix = "run .venv/bin/python scripts/normalize_notebooks.py and commit the notebooks"
    for name in NOTEBOOKS:
        path = NB_DIR / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert (nb.nbformat, nb.nbformat_minor) >= (4, 5) and all(c.get("id") for c in nb.cells), f"{name}: {fix}"
        for key in ("kernelspec", "language_info"):
            # the Python patch version is the machine's, not the project's: a kernel on another Python (3.12.x,
            # 3.11) writes its own and JupyterLab then marks the notebooks modified there (README says so);
            # every other field must be exactly what the kernel writes
            got, want = dict(nb.metadata.get(key) or {}), dict(kernel_meta[key])
            if key == "language_info":
                got.pop("version", None), want.pop("version", None)
            assert got == want, (
                f"{name}.ipynb's {key} is {nb.metadata.get(key)}, the {KERNEL} kernel writes {kernel_meta[key]}: "
                f"JupyterLab will mark it modified on open; {fix}"
            )
        meta = dict(
            kernel_meta,
            language_info=dict(kernel_meta["language_info"], version=nb.metadata["language_info"]["version"]),
        )
        assert not normalize_notebook(path, meta, write=False), f"{name}: {fix}"  # outputs, counts, format


def test_normalize_notebook_restores_the_committed_form(kernel_meta, tmp_path):
    committed = (NB_DIR / "01_eda.ipynb").read_text()
    nb = nbformat.reads(committed, as_version=4)
    nb.metadata["language_info"] = {"name": "python"}
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    code.execution_count = 3
    path = tmp_path / "01_eda.ipynb"
    nbformat.write(nb, path)
    assert normalize_notebook(path, kernel_meta, write=False) and path.read_text() != committed
    assert normalize_notebook(path, kernel_meta)
    assert path.read_text() == committed
    assert not normalize_notebook(path, kernel_meta)


def test_features_notebook_extracts_the_kind_its_family_trains_on():
    from genrelib import features
    from genrelib.errors import ModelError
    from genrelib.training.config import feature_config_for

    declared = {k: v["default"] for k, v in pm.inspect_notebook(str(NB_DIR / "02_features.ipynb")).items()}
    assert declared["family"] == pm.inspect_notebook(str(NB_DIR / "03_train.ipynb"))["family"]["default"]
    assert declared["kind"] == '""'  # "" asks for the family's kind
    assert [feature_config_for(f, kind="").kind for f in ("seed_cnn", "mel_cnn", "crnn", "summary")] == [
        "mfcc",
        "mel",
        "mel",
        "summary",
    ]
    assert feature_config_for("seed_cnn", kind="mel", n_mels=64) == features.FeatureConfig(kind="mel", n_mels=64)
    with pytest.raises(ModelError, match="unknown model 'resnet'"):
        feature_config_for("resnet", kind="mel")


def test_make_run_all_pipeline_on_tiny_data(tmp_path, capfd):
    data, personal = tmp_path / "genres", tmp_path / "personal"
    demo.make_demo(data, per_genre=4, seconds=7.0, seed=3, genres=("classical", "metal", "reggae"), n_jobs=1)
    demo.make_personal(personal, n=2, seed=3, min_seconds=35, max_seconds=40, genres=("metal", "reggae"), n_jobs=1)
    out = tmp_path / "out"
    parent, runs = run_all(
        data_dir=data,
        personal_dir=personal,
        parameters={"epochs": 1, "n_jobs": 1, "family": "crnn", "scheduler": "local:1"},
        notebooks_dir=NB_DIR,
        out_dir=out,
    )
    assert [r.name for r in runs] == list(NOTEBOOKS)
    client = mlflow.MlflowClient()
    assert client.get_run(parent).info.status == "FINISHED"
    # runs a user can tell apart (issue 10 #4): named after data and family, notebooks as their source, and the
    # parent holds the headline numbers of its children
    # every message a user sees is genrelib's (issue 10 #7): no kernel log lines, no registry notices in 03's HTML
    err = capfd.readouterr().err
    assert "IPKernelApp" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    nb03 = nbformat.read(runs[2].output, as_version=4)
    assert not [
        o
        for c in nb03.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("name") == "stderr" and "egistered model" in o.get("text", "")
    ]
    parent_run = client.get_run(parent)
    assert parent_run.info.run_name == "run-all genres (synthetic demo) crnn"
    assert {"test_track_accuracy", "personal_song_accuracy"} <= set(parent_run.data.metrics)
    for r in runs:
        tags = client.get_run(r.run_id).data.tags
        assert (
            tags["mlflow.source.name"].endswith(f"notebooks/{r.name}.ipynb")
            and tags["mlflow.source.type"] == "NOTEBOOK"
        )
    for r in runs:
        nb = nbformat.read(r.output, as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors, (r.name, errors)
        # no cell shows a quoted string (a bare run id, "(no augmentation: ...)"): such lines are printed, and the
        # last cell says which run finished (issue 21 #21)
        shown = [
            o["data"]["text/plain"]
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.outputs
            if o.output_type == "execute_result" and "text/plain" in o["data"]
        ]
        assert not [t for t in shown if t[:1] in "'\""], (r.name, shown)
        if nb.cells[-1].source == "tracking.finish_run()":
            assert nb.cells[-1].outputs[0]["text"].startswith(f"MLflow run {r.name} finished: run id {r.run_id}")
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
    for out in train_run.outputs.model_outputs:  # the Models tab's "Logged from": the notebook (issue 21 #5)
        assert client.get_logged_model(out.model_id).tags["mlflow.source.name"].endswith("notebooks/03_train.ipynb")
    version = client.get_model_version("genre-classifier", train_run.data.tags["genrelib.registered_version"])
    assert version.tags["source"] == "notebook 03_train" and version.tags["epochs"] == "1"  # issue 21 #8
    features_run = client.get_run(runs[1].run_id).data.params
    assert features_run["features.kind"] == "mel"  # 02 extracted what 03 trains crnn on, not its mfcc default
    assert {k: v for k, v in features_run.items() if k.startswith("features.")} == {
        k: v for k, v in train_run.data.params.items() if k.startswith("features.")
    }
    assert features_run["map_method"] == "pca"
    contexts = [
        t.value
        for d in client.get_run(runs[1].run_id).inputs.dataset_inputs
        for t in d.tags
        if t.key.endswith("context")
    ]
    assert sorted(contexts) == ["test", "training", "validation"]  # 02 records each part of its split
    # -p scheduler local:1 reached the notebooks: an extraction on a cluster has its workers write a store under
    # the cache folder (then read back and cached per file as usual): 02's of every track; 03 and 04 (the test
    # part) found every track in the cache, so nothing else went to the cluster
    assert len(list((tmp_path / "cache" / "store").glob("mel-*/manifest.json"))) == 1
    assert {a.path for a in client.list_artifacts(runs[1].run_id, "figures")} == {"figures/feature_map.png"}
    evaluated = client.get_run(runs[3].run_id)
    # 04 evaluated the test part: its numbers have the names of the training run's (issue 21 #9)
    assert evaluated.data.metrics["test_track_accuracy"] == train_run.data.metrics["test_track_accuracy"]
    # 04 took exactly the version 03 registered (the family alias may stay on a better model of other data)
    assert evaluated.data.params["model"] == f"genre-classifier/{train_run.data.tags['genrelib.registered_version']}"
    eda = {a.path for a in client.list_artifacts(runs[0].run_id, "figures")}
    assert {"figures/class_distribution.png", "figures/mel_spectrogram.png", "figures/mfcc.png"} <= eda
    pers = client.get_run(runs[4].run_id)
    assert "personal_song_accuracy" in pers.data.metrics and "personal_window_accuracy" in pers.data.metrics
    # 06 compares the data set's runs: here the one 03 trained
    compared = client.get_run(runs[5].run_id)
    assert {a.path for a in client.list_artifacts(runs[5].run_id, "figures")} == {
        "figures/leaderboard.png",
        "figures/confusions.png",
    }
    assert "reports/leaderboard.csv" in {a.path for a in client.list_artifacts(runs[5].run_id, "reports")}
    assert compared.data.metrics["runs_compared"] == 1 and compared.data.tags["genrelib.best_run_id"] == runs[2].run_id
    assert compared.data.metrics["best_test_track_accuracy"] == train_run.data.metrics["test_track_accuracy"]


def test_run_all_with_the_musicnn_family(tmp_path, tiny_tree, monkeypatch):
    """-p family musicnn: 02 extracts musicnn features, 03 trains the musicnn family, 04 evaluates its model;
    -p store: 03 trains and 04 evaluates from the sharded store. (01, 05 and 06 take the model as any other family's,
    which the crnn run-all test covers, and are left out to keep the suite short.)"""
    personal = tmp_path / "personal"
    demo.make_personal(personal, n=1, seed=4, min_seconds=32, max_seconds=34, genres=("metal",), n_jobs=1)
    monkeypatch.chdir(tmp_path)
    parent, runs = run_all(
        data_dir=tiny_tree,
        personal_dir=personal,
        notebooks=NOTEBOOKS[1:4],
        parameters={
            "n_jobs": 1,
            "family": "musicnn",
            "map_method": "tsne",
            "store": "store",
        },  # relative to where the user stands, not notebooks/
        notebooks_dir=NB_DIR,
        out_dir=tmp_path / "out",
    )
    client = mlflow.MlflowClient()
    assert client.get_run(parent).info.status == "FINISHED"
    assert [r.name for r in runs] == list(NOTEBOOKS[1:4])
    for r in runs:
        nb = nbformat.read(r.output, as_version=4)
        assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert client.get_run(r.run_id).info.status == "FINISHED", r.name
    features_run, train_run, evaluated = (client.get_run(r.run_id).data for r in runs)
    assert features_run.params["features.kind"] == "musicnn" and features_run.params["map_method"] == "tsne"
    assert {a.path for a in client.list_artifacts(runs[0].run_id, "figures")} == {"figures/feature_map.png"}
    assert train_run.params["train.family"] == "musicnn" and train_run.params["features.kind"] == "musicnn"
    assert "test_track_accuracy" in train_run.metrics
    registered = f"genre-classifier/{train_run.tags['genrelib.registered_version']}"  # the version 03 registered
    assert evaluated.params["model"] == registered and "test_track_accuracy" in evaluated.metrics
    # 03's store (every track) and 04's (the test part): each a finished store of musicnn rows
    assert len(list((tmp_path / "store").glob("musicnn-*/manifest.json"))) == 2


def test_failing_cell_fails_the_run(tmp_path):
    parent = tracking.create_parent_run("failing")
    (tmp_path / "empty").mkdir()  # (a missing folder is refused before the notebook starts)
    with pytest.raises(NotebookError, match=r"01_eda: cell \d+ failed: DatasetError: "):
        run_notebook(
            "01_eda",
            parameters={"data_dir": str(tmp_path / "empty")},
            notebooks_dir=NB_DIR,
            out_dir=tmp_path / "out",
            parent_run_id=parent,
        )
    assert (tmp_path / "out" / "01_eda.ipynb").exists()  # kept, with the failed cell marked
    child = tracking.find_run("genrelib.notebook", "01_eda", parent_run_id=parent)
    _assert_failed_with_notebook(child, "01_eda")


def _assert_failed_with_notebook(run_id, name):
    client = mlflow.MlflowClient()
    assert run_id is not None, f"no MLflow run for {name}"
    assert client.get_run(run_id).info.status == "FAILED", name
    names = {a.path for a in client.list_artifacts(run_id, "notebook")}
    assert {f"notebook/{name}.ipynb", f"notebook/{name}.html"} <= names


def _late_failure_notebook(folder: Path) -> Path:
    """A notebook that starts and ends its own run, then fails in a later cell."""
    folder.mkdir(parents=True, exist_ok=True)
    params = nbformat.v4.new_code_cell('tracking_uri: str = ""\nparent_run_id: str = ""')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# late failure"),
            params,
            nbformat.v4.new_code_cell("from genrelib import tracking"),
            nbformat.v4.new_code_cell(
                'tracking.begin_run("late_failure", parent_run_id=parent_run_id, uri=tracking_uri,\n'
                '                   tags={"genrelib.notebook": "late_failure"})\n'
                "tracking.finish_run()"
            ),
            nbformat.v4.new_code_cell('raise RuntimeError("after the run ended")'),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, folder / "late_failure.ipynb")
    return folder


def test_run_all_fails_a_notebook_run_that_already_ended(tmp_path):
    nb_dir = _late_failure_notebook(tmp_path / "nbs")
    with pytest.raises(NotebookError, match=r"late_failure: cell \d+ failed: RuntimeError: after the run ended"):
        run_all(
            data_dir=tmp_path,
            personal_dir=tmp_path,
            notebooks=("late_failure",),
            notebooks_dir=nb_dir,
            out_dir=tmp_path / "out",
        )
    client = mlflow.MlflowClient()
    parents = client.search_runs([tracking.setup()], "tags.`genrelib.stage` = 'run-all'")
    assert [p.info.status for p in parents] == ["FAILED"]
    child = tracking.find_run("genrelib.notebook", "late_failure", parent_run_id=parents[0].info.run_id)
    _assert_failed_with_notebook(child, "late_failure")


def test_notebook_failing_before_its_run_gets_a_failed_run(tmp_path, tiny_tree):
    # (a bad parameter value is refused before the notebook starts: here a cell before begin_run raises)
    folder = tmp_path / "nbs"
    folder.mkdir()
    params = nbformat.v4.new_code_cell('tracking_uri: str = ""\nparent_run_id: str = ""')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(
        cells=[params, nbformat.v4.new_code_cell('raise ValueError("before the run")')],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, folder / "early_failure.ipynb")
    parent = tracking.create_parent_run("failing")
    with pytest.raises(NotebookError, match=r"early_failure: cell \d+ failed: ValueError: before the run"):
        run_notebook("early_failure", notebooks_dir=folder, out_dir=tmp_path / "out", parent_run_id=parent)
    _assert_failed_with_notebook(
        tracking.find_run("genrelib.notebook", "early_failure", parent_run_id=parent), "early_failure"
    )


def test_failing_notebook_alone_fails_its_own_run(tmp_path, capsys):
    from genrelib.cli import main

    with tracking.start_run("earlier", tags={"genrelib.notebook": "01_eda"}) as earlier:
        pass  # an earlier, successful run of the same notebook must stay FINISHED
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "notebook",
                "01_eda",
                "--data",
                str(tmp_path / "empty"),  # (a missing folder is refused before the notebook starts)
                "--notebooks-dir",
                str(NB_DIR),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "01_eda: cell" in err and "DatasetError" in err
    run_id = tracking.find_run("genrelib.notebook", "01_eda")
    assert run_id != earlier.info.run_id
    _assert_failed_with_notebook(run_id, "01_eda")
    assert "mlflow.parentRunId" not in mlflow.get_run(run_id).data.tags
    assert mlflow.get_run(earlier.info.run_id).info.status == "FINISHED"


def test_command_line_parameter_reaches_the_run(tiny_tree, tmp_path, capsys):
    from genrelib.cli import main

    assert (
        main(
            [
                "notebook",
                "02_features",
                "--data",
                str(tiny_tree),
                "-p",
                "n_mfcc",
                "13",
                "-p",
                "n_jobs",
                "1",
                "--notebooks-dir",
                str(NB_DIR),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    run_id = out.split("MLflow run ")[-1].strip()
    run = mlflow.get_run(run_id)
    assert run.data.params["features.n_mfcc"] == "13"  # given as "-p n_mfcc 13", parsed as an int
    assert run.data.tags["genrelib.notebook"] == "02_features"


def test_notebook_html_is_written_without_nbconvert_notices(tmp_path, caplog):
    import base64
    import logging

    from genrelib.pipeline.run import _write_html

    png = base64.b64encode(bytes.fromhex("89504e470d0a1a0a") + b"\0" * 32).decode()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("fig") for _ in range(3)]  # three cells, three ids
    for cell in nb.cells:
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]
    path = tmp_path / "figures.ipynb"
    nbformat.write(nb, path)
    with caplog.at_level(logging.DEBUG):
        html = _write_html(path)
    assert html.exists() and "data:image/png;base64" in html.read_text()
    assert not [r for r in caplog.records if "Alternative text" in r.getMessage()]
