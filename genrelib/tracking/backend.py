"""Which MLflow store genrelib logs to (``$MLFLOW_TRACKING_URI`` or ``mlruns/mlflow.db``), its setup and the UI's
address.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import mlflow
import mlflow.data

from genrelib.tracking.orphans import reap_orphan_runs, reaped_stores
from genrelib.tracking.store import check_store

EXPERIMENT = "genrelib"


_configured_uri: str | None = None


#: MLflow's own classification of the experiment (model development, not GenAI). MLflow 3.17's UI still opens an
#: experiment by its GenAI / Model-training switch, which defaults to GenAI (an empty traces overview, checked in
#: Chromium): :func:`ui_url` therefore asks for the model-training view in the link.
EXPERIMENT_KIND = "mlflow.experimentKind"


EXPERIMENT_TAGS = {EXPERIMENT_KIND: "custom_model_development"}


def tracking_uri() -> str:
    """The store in use: the one last given to :func:`setup`, else ``$MLFLOW_TRACKING_URI``, else SQLite at
    ``./mlruns/mlflow.db``."""
    return (
        _configured_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{Path('mlruns').resolve() / 'mlflow.db'}"
    )


def default_store_missing() -> str | None:
    """Why there is no store to read a model from, when genrelib would otherwise make a new, empty one; else None.

    That is the case when no store was given (no :func:`setup` with a URI, no ``$MLFLOW_TRACKING_URI``) and the
    current folder has no ``mlruns/mlflow.db``: run outside the project folder, reading a registered model would
    create an empty store there and then say the model is missing. The message says where genrelib looked and how
    to point at the project's store (named exactly when this genrelib is a checkout that has one).
    """
    if _configured_uri or os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    here = Path("mlruns").resolve() / "mlflow.db"
    if here.exists():
        return None
    project = Path(__file__).resolve().parents[2] / "mlruns" / "mlflow.db"
    store = f"sqlite:///{project}" if project.exists() else "sqlite:////path/to/genrelib/mlruns/mlflow.db"
    return (
        f"no MLflow store here: MLFLOW_TRACKING_URI is not set and {here} does not exist (no store was made); "
        f"run from the project folder, or point at the project's store: export MLFLOW_TRACKING_URI={store}"
    )


def absolute_uri(uri: str) -> str:
    # A relative SQLite path (sqlite:///../mlruns/mlflow.db, as the notebooks give) is resolved once, so that
    # every process that is handed the URI meets the same store.
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///') :]).resolve()}"
    return uri


def _artifact_root(uri: str) -> str | None:
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        db.parent.mkdir(parents=True, exist_ok=True)
        return (db.parent / "artifacts").resolve().as_uri()
    return None


def setup(uri: str | None = None, experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the store and make sure the experiment exists; returns the experiment id."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    global _configured_uri
    if uri:
        _configured_uri = absolute_uri(uri)
    uri = absolute_uri(tracking_uri())
    # MLflow announces a new SQLite store's schema on stderr at INFO ("Creating initial MLflow database tables...",
    # "Updating database tables"): lines the user did not ask for, once per new store. Warnings still show.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    check_store(uri)  # locked, read-only, unmakeable or not a database: one line, before MLflow tries
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        exp_id = mlflow.create_experiment(experiment, artifact_location=_artifact_root(uri), tags=EXPERIMENT_TAGS)
    else:
        exp_id = exp.experiment_id
        if exp.tags.get(EXPERIMENT_KIND) != EXPERIMENT_TAGS[EXPERIMENT_KIND]:
            mlflow.MlflowClient().set_experiment_tag(exp_id, EXPERIMENT_KIND, EXPERIMENT_TAGS[EXPERIMENT_KIND])
    mlflow.set_experiment(experiment_id=exp_id)
    if uri not in reaped_stores:
        reaped_stores.add(uri)
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
