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
A store root (``--store DIR``) holds one folder per feature set, named like the feature cache file
(:func:`genrelib.features.cache_path`): ``<kind>-<key>`` with the same key (feature configuration hash and the
data's manifest hash), so a store never mixes configurations or data versions::

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
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .dataset import Dataset, Track
from .errors import FeatureError
from .features import FeatureConfig, FeatureSet, _work, cache_path

logger = logging.getLogger(__name__)

FORMAT = "genrelib-feature-store"
VERSION = 1
#: Tracks per shard unless told otherwise: 64 tracks of 30 s are about 5 MB of MFCC or 43 MB of mel segments,
#: which one worker holds while it computes the shard.
DEFAULT_SHARD_SIZE = 64

#: A temporary file (``.<name>.<random>.tmp``) unmodified this long is a dead writer's (a process killed while
#: writing a shard): a live writer writes its bytes at once and renames the file. Removed when a run finishes.
STALE_TMP_SECONDS = 60.0


def store_path(dataset: Dataset, config: FeatureConfig, root: str | Path) -> Path:
    """The folder of the features of ``dataset`` by ``config`` under the store root ``root``: named like the
    feature cache file (same key)."""
    return Path(root) / cache_path(dataset, config, root).stem


def plan(dataset: Dataset, shard_size: int) -> list[list[Track]]:
    """The tracks of each shard: the data set's tracks in order, ``shard_size`` at a time."""
    t = dataset.tracks
    return [t[i : i + shard_size] for i in range(0, len(t), shard_size)]


def shard_name(i: int) -> str:
    """File stem of shard ``i``."""
    return f"shard-{i:05d}"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ids_hash(tracks: Sequence[Track]) -> str:
    return hashlib.sha256("\n".join(t.track_id for t in tracks).encode()).hexdigest()[:16]


def write_shard(folder: str | Path, index: int, tracks: Sequence[Track], config: FeatureConfig) -> dict:
    """Compute the features of ``tracks`` and write them as shard ``index`` of the store folder ``folder``.

    Runs in a worker (a local process or a Dask worker): it reads the audio and writes the shard itself, and
    returns only the shard's small record. The shard and then its record are written atomically (temporary file,
    rename), so a worker killed half-way leaves no shard that looks finished, and running the task again (a
    retry on another worker) simply writes the same shard.

    Returns
    -------
    dict
        The record also saved as ``shards/shard-NNNNN.json``: ``shard``, ``sha256``, ``rows``, ``bytes``,
        ``tracks`` (``[track_id, genre, row_start, row_stop, windows]`` each), ``skipped``
        (``[track_id, reason]`` each, as :func:`genrelib.features.extract` reports them), ``ids_hash``.
    """
    from threadpoolctl import threadpool_limits

    folder = Path(folder)
    width = int(np.prod(config.row_shape))
    xs, cols, entries, skipped = [], {"track_id": [], "genre": [], "window": [], "segment": []}, [], []
    row = 0
    with threadpool_limits(1):  # one BLAS thread per worker: the workers already use the cores
        for track in tracks:
            _, ff, err = _work(track, config)
            if err is not None:
                logger.warning("skipping %s", err)
                skipped.append([track.track_id, err])
                continue
            n = len(ff.X)
            xs.append(ff.X.reshape(n, width).astype(np.float32, copy=False))
            cols["track_id"] += [track.track_id] * n
            cols["genre"] += [track.genre or ""] * n
            cols["window"].append(ff.window)
            cols["segment"].append(ff.segment)
            entries.append([track.track_id, track.genre or "", row, row + n,
                            int(ff.window.max()) + 1 if n else 0])
            row += n
    X = np.concatenate(xs) if xs else np.zeros((0, width), np.float32)
    window = np.concatenate(cols["window"]) if xs else np.zeros(0, np.int32)
    segment = np.concatenate(cols["segment"]) if xs else np.zeros(0, np.int32)
    return _write_rows(folder, index, X, cols["track_id"], cols["genre"], window, segment, entries, skipped,
                       _ids_hash(tracks))


def _write_rows(folder: Path, index: int, X: np.ndarray, track_ids, genres, window, segment, entries: list,
                skipped: list, ids_hash: str) -> dict:
    """Write shard ``index`` from rows ``X`` (``(n, width)`` float32) and their ids; then its record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = shard_name(index)
    table = pa.table({
        "track_id": pa.array(track_ids, pa.string()),
        "genre": pa.array(genres, pa.string()),
        "window": pa.array(np.asarray(window, np.int32), pa.int32()),
        "segment": pa.array(np.asarray(segment, np.int32), pa.int32()),
        "x": pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(X, np.float32).reshape(-1), pa.float32()),
                                               X.shape[1]),
    })
    sink = pa.BufferOutputStream()
    # Float features are noise to a compressor: stored as they are; the id columns are compressed.
    pq.write_table(table, sink, compression={"track_id": "zstd", "genre": "zstd", "window": "zstd",
                                             "segment": "zstd", "x": "none"}, row_group_size=4096)
    data = sink.getvalue().to_pybytes()
    shards = folder / "shards"
    try:
        _atomic_write(shards / f"{name}.parquet", data)
        record = {"shard": name, "sha256": hashlib.sha256(data).hexdigest(), "rows": len(X), "bytes": len(data),
                  "tracks": entries, "skipped": skipped, "ids_hash": ids_hash}
        _atomic_write(shards / f"{name}.json", json.dumps(record).encode())
    except OSError as exc:
        from .features import write_error

        raise FeatureError(write_error(shards / f"{name}.parquet", exc, example="store")) from exc
    return record


def check_shard(folder: Path, index: int, tracks: Sequence[Track]) -> tuple[dict | None, str | None]:
    """Whether shard ``index`` is finished and intact.

    Returns
    -------
    record : dict or None
        The shard's record when it can be kept.
    problem : str or None
        Why a shard that was started cannot be kept (corrupt, truncated, other tracks); None when it is fine or
        was never finished (no record: it is simply computed).
    """
    name = shard_name(index)
    rec_path, data_path = folder / "shards" / f"{name}.json", folder / "shards" / f"{name}.parquet"
    if not rec_path.exists():
        return None, None
    try:
        record = json.loads(rec_path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"{rec_path}: unreadable record ({exc})"
    if record.get("ids_hash") != _ids_hash(tracks):
        return None, f"{data_path}: holds other tracks than planned (a different shard size or track list)"
    if not data_path.exists():
        return None, f"{data_path}: missing"
    if data_path.stat().st_size != record.get("bytes") or _sha256(data_path) != record.get("sha256"):
        return None, f"{data_path}: corrupt (its SHA-256 or size differs from its record)"
    return record, None


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
        (:mod:`genrelib.distributed`). None: local processes.
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
    from .progress import Progress

    config = config or FeatureConfig()
    folder = store_path(dataset, config, root)
    manifest_path = folder / "manifest.json"
    started = folder / "settings.json"
    previous = None
    for p in (manifest_path, started):
        if p.exists():
            try:
                previous = json.loads(p.read_text())
                break
            except (OSError, ValueError):
                pass
    if previous is not None and shard_size is not None and int(previous["shard_size"]) != int(shard_size):
        raise FeatureError(f"the store {folder} was written with --shard-size {previous['shard_size']}, not "
                           f"{shard_size}; leave out --shard-size to resume it, or give another --store folder")
    size = int(shard_size or (previous or {}).get("shard_size") or DEFAULT_SHARD_SIZE)
    if size < 1:
        raise FeatureError(f"shard size must be a whole number of tracks >= 1, got {shard_size!r}")
    shards = plan(dataset, size)
    head = {"format": FORMAT, "version": VERSION, "config": config.to_dict(), "config_hash": config.hash(),
            "manifest_hash": dataset.manifest_hash(), "data_root": str(dataset.root), "genres": list(dataset.genres),
            "row_shape": list(config.row_shape), "shard_size": size, "n_shards": len(shards),
            "n_tracks": len(dataset.tracks)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(started, json.dumps(head).encode())
    except OSError as exc:
        from .features import write_error

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
        logger.info("store %s: %d of %d shards already done, %d to compute", folder, len(records), len(shards),
                    len(todo))
    bar = Progress(sum(len(shards[i]) for i in todo), f"{config.kind} shards", bar=progress)
    skipped = 0
    if todo and scheduler:
        from . import distributed

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


def _write_local(folder: Path, todo: dict[int, list[Track]], config: FeatureConfig,
                 n_jobs: int | None) -> Iterator[tuple[int, dict]]:
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

    from .features import _init_worker

    with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("forkserver"), initializer=_init_worker) as pool:
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


def _finish(folder: Path, head: dict, shards: list, records: dict[int, dict], dataset: Dataset,
            repaired: list[str]) -> StoredFeatureSet:
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
    index = pa.table({"track_id": pa.array(cols[0], pa.string()), "genre": pa.array(cols[1], pa.string()),
                      "shard": pa.array(cols[2], pa.int32()), "row_start": pa.array(cols[3], pa.int64()),
                      "row_stop": pa.array(cols[4], pa.int64()), "windows": pa.array(cols[5], pa.int32())})
    sink = pa.BufferOutputStream()
    pq.write_table(index, sink, compression="zstd")
    manifest = {**head, "shards": [{k: records[i][k] for k in ("shard", "sha256", "rows", "bytes")}
                                   for i in range(len(shards))],
                "rows": int(sum(records[i]["rows"] for i in range(len(shards)))), "tracks": len(rows),
                "skipped": skipped}
    try:
        _atomic_write(folder / "index.parquet", sink.getvalue().to_pybytes())
        _atomic_write(folder / "manifest.json", json.dumps(manifest, indent=1).encode())
    except OSError as exc:
        from .features import write_error

        raise FeatureError(write_error(folder / "manifest.json", exc, example="store")) from exc
    sfs = open_store(folder)
    sfs.repaired = repaired
    return sfs


def write_featureset(fs: FeatureSet, folder: str | Path, *, shard_size: int = DEFAULT_SHARD_SIZE,
                     manifest_hash: str | None = None, data_root: str = "") -> StoredFeatureSet:
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
    head = {"format": FORMAT, "version": VERSION, "config": fs.config.to_dict(), "config_hash": fs.config.hash(),
            "manifest_hash": manifest_hash, "data_root": data_root, "genres": list(fs.genres),
            "row_shape": list(fs.config.row_shape), "shard_size": int(shard_size),
            "n_shards": -(-len(tracks) // shard_size), "n_tracks": len(tracks)}
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / "settings.json", json.dumps(head).encode())
    records = {}
    for i, k in enumerate(range(0, len(tracks), shard_size)):
        a, b = bounds[k], bounds[min(k + shard_size, len(tracks))]
        starts = bounds[k : min(k + shard_size, len(tracks)) + 1] - a
        entries = [[fs.track_ids[a + s], fs.row_genres[a + s], int(s), int(e),
                    int(fs.window[a + s : a + e].max()) + 1] for s, e in zip(starts[:-1], starts[1:])]
        ids = "\n".join(tracks[k : k + shard_size])
        records[i] = _write_rows(folder, i, fs.X[a:b].reshape(b - a, width), fs.track_ids[a:b], fs.row_genres[a:b],
                                 fs.window[a:b], fs.segment[a:b], entries, [],
                                 hashlib.sha256(ids.encode()).hexdigest()[:16])
    fake = Dataset(root=Path(data_root or "."), tracks=[], genres=list(fs.genres), skipped=list(fs.skipped))
    return _finish(folder, head, list(range(len(records))), records, fake, [])


def open_store(folder: str | Path) -> StoredFeatureSet:
    """Open a finished store folder (``DIR/<kind>-<key>``) for lazy reading.

    Raises
    ------
    FeatureError
        When it is not a finished genrelib store (no manifest: extraction did not finish).
    """
    import pyarrow.parquet as pq

    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        index = pq.read_table(folder / "index.parquet").to_pandas()
    except (OSError, ValueError) as exc:
        raise FeatureError(f"{folder} is not a finished genrelib feature store ({exc}); run `genrelib features "
                           f"DATA --store {folder.parent}` (it resumes an interrupted extraction)") from exc
    if manifest.get("format") != FORMAT:
        raise FeatureError(f"{folder}/manifest.json is not a genrelib feature store manifest")
    return StoredFeatureSet(folder, manifest, index)


class StoredFeatureSet:
    """A feature set in a store, read lazily: the per-track index is in memory, the rows stay in the shards.

    It has :class:`~genrelib.features.FeatureSet`'s attribute names: ``config``, ``genres``, ``skipped``,
    ``cache_error``, ``track_ids``, ``row_genres``, ``window``, ``segment``, ``labels``, ``tracks``, ``len()``,
    ``select``, ``split`` (both lazy: views on a subset of tracks), ``subset`` and ``X`` (these two read every
    selected row into memory, as :meth:`load` does: for data that fits). :meth:`iter_shards` reads shard by shard.

    Attributes
    ----------
    path : Path
        The store folder.
    manifest : dict
    index : pandas.DataFrame
        One row per (selected) track: ``track_id``, ``genre``, ``shard``, ``row_start``, ``row_stop``
        (rows within the shard), ``windows``.
    repaired : list of str
        Shards found corrupt or incomplete and computed again by the extraction that returned this set.
    """

    def __init__(self, path: Path, manifest: dict, index) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.index = index.reset_index(drop=True)
        self.config = FeatureConfig.from_dict(manifest["config"])
        self.genres = list(manifest["genres"])
        self.skipped = [tuple(s) for s in manifest["skipped"]]
        self.cache_error: str | None = None
        self.repaired: list[str] = []

    def __len__(self) -> int:
        return int((self.index["row_stop"] - self.index["row_start"]).sum())

    def __repr__(self) -> str:
        return (f"StoredFeatureSet({self.path}, kind={self.config.kind!r}, tracks={len(self.index)}, "
                f"rows={len(self)}, shards={self.index['shard'].nunique()})")

    @property
    def _counts(self) -> np.ndarray:
        return (self.index["row_stop"] - self.index["row_start"]).to_numpy()

    @property
    def track_ids(self) -> np.ndarray:
        """Track id of each row."""
        return np.repeat(self.index["track_id"].to_numpy().astype(str), self._counts)

    @property
    def row_genres(self) -> np.ndarray:
        """Genre of each row."""
        return np.repeat(self.index["genre"].to_numpy().astype(str), self._counts)

    @property
    def labels(self) -> np.ndarray:
        """Integer label of each row (index into :attr:`genres`)."""
        pos = {g: i for i, g in enumerate(self.genres)}
        return np.repeat(np.array([pos[g] for g in self.index["genre"]], np.int64), self._counts)

    @property
    def tracks(self) -> list[str]:
        """Distinct track ids in order."""
        return self.index["track_id"].tolist()

    @property
    def window(self) -> np.ndarray:
        """Window index of each row (read from the shards' window column only)."""
        return self._column("window")

    @property
    def segment(self) -> np.ndarray:
        """Segment index of each row."""
        return self._column("segment")

    @property
    def X(self) -> np.ndarray:
        """Every selected row's features, read into memory (see :meth:`load`)."""
        return self.load().X

    def _column(self, name: str) -> np.ndarray:
        out = [part[name] for _, part in self.iter_shards(columns=(name,))]
        return np.concatenate(out) if out else np.zeros(0, np.int32)

    def shard_file(self, shard: int) -> Path:
        return self.path / "shards" / f"{shard_name(int(shard))}.parquet"

    def read_shard(self, shard: int, columns: Sequence[str] = ("x", "window", "segment")) -> dict[str, np.ndarray]:
        """The selected rows of one shard: ``{column: array}``, ``x`` shaped ``(rows, *config.row_shape)``,
        plus ``labels`` and ``track_ids``.

        Raises
        ------
        FeatureError
            When the shard is missing, unreadable or not the size its record says: names the shard and the fix.
        """
        import pyarrow.parquet as pq

        path = self.shard_file(shard)
        expected = self.manifest["shards"][int(shard)]["rows"]
        try:
            table = pq.read_table(path, columns=list(columns))
        except (OSError, ValueError) as exc:
            table, why = None, str(exc)
        if table is None or table.num_rows != expected:
            why = why if table is None else f"{table.num_rows} rows, its record says {expected}"
            raise FeatureError(f"shard {path} is corrupt or missing ({why}); run `genrelib features "
                               f"{self.manifest['data_root']} --kind {self.config.kind} --store {self.path.parent}` "
                               "again: it detects the shard and computes it again")
        part = self.index[self.index["shard"] == shard]
        take = np.concatenate([np.arange(a, b) for a, b in zip(part["row_start"], part["row_stop"])]) \
            if len(part) else np.zeros(0, np.int64)
        out: dict[str, np.ndarray] = {}
        for name in columns:
            col = table.column(name)
            if name == "x":
                flat = col.combine_chunks().flatten().to_numpy(zero_copy_only=False)
                out[name] = flat.reshape(table.num_rows, *self.config.row_shape)[take]
            else:
                out[name] = col.to_numpy(zero_copy_only=False)[take]
        counts = (part["row_stop"] - part["row_start"]).to_numpy()
        pos = {g: i for i, g in enumerate(self.genres)}
        out["labels"] = np.repeat(np.array([pos[g] for g in part["genre"]], np.int64), counts)
        out["track_ids"] = np.repeat(part["track_id"].to_numpy().astype(str), counts)
        return out

    def shards(self) -> list[int]:
        """Shards holding selected rows, in order."""
        return sorted(int(s) for s in self.index["shard"].unique())

    def iter_shards(self, columns: Sequence[str] = ("x", "window", "segment"),
                    order: Sequence[int] | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``(shard, read_shard(shard))`` for each shard with selected rows, in ``order`` (default: stored)."""
        for s in (self.shards() if order is None else order):
            yield s, self.read_shard(s, columns)

    def _view(self, mask) -> StoredFeatureSet:
        view = StoredFeatureSet(self.path, self.manifest, self.index[np.asarray(mask)])
        view.skipped, view.repaired = list(self.skipped), list(self.repaired)
        return view

    def select(self, track_ids: Sequence[str]) -> StoredFeatureSet:
        """A lazy view on the given tracks."""
        return self._view(self.index["track_id"].isin(list(track_ids)).to_numpy())

    def split(self, split: dict[str, str]) -> dict[str, StoredFeatureSet]:
        """Lazy views by a ``track_id -> part`` map; tracks in no part drop."""
        parts = self.index["track_id"].map(lambda t: split.get(t, "")).to_numpy()
        return {p: self._view(parts == p) for p in ("train", "valid", "test")}

    def subset(self, mask: np.ndarray) -> FeatureSet:
        """Rows where ``mask`` is true, in memory."""
        return self.load().subset(mask)

    def load(self) -> FeatureSet:
        """Read every selected row into an in-memory :class:`~genrelib.features.FeatureSet` (equal to what
        :func:`genrelib.features.extract` returns for the same data and configuration)."""
        parts = [p for _, p in self.iter_shards()]
        empty = np.zeros(0, np.int32)
        cat = (lambda k: np.concatenate([p[k] for p in parts])) if parts else (lambda k: empty)
        X = np.concatenate([p["x"] for p in parts]) if parts else np.zeros((0, *self.config.row_shape), np.float32)
        return FeatureSet(X=X, track_ids=self.track_ids, window=cat("window").astype(np.int32),
                          segment=cat("segment").astype(np.int32), row_genres=self.row_genres,
                          genres=list(self.genres), config=self.config, skipped=list(self.skipped))

    materialize = load
