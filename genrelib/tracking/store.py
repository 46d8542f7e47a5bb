"""Whether a SQLite tracking store can be written, checked before MLflow touches it: a store that is locked by
another process (waited for, within a bound, with a message first), read-only, in a folder that cannot be made, or
not a database is one line naming it and the fix, never SQLAlchemy's traceback (:func:`check_store`); and the same
failures met later, in the middle of a command, put in the same words (:func:`store_problem`)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from genrelib.errors import TrackingError
from genrelib.progress import logger as notice

#: Seconds to wait for another process's lock on the store before giving up (``$GENRELIB_STORE_WAIT`` overrides).
STORE_WAIT = 30.0
#: What MLflow's store (SQLAlchemy on sqlite3) says when the store, not genrelib, is the problem.
_STORE_FAILURES = {
    "database is locked": "is locked by another process",
    "readonly database": "is read-only",
    "unable to open database file": "cannot be opened (a missing or unwritable folder?)",
    "file is not a database": "is not an SQLite database",
    "database disk image is malformed": "is damaged (malformed database)",
    "disk i/o error": "cannot be written (disk I/O error)",
}
FIX = "point MLFLOW_TRACKING_URI at another store (e.g. sqlite:///$PWD/mlruns/mlflow.db)"


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` store; None for any other store."""
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def store_wait() -> float:
    try:
        return max(0.0, float(os.environ.get("GENRELIB_STORE_WAIT", STORE_WAIT)))
    except ValueError:
        return STORE_WAIT


def check_store(uri: str) -> None:
    """Refuse a SQLite store that cannot be written, in one line naming it and the fix.

    A store locked by another process is waited for (:func:`store_wait` seconds, a message first on the
    ``genrelib.progress`` logger). Other stores (a tracking server) are not checked here.

    Raises
    ------
    TrackingError
    """
    db = sqlite_path(uri)
    if db is None:
        return
    folder = db.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(
            f"the tracking store {db} cannot be made: its folder {folder} cannot be created ({exc.strerror or exc}); "
            f"{FIX}"
        ) from exc
    if db.exists():
        if not db.is_file():
            raise TrackingError(f"the tracking store {db} is not a file; {FIX}")
        try:
            with open(db, "rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise TrackingError(f"the tracking store {db} cannot be read ({exc.strerror or exc}); {FIX}") from exc
        if head and head != b"SQLite format 3\x00":
            raise TrackingError(f"the tracking store {db} is not an SQLite database; move it away, or {FIX}")
        if not os.access(db, os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
            raise TrackingError(
                f"the tracking store {db} is read-only (it, or its folder {folder}); make both writable "
                f"(chmod u+w), or {FIX}"
            )
        _wait_for_lock(db)
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise TrackingError(f"the tracking store {db} cannot be made: its folder {folder} is read-only; {FIX}")


def _try_write_lock(db: Path, timeout: float) -> str | None:
    """None when a write lock on ``db`` can be had within ``timeout`` seconds (then released); else sqlite's words."""
    con = sqlite3.connect(db, timeout=timeout)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
        return None
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        con.close()


def _wait_for_lock(db: Path) -> None:
    why = _try_write_lock(db, 0.2)
    if why is None:
        return
    if "locked" in why:
        wait = store_wait()
        notice.warning("the tracking store %s is locked by another process; waiting up to %g s", db, wait)
        why = _try_write_lock(db, wait)
        if why is None:
            return
        if "locked" in why:
            raise TrackingError(
                f"the tracking store {db} is locked by another process (still after {wait:g} s); let it finish or "
                f"stop it (another genrelib, a stuck `mlflow ui`?), set GENRELIB_STORE_WAIT to wait longer, or {FIX}"
            )
    raise TrackingError(f"the tracking store {db} {_words(why)}; {FIX}")


def _words(why: str) -> str:
    low = why.lower()
    return next((w for k, w in _STORE_FAILURES.items() if k in low), f"cannot be used ({why})")


def store_problem(exc: BaseException, uri: str) -> str | None:
    """One line for an exception that is the store's failure (sqlite3 or SQLAlchemy's, anywhere in its chain),
    naming the store and the fix; None for any other exception."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc).lower()
        mod = type(exc).__module__
        if (mod.startswith(("sqlite3", "sqlalchemy")) or "sqlite3" in text) and any(k in text for k in _STORE_FAILURES):
            store = sqlite_path(uri) or uri
            return f"the tracking store {store} {_words(text)}; {FIX}"
        exc = exc.__cause__ or exc.__context__
    return None
