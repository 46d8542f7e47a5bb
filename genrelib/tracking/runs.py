"""Runs and what they log: start and end (nested under a parent), params, metrics, figures, tables, datasets,
notebooks; finding runs again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import mlflow
import mlflow.data
import pandas as pd

from genrelib import __version__, jsonio
from genrelib.tracking.backend import setup
from genrelib.tracking.orphans import machine_id, process_start

logger = logging.getLogger(__name__)

#: The genrelib package folder (its git commit is logged with every run).
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """The git commit of the genrelib checkout, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


#: The command line of the genrelib CLI process, tagged on its runs (``genrelib.command``); None in a library call.
_command: str | None = None


def set_command(command: str | None) -> None:
    """Tag the runs this process starts with the command that started them (the CLI sets it; None to stop)."""
    global _command
    _command = command


def _standard_tags(tags: dict | None) -> dict:
    # pid, its start time and the host let reap_orphan_runs tell a run whose process was killed (SIGKILL, power
    # loss) from one still working; the start time tells a reused pid from the run's own process. On a shared
    # tracking server the machine id keeps two machines of the same host name from reaping each other's runs.
    pid = os.getpid()
    machine = {"genrelib.machine_id": machine_id()} if machine_id() else {}
    return {
        "genrelib.version": __version__,
        "genrelib.git_commit": git_commit(),
        "genrelib.pid": str(pid),
        "genrelib.pid_start": process_start(pid),
        "genrelib.host": socket.gethostname(),
        **machine,
        **({"genrelib.command": _command[:5000]} if _command else {}),
        **(tags or {}),
    }


@contextlib.contextmanager
def start_run(
    name: str,
    *,
    params: dict | None = None,
    tags: dict | None = None,
    parent_run_id: str | None = None,
    uri: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Start an MLflow run with genrelib's standard tags (version, git commit) and the given params.

    ``parent_run_id`` nests the run under a parent (it must still be running), as ``make run-all`` does.
    The run ends when the block ends: FINISHED, FAILED if it raised, KILLED if it was interrupted
    (KeyboardInterrupt: Ctrl-C, or SIGTERM, which the CLI turns into one).
    """
    begin_run(name, tags=tags, parent_run_id=parent_run_id, uri=uri)
    with mlflow.active_run() as run:
        try:
            if params:
                log_params(params)
            yield run
        except KeyboardInterrupt:
            # MLflow's own context manager would say FAILED; the run did not fail, it was stopped.
            active = mlflow.active_run()
            if active is not None and active.info.run_id == run.info.run_id:
                mlflow.end_run("KILLED")
            raise


def begin_run(
    name: str,
    *,
    params: dict | None = None,
    tags: dict | None = None,
    parent_run_id: str | None = None,
    uri: str | None = None,
) -> str:
    """Start a run that stays active across notebook cells (end it with :func:`finish_run`); returns its id."""
    setup(uri)
    active = mlflow.active_run()
    # A child of the run active in this process (cross-validation folds) is a nested run in MLflow's terms.
    nested = bool(parent_run_id) and active is not None and active.info.run_id == parent_run_id
    run = mlflow.start_run(run_name=name, parent_run_id=parent_run_id or None, tags=_standard_tags(tags), nested=nested)
    if params:
        log_params(params)
    return run.info.run_id


def finish_run() -> None:
    """End the run started by :func:`begin_run`, and say which run it was (one printed line: the last output of a
    notebook)."""
    run = mlflow.active_run()
    mlflow.end_run()
    if run is not None:
        print(f"MLflow run {run.info.run_name} finished: run id {run.info.run_id}")


def create_parent_run(
    name: str, *, uri: str | None = None, tags: dict | None = None, parent_run_id: str | None = None
) -> str:
    """Create a run that stays RUNNING across processes (for notebooks run by papermill); returns its id.

    ``parent_run_id`` nests it under another run.
    """
    exp_id = setup(uri)
    client = mlflow.MlflowClient()
    tags = _standard_tags(tags) | ({"mlflow.parentRunId": parent_run_id} if parent_run_id else {})
    return client.create_run(exp_id, tags=tags, run_name=name).info.run_id


def log_params_to(run_id: str, params: dict) -> None:
    """Log parameters to a run that is not the active one."""
    from mlflow.entities import Param

    mlflow.MlflowClient().log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def end_run(run_id: str, status: str = "FINISHED", *, uri: str | None = None) -> None:
    """Mark a run created by :func:`create_parent_run` as finished (or FAILED)."""
    setup(uri)
    mlflow.MlflowClient().set_terminated(run_id, status=status)


def log_params(params: dict) -> None:
    """Log parameters (values turned to strings; None as "None")."""
    mlflow.log_params({k: ("None" if v is None else v) for k, v in params.items()})


def set_tags(tags: dict) -> None:
    """Set tags on the active run (values turned to strings)."""
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_metrics(values: dict, step: int | None = None) -> None:
    """Log numeric metrics."""
    mlflow.log_metrics({k: float(v) for k, v in values.items()}, step=step)


def log_figure(fig, path: str) -> None:
    """Log a matplotlib figure as an image artifact."""
    mlflow.log_figure(fig, path)


def log_image(image, path: str) -> None:
    """Log a PIL image."""
    mlflow.log_image(image, path)


def log_dict(d: dict, path: str) -> None:
    """Log a dict as JSON."""
    mlflow.log_text(jsonio.dumps(d, indent=2), path)


def log_text(text: str, path: str) -> None:
    """Log text."""
    mlflow.log_text(text, path)


def log_table(df: pd.DataFrame, path: str, *, index: bool = False) -> None:
    """Log a DataFrame as CSV (with its index when ``index``)."""
    mlflow.log_text(df.to_csv(index=index), path)


def log_dataset(
    table: pd.DataFrame, *, name: str, source: str, digest: str, context: str = "training", tags: dict | None = None
) -> None:
    """Record the active run's data as an MLflow dataset input (the UI's Dataset column; runs filter by it).

    Parameters
    ----------
    table : DataFrame
        One row per track (e.g. track id, genre, part).
    name : str
        What the data is called (e.g. ``genres_original``; ``demo (synthetic)`` for the demo music).
    source : str
        Where it is (the data folder).
    digest : str
        The data's manifest hash (changes whenever a file changes).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)  # "hint: inferring schema" notices
        ds = mlflow.data.from_pandas(table, source=source, name=name, digest=digest)
        mlflow.log_input(ds, context=context, tags=tags)


