"""MLflow tracking: the adapter to MLflow (with :mod:`genrelib.serving`, the only modules that import mlflow).

One store for everything: SQLite at ``mlruns/mlflow.db`` with artifacts under ``mlruns/artifacts`` (relative to
the working directory), or whatever ``MLFLOW_TRACKING_URI`` says. The model registry works on that store;
``mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db`` (``make ui``) shows every run. A team shares a tracking
server instead (:func:`server_command`, ``make server``): ``MLFLOW_TRACKING_URI=http://host:port``, a SQL database
behind it and artifacts proxied by it, so nothing here reads a run's files from the local disk: artifacts and models
travel through MLflow's artifact API.

Models are logged twice: in their native flavour (Keras, or scikit-learn in the safe skops format) and as an
``mlflow.pyfunc`` model that takes audio (file paths, or base64-encoded bytes in a string column) and returns
genre probabilities, with feature extraction inside, so that a served model takes raw audio. That model, its
signature and its request limits live in :mod:`genrelib.serving`; this module imports nothing of the pipeline
(predict, evaluate, features) at its top.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import mlflow
import mlflow.data
import numpy as np
import pandas as pd

from . import __version__
from .errors import GenrelibError, ModelError

logger = logging.getLogger(__name__)

EXPERIMENT = "genrelib"
REGISTERED_MODEL = "genre-classifier"
PACKAGE_DIR = Path(__file__).resolve().parent


_configured_uri: str | None = None

#: MLflow's own classification of the experiment (model development, not GenAI). MLflow 3.17's UI still opens an
#: experiment by its GenAI / Model-training switch, which defaults to GenAI (an empty traces overview, checked in
#: Chromium): :func:`ui_url` therefore asks for the model-training view in the link.
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_TAGS = {EXPERIMENT_KIND: "custom_model_development"}


def tracking_uri() -> str:
    """The store in use: the one last given to :func:`setup`, else ``$MLFLOW_TRACKING_URI``, else SQLite at
    ``./mlruns/mlflow.db``."""
    return (_configured_uri or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{Path('mlruns').resolve() / 'mlflow.db'}")


def _absolute(uri: str) -> str:
    # A relative SQLite path (sqlite:///../mlruns/mlflow.db, as the notebooks give) is resolved once, so that
    # every process that is handed the URI meets the same store.
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


def _artifact_root(uri: str) -> str | None:
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        return (db.parent / "artifacts").resolve().as_uri()
    return None


def setup(uri: str | None = None, experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the store and make sure the experiment exists; returns the experiment id."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    global _configured_uri
    if uri:
        _configured_uri = _absolute(uri)
    uri = _absolute(tracking_uri())
    # MLflow announces a new SQLite store's schema on stderr at INFO ("Creating initial MLflow database tables...",
    # "Updating database tables"): lines the user did not ask for, once per new store. Warnings still show.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        exp_id = mlflow.create_experiment(experiment, artifact_location=_artifact_root(uri), tags=EXPERIMENT_TAGS)
    else:
        exp_id = exp.experiment_id
        if exp.tags.get(EXPERIMENT_KIND) != EXPERIMENT_TAGS[EXPERIMENT_KIND]:
            mlflow.MlflowClient().set_experiment_tag(exp_id, EXPERIMENT_KIND, EXPERIMENT_TAGS[EXPERIMENT_KIND])
    mlflow.set_experiment(experiment_id=exp_id)
    if uri not in _reaped_stores:
        _reaped_stores.add(uri)
        reap_orphan_runs()
    return exp_id


def is_server(uri: str | None = None) -> bool:
    """Whether the store (default: :func:`tracking_uri`) is a tracking server reached over HTTP(S)."""
    return (uri or tracking_uri()).startswith(("http://", "https://"))


def ui_url(*, host: str = "127.0.0.1", port: int = 5000) -> str:
    """The MLflow UI's page of genrelib's runs, in its model-training view, for ``mlflow ui`` on ``host:port``.

    A bare experiment link opens MLflow 3.17's GenAI overview (empty for genrelib); ``workflowType=machine_learning``
    opens the Runs page, with Models and the Model registry beside it (checked in headless Chromium). Against a
    tracking server (``MLFLOW_TRACKING_URI=http://...``) the link is the server's own UI and ``host``/``port`` are
    not used: the server serves the UI.
    """
    uri = tracking_uri()
    base = uri.rstrip("/") if is_server(uri) else f"http://{host}:{port}"
    return f"{base}/#/experiments/{setup()}?workflowType=machine_learning"


# ------------------------------------------------------------------------------------------- team server

#: Default port of ``make server`` (``make ui`` keeps 5000 and the README's ``mlflow models serve`` 5001).
SERVER_PORT = 5050
#: Environment of the tracking server. MLflow 3.17 otherwise starts seven huey job consumers beside the server
#: (jobs for GenAI judges and trace roll-ups, which genrelib never asks for): measured here, they kept running
#: and using CPU for seconds after the server was told to stop.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
#: What to install for a database driver that SQLAlchemy cannot import (SQLAlchemy 2.1 reads postgresql:// with
#: psycopg 3, no longer psycopg2).
_DRIVER_PACKAGES = {"psycopg": "pip install 'genrelib[server]' (psycopg[binary])",
                    "psycopg2": "pip install psycopg2-binary", "mysqldb": "pip install mysqlclient",
                    "pymysql": "pip install pymysql"}


def server_command(backend: str = "sqlite:///mlruns/server.db", artifacts: str | Path = "mlruns/server-artifacts",
                   *, host: str = "127.0.0.1", port: int = SERVER_PORT, workers: int = 2,
                   allowed_hosts: str | None = None) -> list[str]:
    """The command line of a team tracking server: ``mlflow server`` with a SQL store and proxied artifacts.

    Clients use it with ``MLFLOW_TRACKING_URI=http://<host>:<port>``; they need no access to the database or the
    artifact folder: runs, the registry and artifacts (models included) go through the server's REST API
    (``--serve-artifacts``; artifact URIs are ``mlflow-artifacts:/...``). Run it with :data:`SERVER_ENV` added to
    the environment. Makes the SQLite file's folder and a local artifact folder.

    Parameters
    ----------
    backend : str
        SQLAlchemy URI of the runs and registry database: ``sqlite:///path/file.db`` (a relative path is taken
        from the working directory) for one machine, ``postgresql://user:password@host[:port]/database`` for a
        team (needs the psycopg driver: ``pip install 'genrelib[server]'``).
    artifacts : str or Path
        Where the server keeps artifacts: a local folder, or a URI MLflow can write (``s3://bucket/path``, ...).
    host : str
        Interface to bind: 127.0.0.1 (this machine only) by default; ``0.0.0.0`` to serve a team, with
        ``allowed_hosts``.
    port : int
    workers : int
        Server worker processes.
    allowed_hosts : str, optional
        MLflow 3.17's ``--allowed-hosts`` (comma-separated ``Host`` headers the server answers, e.g.
        ``mlflow.lab.lan,10.0.0.5:5050``); by default it answers localhost and private addresses only.

    Raises
    ------
    GenrelibError
        For a backend that is not a SQL database URI, a missing database driver, a bad port or worker count.
    """
    scheme = backend.split("://", 1)[0] if "://" in backend else ""
    if scheme.split("+", 1)[0] not in _SQL_SCHEMES:
        raise GenrelibError(f"tracking server backend {backend!r} is not a SQL database URI; give "
                            "sqlite:///path/to/server.db or postgresql://user:password@host/database (MLflow 3.17 "
                            "refuses a plain folder store)")
    _check_driver(backend, scheme)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise GenrelibError(f"server port {port!r} is not a port number; give one from 1 to 65535 (e.g. "
                            f"{SERVER_PORT})")
    if not isinstance(workers, int) or workers < 1:
        raise GenrelibError(f"server workers {workers!r} must be a whole number >= 1 (e.g. 2)")
    if scheme == "sqlite":
        backend = _absolute(backend)
        Path(backend[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    artifacts = str(artifacts)
    if "://" not in artifacts:
        folder = Path(artifacts).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        artifacts = str(folder)
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow") or "mlflow"
    cmd = [exe, "server", "--backend-store-uri", backend, "--artifacts-destination", artifacts, "--serve-artifacts",
           "--host", host, "--port", str(port), "--workers", str(workers)]
    if allowed_hosts:
        cmd += ["--allowed-hosts", allowed_hosts]
    return cmd


def _check_driver(backend: str, scheme: str) -> None:
    """Raise GenrelibError when SQLAlchemy cannot import the driver of ``backend`` (the server would die on start)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        dialect = make_url(backend).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise GenrelibError(f"tracking server backend {scheme}://... is not a database URI SQLAlchemy reads ({exc}); "
                            "give e.g. postgresql://user:password@host/database") from exc
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        fix = _DRIVER_PACKAGES.get(dialect.driver, f"install the Python package of the {dialect.driver} driver")
        raise GenrelibError(f"backend {scheme}://... needs the database driver {dialect.driver} ({exc}), not "
                            f"installed in {sys.prefix}; {fix}") from exc


