"""Start a team MLflow tracking server for genrelib (what ``make server`` runs).

A SQL database holds runs and the model registry (SQLite by default; PostgreSQL for a team), the server stores and
serves artifacts itself (``--serve-artifacts``), so clients need only ``MLFLOW_TRACKING_URI=http://host:port``.
The server runs in the foreground (Ctrl-C stops it); this script prints the URI to export, then becomes the server.

    python scripts/tracking_server.py [--backend URI] [--artifacts DIR|URI] [--host H] [--port P] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from genrelib import tracking  # noqa: E402
from genrelib.errors import GenrelibError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--backend",
        default="sqlite:///mlruns/server.db",
        help="SQL database of runs and registry: sqlite:///path.db (default sqlite:///mlruns/server.db) "
        "or postgresql://user:password@host/database",
    )
    p.add_argument(
        "--artifacts",
        default="mlruns/server-artifacts",
        help="where the server keeps artifacts: a folder (default mlruns/server-artifacts) or s3://...",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 for a team)")
    p.add_argument("--port", type=int, default=tracking.SERVER_PORT, help=f"default {tracking.SERVER_PORT}")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    p.add_argument(
        "--allowed-hosts",
        default="",
        help="Host headers the server answers beyond localhost and private addresses (MLflow's "
        "--allowed-hosts), e.g. mlflow.lab.lan,10.0.0.5:5050",
    )
    args = p.parse_args(argv)
    try:
        cmd = tracking.server_command(
            args.backend,
            args.artifacts,
            host=args.host,
            port=args.port,
            workers=args.workers,
            allowed_hosts=args.allowed_hosts or None,
        )
    except GenrelibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "localhost") else args.host
    backend = cmd[cmd.index("--backend-store-uri") + 1]
    if "@" in backend:  # keep a password out of the terminal's scrollback
        scheme, rest = backend.split("://", 1)
        backend = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    print(
        f"genrelib tracking server: runs and registry in {backend}, artifacts in "
        f"{cmd[cmd.index('--artifacts-destination') + 1]} (served by the server)"
    )
    print(
        f"point genrelib at it (in each shell, on each machine that uses it):\n"
        f"  export MLFLOW_TRACKING_URI=http://{shown}:{args.port}"
    )
    if args.host in ("0.0.0.0", "::"):
        print(f"  (other machines: http://<this machine's address>:{args.port}; see --allowed-hosts)")
    print("stop it with Ctrl-C", flush=True)
    os.execve(cmd[0], cmd, {**os.environ, **tracking.SERVER_ENV})
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
