"""Running the six notebooks headlessly with papermill, as children of one MLflow parent run.

Each notebook gets its parameters (data folder, tracking URI, parent run id, and the user's overrides where the
notebook has such a parameter), is executed with the project's kernel, kept under ``results/notebooks`` (ipynb
and HTML), and attached to the MLflow run it created. A failing cell stops the run with that cell's error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from genrelib.pipeline.parameters import NOTEBOOKS, NotebookError, _check, check_parameters, notebook_parameters

logger = logging.getLogger(__name__)

#: Headline metrics of the notebooks' runs that the run-all parent run collects.
SUMMARY_METRICS = (
    "test_track_accuracy",
    "test_segment_accuracy",
    "test_track_f1_macro",
    "folder_track_accuracy",
    "folder_segment_accuracy",
    "personal_song_accuracy",
    "personal_window_accuracy",
)


@dataclass
class NotebookRun:
    """One executed notebook."""

    name: str
    output: Path
    html: Path
    run_id: str | None
    seconds: float
    parameters: dict = field(default_factory=dict)


#: Notebook parameters that are paths (relative ones are taken from the caller's folder, not the notebooks').
PATH_PARAMETERS = ("data_dir", "personal_dir", "store", "split_file")


def run_notebook(
    name: str,
    *,
    parameters: dict | None = None,
    notebooks_dir: str | Path = "notebooks",
    out_dir: str | Path = "results/notebooks",
    parent_run_id: str = "",
    tracking_uri: str | None = None,
    kernel: str = "python3",
) -> NotebookRun:
    """Execute one notebook with papermill and attach it (ipynb and HTML) to its MLflow run.

    Parameters
    ----------
    name : str
        One of :data:`NOTEBOOKS` (or any notebook name in ``notebooks_dir``).
    parameters : dict
        Overrides; those the notebook does not declare are ignored (and logged), so one set of overrides can
        serve all the notebooks (:func:`check_parameters` refuses names that no notebook declares). Those it
        declares are converted to, and checked against, their declared types.

    Raises
    ------
    NotebookError
        When an override does not fit its declared type (before anything runs). When a cell fails: the message
        carries the cell's error and where the executed notebook is. The
        notebook's own MLflow run is then marked FAILED, whether a cell had already ended it or not (one is
        created if the notebook failed before starting it), and the failed notebook is attached to it.
    """
    import papermill as pm

    from genrelib import tracking

    src = Path(notebooks_dir) / f"{name}.ipynb"
    if not src.exists():
        raise NotebookError(f"notebook {src} not found; run from the project root or pass --notebooks-dir")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = (out_dir / f"{name}.ipynb").resolve()
    tracking.setup(tracking_uri)
    uri = tracking.tracking_uri()
    declared = notebook_parameters(src)
    given = {"tracking_uri": uri, "parent_run_id": parent_run_id, **(parameters or {})}
    params = _check({k: v for k, v in given.items() if k in declared}, {name: declared}, must_be_declared=True)
    # Notebooks run in the notebooks folder: a path given relative to where the user stands is made absolute.
    params.update({k: str(Path(v).resolve()) for k, v in params.items() if k in PATH_PARAMETERS and v})
    ignored = sorted(set(given) - set(declared))
    if ignored:
        logger.info("%s does not take %s", name, ", ".join(ignored))
    if output.exists():
        output.unlink()  # a copy left by an earlier execution must not be attached to this one's run
    started = time.time()
    t0 = time.perf_counter()
    try:
        # The kernel's own log (a TCP-without-encryption warning per start, a KeyboardInterrupt note at shutdown)
        # is not for the user: cell errors reach the executed notebook and the NotebookError.
        pm.execute_notebook(
            str(src),
            str(output),
            parameters=params,
            kernel_name=kernel,
            cwd=str(Path(notebooks_dir).resolve()),
            progress_bar=False,
            log_output=False,
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except BaseException as exc:
        # By now the kernel has exited, and MLflow's exit hook in it ended a still-active run as FINISHED; a cell
        # may also have ended the run before a later cell failed. Either way the run is the notebook's and failed.
        run_id = _fail_notebook_run(name, output, parent_run_id=parent_run_id, started=started)
        if isinstance(exc, pm.PapermillExecutionError):
            raise NotebookError(
                f"{name}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue} "
                f"(executed notebook with the traceback: {output}; MLflow run {run_id}, FAILED)"
            ) from exc
        raise
    seconds = time.perf_counter() - t0
    html = _write_html(output)
    run_id = tracking.find_run("genrelib.notebook", name, parent_run_id=parent_run_id or None, started_after=started)
    if run_id is not None:
        tracking.log_notebook(run_id, output, html, source=src.resolve())
    else:
        logger.warning("no MLflow run tagged genrelib.notebook=%s was found; the notebook is not attached", name)
    return NotebookRun(name=name, output=output, html=html, run_id=run_id, seconds=seconds, parameters=params)


def _write_html(output: Path) -> Path:
    """Render an executed notebook as HTML beside it; returns the HTML path."""
    import nbformat
    from nbconvert import HTMLExporter

    html = output.with_suffix(".html")
    # nbconvert's notices ("Alternative text is missing on 8 image(s)": matplotlib figures) are not for the user
    quiet = logging.getLogger("genrelib.pipeline.nbconvert")
    quiet.setLevel(logging.ERROR)
    quiet.propagate = False
    body, _ = HTMLExporter(log=quiet).from_notebook_node(nbformat.read(output, as_version=4))
    html.write_text(body)
    return html


def _fail_notebook_run(name: str, output: Path, *, parent_run_id: str, started: float) -> str:
    """Mark the MLflow run of a failed notebook FAILED (creating one if the notebook never started its run) and
    attach the executed notebook and its HTML rendering; returns the run id."""
    from genrelib import tracking

    run_id = tracking.find_run("genrelib.notebook", name, parent_run_id=parent_run_id or None, started_after=started)
    if run_id is None:
        run_id = tracking.create_parent_run(name, tags={"genrelib.notebook": name}, parent_run_id=parent_run_id or None)
    if output.exists():  # papermill writes the notebook with the failed cell marked, unless it failed to start
        try:
            html = _write_html(output)
        except Exception as exc:  # the run's failure matters more than its rendering; keep the ipynb
            logger.warning("%s: could not render the failed notebook as HTML (%s); attaching the ipynb only", name, exc)
            html = None
        tracking.log_notebook(run_id, output, html)
    tracking.end_run(run_id, "FAILED")
    return run_id


def run_all(
    *,
    data_dir: str | Path,
    personal_dir: str | Path,
    parameters: dict | None = None,
    notebooks: tuple[str, ...] = NOTEBOOKS,
    notebooks_dir: str | Path = "notebooks",
    out_dir: str | Path = "results/notebooks",
    tracking_uri: str | None = None,
    run_name: str | None = None,
) -> tuple[str, list[NotebookRun]]:
    """Run the notebooks in order as children of a new MLflow parent run.

    The parent run is named after the data and the family (``run-all genres (synthetic demo) seed_cnn``) unless
    ``run_name`` is given, and collects the children's headline metrics (:data:`SUMMARY_METRICS`).

    Returns
    -------
    parent_run_id : str
    runs : list of NotebookRun

    Raises
    ------
    NotebookError
        Before anything runs, for an override that no notebook declares or that does not fit its declared type
        (:func:`check_parameters`). At the first failing notebook; that notebook's run (the failed notebook attached), the parent run and any
        unfinished child are marked FAILED.
    """
    from genrelib import tracking

    # a misspelt name or a value of the wrong type is refused before any notebook runs
    parameters = check_parameters(parameters or {}, notebooks, notebooks_dir=notebooks_dir)
    # every notebook's path parameters, before notebook 01 starts (05 must not fail after 01-04 trained)
    check_parameters(
        {
            k: v
            for k, v in {"data_dir": str(data_dir), "personal_dir": str(personal_dir)}.items()
            if k not in parameters
        },
        notebooks,
        notebooks_dir=notebooks_dir,
        must_be_declared=False,
    )
    tracking.setup(tracking_uri)
    params = {
        "data_dir": str(Path(data_dir).resolve()),
        "personal_dir": str(Path(personal_dir).resolve()),
        **parameters,
    }
    pin_model = "model" not in params  # then 04 and 05 use exactly the version 03 registers (see below)
    if "family" in params and pin_model:
        params["model"] = f"genre-classifier@{str(params['family']).replace('_', '-')}"
    if run_name is None:
        from genrelib.datasets.demo import is_demo

        data = Path(params["data_dir"])
        run_name = (
            f"run-all {data.name}{' (synthetic demo)' if is_demo(data) else ''} {params.get('family', 'seed_cnn')}"
        )
    parent = tracking.create_parent_run(run_name, tags={"genrelib.stage": "run-all"})
    tracking.log_params_to(
        parent,
        {f"override.{k}": v for k, v in (parameters or {}).items()}
        | {"data_dir": params["data_dir"], "personal_dir": params["personal_dir"]},
    )
    runs: list[NotebookRun] = []
    try:
        for name in notebooks:
            logger.info("running %s", name)
            runs.append(
                run_notebook(
                    name,
                    parameters=params,
                    notebooks_dir=notebooks_dir,
                    out_dir=out_dir,
                    parent_run_id=parent,
                    tracking_uri=tracking_uri,
                )
            )
            if runs[-1].run_id:
                tracking.copy_metrics(runs[-1].run_id, parent, SUMMARY_METRICS)
            version = tracking.run_tag(runs[-1].run_id, "genrelib.registered_version") if runs[-1].run_id else None
            if pin_model and version:
                # The family's alias moves only to a version at least as good on the same data, so the model
                # 03 just trained is named by its version, not by the alias.
                params["model"] = f"genre-classifier/{version}"
    except BaseException:
        tracking.fail_running_children(parent)
        tracking.end_run(parent, "FAILED")
        raise
    tracking.end_run(parent, "FINISHED")
    return parent, runs
