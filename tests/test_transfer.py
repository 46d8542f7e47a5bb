"""The musicnn feature kind and model family: pretrained embeddings behind the same interfaces as the others."""

import numpy as np
import pandas as pd

from genrelib import audio, dataset, features, musicnn
from genrelib.cli import main


def test_musicnn_feature_kind_is_window_means_of_patch_embeddings(tiny_tree, tmp_path, capsys):
    out = tmp_path / "emb.csv"
    assert main(["features", str(tiny_tree), "--kind", "musicnn", "--out", str(out)]) == 0
    assert "musicnn features of 12 tracks: X (12, 250)" in capsys.readouterr().out
    df = pd.read_csv(out)
    cols = features.musicnn_columns()
    assert list(df.columns) == ["filename", "window", *cols, "label"] and len(df) == 12
    assert cols[200:203] == ["tag:rock", "tag:pop", "tag:alternative"]
    # a row is the mean over the window's 3 s patches of what the network gives for them
    ds = dataset.scan(tiny_tree)
    track = ds.tracks[0]
    y, sr = audio.load(track.path)
    emb, tags = musicnn.embed(y, sr)
    row = df[df["filename"] == track.path.name][cols].to_numpy()[0]
    np.testing.assert_allclose(row, np.concatenate([emb.mean(0), tags.mean(0)]), atol=1e-5)
    assert ((row[200:] >= 0) & (row[200:] <= 1)).all()
    # cached like the other kinds: a second extraction reads the cache file
    fs = features.extract(ds, features.FeatureConfig(kind="musicnn"), progress=False)
    assert features.cache_path(ds, fs.config).exists() and fs.X.shape == (12, 250)


def test_musicnn_patch_hop_changes_the_features_and_the_cache_key(tiny_tree):
    ds = dataset.scan(tiny_tree)
    a, b = features.FeatureConfig(kind="musicnn"), features.FeatureConfig(kind="musicnn", patch_hop=0.5)
    assert features.cache_path(ds, a) != features.cache_path(ds, b)
    y, sr = audio.load(ds.tracks[0].path)  # 4 s: one patch without overlap, three with a 0.5 s hop
    assert len(musicnn.embed(y, sr)[0]) == 1 and len(musicnn.embed(y, sr, hop_seconds=0.5)[0]) == 3
    Xa = features.window_features(y, sr, a)
    Xb = features.window_features(y, sr, b)
    assert Xa.shape == Xb.shape == (250,) and not np.allclose(Xa, Xb)