def wait_for_server(url: str, *, process: subprocess.Popen | None = None, timeout: float = 90.0,
                    log: str | Path | None = None) -> float:
    """Wait until the tracking server at ``url`` answers ``/health``; returns the seconds waited.

    Raises
    ------
    GenrelibError
        When ``process`` ends first, or ``timeout`` seconds pass (the end of ``log``, if given, in the message).
    """

    def tail() -> str:
        if log is None or not Path(log).exists():
            return ""
        return "; its log ends: " + Path(log).read_text(errors="replace")[-1500:]

    t0 = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process is not None and process.poll() is not None:
            raise GenrelibError(f"the tracking server for {url} exited with code {process.returncode} before it "
                                f"answered{tail()}")
        if time.monotonic() - t0 > timeout:
            raise GenrelibError(f"the tracking server at {url} did not answer /health within {timeout:.0f} s{tail()}")
        time.sleep(0.25)


def git_commit() -> str:
    """The git commit of the genrelib checkout, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def _standard_tags(tags: dict | None) -> dict:
    # pid, its start time and the host let reap_orphan_runs tell a run whose process was killed (SIGKILL, power
    # loss) from one still working; the start time tells a reused pid from the run's own process. On a shared
    # tracking server the machine id keeps two machines of the same host name from reaping each other's runs.
    pid = os.getpid()
    machine = {"genrelib.machine_id": _machine_id()} if _machine_id() else {}
    return {"genrelib.version": __version__, "genrelib.git_commit": git_commit(), "genrelib.pid": str(pid),
            "genrelib.pid_start": _process_start(pid), "genrelib.host": socket.gethostname(), **machine,
            **(tags or {})}


def _machine_id() -> str:
    """This machine's id (systemd's ``/etc/machine-id``, stable across reboots), or "" where there is none."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            found = Path(path).read_text().strip()
        except OSError:
            continue
        if found:
            return found
    return ""