#: The MLflow dataset context of each part of a split; a folder scored whole is "evaluation".
PART_CONTEXTS = {"train": "training", "valid": "validation", "test": "test"}


def log_data(ds, *, name: str, split: dict[str, str] | None = None, context: str = "evaluation") -> None:
    """Record a run's data as MLflow dataset inputs: each part of ``split`` its own input and context.

    Parameters
    ----------
    ds : genrelib.datasets.Dataset
        The data (anything with ``root``, ``tracks``, ``subset``, ``table`` and ``manifest_hash``).
    name : str
        What the data is called (:func:`genrelib.datasets.demo.dataset_name`).
    split : dict, optional
        ``{track_id: part}``: one input per part, context ``training``, ``validation`` or ``test``
        (:data:`PART_CONTEXTS`), digest the manifest hash of that part's tracks (so the test tracks of a training
        run and an evaluation of the same test tracks have one digest). Tracks in no part are not recorded.
    context : str
        Without ``split``: the context of the whole (``evaluation``; ``test`` for the test part of a model).

    The source is the folder's absolute path; the input's tags carry the part and the whole folder's manifest hash.
    """
    source = str(Path(ds.root).resolve())
    whole = ds.manifest_hash()
    if split is None:
        log_dataset(ds.table(), name=name, source=source, digest=whole, context=context)
        return
    for part, ctx in PART_CONTEXTS.items():
        part_ds = ds.subset([t for t in ds.tracks if split.get(t.track_id) == part])
        if part_ds.tracks:
            log_dataset(
                part_ds.table(),
                name=name,
                source=source,
                digest=part_ds.manifest_hash(),
                context=ctx,
                tags={"genrelib.part": part, "genrelib.manifest_hash": whole},
            )


def keras_epoch_logger():
    """A Keras callback that logs every epoch's loss and accuracy (training and validation) to MLflow.

    The curves are named ``epoch/train_loss``, ``epoch/train_accuracy``, ``epoch/valid_loss``,
    ``epoch/valid_accuracy`` (:func:`epoch_metric`), never plain ``accuracy``: the last epoch's training accuracy
    is not the model's result, and the UI groups the ``epoch/`` section apart from the headline
    ``test_track_accuracy``. Epoch ``k`` (1-based) is logged at step ``k``. Step 0 is left to the run's final
    numbers (test metrics, track counts): MLflow links the metrics of step 0 to a model logged in the run, so the Models tab shows what
    the model scores on its test tracks, not its first epoch.
    """
    import keras

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            mlflow.log_metrics({epoch_metric(k): float(v) for k, v in (logs or {}).items()}, step=epoch + 1)

    return EpochLogger()


