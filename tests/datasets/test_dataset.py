import numpy as np
import pytest

from genrelib import datasets
from genrelib.errors import DatasetError

from ..conftest import sine


def _tree(root, genres, n, write, ext=".wav"):
    for g in genres:
        for i in range(n):
            write(f"{root}/{g}/{g}.{i:05d}{ext}", sine(200 + 50 * i, 0.6))


def test_genres_sorted_not_directory_order(tmp_path, write):
    for g in ["rock", "blues", "metal"]:  # created out of order
        write(f"data/{g}/{g}.00000.wav", sine(seconds=0.6))
    ds = datasets.scan(tmp_path / "data")
    assert ds.genres == ["blues", "metal", "rock"]
    assert [ds.genres[label] for label in ds.labels()] == [t.genre for t in ds.tracks]


@pytest.mark.parametrize("given", ["top", "Data", "Data/genres_original"])
def test_kaggle_layout_found_from_any_level(tmp_path, write, given):
    _tree("top/Data/genres_original", ["blues", "jazz"], 2, write)
    ds = datasets.scan(tmp_path / "top" if given == "top" else tmp_path / "top" / given)
    assert ds.root.name == "genres_original" and len(ds.tracks) == 4


def test_tarball_layout_au(tmp_path, write):
    _tree("gtzan/genres", ["blues", "jazz"], 2, write, ext=".au")
    ds = datasets.scan(tmp_path / "gtzan")
    assert ds.root.name == "genres" and {t.path.suffix for t in ds.tracks} == {".au"}


def test_corrupt_and_unsupported_files_are_listed_not_fatal(tmp_path, write):
    _tree("d", ["jazz", "pop"], 2, write)
    (tmp_path / "d/jazz/jazz.00054.wav").write_bytes(b"RIFF\x00\x00" + bytes(5000))
    (tmp_path / "d/pop/song.m4a").write_bytes(bytes(100))
    (tmp_path / "d/pop/cover.jpg").write_bytes(bytes(100))
    ds = datasets.scan(tmp_path / "d")
    assert len(ds.tracks) == 4
    reasons = dict(ds.skipped)
    assert "jazz/jazz.00054.wav" in reasons and "cannot be decoded" in reasons["jazz/jazz.00054.wav"]
    assert "pop/song.m4a" in reasons


def test_scan_errors(tmp_path, write):
    with pytest.raises(DatasetError, match="does not exist"):
        datasets.scan(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    write("flat/a.wav", sine(seconds=0.6))
    with pytest.raises(DatasetError, match="no genre folders"):
        datasets.scan(tmp_path / "flat")
    (tmp_path / "emptyg/blues").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no readable audio"):
        datasets.scan(tmp_path / "emptyg")


def test_random_split_by_track_stratified_reproducible(tmp_path, write):
    _tree("d", ["a", "b", "c", "d"], 10, write)
    ds = datasets.scan(tmp_path / "d", check=False)
    s1 = datasets.random_split(ds, seed=3)
    assert s1 == datasets.random_split(ds, seed=3)
    assert s1 != datasets.random_split(ds, seed=4)
    assert set(s1) == {t.track_id for t in ds.tracks}  # each track in exactly one part
    counts = datasets.split_counts(s1, ds)
    for part in ("train", "valid", "test"):
        assert all(n >= 1 for n in counts[part].values()), counts
    assert sum(counts["test"].values()) == 8


def test_gtzan_lists_shipped_disjoint_with_license():
    lists = datasets.gtzan_split_lists()
    assert {k: len(v) for k, v in lists.items()} == {"train": 443, "valid": 197, "test": 290}
    sets = [set(v) for v in lists.values()]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    from importlib import resources

    lic = (resources.files("genrelib") / "data" / "gtzan_splits" / "LICENSE").read_text()
    assert "MIT" in lic


def test_gtzan_split_matches_wav_and_au(tmp_path, write):
    for name in ["blues/blues.00012", "blues/blues.00029", "blues/blues.00000", "jazz/jazz.00054", "jazz/jazz.00099"]:
        write(f"g/genres/{name}.au", sine(seconds=0.6))
    ds = datasets.scan(tmp_path / "g")
    split = datasets.gtzan_split(ds)
    assert split["blues/blues.00012.au"] == "test"
    assert split["blues/blues.00029.au"] == "train"
    assert split["blues/blues.00000.au"] == "valid"
    assert split["jazz/jazz.00054.au"] == "train"


def test_gtzan_split_rejects_other_data(tmp_path, write):
    _tree("d", ["a", "b"], 2, write)
    with pytest.raises(DatasetError, match="fault-filtered"):
        datasets.gtzan_split(datasets.scan(tmp_path / "d"))
    with pytest.raises(DatasetError, match="unknown split"):
        datasets.make_split(datasets.scan(tmp_path / "d"), kind="segments")


def test_find_audio(tmp_path, write):
    write("x/a/one.flac", sine(seconds=0.6))
    write("x/two.wav", sine(seconds=0.6))
    assert [p.name for p in datasets.find_audio([tmp_path / "x"])] == ["one.flac", "two.wav"]
    with pytest.raises(DatasetError, match="no such file"):
        datasets.find_audio([tmp_path / "nothing"])
    (tmp_path / "y").mkdir()
    with pytest.raises(DatasetError, match="no audio files"):
        datasets.find_audio([tmp_path / "y"])


def test_manifest_hash_changes_with_data(tmp_path, write):
    _tree("d", ["a", "b"], 2, write)
    h1 = datasets.scan(tmp_path / "d").manifest_hash()
    assert h1 == datasets.scan(tmp_path / "d").manifest_hash()
    write("d/a/a.00009.wav", sine(seconds=0.5))
    assert datasets.scan(tmp_path / "d").manifest_hash() != h1
    assert np.all(datasets.scan(tmp_path / "d").labels() >= 0)