def _process_start(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc/<pid>/stat``); "" when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2:].split()  # the command name in parentheses may hold spaces
    return fields[19] if len(fields) > 19 else ""


def _process_alive(pid: int, start: str = "") -> bool:
    """Whether process ``pid`` still runs (and, given its start time, is the same process, not a reused pid)."""
    if Path("/proc/self/stat").exists():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):  # ended, waiting for its parent to collect it
            return False
        return not start or len(fields) <= 19 or fields[19] == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


_reaped_stores: set[str] = set()


def reap_orphan_runs() -> list[str]:
    """Mark FAILED the runs of this machine that are still RUNNING although their process is gone.

    A process killed with SIGKILL (or by a power cut, or the OOM killer) cannot end its MLflow run, which would
    otherwise stay RUNNING forever. Every run genrelib starts records its process (``genrelib.pid``,
    ``genrelib.pid_start``) and machine (``genrelib.host``, and ``genrelib.machine_id`` where the machine has one);
    this finds, in one search of the store, the RUNNING runs of this host, and ends those whose process no longer
    exists as FAILED, with a ``genrelib.end_reason`` tag. Runs without these tags (started by other tools, or by
    older genrelib) are left alone, and so are runs of another machine with the same host name (another machine
    id), which a shared tracking server holds side by side. :func:`setup` calls it once per process and store.

    Returns
    -------
    list of str
        The ids of the runs it marked FAILED.
    """
    host = socket.gethostname()
    runs = mlflow.search_runs(filter_string=f"attributes.status = 'RUNNING' and tags.`genrelib.host` = '{host}'",
                              search_all_experiments=True, output_format="list")
    client = mlflow.MlflowClient()
    reaped = []
    for run in runs:
        tags = run.data.tags
        try:
            pid = int(tags["genrelib.pid"])
        except (KeyError, ValueError):
            continue
        if tags.get("genrelib.machine_id", _machine_id()) != _machine_id():
            continue  # another machine that has this host name (a shared tracking server): not ours to judge
        if _process_alive(pid, tags.get("genrelib.pid_start", "")):
            continue
        client.set_tag(run.info.run_id, "genrelib.end_reason",
                       f"its process ({pid} on {host}) ended without ending the run (killed?); marked FAILED by "
                       "genrelib.tracking.reap_orphan_runs")
        client.set_terminated(run.info.run_id, status="FAILED")
        logger.warning("run %s was still RUNNING but its process %d is gone: marked FAILED", run.info.run_id, pid)
        reaped.append(run.info.run_id)
    return reaped


