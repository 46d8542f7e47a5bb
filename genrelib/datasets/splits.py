"""Splits by track: random (stratified, seeded), GTZAN's fault-filtered lists, and split files.

A track is never in two parts; a split maps each track id to ``train``, ``valid`` or ``test``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

import numpy as np

from genrelib.config import AUDIO_EXTENSIONS, SEED, UNSUPPORTED_EXTENSIONS
from genrelib.datasets.tracks import Dataset
from genrelib.errors import DatasetError

logger = logging.getLogger(__name__)


SPLIT_NAMES = ("train", "valid", "test")


def random_split(
    dataset: Dataset, *, test_size: float = 0.2, valid_size: float = 0.2, seed: int = SEED
) -> dict[str, str]:
    """Split tracks into train / valid / test, stratified by genre, reproducible by seed.

    ``test_size`` is a fraction of all tracks; ``valid_size`` a fraction of what remains (as the original
    notebook did with segments, but here with whole tracks).

    Returns
    -------
    dict
        ``track_id -> "train" | "valid" | "test"``.
    """
    from sklearn.model_selection import train_test_split

    ids = np.array([t.track_id for t in dataset.tracks])
    y = dataset.labels()
    counts = np.bincount(y)
    if (counts[counts > 0] < 3).any():
        raise DatasetError(
            f"every genre needs at least 3 tracks for a train/valid/test split; counts: {dataset.counts()}"
        )
    n = len(ids)
    n_genres = len(set(y.tolist()))
    # Stratification needs at least one track per genre in each part.
    n_test = max(int(round(test_size * n)), n_genres)
    rest_ids, test_ids, rest_y, _ = train_test_split(ids, y, test_size=n_test, stratify=y, random_state=seed)
    n_valid = max(int(round(valid_size * len(rest_ids))), n_genres)
    train_ids, valid_ids = train_test_split(rest_ids, test_size=n_valid, stratify=rest_y, random_state=seed)
    out = {i: "train" for i in train_ids}
    out.update({i: "valid" for i in valid_ids})
    out.update({i: "test" for i in test_ids})
    return out


def gtzan_split_lists() -> dict[str, list[str]]:
    """The fault-filtered, artist-conscious GTZAN split (Kereliuk, Sturm & Larsen 2015).

    Returns ``{"train": [...443], "valid": [...197], "test": [...290]}`` of ids like ``blues/blues.00012.wav``.
    Lists by Jongpil Lee, MIT license (``genrelib/data/gtzan_splits/LICENSE``).
    """
    folder = resources.files("genrelib") / "data" / "gtzan_splits"
    return {name: (folder / f"{name}_filtered.txt").read_text().split() for name in SPLIT_NAMES}


def track_key(track_id: str) -> str:
    """The key that matches a track across copies of a data folder: its path under the data root without the
    audio extension, ``<genre>/<sub-folders>/<file stem>`` (``rock/cd1/01``; ``blues/blues.00012`` in GTZAN).

    A track's identity is its whole path under its genre, so ``rock/cd1/01.wav`` and ``rock/cd2/01.wav`` stay two
    tracks in splits, caches and records. Leaving out the extension lets the original tarball's ``.au`` files (or a
    ``.flac`` copy) match the ``.wav`` names of the GTZAN lists and of a model's recorded split.
    """
    p = PurePosixPath(track_id.replace("\\", "/").strip("/"))
    if p.suffix.lower() in AUDIO_EXTENSIONS or p.suffix.lower() in UNSUPPORTED_EXTENSIONS:
        p = p.with_suffix("")
    return str(p)


_gtzan_key = track_key


def gtzan_split(dataset: Dataset) -> dict[str, str]:
    """Assign a GTZAN folder's tracks to the fault-filtered train / valid / test parts.

    Tracks not in the lists (replicas, mislabelings, distortions, or files that are not GTZAN) are
    left out of every part.

    Raises
    ------
    DatasetError
        When no track of ``dataset`` is in the lists (the folder is not GTZAN).
    """
    lists = gtzan_split_lists()
    where = {_gtzan_key(i): part for part, ids in lists.items() for i in ids}
    out = {t.track_id: where[_gtzan_key(t.track_id)] for t in dataset.tracks if _gtzan_key(t.track_id) in where}
    if not out:
        raise DatasetError(
            f"none of the {len(dataset.tracks)} tracks under {dataset.root} is in the GTZAN fault-filtered lists "
            "(names like blues/blues.00012.wav); use the random split for other data"
        )
    left = len(dataset.tracks) - len(out)
    if left:
        logger.info("gtzan-ff split: %d tracks are not in the fault-filtered lists and are left out", left)
    return out


#: How a split file names its parts: the start of a list file's name (``train_filtered.txt``, ``val.txt``), or
#: the first column of a two-column file.
_PART_NAMES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "test": "test"}


SPLIT_FILE_FORMAT = (
    "a folder holding one list per part (train*.txt, valid*.txt or val*.txt, test*.txt, as "
    "genrelib/data/gtzan_splits), three list files separated by commas in the order train,valid,test, or one file "
    "of '<part> <track>' lines; a track is written <genre>/<file> (blues/blues.00012.wav) and matched by genre "
    "folder and file stem"
)


@dataclass
class SplitFile:
    """A user's train / valid / test track lists, read by :func:`read_split_file`.

    Attributes
    ----------
    spec : str
        What was given (a folder, ``train.txt,valid.txt,test.txt`` or one file).
    files : list of Path
        The files read.
    parts : dict
        ``track key -> part`` (keys as :func:`track_key` gives them: ``blues/blues.00012``).
    digest : str
        Hash of the lists' content (parts and track keys, sorted): the same lists give the same digest
        wherever the files are.
    """

    spec: str
    files: list[Path]
    parts: dict[str, str]
    digest: str

    def names(self) -> str:
        """The files' names, comma-separated (for logs and messages)."""
        return ",".join(str(f) for f in self.files)


