"""Content hashes of audio files, remembered by path and file signature so that an unchanged file is not read again.

The feature cache is keyed by each file's content (SHA-256). Hashing reads the whole file (about 2 ms per 30 s
wav here, minutes for a collection of hundreds of GB), so, as git's index does, the hash of a file is remembered
with its signature: size, modification and status-change times in nanoseconds, inode and device. Any write to the
file changes its status-change time (which no program can set back), so a file whose signature is unchanged has the
content it was hashed with. A file changed in the last :data:`RACY_SECONDS` is hashed every time and not
remembered (a change within the file system's timestamp granularity would not show in its times). The record is
one JSON file per cache folder (:func:`memo_path`), written atomically; one that is malformed is set aside (a
warning) and the files hashed again. Delete it to have every file hashed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: A file whose last change is more recent than this (seconds) is hashed each time, not remembered.
RACY_SECONDS = 2.0
_FORMAT = "genrelib-file-digests-1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def content_hash(path: str | Path) -> str | None:
    """SHA-256 of a file's bytes, or None when it cannot be read (deleted or moved since the scan: the extraction
    then reports it)."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def memo_path(cache_dir: Path) -> Path:
    """The record of the hashes of files under the cache folder ``cache_dir``."""
    return Path(cache_dir) / "features" / "tracks" / "file-digests.json"


def _signature(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


class Digests:
    """The content hashes of files, read from the record under ``cache_dir`` where a file is unchanged.

    Parameters
    ----------
    cache_dir : Path
        The cache folder.
    remember : bool
        Read and update the record (False: hash every file, write nothing).
    """

    def __init__(self, cache_dir: Path, *, remember: bool = True):
        self.path = memo_path(cache_dir)
        self.remember = remember
        self.known = self._read() if remember else {}
        self.new: dict[str, list] = {}

    def _read(self) -> dict[str, list]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            data, why = None, f"{type(exc).__name__}: {exc}"
        else:
            why = "not genrelib's format"
        if not (isinstance(data, dict) and data.get("format") == _FORMAT and isinstance(data.get("files"), dict)):
            logger.warning("%s is not a record of file hashes (%s); every file is hashed again", self.path, why)
            return {}
        return {k: v for k, v in data["files"].items() if _valid(v)}

    def digest(self, path: str | Path) -> str | None:
        """The SHA-256 of ``path``'s content (None when it cannot be read); thread-safe."""
        key = os.path.abspath(path)
        try:
            st = os.stat(path)
        except OSError:
            return None
        known = self.known.get(key)
        if known is not None and known[:5] == _signature(st):
            return known[5]
        digest = content_hash(path)
        if digest is None or not self.remember or time.time() - max(st.st_mtime, st.st_ctime) < RACY_SECONDS:
            return digest
        try:
            unchanged = _signature(os.stat(path)) == _signature(st)
        except OSError:
            unchanged = False
        if unchanged:  # not written to while it was read
            self.new[key] = [*_signature(st), digest]
        return digest

    def save(self) -> None:
        """Add the files hashed since to the record (atomically); files that are gone are dropped from it. A record
        that cannot be written only means hashing again next time."""
        if not self.new:
            return
        files = {k: v for k, v in {**self._read(), **self.new}.items() if os.path.exists(k)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump({"format": _FORMAT, "files": files}, f)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            logger.info("the record of file hashes %s was not written (%s)", self.path, exc)
        self.new = {}


def _valid(v) -> bool:
    return (
        isinstance(v, list)
        and len(v) == 6
        and all(type(x) is int for x in v[:5])
        and isinstance(v[5], str)
        and _HEX64.fullmatch(v[5]) is not None
    )