@contextlib.contextmanager
def start_run(name: str, *, params: dict | None = None, tags: dict | None = None, parent_run_id: str | None = None,
              uri: str | None = None) -> Iterator[mlflow.ActiveRun]:
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


def begin_run(name: str, *, params: dict | None = None, tags: dict | None = None, parent_run_id: str | None = None,
              uri: str | None = None) -> str:
    """Start a run that stays active across notebook cells (end it with :func:`finish_run`); returns its id."""
    setup(uri)
    active = mlflow.active_run()
    # A child of the run active in this process (cross-validation folds) is a nested run in MLflow's terms.
    nested = bool(parent_run_id) and active is not None and active.info.run_id == parent_run_id
    run = mlflow.start_run(run_name=name, parent_run_id=parent_run_id or None, tags=_standard_tags(tags),
                           nested=nested)
    if params:
        log_params(params)
    return run.info.run_id


def finish_run() -> None:
    """End the run started by :func:`begin_run`."""
    mlflow.end_run()


def create_parent_run(name: str, *, uri: str | None = None, tags: dict | None = None,
                      parent_run_id: str | None = None) -> str:
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
    mlflow.log_dict(d, path)


def log_text(text: str, path: str) -> None:
    """Log text."""
    mlflow.log_text(text, path)


def log_table(df: pd.DataFrame, path: str, *, index: bool = False) -> None:
    """Log a DataFrame as CSV (with its index when ``index``)."""
    mlflow.log_text(df.to_csv(index=index), path)


def log_dataset(table: pd.DataFrame, *, name: str, source: str, digest: str, context: str = "training") -> None:
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
        mlflow.log_input(ds, context=context)


def keras_epoch_logger():
    """A Keras callback that logs every epoch's loss and accuracy (training and validation) to MLflow.

    Epoch ``k`` (1-based) is logged at step ``k``. Step 0 is left to the run's final numbers (test metrics,
    track counts): MLflow links the metrics of step 0 to a model logged in the run, so the Models tab shows what
    the model scores on its test tracks, not its first epoch.
    """
    import keras

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch + 1)

    return EpochLogger()


# ------------------------------------------------------------------------------------------- models


def _pins(names: list[str]) -> list[str]:
    out = []
    for n in names:
        try:
            out.append(f"{n}=={metadata.version(n)}")
        except metadata.PackageNotFoundError:
            continue
    return out


def requirements(family: str) -> list[str]:
    """Pinned pip requirements of a model of ``family`` (genrelib itself travels as code with the model)."""
    base = ["numpy", "scipy", "pandas", "librosa", "soundfile", "soxr", "scikit-learn", "skops", "mlflow", "tqdm"]
    if family != "summary":  # Keras families, and musicnn's embedding network
        base += ["tensorflow-cpu", "keras"]
    return _pins(base)