def _part_of_name(name: str) -> str | None:
    """The part a list file's name stands for (``train_filtered.txt`` -> train), or None."""
    stem = Path(name).name.lower()
    for prefix in sorted(_PART_NAMES, key=len, reverse=True):
        if stem.startswith(prefix):
            return _PART_NAMES[prefix]
    return None


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read split file {path}: {exc}; give {SPLIT_FILE_FORMAT}") from exc
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def read_split_file(spec: str | Path) -> SplitFile:
    """Read a user's train / valid / test track lists (the format of the shipped GTZAN lists).

    ``spec`` is one of:

    - a folder holding one list per part, named by what its file name starts with: ``train``, ``valid`` or
      ``val``, ``test`` (``genrelib/data/gtzan_splits`` and its ``train_filtered.txt`` ... as they are);
    - three list files separated by commas, in the order train, valid, test;
    - one file of ``<part> <track>`` lines (tab or spaces between; part ``train``, ``valid``/``val`` or ``test``).

    A list holds one track per line, written ``<genre>/<file>`` as in the GTZAN lists
    (``blues/blues.00012.wav``); a longer path works too, since only the genre folder and the file stem are
    matched (:func:`track_key`), so ``.au`` or ``.flac`` copies match ``.wav`` names. Empty lines and lines
    starting with ``#`` are ignored.

    Raises
    ------
    DatasetError
        For a file or folder that does not exist, a folder without exactly one list per part, a line of an
        unknown part, or a track listed in two parts (named, with both parts).
    """
    text = str(spec).strip()
    if not text:
        raise DatasetError(f"empty split file; give {SPLIT_FILE_FORMAT}")
    pieces = [p.strip() for p in text.split(",")]
    lists: list[tuple[str, Path]] = []  # (part, file) per list file; part None: a two-column file
    two_column: Path | None = None
    if len(pieces) > 1:
        if len(pieces) != 3 or not all(pieces):
            raise DatasetError(
                f"split file {text!r}: a comma-separated split file names three lists in the order "
                f"train,valid,test, got {len(pieces)}; or give {SPLIT_FILE_FORMAT}"
            )
        lists = list(zip(SPLIT_NAMES, map(Path, pieces)))
    else:
        path = Path(text)
        if path.is_dir():
            found: dict[str, list[Path]] = {}
            for f in sorted(path.iterdir()):
                part = (
                    _part_of_name(f.name) if f.is_file() and f.suffix.lower() in (".txt", ".lst", ".csv", "") else None
                )
                if part:
                    found.setdefault(part, []).append(f)
            bad = {p: fs for p, fs in found.items() if len(fs) > 1}
            missing = [p for p in SPLIT_NAMES if p not in found]
            if bad or missing:
                what = "; ".join(
                    ([f"no list for {', '.join(missing)}"] if missing else [])
                    + [f"{len(fs)} lists for {p} ({', '.join(f.name for f in fs)})" for p, fs in bad.items()]
                )
                raise DatasetError(
                    f"split folder {path}: {what}; it needs exactly one list per part, named "
                    "train*.txt, valid*.txt (or val*.txt) and test*.txt"
                )
            lists = [(p, found[p][0]) for p in SPLIT_NAMES]
        else:
            two_column = path
    for _, f in lists + ([("", two_column)] if two_column else []):
        if not f.is_file():
            raise DatasetError(f"split file {f} does not exist; give {SPLIT_FILE_FORMAT}")

    entries: list[tuple[str, str, Path]] = []  # (part, track, file)
    for part, f in lists:
        entries += [(part, ln, f) for ln in _read_lines(f)]
    if two_column is not None:
        for n, ln in enumerate(_read_lines(two_column), 1):
            cols = ln.split(None, 1)
            part = _PART_NAMES.get(cols[0].lower()) if len(cols) == 2 else None
            if part is None:
                raise DatasetError(
                    f"split file {two_column}, line {n}: {ln!r} is not '<part> <track>' with part train, valid or "
                    f"test; give {SPLIT_FILE_FORMAT}"
                )
            entries.append((part, cols[1].strip(), two_column))
    parts: dict[str, str] = {}
    source: dict[str, Path] = {}
    clashes = []
    for part, track, f in entries:
        key = track_key(track.replace("\\", "/"))
        if key in parts and parts[key] != part:
            clashes.append(f"{key} in {parts[key]} ({source[key].name}) and {part} ({f.name})")
        parts.setdefault(key, part)
        source.setdefault(key, f)
    if clashes:
        shown = "; ".join(clashes[:5]) + (f"; and {len(clashes) - 5} more" if len(clashes) > 5 else "")
        raise DatasetError(
            f"split file {text}: {len(clashes)} track{'s are' if len(clashes) > 1 else ' is'} in two "
            f"parts: {shown}. A track belongs to one part; remove it from all but one list"
        )
    payload = json.dumps(sorted(parts.items()))
    files = [f for _, f in lists] + ([two_column] if two_column else [])
    return SplitFile(spec=text, files=files, parts=parts, digest=hashlib.sha256(payload.encode()).hexdigest()[:16])


