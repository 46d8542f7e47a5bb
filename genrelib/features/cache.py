"""Where extracted features are cached: one entry per audio file, keyed by the file's content, the feature
configuration and :data:`FEATURES_VERSION`.

An entry holds one file's rows (float32, lossless) with their window and segment indices; it names no track or
genre (those come from the data being extracted), so any subset or superset of files extracted before, in any
folder, is read back rather than computed again, and two identical files share one entry. Entries live under
``<cache>/features/tracks/<kind>-<config hash>-v<FEATURES_VERSION>/<2 hex digits>/<sha256 of the file>.npz``; each
is written atomically and checked when read: one that is unreadable or does not fit the configuration is
reported and computed again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from genrelib.datasets.tracks import Dataset
from genrelib.errors import FeatureError
from genrelib.features.compute import FileFeatures
from genrelib.features.config import FeatureConfig
from genrelib.features.digests import Digests

#: Bumped when the same configuration and audio give other features (the cache and stores of older versions are then
#: computed again, not trusted). 2: the DC offset is removed where audio enters (genrelib.audio.stream).
FEATURES_VERSION = 2
_VERSION_KEY = "" if FEATURES_VERSION == 1 else f"-v{FEATURES_VERSION}"


def default_cache_dir() -> Path:
    """``$GENRELIB_CACHE`` or ``~/.cache/genrelib``."""
    return Path(os.environ.get("GENRELIB_CACHE", Path.home() / ".cache" / "genrelib"))


def cache_path(dataset: Dataset, config: FeatureConfig, cache_dir: str | Path | None = None) -> Path:
    """The key of a whole feature set as a path: ``<cache>/features/<kind>-<key>.npz``, keyed by the configuration
    and the data manifest. The sharded store names its folders by this key (:func:`genrelib.features.store
    .store_path`); the feature cache itself is per file (:func:`entry_folder`)."""
    key = hashlib.sha256(f"{config.hash()}-{dataset.manifest_hash()}{_VERSION_KEY}".encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / "features" / f"{config.kind}-{key}.npz"


def entry_folder(config: FeatureConfig, cache_dir: str | Path | None = None) -> Path:
    """The folder of the per-file entries of ``config``: ``<cache>/features/tracks/<kind>-<hash>-v<version>``."""
    name = f"{config.kind}-{config.hash()}-v{FEATURES_VERSION}"
    return Path(cache_dir or default_cache_dir()) / "features" / "tracks" / name


def entry_path(digest: str, config: FeatureConfig, cache_dir: str | Path | None = None) -> Path:
    """Where the features by ``config`` of the file whose content hashes to ``digest`` are cached."""
    return entry_folder(config, cache_dir) / digest[:2] / f"{digest}.npz"


def lookup(
    paths: list[Path], config: FeatureConfig, cache_dir: str | Path | None = None
) -> list[tuple[Path | None, FileFeatures | None, str | None]]:
    """Look up the cached features of each file, over threads (hashing and reading release the GIL). A file's
    content hash is read from :class:`~genrelib.features.digests.Digests` where the file is unchanged.

    Returns
    -------
    list of (entry, features, problem)
        For each path: where its entry is (None when the file cannot be read: the extraction reports it), the
        features when the entry is there and good, else None, and why a present entry is bad (see
        :func:`read_entry`).
    """
    from concurrent.futures import ThreadPoolExecutor

    digests = Digests(Path(cache_dir or default_cache_dir()))

    def one(path: Path) -> tuple[Path | None, FileFeatures | None, str | None]:
        digest = digests.digest(path)
        if digest is None:
            return None, None, None
        entry = entry_path(digest, config, cache_dir)
        return (entry, *read_entry(entry, config))

    if len(paths) < 8:
        found = [one(p) for p in paths]
    else:
        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            found = list(pool.map(one, paths))
    digests.save()
    return found


def read_entry(path: Path, config: FeatureConfig) -> tuple[FileFeatures | None, str | None]:
    """Read one entry written by :func:`write_entry`.

    Returns
    -------
    features : FileFeatures or None
        None when the entry is absent or bad.
    problem : str or None
        Why a present entry cannot be used (unreadable, another configuration, shapes that do not fit, values that
        are not finite), starting with its path; None when it can (or is absent).
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            X, meta = z["X"], json.loads(str(z["meta"]))
        window = np.array(meta["window"], np.int32)
        starts = np.array(meta["window_start"], np.float32)
        ff = FileFeatures(X=X, window=window, segment=np.array(meta["segment"], np.int32), window_start=starts[window])
    except FileNotFoundError:
        return None, None
    except (OSError, EOFError, KeyError, IndexError, TypeError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        return None, f"{path}: unreadable ({type(exc).__name__}: {exc})"
    if meta.get("config") != config.to_dict() or meta.get("version") != FEATURES_VERSION:
        return None, f"{path}: it holds features of another configuration"
    n = len(X)
    if (
        X.dtype != np.float32
        or tuple(X.shape[1:]) != tuple(config.row_shape)
        or len(window) != n
        or len(ff.segment) != n
    ):
        return None, f"{path}: its arrays do not fit the configuration"
    if not np.isfinite(X).all():
        return None, f"{path}: it holds values that are not finite"
    return ff, None


def write_entry(path: Path, ff: FileFeatures, config: FeatureConfig) -> None:
    """Write one file's features atomically (a temporary file beside it, then a rename): an ``.npz`` of ``X``
    (float32, stored as it is) and ``meta`` (JSON: the configuration, :data:`FEATURES_VERSION`, each row's window
    and segment, each window's start in seconds). Two members, because each costs about 0.2 ms to read.

    Raises
    ------
    FeatureError
        When it cannot be written; the message names the path, the reason and the fix.
    """
    from genrelib.features.featureset import atomic_save_npz, write_error

    window = np.asarray(ff.window, np.int64)
    starts = np.zeros(int(window.max()) + 1 if len(window) else 0, np.float32)
    starts[window] = ff.window_start
    meta = {
        "config": config.to_dict(),
        "version": FEATURES_VERSION,
        "window": window.tolist(),
        "segment": np.asarray(ff.segment).tolist(),
        "window_start": starts.tolist(),
    }
    try:
        atomic_save_npz(
            path,
            stored={"X": np.ascontiguousarray(ff.X, dtype=np.float32)},
            deflated={"meta": np.array(json.dumps(meta))},
        )
    except OSError as exc:
        raise FeatureError(write_error(path, exc)) from exc
