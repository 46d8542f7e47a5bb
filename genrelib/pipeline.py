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

from genrelib.errors import GenrelibError

logger = logging.getLogger(__name__)

#: Headline metrics of the notebooks' runs that the run-all parent run collects.
SUMMARY_METRICS = (
    "test_track_accuracy",
    "test_segment_accuracy",
    "test_track_f1_macro",
    "eval_track_accuracy",
    "eval_segment_accuracy",
    "personal_song_accuracy",
    "personal_window_accuracy",
)

NOTEBOOKS = ("01_eda", "02_features", "03_train", "04_evaluate", "05_personal_test", "06_compare")


#: The Jupyter kernel the notebooks are committed for (``make env`` installs it into the environment).
KERNEL = "genrelib"


class NotebookError(GenrelibError):
    """A notebook cell raised; the message names the notebook, the cell and the error."""


def kernel_metadata(kernel: str = KERNEL, *, timeout: float = 60.0) -> dict:
    """The notebook metadata JupyterLab writes into a notebook it opens on ``kernel``.

    JupyterLab replaces a notebook's ``kernelspec`` and ``language_info`` with the running kernel's as soon as the
    kernel starts, and marks the notebook modified when they differ in anything (the Python version included);
    committed notebooks carry exactly these values so that opening one changes nothing. The kernel is started
    here and asked (``kernel_info``), as JupyterLab does, then shut down.

    Parameters
    ----------
    kernel : str
        Kernel name (``jupyter kernelspec list``).
    timeout : float
        Seconds to wait for the kernel to start and answer.

    Returns
    -------
    dict
        ``{"kernelspec": {"display_name", "language", "name"}, "language_info": {...}}``.

    Raises
    ------
    NotebookError
        When no kernel of that name is installed.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_client.manager import start_new_kernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel as exc:
        raise NotebookError(
            f"no Jupyter kernel named {kernel!r}; install it with `make env`, or `.venv/bin/python "
            f"-m ipykernel install --sys-prefix --name {kernel} --display-name 'Python ({kernel})'`"
        ) from exc
    km, kc = start_new_kernel(
        kernel_name=kernel, startup_timeout=timeout, extra_arguments=["--IPKernelApp.log_level=CRITICAL"]
    )
    try:
        info = kc.kernel_info(reply=True, timeout=timeout)["content"]["language_info"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return {
        "kernelspec": {"display_name": spec.display_name, "language": spec.language, "name": kernel},
        "language_info": info,
    }


def normalize_notebook(path: str | Path, metadata: dict, *, write: bool = True) -> bool:
    """Put a notebook in its committed form: ``metadata`` (from :func:`kernel_metadata`), no outputs and no
    execution counts, nbformat 4.5 with an id on every cell, written as Jupyter writes it.

    Parameters
    ----------
    path : path
        The ``.ipynb`` file.
    metadata : dict
        Top-level metadata keys to set (others are kept).
    write : bool
        Rewrite the file when it differs; False only reports.

    Returns
    -------
    bool
        Whether the file differed from its committed form.
    """
    import uuid

    import nbformat

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    nb.metadata.update(metadata)
    for cell in nb.cells:
        if not cell.get("id"):
            cell.id = uuid.uuid4().hex[:8]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    new = nbformat.writes(nb) + "\n"
    if new == text:
        return False
    if write:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
    return True


def parse_value(text: str):
    """A command-line parameter value as papermill reads ``-p``: int, float, bool, None or string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def notebook_parameters(path: str | Path) -> dict:
    """The parameters a notebook declares in its ``parameters`` cell."""
    import papermill as pm

    return dict(pm.inspect_notebook(str(path)))


#: How a declared type is described in an error message.
_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text"}


