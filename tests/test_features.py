from pathlib import Path

import numpy as np
import pytest

from genrelib import dataset, features
from genrelib.errors import FeatureError

from .conftest import SHARED, needs_shared


def test_mfcc_segment_shape_as_the_notebook(write):
    y = np.random.default_rng(0).uniform(-0.5, 0.5, 661794).astype(np.float32)
    path = write("blues/blues.00000.wav", y)
    ff = features.file_features(path, features.FeatureConfig(kind="mfcc"))
    assert ff.X.shape == (10, 130, 16) and ff.X.dtype == np.float32
    assert list(ff.segment) == list(range(10)) and set(ff.window) == {0}
    for n in (13, 20):
        assert features.file_features(path, features.FeatureConfig(n_mfcc=n)).X.shape == (10, 130, n)
    mel = features.file_features(path, features.FeatureConfig(kind="mel"))
    assert mel.X.shape == (10, 130, 128)


def test_long_song_gives_windows_of_segments(write):
    y = np.random.default_rng(0).uniform(-0.5, 0.5, 22050 * 70).astype(np.float32)
    ff = features.file_features(write("s.wav", y), features.FeatureConfig())
    # 70 s = two 30 s windows + a 10 s tail (< half a window): dropped by the window rule
    assert ff.X.shape[0] == 20 and list(np.unique(ff.window)) == [0, 1]
    ff = features.file_features(write("s.wav", y), features.FeatureConfig(kind="summary"))
    assert ff.X.shape == (2, 57)


def test_summary_columns_are_the_tables():
    assert len(features.SUMMARY_COLUMNS) == 57
    assert features.SUMMARY_COLUMNS[:2] == ["chroma_stft_mean", "chroma_stft_var"]
    assert features.SUMMARY_COLUMNS[16] == "tempo" and features.SUMMARY_COLUMNS[-1] == "mfcc20_var"


@needs_shared()
def test_summary_columns_match_csv_header():
    header = (SHARED / "features_30_sec.csv").read_text().splitlines()[0].split(",")
    assert header[2:-1] == features.SUMMARY_COLUMNS


@needs_shared()
def test_summary_reproduces_gtzan_table_on_real_music():
    import pandas as pd

    table = pd.read_csv(SHARED / "features_30_sec.csv").set_index("filename")
    files = sorted((SHARED / "sample").glob("*/*.wav"))
    assert len(files) == 11
    cfg = features.FeatureConfig(kind="summary")
    rel = []
    for f in files:
        x = features.file_features(f, cfg).X[0].astype(np.float64)
        ref = table.loc[f.name, features.SUMMARY_COLUMNS].to_numpy(float)
        rel.append(np.abs(x - ref) / np.abs(ref))
    median = dict(zip(features.SUMMARY_COLUMNS, np.median(rel, axis=0)))
    bad = {c: round(m, 4) for c, m in median.items()
           if c not in ("harmony_mean", "perceptr_mean", "tempo") and not m < 0.01}
    assert not bad, f"columns off by >1% (median relative error): {bad}"


def test_extract_parallel_equals_serial_and_caches(tiny_tree, tmp_path):
    ds = dataset.scan(tiny_tree)
    cfg = features.FeatureConfig(kind="mfcc", n_mfcc=13)
    serial = features.extract(ds, cfg, n_jobs=1, use_cache=False, progress=False)
    parallel = features.extract(ds, cfg, n_jobs=2, cache_dir=tmp_path / "c", progress=False)
    np.testing.assert_array_equal(serial.X, parallel.X)
    np.testing.assert_array_equal(serial.track_ids, parallel.track_ids)
    # 12 tracks of 4 s -> one window each, one 3 s segment + the 1 s tail (< half: dropped)
    assert serial.X.shape == (12, 130, 13)
    assert serial.genres == ["classical", "metal", "reggae"]
    assert [serial.genres[i] for i in serial.labels] == list(serial.row_genres)
    cached = features.cache_path(ds, cfg, tmp_path / "c")
    assert cached.exists() and not list(cached.parent.glob("*.tmp"))
    again = features.extract(ds, cfg, cache_dir=tmp_path / "c", progress=False)
    np.testing.assert_array_equal(again.X, serial.X)
    assert again.config == cfg
    assert features.cache_path(ds, features.FeatureConfig(n_mfcc=20), tmp_path / "c") != cached


def test_cache_write_is_atomic(tiny_tree, tmp_path, monkeypatch):
    ds = dataset.scan(tiny_tree)
    cfg = features.FeatureConfig(kind="mfcc")

    def broken_write_array(f, arr, **kw):
        f.write(b"half a cache")
        raise KeyboardInterrupt  # the user pressed Ctrl-C while the cache was being written

    monkeypatch.setattr(np.lib.format, "write_array", broken_write_array)
    with pytest.raises(KeyboardInterrupt):
        features.extract(ds, cfg, n_jobs=1, cache_dir=tmp_path / "c", progress=False)
    folder = tmp_path / "c" / "features"
    assert list(folder.iterdir()) == []  # neither a half-written cache nor a stray temporary file


