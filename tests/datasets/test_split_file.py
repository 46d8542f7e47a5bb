"""A user's own train/valid/test lists (``genrelib train --split-file``) and grouped cross-validation folds
(``genrelib train --cv K --group blocks:N|ff-runs``)."""

from pathlib import Path

import mlflow
import pytest

from genrelib import datasets
from genrelib.cli import main
from genrelib.datasets.splits import read_split_file
from genrelib.datasets.tracks import Dataset, Track
from genrelib.errors import DatasetError
from genrelib.inference.predict import load_model
from genrelib.training.config import TrainConfig
from genrelib.training.crossval import cv_groups, cv_splits
from genrelib.training.trainer import train

from ..conftest import SHARED, gtzan_ids, needs_shared

SHIPPED = Path(datasets.__file__).parents[1] / "data" / "gtzan_splits"


def write_lists(folder: Path, parts: dict[str, list[str]], names=("train.txt", "valid.txt", "test.txt")) -> Path:
    """One list file per part, in the shipped GTZAN format (one ``<genre>/<file>`` a line)."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, name in zip(("train", "valid", "test"), names):
        (folder / name).write_text("".join(f"{t}\n" for t in parts.get(part, [])))
    return folder


def test_split_file_forms_read_alike_and_the_shipped_lists_as_they_are(tmp_path):
    folder = read_split_file(SHIPPED)  # train_filtered.txt, valid_filtered.txt, test_filtered.txt
    assert [f.name for f in folder.files] == ["train_filtered.txt", "valid_filtered.txt", "test_filtered.txt"]
    lists = datasets.gtzan_split_lists()
    assert folder.parts == {datasets.track_key(t): p for p, ids in lists.items() for t in ids}
    comma = read_split_file(",".join(str(SHIPPED / f"{p}_filtered.txt") for p in ("train", "valid", "test")))
    two_column = tmp_path / "split.tsv"
    two_column.write_text(
        "# part<TAB>track\n"
        + "".join(f"{'val' if p == 'valid' else p}\t{t}\n" for p, ids in lists.items() for t in ids)
    )
    column = read_split_file(two_column)
    assert comma.parts == column.parts == folder.parts
    assert comma.digest == column.digest == folder.digest  # the digest is of the lists, not of the files
    with pytest.raises(DatasetError, match=r"no list for valid; .*exactly one list per part"):
        read_split_file(
            write_lists(tmp_path / "two", {"train": ["a/a.1.wav"]}, names=("train.txt", "x.txt", "test.txt"))
        )
    with pytest.raises(DatasetError, match=r"names three lists in the order train,valid,test, got 2"):
        read_split_file("train.txt,test.txt")
    with pytest.raises(DatasetError, match=r"split file .*nowhere.txt does not exist"):
        read_split_file(tmp_path / "nowhere.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("train blues/blues.00001.wav\ndev blues/blues.00002.wav\n")
    with pytest.raises(DatasetError, match=r"bad.txt, line 2: 'dev blues/blues.00002.wav' is not '<part> <track>'"):
        read_split_file(bad)


def test_split_file_trains_on_its_parts_reports_missing_tracks_and_is_recorded(gtzan_tree, tmp_path, capsys):
    # 2 genres x 8 tracks; the user's own lists put 2 in train, 1 in valid, 5 in test of each genre (the
    # opposite of the fault-filtered lists' sizes), and name 3 tracks the folder lacks
    root = gtzan_tree({"classical": {"train": 8}, "metal": {"train": 8}})
    ids = {g: gtzan_ids(g, "train", 8) for g in ("classical", "metal")}
    parts = {
        "train": ids["classical"][:2] + ids["metal"][:2],
        "valid": ids["classical"][2:3] + ids["metal"][2:3],
        "test": ids["classical"][3:] + ids["metal"][3:] + gtzan_ids("classical", "test", 3),
    }
    lists = write_lists(tmp_path / "my_split", parts)
    assert (
        main(["train", str(root), "--model", "summary", "--split-file", str(lists), "--no-register", "--jobs", "1"])
        == 0
    )
    out = capsys.readouterr().out
    digest = read_split_file(lists).digest
    assert "(tracks: train 4, valid 2, test 10; split file)" in out
    assert (
        f"split file {lists / 'train.txt'},{lists / 'valid.txt'},{lists / 'test.txt'} (digest {digest}): "
        "16 of its 19 tracks are in the data"
    ) in out
    missing = sorted(datasets.track_key(t) for t in gtzan_ids("classical", "test", 3))
    assert f"missing from the data: 3 listed tracks: {', '.join(missing)}" in out
    run_id = out.split()[1].rstrip(":")
    params = mlflow.get_run(run_id).data.params
    assert params["train.split"] == "file" and params["train.split_file"] == str(lists)
    assert params["split.digest"] == digest and params["split.missing"] == "3" and params["split.matched"] == "16"
    info = load_model(f"runs:/{run_id}/model").info
    assert info["split"] == "file" and info["split_file"]["digest"] == digest
    for part in ("train", "valid", "test"):
        assert info["split_tracks"][part] == sorted(t for t in parts[part] if (root / t).exists())
    # evaluate --part test scores exactly the recorded test tracks
    assert main(["evaluate", f"runs:/{run_id}/model", str(root), "--part", "test", "--no-log", "--jobs", "1"]) == 0
    assert "found 10 of the model's 10 test tracks" in capsys.readouterr().out


def test_split_file_errors_name_the_file_and_the_fix(gtzan_tree, tmp_path, capsys):
    root = gtzan_tree({"classical": {"train": 3}, "metal": {"train": 3}})
    c, m = gtzan_ids("classical", "train", 3), gtzan_ids("metal", "train", 3)
    nothing = write_lists(tmp_path / "other", {"train": ["jazz/jazz.00001.wav"], "test": ["jazz/jazz.00002.wav"]})
    with pytest.raises(DatasetError) as err:
        train(root, TrainConfig(family="summary", split_file=str(nothing)), log=False)
    msg = str(err.value)
    assert msg.startswith(
        f"split file {nothing / 'train.txt'},{nothing / 'valid.txt'},{nothing / 'test.txt'} names "
        f"none of the 6 tracks under {root}"
    )
    assert "Write the lists' tracks as <genre>/<file> relative to that folder" in msg
    twice = tmp_path / "twice.txt"
    twice.write_text(f"train {c[0]}\nvalid {c[1]}\ntest {m[0]}\ntest {c[0].replace('.wav', '.au')}\n")
    with pytest.raises(
        DatasetError,
        match=rf"1 track is in two parts: {c[0][:-4]} in train \(twice.txt\) and test "
        r"\(twice.txt\)\. A track belongs to one part",
    ):
        train(root, TrainConfig(family="summary", split_file=str(twice)), log=False)
    # a part left empty is refused as gtzan-ff on partial GTZAN is: the fix, and --force where it can help
    no_test = write_lists(tmp_path / "no_test", {"train": c[:2] + m[:2], "valid": c[2:] + m[2:]})
    with pytest.raises(DatasetError) as err:
        train(root, TrainConfig(family="summary", split_file=str(no_test)), log=False)
    assert "the file split of" in str(err.value) and "no test tracks at all" in str(err.value)
    assert f"Add tracks of these genres to the lists of {no_test}" in str(err.value) and "--force" in str(err.value)
    no_valid = write_lists(tmp_path / "no_valid", {"train": c[:2] + m[:2], "test": c[2:] + m[2:]})
    with pytest.raises(DatasetError, match="--force cannot help"):
        train(root, TrainConfig(family="summary", split_file=str(no_valid), force=True), log=False)
    assert main(["train", str(root), "--model", "summary", "--split", "gtzan-ff", "--split-file", str(no_test)]) == 2
    assert "--split gtzan-ff and --split-file" in capsys.readouterr().err
    assert main(["train", str(root), "--model", "summary", "--cv", "2", "--split-file", str(no_test)]) == 2
    assert "--cv makes its own folds" in capsys.readouterr().err


def fake_gtzan(names: list[str]) -> Dataset:
    """A Dataset of GTZAN-named tracks (cv_splits reads only names and genres, no audio)."""
    tracks = [Track(Path("/nowhere") / n, n.split("/")[0], n) for n in names]
    return Dataset(root=Path("/nowhere"), tracks=tracks, genres=sorted({t.genre for t in tracks}))


@pytest.mark.parametrize("group", ["blocks:4", "ff-runs"])
def test_grouped_folds_never_put_a_group_in_two_parts(group):
    ds = fake_gtzan([f"{g}/{g}.{n:05d}.wav" for g in ("metal", "pop", "rock") for n in range(40)])
    groups = dict(zip((t.track_id for t in ds.tracks), cv_groups(ds, group)))
    assert len(set(groups.values())) >= 3 * 4
    splits = cv_splits(ds, folds=4, repeats=2, seed=1, group=group)
    assert len(splits) == 8
    for r in range(2):
        tests = [{t for t, p in s.items() if p == "test"} for s in splits[4 * r : 4 * r + 4]]
        assert sum(map(len, tests)) == len(ds.tracks) and set().union(*tests) == set(groups)  # each tested once
    for s in splits:
        part_of_group: dict[str, set] = {}
        for t, p in s.items():
            part_of_group.setdefault(groups[t], set()).add(p)
        assert all(len(p) == 1 for p in part_of_group.values()), "a group in two parts of a fold"
        assert set(s.values()) == {"train", "valid", "test"}
        assert {t.split("/")[0] for t, p in s.items() if p == "test"} == set(ds.genres)  # every genre tested
        assert {t.split("/")[0] for t, p in s.items() if p == "train"} == set(ds.genres)  # and trained on
    assert splits == cv_splits(ds, folds=4, repeats=2, seed=1, group=group)


def test_grouping_is_refused_where_it_means_nothing(tiny_tree, capsys):
    mine = fake_gtzan([f"{g}/{g}.{n:05d}.wav" for g in ("rock", "pop") for n in range(6)] + ["rock/my song.wav"])
    with pytest.raises(
        DatasetError,
        match=r"--group blocks:10 approximates GTZAN's artists from its file names .*"
        r"but 1 of the 13 tracks under /nowhere are not named so \(rock/my song.wav\)",
    ):
        cv_splits(mine, folds=2, group="blocks:10")
    ds = fake_gtzan([f"rock/rock.{n:05d}.wav" for n in range(20)] + [f"pop/pop.{n:05d}.wav" for n in range(20)])
    assert cv_groups(ds, "blocks:10")[:11] == ["rock:block0"] * 10 + ["rock:block1"]
    # pop's two groups in 2 folds: one is tested, the other must be trained on, never used for validation
    four = fake_gtzan([f"rock/rock.{n:05d}.wav" for n in range(40)] + [f"pop/pop.{n:05d}.wav" for n in range(20)])
    for s in cv_splits(four, folds=2, repeats=3, seed=0, group="blocks:10"):
        assert {t.split("/")[0] for t, p in s.items() if p == "train"} == {"pop", "rock"}
        assert {t.split("/")[0] for t, p in s.items() if p == "valid"} == {"rock"}
    with pytest.raises(DatasetError, match=r"leaves no group for validation once every genre keeps a training group"):
        cv_splits(ds, folds=2, group="blocks:10")  # 2 groups of each genre: nothing left to validate on
    with pytest.raises(
        DatasetError,
        match=r"needs at least 3 groups of every genre .*pop has 2, rock has 2\. Use "
        r"fewer folds, smaller groups",
    ):
        cv_splits(ds, folds=3, group="blocks:10")
    for bad, match in (("blocks:0", "block size must be a whole number"), ("artist", "unknown --group 'artist'")):
        with pytest.raises(DatasetError, match=match):
            cv_groups(ds, bad)
    assert main(["train", str(tiny_tree), "--model", "summary", "--group", "blocks:5"]) == 2
    assert "give --cv K with it" in capsys.readouterr().err


@needs_shared()
def test_shipped_lists_as_a_split_file_match_gtzan_ff_on_real_tracks():
    ds = datasets.scan(SHARED / "sample")
    assert datasets.make_split(ds, kind="file", split_file=SHIPPED) == datasets.gtzan_split(ds)
    assert datasets.make_split(ds, kind="file", split_file=SHARED / "splits") == datasets.gtzan_split(ds)
    groups = dict(zip((t.track_id for t in ds.tracks), cv_groups(ds, "ff-runs")))
    # rock.00000-00009 are one run of the train part; jazz.00000 (train) and jazz.00054 (train) are not
    assert (
        groups["rock/rock.00000.wav"] == "rock:run0" and groups["jazz/jazz.00000.wav"] != groups["jazz/jazz.00054.wav"]
    )
