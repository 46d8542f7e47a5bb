"""Finding labelled audio on disk and splitting it by track.

A data folder is laid out ``<root>/<genre>/<file>``. :func:`find_root` also accepts the folders above a
Kaggle GTZAN download (``Data/genres_original``) and the original tarball's ``genres/`` folder. Genres are
the sorted names of the genre folders, so labels never depend on directory order.

Splits are always by track: every segment of a track lands in the same part.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrelib.config import AUDIO_EXTENSIONS, UNSUPPORTED_EXTENSIONS
from genrelib.errors import AudioError, DatasetError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Track:
    """One audio file of a data folder.

    Attributes
    ----------
    path : Path
        The file.
    genre : str or None
        Its genre (the name of its genre folder); None for an unlabelled file.
    track_id : str
        Its path relative to the data root, with ``/`` separators (``blues/blues.00012.wav``).
    """

    path: Path
    genre: str | None
    track_id: str


@dataclass
class Dataset:
    """The result of :func:`scan`: usable tracks, skipped files with reasons, and the genre list."""

    root: Path
    tracks: list[Track]
    genres: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Number of usable tracks per genre, in genre order."""
        out = {g: 0 for g in self.genres}
        for t in self.tracks:
            out[t.genre] += 1
        return out

    def labels(self) -> np.ndarray:
        """Integer label of every track: its genre's index in :attr:`genres`."""
        index = {g: i for i, g in enumerate(self.genres)}
        return np.array([index[t.genre] for t in self.tracks], dtype=np.int64)

    def manifest(self) -> dict:
        """A JSON-able record of the data: root, genres, each track's id, size and mtime, skipped files."""
        rows = [[t.track_id, t.genre, *file_signature(t.path)] for t in self.tracks]
        return {"root": str(self.root), "genres": self.genres, "tracks": rows, "skipped": self.skipped}

    def subset(self, tracks: list[Track]) -> Dataset:
        """The same folder with only ``tracks`` (and only the genres they have, in order; no skipped files)."""
        present = {t.genre for t in tracks}
        return Dataset(root=self.root, tracks=list(tracks), genres=[g for g in self.genres if g in present])

    def table(self, split: dict[str, str] | None = None):
        """One row per track: ``track_id``, ``genre`` and, given a split, its ``part`` ("" when in none)."""
        import pandas as pd

        df = pd.DataFrame({"track_id": [t.track_id for t in self.tracks], "genre": [t.genre for t in self.tracks]})
        if split is not None:
            df["part"] = [split.get(t.track_id, "") for t in self.tracks]
        return df

    def manifest_hash(self) -> str:
        """Hash of the tracks' ids, genres, sizes and mtimes: changes when the data changes."""
        m = self.manifest()
        payload = json.dumps({"genres": m["genres"], "tracks": m["tracks"]}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def file_signature(path: Path) -> tuple[int | None, int | None]:
    """A file's size and whole-second modification time, or ``(None, None)`` when it has gone (deleted or moved
    since the folder was scanned): the file is then reported when it is read, not here as a traceback."""
    try:
        st = path.stat()
    except OSError:
        return None, None
    return st.st_size, int(st.st_mtime)


def find_root(root: str | Path) -> Path:
    """Resolve the genre-folder level of a data folder.

    Accepts ``<root>/<genre>/...`` itself, a Kaggle GTZAN download (``.../Data/genres_original``, or the
    ``Data`` folder, or the folder above it) and the original tarball (``genres/``).

    Raises
    ------
    DatasetError
        When ``root`` does not exist or is not a folder.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"data folder {root} does not exist; give the folder that holds <genre>/<file> folders")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file; give the folder that holds <genre>/<file> folders")
    for candidate in ("genres_original", "Data/genres_original", "genres"):
        sub = root / candidate
        if sub.is_dir():
            return sub
    return root


def _audio_files(folder: Path, problems: list[tuple[Path, str]] | None = None) -> list[Path]:
    """The files under ``folder``, recursively and sorted; names starting with "." are passed over.

    Sub-folders reached through a link are followed, each real folder once. A sub-folder that cannot be listed
    (permissions), a second link to a folder already read, and a broken link whose name looks like audio or like
    a folder are appended to ``problems`` as ``(path, reason)``, and logged, rather than passed over in silence
    (``Path.rglob`` skips all of them without a word).
    """
    out: list[Path] = []
    seen: dict[tuple[int, int], Path] = {}

    def note(path: Path, why: str) -> None:
        logger.warning("%s: %s", path, why)
        if problems is not None:
            problems.append((path, why))

    def walk(d: Path) -> None:
        try:
            st = d.stat()
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            note(
                d,
                f"cannot read this folder ({exc.strerror or exc}), so its files are left out; make it readable "
                "(chmod -R a+rX) or run as its owner",
            )
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:
            first = Path(os.path.relpath(seen[key], folder.parent)).as_posix()
            note(d, f"the same folder as {first} (a link), read once; remove the link so that no track counts twice")
            return
        seen[key] = d
        for e in entries:
            if e.name.startswith("."):
                continue
            p = Path(e.path)
            try:
                is_dir, is_file = e.is_dir(), e.is_file()  # both follow links
            except OSError:  # a link loop
                is_dir = is_file = False
            if is_dir:
                walk(p)
            elif is_file:
                out.append(p)
            elif e.is_symlink() and (p.suffix.lower() in AUDIO_EXTENSIONS + UNSUPPORTED_EXTENSIONS or not p.suffix):
                try:
                    os.stat(p)
                    why = "not a file or folder"
                except OSError as exc:
                    why = exc.strerror or str(exc)
                note(
                    p,
                    f"a broken link to {os.readlink(p)} ({why}), so nothing under this name is read; fix or "
                    "remove the link",
                )

    walk(folder)
    return sorted(out)


def check_file(path: Path, *, full: bool = False) -> None:
    """Raise :class:`AudioError` when ``path`` cannot be read as audio.

    Parameters
    ----------
    path : Path
    full : bool
        False (cheap): open the file and read its header; a file cut short in a way its header does not show, one
        that decodes to NaN, or a silent one passes. True: also decode it to the end as feature extraction does
        (at the file's own rate, nothing resampled), which finds those too: about 3 ms per 30 s wav, 15 ms per mp3.
    """
    from genrelib.audio import _open, stream

    with _open(path) as f:
        native = f.samplerate
    if full:
        for _ in stream(path, sr=native):
            pass


def scan(root: str | Path, *, genres: list[str] | None = None, check: bool = True, full: bool = False) -> Dataset:
    """List the labelled audio files under a data folder.

    Parameters
    ----------
    root : str or Path
        A folder laid out ``<root>/<genre>/<file>`` (see :func:`find_root`).
    genres : list of str, optional
        Keep only these genres (in this order). Default: every genre folder, sorted by name.
    check : bool
        Open each file's header and list unreadable ones in :attr:`Dataset.skipped` with the reason.
    full : bool
        With ``check``: decode every file to the end (:func:`check_file` with ``full=True``), so that files that
        only decoding shows to be bad (truncated, NaN samples, silent) are skipped here too, as feature extraction
        would skip them.

    Sub-folders that cannot be read and broken links are listed in :attr:`Dataset.skipped` too (their path
    relative to the root, a folder's ending in "/"), with the reason.

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        When there are no genre folders or no usable audio at all.
    """
    base = find_root(root)
    try:
        folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DatasetError(
            f"cannot read the data folder {base} ({exc.strerror or exc}); make it readable "
            "(chmod -R a+rX) or run as its owner"
        ) from exc
    found = [p.name for p in folders]
    if not folders:
        raise DatasetError(f"no genre folders under {base}; expected <root>/<genre>/<file>.wav")
    if genres is not None:
        missing = [g for g in genres if g not in found]
        if missing:
            raise DatasetError(f"genre folders {missing} not found under {base}; it has {found}")
        folders = [base / g for g in genres]
    tracks: list[Track] = []
    skipped: list[tuple[str, str]] = []
    for folder in folders:
        problems: list[tuple[Path, str]] = []
        files = _audio_files(folder, problems)
        for path, why in problems:
            rel = path.relative_to(base).as_posix()
            skipped.append((rel + ("/" if path.is_dir() else ""), why))
        for path in files:
            rel = path.relative_to(base).as_posix()
            ext = path.suffix.lower()
            if ext not in AUDIO_EXTENSIONS:
                if ext in UNSUPPORTED_EXTENSIONS:
                    skipped.append((rel, f"{ext} files are not supported; convert to flac/wav/mp3"))
                continue  # not audio at all (cover art, notes): ignored silently
            if check:
                try:
                    check_file(path, full=full)
                except AudioError as exc:
                    logger.warning("skipping %s", exc)
                    skipped.append((rel, str(exc)))
                    continue
            tracks.append(Track(path=path, genre=folder.name, track_id=rel))
    kept = sorted({t.genre for t in tracks})
    names = [f.name for f in folders if f.name in kept]
    if not tracks:
        raise DatasetError(
            f"no readable audio files under {base} (looked for {', '.join(AUDIO_EXTENSIONS)} "
            f"in {len(folders)} genre folders; {len(skipped)} skipped)"
        )
    return Dataset(root=base, tracks=tracks, genres=names, skipped=skipped)


def find_audio(paths: list[str | Path]) -> list[Path]:
    """Expand files and folders (searched recursively) into a list of audio files, each file once.

    Raises
    ------
    DatasetError
        When a path does not exist or a folder holds no audio.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise DatasetError(f"{p}: no such file or folder")
        if p.is_dir():
            files = [f for f in _audio_files(p) if f.suffix.lower() in AUDIO_EXTENSIONS + UNSUPPORTED_EXTENSIONS]
            if not files:
                raise DatasetError(f"{p}: no audio files in this folder (looked for {', '.join(AUDIO_EXTENSIONS)})")
            out.extend(files)
        else:
            out.append(p)
    return unique_files(out)


def unique_files(files: list[Path]) -> list[Path]:
    """Each file once, in first-seen order: ``song.mp3`` given beside a folder that holds it, a path given twice,
    or ``./a.wav`` and ``a.wav`` are one file (compared by resolved path)."""
    seen: set[Path] = set()
    out = []
    for f in files:
        key = Path(f).resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def first_per_genre(dataset: Dataset) -> list[Track]:
    """The first track of every genre, in genre order."""
    seen: dict[str, Track] = {}
    for t in dataset.tracks:
        seen.setdefault(t.genre, t)
    return [seen[g] for g in dataset.genres if g in seen]


def summary_table(dataset: Dataset):
    """Tracks per genre as a DataFrame (with a total row)."""
    import pandas as pd

    counts = dataset.counts()
    df = pd.DataFrame({"genre": list(counts) + ["total"], "tracks": list(counts.values()) + [sum(counts.values())]})
    return df.set_index("genre")


def skipped_table(skipped: list[tuple[str, str]]):
    """Skipped files and the reasons, as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(skipped, columns=["file", "reason"])
