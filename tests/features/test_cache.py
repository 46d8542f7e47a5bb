"""The feature cache is per file (content, configuration, version): any subset or superset of extracted tracks is read
back, only new or changed files are computed, and the result is the fresh extraction's, bit for bit."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import soundfile as sf

from genrelib import datasets, features

CFG = features.FeatureConfig(kind="mfcc", n_mfcc=13)


@pytest.fixture
def tree(tiny_tree, tmp_path):
    """A copy of the tiny tree (12 tracks of 4 s) that a test may change."""
    return shutil.copytree(tiny_tree, tmp_path / "genres")


def _extract(ds, cache):
    return features.extract(ds, CFG, n_jobs=1, cache_dir=cache, progress=False)


def _fresh(ds):
    return features.extract(ds, CFG, n_jobs=1, use_cache=False, progress=False)


def _same(a, b):
    np.testing.assert_array_equal(a.X, b.X)
    for name in ("track_ids", "window", "segment", "row_genres"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name
    assert a.X.dtype == b.X.dtype == np.float32 and a.genres == b.genres and a.config == b.config


def _entries(cache):
    return sorted(features.entry_folder(CFG, cache).rglob("*.npz"))


def test_a_subset_of_extracted_tracks_is_read_not_computed(tree, tmp_path, caplog):
    ds = datasets.scan(tree)
    full = _extract(ds, tmp_path / "c")
    assert (full.cached, full.computed) == (0, 12)
    entries = _entries(tmp_path / "c")
    assert len(entries) == 12 and not list((tmp_path / "c").rglob("*.tmp"))
    written = {p: p.stat().st_mtime_ns for p in entries}
    sub = ds.subset(ds.tracks[::2])  # 6 tracks, as `ensemble --data` takes the test part after `train`
    with caplog.at_level(logging.INFO, logger="genrelib.progress"):
        part = _extract(sub, tmp_path / "c")
    assert (part.cached, part.computed) == (6, 0)
    assert "mfcc features: 6 files, 6 read from the cache" in caplog.text and "0 to compute" in caplog.text
    assert {p: p.stat().st_mtime_ns for p in _entries(tmp_path / "c")} == written  # nothing rewritten
    _same(part, _fresh(sub))
    _same(part, full.select([t.track_id for t in sub.tracks]))


def test_a_superset_computes_only_the_new_tracks(tree, tmp_path):
    ds = datasets.scan(tree)
    first = _extract(ds.subset(ds.tracks[:5]), tmp_path / "c")
    assert (first.cached, first.computed) == (0, 5)
    every = _extract(ds, tmp_path / "c")
    assert (every.cached, every.computed) == (5, 7)
    _same(every, _fresh(ds))
    assert (_extract(ds, tmp_path / "c").computed, len(_entries(tmp_path / "c"))) == (0, 12)


def test_entries_follow_the_content_not_the_name(tree, tmp_path):
    ds = datasets.scan(tree)
    _extract(ds, tmp_path / "c")
    # the same file elsewhere (a copied folder) is read from the cache
    for genre in ("metal", "classical"):
        (tmp_path / "elsewhere" / genre).mkdir(parents=True)
        shutil.copy(tree / genre / f"{genre}.00001.wav", tmp_path / "elsewhere" / genre / "x.wav")
    copied = _extract(datasets.scan(tmp_path / "elsewhere"), tmp_path / "c")
    assert (copied.cached, copied.computed) == (2, 0)
    # a file whose content changed is computed again; the others are read
    changed = tree / "reggae" / "reggae.00002.wav"
    changed.write_bytes((tree / "metal" / "metal.00003.wav").read_bytes())
    ds = datasets.scan(tree)
    again = _extract(ds, tmp_path / "c")
    assert (again.cached, again.computed) == (12, 0)  # its new content is metal.00003's, already cached
    _same(again, _fresh(ds))
    y, sr = sf.read(changed, dtype="float32")
    sf.write(changed, y[::-1].copy(), sr)  # new content, never extracted
    ds = datasets.scan(tree)
    again = _extract(ds, tmp_path / "c")
    assert (again.cached, again.computed) == (11, 1)
    _same(again, _fresh(ds))


@pytest.mark.parametrize("damage", ["empty", "cut", "garbage", "other shape"])
def test_a_corrupt_entry_is_named_and_computed_again(tree, tmp_path, caplog, damage):
    ds = datasets.scan(tree)
    good = _extract(ds, tmp_path / "c")
    entry = _entries(tmp_path / "c")[3]
    if damage == "other shape":  # a readable entry whose rows do not fit the configuration
        from genrelib.features.cache import read_entry, write_entry

        ff, _ = read_entry(entry, CFG)
        ff.X = ff.X[:, :, :5].copy()
        write_entry(entry, ff, CFG)
    else:
        data = entry.read_bytes()
        entry.write_bytes({"empty": b"", "cut": data[: len(data) // 2], "garbage": b"PK\x03\x04 garbage"}[damage])
    with caplog.at_level(logging.INFO, logger="genrelib.progress"):
        fs = _extract(ds, tmp_path / "c")
    assert (fs.cached, fs.computed) == (11, 1)
    assert len(fs.repaired) == 1 and str(entry) in fs.repaired[0] and "computed again" in fs.repaired[0]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and str(entry) in warned[0]
    _same(fs, good)
    again = _extract(ds, tmp_path / "c")  # the entry was rewritten
    assert (again.repaired, again.computed) == ([], 0)


def test_without_the_cache_nothing_is_read_or_written(tree, tmp_path):
    ds = datasets.scan(tree)
    fs = features.extract(ds, CFG, n_jobs=1, cache_dir=tmp_path / "c", use_cache=False, progress=False)
    assert (fs.cached, fs.computed) == (0, 12) and not (tmp_path / "c").exists()


def test_unchanged_files_are_not_hashed_again(tree, tmp_path, monkeypatch):
    from genrelib.features import digests

    ds = datasets.scan(tree)
    _extract(ds, tmp_path / "c")
    assert not digests.memo_path(tmp_path / "c").exists()  # files changed in the last 2 s: hashed every time
    monkeypatch.setattr(digests, "RACY_SECONDS", 0.0)  # as if they had been written long ago
    _extract(ds, tmp_path / "c")
    hashed = []
    real = digests.content_hash
    monkeypatch.setattr(digests, "content_hash", lambda p: hashed.append(p) or real(p))
    again = _extract(ds, tmp_path / "c")
    assert (again.cached, again.computed, hashed) == (12, 0, [])  # the record served every hash
    changed = tree / "reggae" / "reggae.00002.wav"
    y, sr = sf.read(changed, dtype="float32")
    sf.write(changed, 0.5 * y, sr)  # new content, new times
    ds = datasets.scan(tree)
    fs = _extract(ds, tmp_path / "c")
    assert hashed == [changed] and (fs.cached, fs.computed) == (11, 1)
    _same(fs, _fresh(ds))
    digests.memo_path(tmp_path / "c").write_text('{"format": "genrelib-file-digests-1", "files": [1]}')
    hashed.clear()
    fs = _extract(ds, tmp_path / "c")  # a malformed record: every file hashed again, nothing trusted
    assert len(hashed) == 12 and (fs.cached, fs.computed) == (12, 0)