def file_split(dataset: Dataset, split_file: str | Path | SplitFile) -> dict[str, str]:
    """Assign a data folder's tracks to the parts of a user's split file (:func:`read_split_file`).

    Tracks of the folder in no list are left out of every part; tracks of the lists that the folder lacks are
    logged (counted and a few named; :func:`split_file_coverage` gives them), not fatal.

    Raises
    ------
    DatasetError
        When no track of ``dataset`` is in the lists (naming the file and the fix), and as
        :func:`read_split_file`.
    """
    sf = split_file if isinstance(split_file, SplitFile) else read_split_file(split_file)
    out = {t.track_id: sf.parts[track_key(t.track_id)] for t in dataset.tracks if track_key(t.track_id) in sf.parts}
    if not out:
        example = next(iter(sf.parts), "(the lists are empty)")
        mine = dataset.tracks[0].track_id if dataset.tracks else "(no tracks)"
        raise DatasetError(
            f"split file {sf.names()} names none of the {len(dataset.tracks)} tracks under {dataset.root} "
            f"(the lists have {len(sf.parts)} tracks such as {example}; the folder has tracks such as {mine}). "
            "Write the lists' tracks as <genre>/<file> relative to that folder, or check that you gave the right "
            "data folder"
        )
    missing = split_file_coverage(dataset, sf)["missing"]
    if missing:
        logger.warning(
            "split file %s: %d listed tracks are not in %s (e.g. %s)",
            sf.names(),
            len(missing),
            dataset.root,
            ", ".join(missing[:3]),
        )
    return out


def split_file_coverage(dataset: Dataset, split_file: SplitFile) -> dict:
    """How a split file meets a data folder: ``listed``, ``matched`` (counts) and the sorted keys of the listed
    tracks ``missing`` from the folder (:func:`track_key`)."""
    have = {track_key(t.track_id) for t in dataset.tracks}
    missing = sorted(k for k in split_file.parts if k not in have)
    return {"listed": len(split_file.parts), "matched": len(split_file.parts) - len(missing), "missing": missing}


def make_split(
    dataset: Dataset,
    *,
    kind: str = "random",
    seed: int = SEED,
    test_size: float = 0.2,
    valid_size: float = 0.2,
    split_file: str | Path | SplitFile | None = None,
) -> dict[str, str]:
    """Split by ``kind``: ``"random"`` (stratified by genre, by track), ``"gtzan-ff"`` (fault-filtered) or
    ``"file"`` (a user's lists, ``split_file``: see :func:`read_split_file`)."""
    if kind == "random":
        return random_split(dataset, test_size=test_size, valid_size=valid_size, seed=seed)
    if kind in ("gtzan-ff", "gtzan"):
        return gtzan_split(dataset)
    if kind == "file":
        if not split_file:
            raise DatasetError(f"the file split needs a split file (--split-file FILE): {SPLIT_FILE_FORMAT}")
        return file_split(dataset, split_file)
    raise DatasetError(f"unknown split {kind!r}; use 'random', 'gtzan-ff' or 'file' (with --split-file)")


def split_counts(split: dict[str, str], dataset: Dataset) -> dict[str, dict[str, int]]:
    """Tracks per part and genre: ``{"train": {"blues": 60, ...}, ...}``."""
    genre = {t.track_id: t.genre for t in dataset.tracks}
    out = {p: {g: 0 for g in dataset.genres} for p in SPLIT_NAMES}
    for tid, part in split.items():
        out[part][genre[tid]] += 1
    return out


def split_table(split: dict[str, str], dataset: Dataset):
    """Tracks per genre (rows) and part (columns), with totals."""
    import pandas as pd

    df = pd.DataFrame(split_counts(split, dataset))[list(SPLIT_NAMES)]
    df.loc["total"] = df.sum()
    return df