def _convert(value, type_name: str):
    """``value`` (a command line's text, or a Python value) as the declared type; ValueError when it is not one.

    An int is a float; a bool is not a number. Annotations other than int, float, bool and str are not checked
    (text is read as papermill's ``-p`` reads it).
    """
    if type_name in ("int", "float"):
        if isinstance(value, bool):
            pass
        elif isinstance(value, int) or (type_name == "float" and isinstance(value, float)):
            return value
        elif isinstance(value, str):
            return int(value.strip()) if type_name == "int" else float(value.strip())
    elif type_name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif type_name == "str":
        if isinstance(value, str):
            return value
    else:
        return parse_value(value) if isinstance(value, str) else value
    raise ValueError(f"{value!r} is not {type_name}")


def _check(parameters: dict, declared: dict[str, dict], *, must_be_declared: bool) -> dict:
    """Check and convert ``parameters`` against the parameters each notebook of ``declared`` declares."""
    import difflib

    out = {}
    for key, value in parameters.items():
        owners = [nb for nb, params in declared.items() if key in params]
        if not owners:
            if must_be_declared:
                names = sorted({k for params in declared.values() for k in params})
                close = difflib.get_close_matches(key, names, n=1)
                which = (
                    f"notebook {next(iter(declared))}"
                    if len(declared) == 1
                    else f"any of the notebooks {', '.join(declared)}"
                )
                raise NotebookError(
                    f"unknown notebook parameter {key!r} (value {value!r}): not declared by {which}"
                    + (f"; did you mean {close[0]!r}?" if close else "")
                    + f" (declared: {', '.join(names)})"
                )
            out[key] = value
            continue
        types = {nb: declared[nb][key]["inferred_type_name"] for nb in owners}
        converted, ok = None, False
        for t in dict.fromkeys(types.values()):  # the first reading that every declaring notebook accepts
            try:
                converted = _convert(value, t)
                for u in types.values():
                    _convert(converted, u)
            except (TypeError, ValueError):
                continue
            ok = True
            break
        if not ok:
            nb, t = next((nb, t) for nb, t in types.items() if not _accepts(value, t))
            decl = f"{key}: {t} = {declared[nb][key]['default']}"
            same = [n for n, u in types.items() if u == t]
            raise NotebookError(
                f"notebook parameter {key!r} must be {_TYPE_WORDS.get(t, t)} ({t}), as {', '.join(same)} "
                f"declare{'s' if len(same) == 1 else ''} it ({decl}); got {value!r}"
            )
        out[key] = converted
    return out


def _accepts(value, type_name: str) -> bool:
    try:
        _convert(value, type_name)
    except (TypeError, ValueError):
        return False
    return True


def check_parameters(
    parameters: dict, notebooks: tuple[str, ...] | list[str] = NOTEBOOKS, *, notebooks_dir: str | Path = "notebooks"
) -> dict:
    """Check notebook overrides before anything runs; return them converted to the declared types.

    Each name must be declared by at least one of ``notebooks`` (a name that only some declare is fine: each
    notebook takes what it declares), and each value must fit the type annotation of every notebook that declares
    it (``epochs: int = 30``): text from a command line is converted ("5" -> 5; "true" -> True), an int is
    accepted for a float, and a value that cannot be read as the type is refused. Names whose annotation is not
    int, float, bool or str are not type-checked.

    Parameters
    ----------
    parameters : dict
        Name -> value (text, as ``-p NAME VALUE`` gives it, or a Python value).
    notebooks : sequence of str
        The notebooks that will run (for ``genrelib notebook NAME``: just that one).
    notebooks_dir : path

    Raises
    ------
    NotebookError
        For an unknown name (naming the notebooks and the declared names, with the closest one) or a value of the
        wrong type (naming the parameter, the notebooks that declare it, the declared type and the value).
    """
    declared = {}
    for name in notebooks:
        src = Path(notebooks_dir) / f"{name}.ipynb"
        if not src.exists():
            raise NotebookError(f"notebook {src} not found; run from the project root or pass --notebooks-dir")
        declared[name] = notebook_parameters(src)
    return _check(parameters, declared, must_be_declared=True)


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
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(output, as_version=4))
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
