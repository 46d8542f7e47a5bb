"""Runs left RUNNING by a process that died: found by the process and machine they record, and marked FAILED."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import mlflow
import mlflow.data

logger = logging.getLogger(__name__)


def machine_id() -> str:
    """This machine's id (systemd's ``/etc/machine-id``, stable across reboots), or "" where there is none."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            found = Path(path).read_text().strip()
        except OSError:
            continue
        if found:
            return found
    return ""


def process_start(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc/<pid>/stat``); "" when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name in parentheses may hold spaces
    return fields[19] if len(fields) > 19 else ""


def _process_alive(pid: int, start: str = "") -> bool:
    """Whether process ``pid`` still runs (and, given its start time, is the same process, not a reused pid)."""
    if Path("/proc/self/stat").exists():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        fields = stat[stat.rindex(")") + 2 :].split()
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


reaped_stores: set[str] = set()


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
    runs = mlflow.search_runs(
        filter_string=f"attributes.status = 'RUNNING' and tags.`genrelib.host` = '{host}'",
        search_all_experiments=True,
        output_format="list",
    )
    client = mlflow.MlflowClient()
    reaped = []
    for run in runs:
        tags = run.data.tags
        try:
            pid = int(tags["genrelib.pid"])
        except (KeyError, ValueError):
            continue
        if tags.get("genrelib.machine_id", machine_id()) != machine_id():
            continue  # another machine that has this host name (a shared tracking server): not ours to judge
        if _process_alive(pid, tags.get("genrelib.pid_start", "")):
            continue
        client.set_tag(
            run.info.run_id,
            "genrelib.end_reason",
            f"its process ({pid} on {host}) ended without ending the run (killed?); marked FAILED by "
            "genrelib.tracking.orphans.reap_orphan_runs",
        )
        client.set_terminated(run.info.run_id, status="FAILED")
        logger.warning("run %s was still RUNNING but its process %d is gone: marked FAILED", run.info.run_id, pid)
        reaped.append(run.info.run_id)
    return reaped
