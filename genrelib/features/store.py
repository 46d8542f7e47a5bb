"""A sharded feature store on disk: features written shard by shard as they are computed, read lazily.

Why Parquet
-----------
Shards are Apache Parquet files written with pyarrow, which is already installed (MLflow depends on it), so the
store adds no dependency. A Parquet file keeps the feature rows *and* their ids side by side (``track_id``,
``genre``, ``window``, ``segment`` and ``x``, the row's features flattened into a fixed-size list of float32), is
self-describing (schema, row count in the footer) and columnar: the index columns of a shard are read without its
features. Pandas, Dask, Spark and DuckDB read it as it is. The alternatives the issue names were weighed:
TFRecord is a sequential record stream with no footer or schema (no row count, no column reads) that ties the
data to TensorFlow, and the summary/musicnn families train with scikit-learn; Zarr would be a new dependency and
suits one big dense array better than rows with string ids.

Layout
------
A store root (``--store DIR``) holds one folder per feature set, named by
:func:`genrelib.features.cache.cache_path`: ``<kind>-<key>`` with a key of the feature configuration hash and the
data's manifest hash, so a store never mixes configurations or data versions::

    DIR/mfcc-<key>/settings.json        written first: configuration, manifest hash, shard size (what a rerun needs)
    DIR/mfcc-<key>/manifest.json        written last: the same, plus every shard's checksum, skipped files
    DIR/mfcc-<key>/index.parquet        one row per track: track_id, genre, shard, row_start, row_stop, windows
    DIR/mfcc-<key>/shards/shard-00000.parquet   rows of tracks 0..shard_size-1 (in the data set's order)
    DIR/mfcc-<key>/shards/shard-00000.json      its record: sha256, rows, each track's row range, skipped files

Shard ``i`` always holds tracks ``i * shard_size`` up to the next shard's (those that decode), so a rerun knows
what each shard must hold. A shard is written to a temporary file and renamed; its record is written (the same
way) after it, and is what marks the shard finished. A rerun keeps every shard whose record exists, lists the
same tracks and whose file has the recorded SHA-256, and computes only the rest: an interrupted extraction
resumes, a corrupt or truncated shard is reported by name (a warning, and in :attr:`StoredFeatureSet.repaired`)
and computed again. ``manifest.json`` and ``index.parquet`` are written last, once every shard is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from genrelib import jsonio
from genrelib.datasets.tracks import Dataset, Track
from genrelib.errors import FeatureError
from genrelib.features.cache import cache_path
from genrelib.features.config import FeatureConfig
from genrelib.features.featureset import FeatureSet
from genrelib.features.shards import FORMAT, VERSION, atomic_write, check_shard, plan, write_rows, write_shard
from genrelib.features.stored import StoredFeatureSet, open_store

logger = logging.getLogger(__name__)


#: Tracks per shard unless told otherwise: 64 tracks of 30 s are about 5 MB of MFCC or 43 MB of mel segments,
#: which one worker holds while it computes the shard.
DEFAULT_SHARD_SIZE = 64


#: A temporary file (``.<name>.<random>.tmp``) unmodified this long is a dead writer's (a process killed while
#: writing a shard): a live writer writes its bytes at once and renames the file. Removed when a run finishes.
STALE_TMP_SECONDS = 60.0


def store_path(dataset: Dataset, config: FeatureConfig, root: str | Path) -> Path:
    """The folder of the features of ``dataset`` by ``config`` under the store root ``root``: ``<kind>-<key>``
    (:func:`genrelib.features.cache.cache_path`)."""
    return Path(root) / cache_path(dataset, config, root).stem


def extract_to_store(
    dataset: Dataset,
    config: FeatureConfig | None,
    root: str | Path,
    *,
    shard_size: int | None = None,
    n_jobs: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
) -> StoredFeatureSet:
    """Extract the features of ``dataset`` into a sharded store under ``root``; resume what is there.

    Parameters
    ----------
    dataset : Dataset
    config : FeatureConfig, optional
        Default ``FeatureConfig()``.
    root : path
        Store root; the features go to :func:`store_path` under it.
    shard_size : int, optional
        Tracks per shard (default: the store's, else :data:`DEFAULT_SHARD_SIZE`). A store keeps the size it
        was started with; another explicit size is refused.
    n_jobs : int, optional
        Local worker processes (default: the CPUs); ignored with ``scheduler``.
    scheduler : str, optional
        A Dask scheduler address (``tcp://host:8786``) or ``local`` / ``local:N`` (a LocalCluster of N worker
        processes here): the shards are computed and written by the cluster's workers
        (:mod:`genrelib.features.distributed`). None: local processes.
    progress : bool
        A progress bar; when False, progress lines on the ``genrelib.progress`` logger
        (:class:`genrelib.progress.Progress`).

    Returns
    -------
    StoredFeatureSet

    Raises
    ------
    FeatureError
        A shard size other than the store's; no track readable; the store cannot be written; an unreachable
        scheduler.
    """
    from genrelib.progress import Progress

    config = config or FeatureConfig()
    folder = store_path(dataset, config, root)
    manifest_path = folder / "manifest.json"
    started = folder / "settings.json"
    previous = None
    for p in (manifest_path, started):
        if p.exists():
            try:
                previous = json.loads(p.read_text())
                if isinstance(previous, dict) and isinstance(previous.get("shard_size"), int):
                    break
            except (OSError, ValueError):
                pass
            logger.warning("%s: unreadable or malformed; its store is checked shard by shard and resumed", p)
            previous = None
    if previous is not None and shard_size is not None and int(previous["shard_size"]) != int(shard_size):
        raise FeatureError(
            f"the store {folder} was written with --shard-size {previous['shard_size']}, not "
            f"{shard_size}; leave out --shard-size to resume it, or give another --store folder"
        )
    size = int(shard_size or (previous or {}).get("shard_size") or DEFAULT_SHARD_SIZE)
    if size < 1:
        raise FeatureError(f"shard size must be a whole number of tracks >= 1, got {shard_size!r}")
    shards = plan(dataset, size)
    head = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "config_hash": config.hash(),
        "manifest_hash": dataset.manifest_hash(),
        "data_root": str(dataset.root),
        "genres": list(dataset.genres),
        "row_shape": list(config.row_shape),
        "shard_size": size,
        "n_shards": len(shards),
        "n_tracks": len(dataset.tracks),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(started, jsonio.dumps(head).encode())
    except OSError as exc:
        from genrelib.features.featureset import write_error

        raise FeatureError(write_error(started, exc, example="store")) from exc
    records: dict[int, dict] = {}
    repaired: list[str] = []
    for i, tracks in enumerate(shards):
        record, problem = check_shard(folder, i, tracks)
        if record is not None:
            records[i] = record
        elif problem is not None:
            logger.warning("recomputing shard %s", problem)
            repaired.append(problem)
    todo = [i for i in range(len(shards)) if i not in records]
    if records:
        logger.info(
            "store %s: %d of %d shards already done, %d to compute", folder, len(records), len(shards), len(todo)
        )
    bar = Progress(sum(len(shards[i]) for i in todo), f"{config.kind} shards", bar=progress)
    skipped = 0
    if todo and scheduler:
        from genrelib.features import distributed

        for i, record in distributed.write_shards(scheduler, folder, {i: shards[i] for i in todo}, config):
            records[i] = record
            skipped += len(record["skipped"])
            bar.update(len(shards[i]), skipped=skipped)
    elif todo:
        for i, record in _write_local(folder, {i: shards[i] for i in todo}, config, n_jobs):
            records[i] = record
            skipped += len(record["skipped"])
            bar.update(len(shards[i]), skipped=skipped)
    bar.close()
    return _finish(folder, head, shards, records, dataset, repaired)


def _write_local(
    folder: Path, todo: dict[int, list[Track]], config: FeatureConfig, n_jobs: int | None
) -> Iterator[tuple[int, dict]]:
    n_jobs = n_jobs or os.cpu_count() or 1
    if config.kind == "musicnn":
        n_jobs = 1  # as extract: one network in this process rather than one per worker
    n_jobs = max(1, min(n_jobs, len(todo)))
    if n_jobs == 1:
        for i, tracks in todo.items():
            yield i, write_shard(folder, i, tracks, config)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from genrelib.features.workers import init_worker

    with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("forkserver"), initializer=init_worker) as pool:
        futures = {pool.submit(write_shard, folder, i, tracks, config): i for i, tracks in todo.items()}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # finished shards stay; a rerun resumes
            raise


def remove_stale_tmp(folder: str | Path) -> list[Path]:
    """Remove the temporary files a killed writer left in a store folder (unmodified for
    :data:`STALE_TMP_SECONDS`); they are never read (a shard is visible only once renamed), only wasted space.
    Returns the files removed."""
    folder, now, gone = Path(folder), time.time(), []
    for p in [*folder.glob(".*.tmp"), *(folder / "shards").glob(".*.tmp")]:
        try:
            if now - p.stat().st_mtime >= STALE_TMP_SECONDS:
                p.unlink()
                gone.append(p)
        except FileNotFoundError:  # renamed or removed meanwhile
            pass
    if gone:
        logger.info("removed %d temporary file(s) of killed writers from %s", len(gone), folder)
    return gone


def _finish(
    folder: Path, head: dict, shards: list, records: dict[int, dict], dataset: Dataset, repaired: list[str]
) -> StoredFeatureSet:
    import pyarrow as pa
    import pyarrow.parquet as pq

    remove_stale_tmp(folder)

    rows = []
    skipped = [list(s) for s in dataset.skipped]
    for i in range(len(shards)):
        rec = records[i]
        skipped += rec["skipped"]
        rows += [(t, g, i, a, b, w) for t, g, a, b, w in rec["tracks"]]
    if not rows:
        raise FeatureError(f"no track under {dataset.root} could be read; skipped: {skipped[:3]} ...")
    cols = list(zip(*rows))
    index = pa.table(
        {
            "track_id": pa.array(cols[0], pa.string()),
            "genre": pa.array(cols[1], pa.string()),
            "shard": pa.array(cols[2], pa.int32()),
            "row_start": pa.array(cols[3], pa.int64()),
            "row_stop": pa.array(cols[4], pa.int64()),
            "windows": pa.array(cols[5], pa.int32()),
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(index, sink, compression="zstd")
    manifest = {
        **head,
        "shards": [{k: records[i][k] for k in ("shard", "sha256", "rows", "bytes")} for i in range(len(shards))],
        "rows": int(sum(records[i]["rows"] for i in range(len(shards)))),
        "tracks": len(rows),
        "skipped": skipped,
    }
    try:
        atomic_write(folder / "index.parquet", sink.getvalue().to_pybytes())
        atomic_write(folder / "manifest.json", jsonio.dumps(manifest, indent=1).encode())
    except OSError as exc:
        from genrelib.features.featureset import write_error

        raise FeatureError(write_error(folder / "manifest.json", exc, example="store")) from exc
    sfs = open_store(folder)
    sfs.repaired = repaired
    return sfs


def write_featureset(
    fs: FeatureSet,
    folder: str | Path,
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    manifest_hash: str | None = None,
    data_root: str = "",
) -> StoredFeatureSet:
    """Write an in-memory feature set (e.g. a cached ``.npz``: :meth:`FeatureSet.load`) as a store in ``folder``.

    The migration path for features extracted before the store existed, and a way to build large test stores.
    Tracks keep their order; ``shard_size`` tracks per shard.

    Returns
    -------
    StoredFeatureSet
    """
    folder = Path(folder)
    tracks = fs.tracks
    bounds = np.flatnonzero(np.r_[True, fs.track_ids[1:] != fs.track_ids[:-1], True])
    if len(bounds) - 1 != len(tracks):
        raise FeatureError("a feature set's rows must be grouped by track to be stored")
    width = int(np.prod(fs.config.row_shape))
    head = {
        "format": FORMAT,
        "version": VERSION,
        "config": fs.config.to_dict(),
        "config_hash": fs.config.hash(),
        "manifest_hash": manifest_hash,
        "data_root": data_root,
        "genres": list(fs.genres),
        "row_shape": list(fs.config.row_shape),
        "shard_size": int(shard_size),
        "n_shards": -(-len(tracks) // shard_size),
        "n_tracks": len(tracks),
    }
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "settings.json", jsonio.dumps(head).encode())
    records = {}
    for i, k in enumerate(range(0, len(tracks), shard_size)):
        a, b = bounds[k], bounds[min(k + shard_size, len(tracks))]
        starts = bounds[k : min(k + shard_size, len(tracks)) + 1] - a
        entries = [
            [fs.track_ids[a + s], fs.row_genres[a + s], int(s), int(e), int(fs.window[a + s : a + e].max()) + 1]
            for s, e in zip(starts[:-1], starts[1:])
        ]
        ids = "\n".join(tracks[k : k + shard_size])
        records[i] = write_rows(
            folder,
            i,
            fs.X[a:b].reshape(b - a, width),
            fs.track_ids[a:b],
            fs.row_genres[a:b],
            fs.window[a:b],
            fs.segment[a:b],
            entries,
            [],
            hashlib.sha256(ids.encode()).hexdigest()[:16],
        )
    fake = Dataset(root=Path(data_root or "."), tracks=[], genres=list(fs.genres), skipped=list(fs.skipped))
    return _finish(folder, head, list(range(len(records))), records, fake, [])
