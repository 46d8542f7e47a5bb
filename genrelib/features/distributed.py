"""Feature extraction on a Dask distributed cluster (``--scheduler ADDRESS``).

Each task computes one shard of the feature store (:func:`genrelib.features.shards.write_shard`): the worker reads the
audio, computes the features and writes the shard into the store folder itself; only the shard's small record
(row ranges, checksum, skipped files) travels back to the client. Workers write rather than return arrays because
the arrays are the bulk of the data (43 MB of mel segments per 64-track shard): sending them through the
scheduler connection to one client would make the client's network link and memory the bottleneck of the
cluster, whereas a worker writing to shared storage scales with the workers. The price: the store folder, like
the audio, must be reachable by every worker at the same path (a shared file system). Both are checked on every
worker before any work is sent, and a worker that cannot read the audio or write the store is one clear error.

A worker that dies mid-task (killed, out of memory, a lost machine) loses nothing: the scheduler gives its tasks
to another worker, and because a shard is written to a temporary file and renamed, a half-written shard is never
taken for a finished one. A file that cannot be decoded is reported exactly as local extraction reports it (the
same message, in ``skipped``).

Addresses: ``tcp://host:8786`` (a running ``dask scheduler``; start workers with ``dask worker tcp://host:8786``
on each machine, in an environment with genrelib installed), or ``local`` / ``local:N``: a LocalCluster of N
worker processes (default 2) on this machine, started and stopped for the one extraction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from genrelib.datasets.tracks import Track
from genrelib.errors import FeatureError
from genrelib.features.config import FeatureConfig

logger = logging.getLogger(__name__)

#: Seconds to wait for a scheduler to answer.
CONNECT_TIMEOUT = 5


def connect(address: str, *, timeout: float | None = None):
    """A ``distributed.Client`` on ``address`` (or a new LocalCluster for ``local`` / ``local:N``).

    Raises
    ------
    FeatureError
        When dask.distributed is not installed, or nothing answers at ``address`` within ``timeout`` seconds
        (default :data:`CONNECT_TIMEOUT`): names the address and the fix.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise FeatureError(
            "--scheduler needs dask.distributed: pip install 'dask[distributed]' (or pip install -e '.[scale]')"
        ) from exc
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    address = str(address).strip()
    if address == "local" or address.startswith("local:"):
        n = address.partition(":")[2] or "2"
        if not n.isdigit() or int(n) < 1:
            raise FeatureError(f"--scheduler {address}: give local:N with N >= 1 worker processes, e.g. local:2")
        cluster = LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        client._genrelib_cluster = cluster  # closed with the client by close()
        return client
    if "://" not in address:
        address = f"tcp://{address}"
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise FeatureError(
            f"cannot reach a Dask scheduler at {address} within {timeout:g} s ({type(exc).__name__}); start one "
            f"there (`dask scheduler`, then `dask worker {address}` on each worker machine), check the host and "
            "port, or leave out --scheduler to extract with local processes"
        ) from exc


def close(client) -> None:
    """Close a client from :func:`connect` (and the LocalCluster it started, if any)."""
    cluster = getattr(client, "_genrelib_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def _worker_check(audio: str, folder: str) -> str | None:
    """On a worker: None when it can read ``audio`` and write into ``folder``, else why not."""
    import socket
    import tempfile

    host = socket.gethostname()
    if not os.access(audio, os.R_OK):
        return f"worker on {host} (pid {os.getpid()}) cannot read the audio file {audio}"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        return f"worker on {host} (pid {os.getpid()}) cannot write the store folder {folder} ({exc.strerror})"
    return None


def check_workers(client, audio: Path, folder: Path) -> None:
    """Refuse, before any work, a cluster with no worker or a worker that cannot reach the audio or the store.

    Raises
    ------
    FeatureError
    """
    workers = (
        client.scheduler_info(n_workers=-1)["workers"]
        if _takes_n_workers(client)
        else client.scheduler_info()["workers"]
    )
    if not workers:
        raise FeatureError(
            f"the Dask scheduler at {client.scheduler.address} has no workers; start some with "
            f"`dask worker {client.scheduler.address}`"
        )
    answers = client.run(_worker_check, str(audio), str(folder))
    problems = [p for p in answers.values() if p]
    if problems:
        raise FeatureError(
            f"{problems[0]}"
            + (f" (and {len(problems) - 1} more workers)" if len(problems) > 1 else "")
            + "; workers need the audio and the --store folder at the same path as this machine "
            "(a shared file system), and genrelib installed"
        )


def _takes_n_workers(client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def write_shards(
    scheduler: str | object, folder: Path, todo: dict[int, list[Track]], config: FeatureConfig
) -> Iterator[tuple[int, dict]]:
    """Compute and write the shards ``todo`` (``{index: tracks}``) on a cluster; yield ``(index, record)`` as
    each finishes.

    Parameters
    ----------
    scheduler : str or distributed.Client
        An address for :func:`connect`, or a client to use (left open).
    folder : Path
        The store folder (:func:`genrelib.features.store.store_path`), at the same path on the workers.
    """
    from distributed import as_completed

    from genrelib.features.shards import shard_name, write_shard

    client = connect(scheduler) if isinstance(scheduler, str) else scheduler
    try:
        first = next(iter(todo.values()))[0]
        check_workers(client, first.path, folder)
        # pure=False: a shard is a side effect (a file), never deduplicated away; a task whose worker dies is
        # given to another worker by the scheduler (up to its allowed-failures, default 3).
        futures = {
            client.submit(
                write_shard,
                str(folder),
                i,
                tracks,
                config,
                pure=False,
                key=f"genrelib-shard-{folder.name}-{shard_name(i)}",
            ): i
            for i, tracks in todo.items()
        }
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:
            client.cancel(list(futures))  # finished shards stay on disk; a rerun resumes
            raise
    finally:
        if isinstance(scheduler, str):
            close(client)