def log_genre_model(model, *, register: bool = True, name: str = "model", test_track_accuracy: float | None = None,
                    dataset_name: str | None = None, promote_alias: str = "auto") -> dict:
    """Log a :class:`~genrelib.models.base.GenreModel`: native flavour plus the audio pyfunc; register the pyfunc.
    An ensemble (:mod:`genrelib.models.ensemble`) is logged as the audio pyfunc only (``native_uri`` None).

    A registered version carries tags and a description (:func:`version_record`); the family's alias moves to
    it by the rule of :func:`promote` (``promote_alias``: ``auto``, ``always`` or ``never``).

    Returns
    -------
    dict
        ``model_uri`` (the pyfunc's URI), ``native_uri`` and, when registered, ``version``, ``alias``,
        ``alias_moved`` and ``alias_reason``.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    from . import serving  # the audio model's interface; serving sits above this module, so not imported at its top

    reqs = requirements(model.family)
    native = None
    if model.family == "ensemble":
        pass  # no one native model: the members' folders travel inside the audio model
    elif model.is_keras:
        shape = (-1, *model.feature_config.row_shape)
        out_spec = Schema([TensorSpec(np.dtype("float32"), (-1, len(model.genres)))])
        sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (*shape, 1))]), outputs=out_spec)
        native = mlflow.keras.log_model(model.estimator, name=f"{name}_keras", signature=sig, pip_requirements=reqs)
    else:
        shape = (-1, *model.feature_config.row_shape)
        out_spec = Schema([TensorSpec(np.dtype("float64"), (-1, len(model.genres)))])
        sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float64"), shape)]), outputs=out_spec)
        native = mlflow.sklearn.log_model(model.estimator, name=f"{name}_sklearn", signature=sig,
                                          pip_requirements=reqs, serialization_format="skops",
                                          skops_trusted_types=_skops_trusted())
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(Path(tmp) / "genre_model")
        with warnings.catch_warnings():
            # An input example would have to be an audio file; the signature documents the input instead.
            warnings.filterwarnings("ignore", message=".*input example was not provided", category=UserWarning)
            # MLflow prints its registry notices ("Registered model ... already exists") to stderr, a red box in
            # an executed notebook; genrelib says what was registered, and where the alias went, itself.
            with contextlib.redirect_stderr(io.StringIO()):
                info = mlflow.pyfunc.log_model(
                    name=name, python_model=str(PACKAGE_DIR / "pyfunc_model.py"),
                    artifacts={"genre_model": str(folder)}, code_paths=[str(PACKAGE_DIR)],
                    signature=serving.pyfunc_signature(model.genres), pip_requirements=reqs,
                    registered_model_name=REGISTERED_MODEL if register else None,
                )
    out = {"model_uri": info.model_uri, "native_uri": None if native is None else native.model_uri}
    if register and info.registered_model_version is not None:
        version = str(info.registered_model_version)
        out["version"] = version
        record = version_record(model, test_track_accuracy=test_track_accuracy, dataset_name=dataset_name)
        client = mlflow.MlflowClient()
        for key, value in record.items():
            client.set_model_version_tag(REGISTERED_MODEL, version, key, str(value))
        client.update_model_version(REGISTERED_MODEL, version, description=version_description(record))
        if mlflow.active_run():
            mlflow.set_tag("genrelib.registered_version", version)
        out["alias"], out["alias_moved"], out["alias_reason"] = promote(version, record, how=promote_alias)
    return out


def version_record(model, *, test_track_accuracy: float | None, dataset_name: str | None) -> dict:
    """The tags a registered version carries: family, data set name and digest, split, test accuracy, epochs."""
    info = model.info
    rec = {"family": model.family, "dataset_name": dataset_name or Path(str(info.get("data_root", "?"))).name,
           "dataset_digest": info.get("manifest_hash", ""), "split": info.get("split", ""),
           "test_track_accuracy": "" if test_track_accuracy is None else f"{test_track_accuracy:.4f}"}
    if "epochs_run" in info:
        rec["epochs"] = info["epochs_run"]
    return rec


def version_description(record: dict) -> str:
    """One line describing a registered version, for the registry page."""
    acc = record["test_track_accuracy"]
    return (f"{record['family']} trained on {record['dataset_name']} (digest {record['dataset_digest']}, split "
            f"{record['split']}); test per-track accuracy {acc or 'not measured'}"
            + (f"; {record['epochs']} epochs" if "epochs" in record else ""))


def promote(version: str, record: dict, *, how: str = "auto") -> tuple[str, bool, str]:
    """Point the family's alias (``genre-classifier@seed-cnn``) at ``version`` if it deserves it.

    Rule (``how="auto"``): the alias moves when nobody holds it, when the holder has no comparable record
    (registered before versions carried one), or when the new version's test per-track accuracy is at least the
    holder's on the same data set (same digest). A version trained on other data never takes the alias by
    itself: ``how="always"`` moves it anyway (``genrelib train --promote``), ``how="never"`` leaves it.

    Returns
    -------
    alias : str
    moved : bool
    reason : str
        One line saying what happened, for the user.
    """
    alias = record["family"].replace("_", "-")
    client = mlflow.MlflowClient()
    try:
        holder = client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except mlflow.exceptions.MlflowException:
        holder = None
    if how == "never":
        return alias, False, f"@{alias} left where it was (not promoted)"
    if how == "always" or holder is None:
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
        why = "asked for (--promote)" if how == "always" else "no version held it"
        return alias, True, f"@{alias} now points to version {version} ({why})"
    held = holder.tags or {}
    if "dataset_digest" not in held or not held.get("test_track_accuracy"):
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
        return alias, True, f"@{alias} now points to version {version} (version {holder.version} had no record)"
    if held["dataset_digest"] != record["dataset_digest"]:
        return alias, False, (f"@{alias} stays on version {holder.version} (trained on {held.get('dataset_name', '?')}; "
                              f"this version on other data, {record['dataset_name']}); use --promote to move it")
    new, old = record["test_track_accuracy"], held["test_track_accuracy"]
    if new and float(new) >= float(old):
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
        return alias, True, f"@{alias} now points to version {version} (test accuracy {new} >= {old} on the same data)"
    return alias, False, (f"@{alias} stays on version {holder.version} (test accuracy {old} > {new or 'unmeasured'} "
                          "on the same data); use --promote to move it")


def set_alias(version: str, alias: str) -> None:
    """Point ``genre-classifier@alias`` at a registered version."""
    mlflow.MlflowClient().set_registered_model_alias(REGISTERED_MODEL, alias, str(version))


def _skops_trusted() -> list[str]:
    from .models.base import SKOPS_TRUSTED

    return list(SKOPS_TRUSTED)


def resolve_model_uri(ref: str) -> str:
    """Turn a user's model reference into an MLflow URI.

    Accepts ``runs:/...``, ``models:/...``, a run id (32 hex digits), or a registry reference
    ``genre-classifier/3``, ``genre-classifier@alias`` or ``genre-classifier`` (latest version).
    """
    if ref.startswith(("runs:/", "models:/", "mlflow-artifacts:/", "file:")):
        return ref
    if len(ref) == 32 and all(c in "0123456789abcdef" for c in ref):
        return f"runs:/{ref}/model"
    if "@" in ref or "/" in ref:
        return f"models:/{ref}"
    return f"models:/{ref}/latest"


def download_genre_model(ref: str) -> Path:
    """Fetch the genrelib model folder inside a logged pyfunc model; returns a local folder.

    Raises
    ------
    ModelError
        When the reference cannot be found in the tracking store.
    """
    setup()
    uri = resolve_model_uri(ref)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as exc:  # mlflow raises several types (MlflowException, OSError) for a missing model
        raise ModelError(f"model {ref!r} ({uri}) not found in the tracking store {mlflow.get_tracking_uri()}: "
                         f"{str(exc).splitlines()[0]}; {_registry_choices()}") from exc
    folder = local / "artifacts" / "genre_model"
    if not folder.exists():
        raise ModelError(f"{uri} is not a genrelib audio model (no artifacts/genre_model); log models with "
                         "genrelib train")
    return folder


def _registry_choices() -> str:
    """What the registry holds, for an error message: its aliases and versions, or how to list models."""
    try:
        rm = mlflow.MlflowClient().get_registered_model(REGISTERED_MODEL)
        versions = mlflow.MlflowClient().search_model_versions(f"name = '{REGISTERED_MODEL}'")
    except Exception:  # no registry entry at all (MlflowException) or a store that cannot be read
        return f"nothing is registered as {REGISTERED_MODEL} yet: train a model with `genrelib train`"
    aliases = ", ".join(f"@{a} (version {v})" for a, v in sorted(rm.aliases.items())) or "none"
    nums = sorted(int(v.version) for v in versions)
    return (f"{REGISTERED_MODEL} has aliases {aliases} and versions {nums[0]}-{nums[-1]}" if nums else
            f"{REGISTERED_MODEL} has no versions")


def registered_version(ref: str) -> str | None:
    """The registry version a model reference names (``genre-classifier@seed-cnn``, ``genre-classifier/3``,
    ``genre-classifier`` for the latest, ``models:/...``), or None for a reference that is not a registry version
    (a run, a folder). Aliases move: an ensemble records which version each member was."""
    uri = resolve_model_uri(ref)
    if not uri.startswith("models:/"):
        return None
    body = uri[len("models:/"):]
    setup()
    client = mlflow.MlflowClient()
    if "@" in body:
        name, alias = body.split("@", 1)
        return str(client.get_model_version_by_alias(name, alias).version)
    name, _, version = body.partition("/")
    if version == "latest":
        versions = [int(v.version) for v in client.search_model_versions(f"name = '{name}'")]
        return str(max(versions)) if versions else None
    return version if version.isdigit() else None


def load_pyfunc(ref: str):
    """Load a logged audio model as an ``mlflow.pyfunc`` model."""
    setup()
    return mlflow.pyfunc.load_model(resolve_model_uri(ref))


def run_tag(run_id: str, key: str) -> str | None:
    """The value of tag ``key`` of a run, or None."""
    setup()
    return mlflow.MlflowClient().get_run(run_id).data.tags.get(key)


def find_run(tag: str, value: str, *, parent_run_id: str | None = None,
             started_after: float | None = None) -> str | None:
    """Id of the newest run with ``tags.<tag> = value`` (under ``parent_run_id`` if given; started at or after
    ``started_after``, seconds since the epoch, if given), or None."""
    setup()
    flt = f"tags.`{tag}` = '{value}'"
    if parent_run_id:
        flt += f" and tags.mlflow.parentRunId = '{parent_run_id}'"
    if started_after is not None:
        flt += f" and attributes.start_time >= {int(started_after * 1000)}"
    runs = mlflow.search_runs(filter_string=flt, search_all_experiments=True, order_by=["start_time DESC"],
                              max_results=1, output_format="list")
    return runs[0].info.run_id if runs else None


def log_notebook(run_id: str, notebook: str | Path, html: str | Path | None = None, *,
                 source: str | Path | None = None) -> None:
    """Attach an executed notebook (and its HTML rendering) to a run; ``source`` (the notebook that was run)
    becomes the run's Source in the UI, instead of the kernel's ``ipykernel_launcher.py``."""
    setup()
    client = mlflow.MlflowClient()
    client.log_artifact(run_id, str(notebook), "notebook")
    if html is not None:
        client.log_artifact(run_id, str(html), "notebook")
    if source is not None:
        client.set_tag(run_id, "mlflow.source.name", str(source))
        client.set_tag(run_id, "mlflow.source.type", "NOTEBOOK")


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
    for run in mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
                                  search_all_experiments=True, output_format="list"):
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="FAILED")


# ------------------------------------------------------------------------------------------- queries


def search_runs(filter_string: str = "", *, uri: str | None = None) -> pd.DataFrame:
    """Runs of genrelib's experiment matching an MLflow filter (``""``: all), newest first.

    One row per run: ``run_id``, ``status``, ``start_time`` and ``params.*``, ``metrics.*``, ``tags.*`` columns
    (MLflow's own layout; empty without a match).
    """
    exp_id = setup(uri)
    return mlflow.search_runs(experiment_ids=[exp_id], filter_string=filter_string, order_by=["start_time DESC"],
                              output_format="pandas")


def load_run_dict(run_id: str, path: str) -> dict | None:
    """A JSON artifact of a run (e.g. ``reports/test_report.json``), or None when the run has none."""
    setup()
    folder = path.rsplit("/", 1)[0] if "/" in path else None
    if path not in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, folder)}:
        return None
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")


def __getattr__(name: str):
    # Audio models logged before the model class moved to genrelib.serving load with `from genrelib.tracking import
    # GenrePyfunc`; in a process that has already imported this genrelib, that import lands here.
    if name == "GenrePyfunc":
        from .serving import GenrePyfunc

        return GenrePyfunc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