def epoch_metric(key: str) -> str:
    """The MLflow name of a Keras epoch metric: ``loss`` -> ``epoch/train_loss``, ``val_accuracy`` ->
    ``epoch/valid_accuracy`` (the part names of the split, as in ``valid_track_accuracy``)."""
    if key.startswith("val_"):
        return f"epoch/valid_{key[4:]}"
    if key in ("loss", "accuracy") or key.endswith(("_loss", "_accuracy")):
        return f"epoch/train_{key}"
    return f"epoch/{key}"  # learning_rate and the like


def run_metric(run_id: str, key: str) -> float | None:
    """The (latest) value of metric ``key`` of a run, or None."""
    setup()
    return mlflow.MlflowClient().get_run(run_id).data.metrics.get(key)


def run_tag(run_id: str, key: str) -> str | None:
    """The value of tag ``key`` of a run, or None."""
    setup()
    return mlflow.MlflowClient().get_run(run_id).data.tags.get(key)


def find_run(
    tag: str, value: str, *, parent_run_id: str | None = None, started_after: float | None = None
) -> str | None:
    """Id of the newest run with ``tags.<tag> = value`` (under ``parent_run_id`` if given; started at or after
    ``started_after``, seconds since the epoch, if given), or None."""
    setup()
    flt = f"tags.`{tag}` = '{value}'"
    if parent_run_id:
        flt += f" and tags.mlflow.parentRunId = '{parent_run_id}'"
    if started_after is not None:
        flt += f" and attributes.start_time >= {int(started_after * 1000)}"
    runs = mlflow.search_runs(
        filter_string=flt,
        search_all_experiments=True,
        order_by=["start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


def log_notebook(
    run_id: str, notebook: str | Path, html: str | Path | None = None, *, source: str | Path | None = None
) -> None:
    """Attach an executed notebook (and its HTML rendering) to a run; ``source`` (the notebook that was run)
    becomes the run's Source in the UI, instead of the kernel's ``ipykernel_launcher.py``, and the "Logged from" of
    the models logged by the run and its child runs (a sweep's retrained best)."""
    setup()
    client = mlflow.MlflowClient()
    client.log_artifact(run_id, str(notebook), "notebook")
    if html is not None:
        client.log_artifact(run_id, str(html), "notebook")
    if source is not None:
        tags = {"mlflow.source.name": str(source), "mlflow.source.type": "NOTEBOOK"}
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
        run = client.get_run(run_id)
        children = client.search_runs(
            [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'", max_results=1000
        )
        for r in [run, *children]:
            for output in r.outputs.model_outputs if r.outputs else []:
                client.set_logged_model_tags(output.model_id, tags)


def copy_metrics(src_run_id: str, dst_run_id: str, keys: tuple[str, ...]) -> dict[str, float]:
    """Copy the latest values of ``keys`` (those the source run has) to another run; returns what was copied."""
    from mlflow.entities import Metric

    setup()
    client = mlflow.MlflowClient()
    found = {k: v for k, v in client.get_run(src_run_id).data.metrics.items() if k in keys}
    now = int(time.time() * 1000)
    if found:
        client.log_batch(dst_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in found.items()])
    return found


def fail_running_children(parent_run_id: str) -> None:
    """Mark runs under a parent that are still RUNNING (a notebook failed midway) as FAILED."""
    setup()
    client = mlflow.MlflowClient()
    for run in mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", search_all_experiments=True, output_format="list"
    ):
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="FAILED")


def search_runs(filter_string: str = "", *, uri: str | None = None) -> pd.DataFrame:
    """Runs of genrelib's experiment matching an MLflow filter (``""``: all), newest first.

    One row per run: ``run_id``, ``status``, ``start_time`` and ``params.*``, ``metrics.*``, ``tags.*`` columns
    (MLflow's own layout; empty without a match).
    """
    exp_id = setup(uri)
    return mlflow.search_runs(
        experiment_ids=[exp_id], filter_string=filter_string, order_by=["start_time DESC"], output_format="pandas"
    )


def load_run_dict(run_id: str, path: str) -> dict | None:
    """A JSON artifact of a run (e.g. ``reports/test_report.json``), or None when the run has none."""
    setup()
    folder = path.rsplit("/", 1)[0] if "/" in path else None
    if path not in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, folder)}:
        return None
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")
