"""The team tracking server: the ``mlflow server`` command line for a SQL store with proxied artifacts, and waiting
until it answers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from genrelib.errors import GenrelibError
from genrelib.tracking.backend import absolute_uri

#: Default port of ``make server`` (``make ui`` keeps 5000 and the README's ``mlflow models serve`` 5001).
SERVER_PORT = 5050


#: Environment of the tracking server. MLflow 3.17 otherwise starts seven huey job consumers beside the server
#: (jobs for GenAI judges and trace roll-ups, which genrelib never asks for): measured here, they kept running
#: and using CPU for seconds after the server was told to stop.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


#: What to install for a database driver that SQLAlchemy cannot import (SQLAlchemy 2.1 reads postgresql:// with
#: psycopg 3, no longer psycopg2).
_DRIVER_PACKAGES = {
    "psycopg": "pip install 'genrelib[server]' (psycopg[binary])",
    "psycopg2": "pip install psycopg2-binary",
    "mysqldb": "pip install mysqlclient",
    "pymysql": "pip install pymysql",
}


def server_command(
    backend: str = "sqlite:///mlruns/server.db",
    artifacts: str | Path = "mlruns/server-artifacts",
    *,
    host: str = "127.0.0.1",
    port: int = SERVER_PORT,
    workers: int = 2,
    allowed_hosts: str | None = None,
) -> list[str]:
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
        raise GenrelibError(
            f"tracking server backend {backend!r} is not a SQL database URI; give "
            "sqlite:///path/to/server.db or postgresql://user:password@host/database (MLflow 3.17 "
            "refuses a plain folder store)"
        )
    _check_driver(backend, scheme)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise GenrelibError(f"server port {port!r} is not a port number; give one from 1 to 65535 (e.g. {SERVER_PORT})")
    if not isinstance(workers, int) or workers < 1:
        raise GenrelibError(f"server workers {workers!r} must be a whole number >= 1 (e.g. 2)")
    if scheme == "sqlite":
        backend = absolute_uri(backend)
        Path(backend[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    artifacts = str(artifacts)
    if "://" not in artifacts:
        folder = Path(artifacts).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        artifacts = str(folder)
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow") or "mlflow"
    cmd = [
        exe,
        "server",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        artifacts,
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
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
        raise GenrelibError(
            f"tracking server backend {scheme}://... is not a database URI SQLAlchemy reads ({exc}); "
            "give e.g. postgresql://user:password@host/database"
        ) from exc
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        fix = _DRIVER_PACKAGES.get(dialect.driver, f"install the Python package of the {dialect.driver} driver")
        raise GenrelibError(
            f"backend {scheme}://... needs the database driver {dialect.driver} ({exc}), not "
            f"installed in {sys.prefix}; {fix}"
        ) from exc


def wait_for_server(
    url: str, *, process: subprocess.Popen | None = None, timeout: float = 90.0, log: str | Path | None = None
) -> float:
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
            raise GenrelibError(
                f"the tracking server for {url} exited with code {process.returncode} before it answered{tail()}"
            )
        if time.monotonic() - t0 > timeout:
            raise GenrelibError(f"the tracking server at {url} did not answer /health within {timeout:.0f} s{tail()}")
        time.sleep(0.25)