def test_bad_file_reported_and_skipped(tiny_tree, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_tree, root)
    # A file whose header is fine but whose data is cut: passes the scan, fails at decoding.
    good = root / "metal" / "metal.00000.wav"
    data = good.read_bytes()
    (root / "metal" / "metal.00099.wav").write_bytes(data[: len(data) // 3])
    ds = dataset.scan(root)
    fs = features.extract(ds, features.FeatureConfig(), n_jobs=1, use_cache=False, progress=False)
    assert "metal/metal.00099.wav" not in set(fs.track_ids)
    assert any(tid == "metal/metal.00099.wav" and "truncated" in why for tid, why in fs.skipped)
    assert len(fs.tracks) == 12


def test_split_never_puts_a_track_in_two_parts(tiny_tree):
    ds = dataset.scan(tiny_tree)
    fs = features.extract(ds, features.FeatureConfig(), n_jobs=1, progress=False)
    parts = fs.split(dataset.random_split(ds, test_size=0.34, valid_size=0.5, seed=0))
    ids = {p: set(s.track_ids) for p, s in parts.items()}
    assert not (ids["train"] & ids["test"] or ids["train"] & ids["valid"] or ids["valid"] & ids["test"])
    assert sum(len(s) for s in parts.values()) == len(fs)


def test_feature_set_roundtrip_and_table(tiny_tree, tmp_path):
    ds = dataset.scan(tiny_tree)
    fs = features.extract(ds, features.FeatureConfig(kind="summary"), n_jobs=1, progress=False)
    back = features.FeatureSet.load(fs.save(tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.X, fs.X)
    assert back.config == fs.config and back.genres == fs.genres
    df = fs.table()
    assert list(df.columns) == ["filename", "window", *features.SUMMARY_COLUMNS, "label"]
    assert len(df) == 12 and df["filename"].iloc[0].endswith(".wav")
    with pytest.raises(FeatureError, match="not a readable"):
        features.FeatureSet.load(Path(tmp_path / "s.npz").write_bytes(b"junk") and tmp_path / "s.npz")


def test_config_validation():
    with pytest.raises(FeatureError, match="unknown feature kind"):
        features.FeatureConfig(kind="chroma")
    with pytest.raises(FeatureError, match="n_mfcc"):
        features.FeatureConfig(n_mfcc=0)
    assert features.FeatureConfig().hash() == features.FeatureConfig().hash()
    assert features.FeatureConfig.from_dict(features.FeatureConfig(kind="mel").to_dict()).kind == "mel"


@pytest.mark.parametrize("sr,n_fft,n_mels", [(22050, 2048, 128), (22050, 2048, 40), (16000, 1024, 64)])
def test_mel_filterbank_equals_librosa(sr, n_fft, n_mels):
    import librosa

    np.testing.assert_allclose(features.mel_filterbank(sr, n_fft, n_mels),
                               librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels), atol=1e-7)


def test_fast_mfcc_and_mel_equal_librosa_per_segment():
    import librosa

    rng = np.random.default_rng(4)
    segs = (rng.standard_normal((3, 66150)) * np.array([[1.0], [0.01], [0.3]])).astype(np.float32)
    segs[1, :30000] = 0  # a partly silent segment: the 80 dB floor applies per segment, as in the notebook
    X = features.mfcc(segs, 22050, n_mfcc=16)
    for i in range(3):
        ref = librosa.feature.mfcc(y=segs[i], sr=22050, n_mfcc=16, n_fft=2048, hop_length=512).T
        np.testing.assert_allclose(X[i], ref, atol=2e-3 * np.abs(ref).max())
    L = features.log_mel(segs, 22050)
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=segs, sr=22050), ref=1.0, top_db=None)
    np.testing.assert_allclose(L, np.swapaxes(ref, -1, -2), atol=1e-3)


def test_fast_hpss_is_librosas(write):
    import librosa
    import scipy.ndimage

    rng = np.random.default_rng(5)
    S = np.abs(rng.standard_normal((40, 300))).astype(np.float32)
    np.testing.assert_array_equal(features.median_filter_rows(S, 31),
                                  scipy.ndimage.median_filter(S, size=(1, 31), mode="reflect"))
    y = rng.standard_normal(22050 * 3).astype(np.float32)
    D = librosa.stft(y)
    for mine, ref in zip(features.hpss(D), librosa.decompose.hpss(D)):
        np.testing.assert_allclose(mine, ref, rtol=1e-6, atol=1e-7)
