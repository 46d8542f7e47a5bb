"""The in-memory feature container :class:`FeatureSet` (rows, their tracks, windows and genres), its lossless ``.npz``
form and summaries.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrelib import jsonio
from genrelib.errors import FeatureError
from genrelib.features.config import SUMMARY_COLUMNS, FeatureConfig, musicnn_columns


@dataclass
class FeatureSet:
    """Features of many tracks: one row per segment (``mfcc``, ``mel``) or per window (``summary``, ``musicnn``).

    Attributes
    ----------
    X : np.ndarray [shape=(n_rows, *config.row_shape), dtype=float32]
    track_ids : np.ndarray [shape=(n_rows,), dtype=str]
    window, segment : np.ndarray [shape=(n_rows,), dtype=int32]
        Window index within the track, segment index within the window.
    row_genres : np.ndarray [shape=(n_rows,), dtype=str]
        Genre of each row's track ("" when unlabelled).
    genres : list of str
        The label set, sorted; ``labels`` index into it.
    config : FeatureConfig
    skipped : list of (track_id, reason)
        Files that could not be read.
    cache_error : str or None
        Set by :func:`extract` when the features were computed but could not be written to the cache (why, and
        the fix); not saved with the features.
    repaired : list of str
        Set by :func:`extract`: cache entries found unreadable or not matching the data (named, with why) and
        computed again; not saved with the features.
    cached, computed : int
        Set by :func:`extract`: tracks read from the feature cache, and tracks whose features were computed (files
        that failed are in ``skipped`` instead); not saved with the features.
    """

    X: np.ndarray
    track_ids: np.ndarray
    window: np.ndarray
    segment: np.ndarray
    row_genres: np.ndarray
    genres: list[str]
    config: FeatureConfig
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cache_error: str | None = None
    repaired: list[str] = field(default_factory=list)
    cached: int = 0
    computed: int = 0

    def __len__(self) -> int:
        return len(self.X)

    @property
    def labels(self) -> np.ndarray:
        """Integer label of each row (index into :attr:`genres`)."""
        index = {g: i for i, g in enumerate(self.genres)}
        return np.array([index[g] for g in self.row_genres], dtype=np.int64)

    @property
    def tracks(self) -> list[str]:
        """Distinct track ids in first-seen order."""
        return list(dict.fromkeys(self.track_ids.tolist()))

    def subset(self, mask: np.ndarray) -> FeatureSet:
        """Rows where ``mask`` is true (boolean array or indices)."""
        return FeatureSet(
            self.X[mask],
            self.track_ids[mask],
            self.window[mask],
            self.segment[mask],
            self.row_genres[mask],
            list(self.genres),
            self.config,
            list(self.skipped),
        )

    def select(self, track_ids: Sequence[str]) -> FeatureSet:
        """Rows of the given tracks."""
        return self.subset(np.isin(self.track_ids, np.asarray(list(track_ids))))

    def split(self, split: dict[str, str]) -> dict[str, FeatureSet]:
        """Partition by a ``track_id -> part`` map (see :mod:`genrelib.datasets`); rows of unlisted tracks drop."""
        parts = np.array([split.get(t, "") for t in self.track_ids])
        return {p: self.subset(parts == p) for p in ("train", "valid", "test")}

    def save(self, path: str | Path) -> Path:
        """Write a ``.npz`` (float32 features plus ids, indices, genres and the config), atomically.

        ``X`` is stored losslessly as little-endian float32 split into byte planes: the plane holding the
        sign and exponent is deflated (it compresses about 3:1), the mantissa planes, which are noise to a
        compressor, are stored as they are. Any ``np.load`` reads the file; :meth:`load` reassembles ``X``.

        Raises
        ------
        FeatureError
            When the file cannot be written (a full disk, a read-only or missing folder, ``path`` is a folder):
            the message names the path, the reason and the fix; no partial file is left behind.
        """
        meta = {"genres": self.genres, "config": self.config.to_dict(), "skipped": self.skipped}
        planes = np.ascontiguousarray(self.X.astype("<f4").reshape(-1).view(np.uint8).reshape(-1, 4).T)
        try:
            return atomic_save_npz(
                Path(path),
                stored={"X_mantissa": planes[:3]},
                deflated={
                    "X_exponent": planes[3],
                    "X_shape": np.array(self.X.shape, np.int64),
                    "track_ids": self.track_ids.astype(str),
                    "window": self.window,
                    "segment": self.segment,
                    "row_genres": self.row_genres.astype(str),
                    "meta": np.array(jsonio.dumps(meta)),
                },
            )
        except OSError as exc:
            raise FeatureError(write_error(path, exc)) from exc

    def save_table(self, path: str | Path) -> Path:
        """Write :meth:`table` as CSV, atomically (a hidden ``.<name>.part`` file beside it, then a rename).

        Raises
        ------
        FeatureError
            When the file cannot be written (see :meth:`save`); the ``.part`` file is removed.
        """
        path = Path(path)
        df = self.table()
        tmp = path.with_name(f".{path.name}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(tmp, index=False)
            tmp.replace(path)
        except OSError as exc:
            raise FeatureError(write_error(path, exc, example="features.csv")) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureSet:
        """Read a file written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                planes = np.concatenate([z["X_mantissa"], z["X_exponent"][None, :]])
                X = np.ascontiguousarray(planes.T).view("<f4").reshape(tuple(z["X_shape"]))
                return cls(
                    X=X.astype(np.float32, copy=False),
                    track_ids=z["track_ids"],
                    window=z["window"],
                    segment=z["segment"],
                    row_genres=z["row_genres"],
                    genres=meta["genres"],
                    config=FeatureConfig.from_dict(meta["config"]),
                    skipped=[tuple(s) for s in meta["skipped"]],
                )
        except (OSError, EOFError, KeyError, IndexError, TypeError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
            raise FeatureError(
                f"{path}: not a readable genrelib feature file ({exc}); delete it and extract again"
            ) from exc

    def problem(self, dataset, config: FeatureConfig) -> str | None:
        """Why these features (read back from a cache) are not ``dataset``'s ``config`` features; None when they are.

        Checks the configuration, the genre list, the shapes of every column, that every track is a track of
        ``dataset`` with its genre (its folder's name: a hand-edited label is caught here) and that every value
        is finite.
        """
        genre_of = {t.track_id: t.genre or "" for t in dataset.tracks}
        n = len(self.X)
        if self.config != config:
            return "it holds features of another configuration"
        if list(self.genres) != list(dataset.genres):
            return f"its genres {list(self.genres)} are not the data's {list(dataset.genres)}"
        if tuple(self.X.shape[1:]) != tuple(config.row_shape) or any(
            len(a) != n for a in (self.track_ids, self.window, self.segment, self.row_genres)
        ):
            return "its columns have inconsistent shapes"
        strangers = sorted(set(self.track_ids.tolist()) - set(genre_of))
        if strangers:
            return f"it holds tracks that are not in the data ({strangers[0]!r} ...)"
        wrong = [(t, g) for t, g in zip(self.track_ids.tolist(), self.row_genres.tolist()) if genre_of[t] != g]
        if wrong:
            t, g = wrong[0]
            return f"it labels {t} as {g!r}, but the track is in the folder {genre_of[t]!r}"
        if not np.isfinite(self.X).all():
            return "it holds values that are not finite"
        return None

    def table(self) -> pandas.DataFrame:  # noqa: F821
        """Per-window features as a table: ``filename``, ``window``, the named columns (the 57 of the GTZAN
        table for ``summary``; :func:`musicnn_columns` for ``musicnn``), ``label``."""
        import pandas as pd

        if not self.config.per_window:
            raise FeatureError(
                f"a table needs per-window features (summary or musicnn), this set is {self.config.kind!r}"
            )
        columns = SUMMARY_COLUMNS if self.config.kind == "summary" else musicnn_columns(self.config.embedding_model)
        df = pd.DataFrame(self.X.astype(np.float64), columns=columns)
        df.insert(0, "filename", [Path(t).name for t in self.track_ids])
        df.insert(1, "window", self.window)
        df["label"] = self.row_genres
        return df


def describe(fs: FeatureSet):
    """A one-column table describing a feature set: kind, shape, tracks, genres, skipped, config hash."""
    import pandas as pd

    facts = {
        "kind": fs.config.kind,
        "X shape": str(fs.X.shape),
        "dtype": str(fs.X.dtype),
        "rows": len(fs),
        "tracks": len(fs.tracks),
        "genres": ", ".join(fs.genres),
        "skipped files": len(fs.skipped),
        "config hash": fs.config.hash(),
        "size (MB)": round(fs.X.nbytes / 1e6, 1),
    }
    return pd.DataFrame({"value": facts})


def rows_per_genre(fs: FeatureSet):
    """Rows and tracks per genre."""
    import pandas as pd

    df = pd.DataFrame({"genre": fs.row_genres, "track": fs.track_ids})
    out = df.groupby("genre").agg(rows=("track", "size"), tracks=("track", "nunique"))
    return out.reindex(fs.genres, fill_value=0)


def atomic_save_npz(path: Path, *, stored: dict[str, np.ndarray], deflated: dict[str, np.ndarray]) -> Path:
    """Write arrays as an ``.npz`` through a temporary file and a rename, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as zf:
            for arrays, method in ((stored, zipfile.ZIP_STORED), (deflated, zipfile.ZIP_DEFLATED)):
                for name, arr in arrays.items():
                    buf = io.BytesIO()
                    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
                    zf.writestr(name + ".npy", buf.getbuffer(), compress_type=method, compresslevel=1)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; the result should be an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_error(path: str | Path, exc: OSError, *, example: str = "features.npz") -> str:
    """One line saying why ``path`` could not be written and what to do about it (``example``: a file name to
    suggest when ``path`` is a folder)."""
    import errno

    path = Path(path)
    if path.is_dir():  # os.replace onto a folder fails with EISDIR, ENOTEMPTY or EEXIST depending on the folder
        return f"cannot write {path}: it is a folder; give a file name (e.g. {path / example})"
    fixes = {
        errno.ENOSPC: "the disk is full; free space there or write to a folder on another disk",
        errno.EDQUOT: "the disk quota is used up; free space there or write to a folder on another disk",
        errno.EROFS: "the file system is read-only; write to a writable folder",
        errno.EACCES: "permission denied; make the folder writable (chmod u+w) or write to another folder",
        errno.EPERM: "permission denied; make the folder writable (chmod u+w) or write to another folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder; give another path",
        errno.EFBIG: "the file is larger than this process may write (ulimit -f); raise the limit or write elsewhere",
    }
    why = fixes.get(exc.errno, f"{exc.strerror or exc}; check the path and the disk")
    return f"cannot write {path}: {why}"
