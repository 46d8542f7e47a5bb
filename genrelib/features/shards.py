"""One shard of the feature store: computing and writing it (Parquet rows, then its JSON record, each atomically) and
checking it on a rerun. Runs in a worker, local or on a Dask cluster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genrelib import jsonio
from genrelib.datasets.tracks import Dataset, Track
from genrelib.errors import FeatureError
from genrelib.features.compute import track_features
from genrelib.features.config import FeatureConfig

logger = logging.getLogger(__name__)


FORMAT = "genrelib-feature-store"


VERSION = 1


def plan(dataset: Dataset, shard_size: int) -> list[list[Track]]:
    """The tracks of each shard: the data set's tracks in order, ``shard_size`` at a time."""
    t = dataset.tracks
    return [t[i : i + shard_size] for i in range(0, len(t), shard_size)]


def shard_name(i: int) -> str:
    """File stem of shard ``i``."""
    return f"shard-{i:05d}"


def atomic_write(path: Path, data: bytes) -> None:
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
        (``[track_id, reason]`` each, as :func:`genrelib.features.extraction.extract` reports them), ``ids_hash``.
    """
    from threadpoolctl import threadpool_limits

    folder = Path(folder)
    width = int(np.prod(config.row_shape))
    xs, cols, entries, skipped = [], {"track_id": [], "genre": [], "window": [], "segment": []}, [], []
    row = 0
    with threadpool_limits(1):  # one BLAS thread per worker: the workers already use the cores
        for track in tracks:
            _, ff, err = track_features(track, config)
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
            entries.append([track.track_id, track.genre or "", row, row + n, int(ff.window.max()) + 1 if n else 0])
            row += n
    X = np.concatenate(xs) if xs else np.zeros((0, width), np.float32)
    window = np.concatenate(cols["window"]) if xs else np.zeros(0, np.int32)
    segment = np.concatenate(cols["segment"]) if xs else np.zeros(0, np.int32)
    return write_rows(
        folder, index, X, cols["track_id"], cols["genre"], window, segment, entries, skipped, _ids_hash(tracks)
    )


def write_rows(
    folder: Path,
    index: int,
    X: np.ndarray,
    track_ids,
    genres,
    window,
    segment,
    entries: list,
    skipped: list,
    ids_hash: str,
) -> dict:
    """Write shard ``index`` from rows ``X`` (``(n, width)`` float32) and their ids; then its record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = shard_name(index)
    table = pa.table(
        {
            "track_id": pa.array(track_ids, pa.string()),
            "genre": pa.array(genres, pa.string()),
            "window": pa.array(np.asarray(window, np.int32), pa.int32()),
            "segment": pa.array(np.asarray(segment, np.int32), pa.int32()),
            "x": pa.FixedSizeListArray.from_arrays(
                pa.array(np.ascontiguousarray(X, np.float32).reshape(-1), pa.float32()), X.shape[1]
            ),
        }
    )
    sink = pa.BufferOutputStream()
    # Float features are noise to a compressor: stored as they are; the id columns are compressed.
    pq.write_table(
        table,
        sink,
        compression={"track_id": "zstd", "genre": "zstd", "window": "zstd", "segment": "zstd", "x": "none"},
        row_group_size=4096,
    )
    data = sink.getvalue().to_pybytes()
    shards = folder / "shards"
    try:
        atomic_write(shards / f"{name}.parquet", data)
        record = {
            "shard": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "rows": len(X),
            "bytes": len(data),
            "tracks": entries,
            "skipped": skipped,
            "ids_hash": ids_hash,
        }
        atomic_write(shards / f"{name}.json", jsonio.dumps(record).encode())
    except OSError as exc:
        from genrelib.features.featureset import write_error

        raise FeatureError(write_error(shards / f"{name}.parquet", exc, example="store")) from exc
    return record


def record_problem(record: dict, tracks: Sequence[Track]) -> str | None:
    """Why a shard's record does not describe ``tracks`` (its planned tracks); None when it does.

    Every planned track is listed once, as read (with its genre: its folder's name, so a label edited by hand is
    caught) or as skipped (with a reason), in order; the row ranges follow each other from 0 to ``rows``.
    """
    try:
        entries, skipped, rows = record["tracks"], record["skipped"], record["rows"]
        if not (isinstance(rows, int) and rows >= 0 and isinstance(entries, list) and isinstance(skipped, list)):
            return "malformed record (rows, tracks or skipped)"
        genre_of = {t.track_id: t.genre or "" for t in tracks}
        listed = [e[0] for e in entries] + [s[0] for s in skipped]
        if sorted(listed) != sorted(genre_of) or len(set(listed)) != len(listed):
            return "lists other tracks than the shard's"
        stop = 0
        for tid, genre, start, end, windows in entries:
            if genre != genre_of[tid]:
                return f"labels {tid} as {genre!r}, but the track is in the folder {genre_of[tid]!r}"
            if not (isinstance(start, int) and isinstance(end, int) and isinstance(windows, int)):
                return f"malformed rows of {tid}"
            if start != stop or end < start:
                return f"rows of {tid} ({start}:{end}) do not follow the previous track's"
            stop = end
        if stop != rows:
            return f"its tracks cover {stop} rows, not the {rows} it records"
        if not all(isinstance(s, list | tuple) and len(s) == 2 and all(isinstance(x, str) for x in s) for s in skipped):
            return "malformed list of skipped files"
    except (KeyError, TypeError, ValueError):
        return "malformed record"
    return None


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
    if not isinstance(record, dict) or record.get("ids_hash") != _ids_hash(tracks):
        return None, f"{data_path}: holds other tracks than planned (a different shard size or track list)"
    problem = record_problem(record, tracks)
    if problem is not None:
        return None, f"{rec_path}: {problem}"
    if not data_path.exists():
        return None, f"{data_path}: missing"
    if data_path.stat().st_size != record.get("bytes") or _sha256(data_path) != record.get("sha256"):
        return None, f"{data_path}: corrupt (its SHA-256 or size differs from its record)"
    return record, None
