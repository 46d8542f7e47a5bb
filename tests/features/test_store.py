"""The sharded feature store: equal to in-memory extraction, resumable, corrupt shards found and recomputed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from genrelib import datasets, features
from genrelib.errors import FeatureError
from genrelib.features import store


def _same(a: features.FeatureSet, b: features.FeatureSet) -> None:
    assert a.X.dtype == b.X.dtype == np.float32
    np.testing.assert_array_equal(a.X, b.X)
    for name in ("track_ids", "window", "segment", "row_genres"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.genres == b.genres and a.config == b.config
    assert sorted(a.skipped) == sorted(b.skipped)


@pytest.fixture
def broken_tree(tiny_tree, tmp_path):
    """tiny_tree plus a file whose header passes the scan but whose data is cut (fails at decoding)."""
    root = tmp_path / "copy"
    shutil.copytree(tiny_tree, root)
    data = (root / "metal" / "metal.00000.wav").read_bytes()
    (root / "metal" / "metal.00099.wav").write_bytes(data[: len(data) // 3])
    return root


def test_store_equals_in_memory_extraction(broken_tree, tmp_path):
    ds = datasets.scan(broken_tree)
    cfg = features.FeatureConfig()
    ref = features.extract(ds, cfg, n_jobs=1, use_cache=False, progress=False)
    sfs = store.extract_to_store(ds, cfg, tmp_path / "store", shard_size=5, n_jobs=2, progress=False)
    assert sfs.path == tmp_path / "store" / features.cache_path(ds, cfg, "x").stem  # the cache's key
    assert sfs.manifest["n_shards"] == 3 and sfs.manifest["manifest_hash"] == ds.manifest_hash()
    assert len(sfs) == len(ref) and sfs.tracks == ref.tracks
    np.testing.assert_array_equal(sfs.track_ids, ref.track_ids)
    np.testing.assert_array_equal(sfs.labels, ref.labels)
    _same(sfs.load(), ref)
    assert any(t == "metal/metal.00099.wav" and "truncated" in why for t, why in sfs.skipped)
    # lazy views by track equal the in-memory split
    split = {t: ("train" if i % 3 else "test") for i, t in enumerate(ref.tracks)}
    views, parts = sfs.split(split), ref.split(split)
    for p in ("train", "test"):
        _same(views[p].load(), parts[p])
    # reopened from disk: the same
    _same(store.open_store(sfs.path).load(), ref)


def test_resume_keeps_finished_shards_and_recomputes_corrupt_ones(tiny_tree, tmp_path):
    ds = datasets.scan(tiny_tree)
    cfg = features.FeatureConfig(kind="mel", n_mels=32)
    first = store.extract_to_store(ds, cfg, tmp_path / "s", shard_size=4, n_jobs=1, progress=False)
    ref = first.load()
    shards = first.path / "shards"
    # An interrupted run: shard 1 was never finished (no record), shard 2 is corrupt (bytes flipped), the final
    # manifest and index were never written.
    (shards / "shard-00001.json").unlink()
    raw = bytearray((shards / "shard-00002.parquet").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (shards / "shard-00002.parquet").write_bytes(bytes(raw))
    (first.path / "manifest.json").unlink()
    kept = (shards / "shard-00000.parquet").stat().st_mtime_ns
    with pytest.raises(FeatureError, match="not a finished genrelib feature store"):
        store.open_store(first.path)
    again = store.extract_to_store(ds, cfg, tmp_path / "s", n_jobs=1, progress=False)
    assert (shards / "shard-00000.parquet").stat().st_mtime_ns == kept  # verified and kept, not recomputed
    assert len(again.repaired) == 1 and "shard-00002.parquet" in again.repaired[0] and "corrupt" in again.repaired[0]
    _same(again.load(), ref)
    with pytest.raises(FeatureError, match="--shard-size 4, not 3"):
        store.extract_to_store(ds, cfg, tmp_path / "s", shard_size=3, n_jobs=1, progress=False)


def test_reading_a_damaged_shard_names_it_and_the_fix(tiny_tree, tmp_path):
    ds = datasets.scan(tiny_tree)
    sfs = store.extract_to_store(ds, features.FeatureConfig(), tmp_path / "s", shard_size=6, n_jobs=1, progress=False)
    (sfs.path / "shards" / "shard-00001.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(FeatureError, match=r"shard-00001\.parquet is corrupt or missing.*--store"):
        sfs.load()


def test_cli_features_store(tiny_tree, tmp_path, capsys):
    from genrelib.cli import main

    out = tmp_path / "f.npz"
    assert (
        main(
            [
                "features",
                str(tiny_tree),
                "--kind",
                "mfcc",
                "--store",
                str(tmp_path / "st"),
                "--shard-size",
                "5",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "12 tracks: 12 rows of (130, 16) float32 in 3 shards" in text
    ref = features.extract(
        datasets.scan(tiny_tree), features.FeatureConfig(), n_jobs=1, use_cache=False, progress=False
    )
    _same(features.FeatureSet.load(out), ref)
    manifest = json.loads(next((tmp_path / "st").glob("mfcc-*/manifest.json")).read_text())
    assert manifest["config"] == ref.config.to_dict()
    assert main(["features", str(tiny_tree), "--kind", "mfcc"]) == 2  # neither --out nor --store
    assert "give --out FILE" in capsys.readouterr().err


def test_an_in_memory_or_cached_set_migrates_to_a_store(tiny_tree, tmp_path):
    ds = datasets.scan(tiny_tree)
    ref = features.extract(ds, features.FeatureConfig(), n_jobs=1, progress=False)
    cached = features.FeatureSet.load(ref.save(tmp_path / "features.npz"))  # as `features --out F.npz` saves it
    sfs = store.write_featureset(cached, tmp_path / "migrated", shard_size=5, manifest_hash=ds.manifest_hash())
    assert sfs.manifest["n_shards"] == 3
    _same(store.open_store(tmp_path / "migrated").load(), ref)
