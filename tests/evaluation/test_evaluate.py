"""Evaluation on a part of a model's split: the part is the model's own recorded track list, never a re-split."""

import shutil
from pathlib import Path

import pytest
import soundfile as sf

from genrelib.errors import ModelError
from genrelib.evaluation.scoring import evaluate_folder
from genrelib.inference.predict import load_model
from genrelib.training.config import TrainConfig
from genrelib.training.trainer import train

from ..conftest import gtzan_ids


@pytest.fixture(scope="module")
def trained(tiny_tree):
    return train(tiny_tree, TrainConfig(family="summary", seed=1), log=False, n_jobs=1)


def _parts(res):
    return {p: sorted(t for t, q in res.split.items() if q == p) for p in ("train", "valid", "test")}


def test_training_records_the_tracks_of_each_part(trained):
    assert trained.model.info["split_tracks"] == _parts(trained)
    # a random split keeps a track of every genre in every part; its size is the user's test_size: no problems
    assert trained.extra["split_problems"] == [] and trained.extra["left_out"] == []
    assert "still_improving" not in trained.model.info  # (a Keras family's flag)


def test_test_part_of_another_folder_holds_only_the_models_test_tracks(trained, tiny_tree, tmp_path):
    parts = _parts(trained)
    # a folder with every training and validation track but only one of the test tracks
    other = tmp_path / "other"
    for tid in parts["train"] + parts["valid"] + parts["test"][:1]:
        (other / tid).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_tree / tid, other / tid)
    rep = evaluate_folder(trained.model, other, part="test", n_jobs=1)
    assert list(rep.track_ids) == parts["test"][:1]
    assert (rep.part, rep.part_found, rep.part_recorded) == ("test", 1, len(parts["test"]))
    assert rep.to_dict()["part"] == {"name": "test", "found": 1, "recorded": len(parts["test"])}
    # the same folder's train part: the training tracks it holds, nothing else
    rep = evaluate_folder(trained.model, other, part="train", n_jobs=1)
    assert sorted(rep.track_ids) == parts["train"]


def test_few_tracks_per_genre_is_no_reason_to_refuse(trained, tiny_tree, tmp_path):
    # one test track per genre: there is no split to make, so no "3 tracks per genre" rule applies
    parts = _parts(trained)
    small = tmp_path / "small"
    for tid in parts["test"]:
        (small / tid).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_tree / tid, small / tid)
    rep = evaluate_folder(trained.model, small, part="test", n_jobs=1)
    assert sorted(rep.track_ids) == parts["test"] and rep.part_found == rep.part_recorded


def test_no_test_track_in_the_folder(trained, tiny_tree, tmp_path):
    parts = _parts(trained)
    only_train = tmp_path / "only_train"
    for tid in parts["train"]:
        (only_train / tid).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_tree / tid, only_train / tid)
    with pytest.raises(ModelError, match=r"none of the model's 3 test tracks is in .*only_train") as err:
        evaluate_folder(trained.model, only_train, part="test", n_jobs=1)
    assert "at least 3 tracks" not in str(err.value) and "without --part" in str(err.value)


def test_a_test_list_naming_a_training_track_never_scores_it(trained, tiny_tree):
    # a corrupt record (a track in both lists) must not let a training track count as test
    model = load_model_copy(trained.model)
    leaked = model.info["split_tracks"]["train"][0]
    model.info["split_tracks"]["test"] = [*model.info["split_tracks"]["test"], leaked]
    rep = evaluate_folder(model, tiny_tree, part="test", n_jobs=1)
    assert leaked not in set(rep.track_ids)
    assert sorted(rep.track_ids) == _parts(trained)["test"]


def test_old_model_with_a_random_split_and_no_track_lists_is_refused(trained, tiny_tree):
    model = load_model_copy(trained.model)
    del model.info["split_tracks"]
    with pytest.raises(ModelError, match="does not record the tracks of its split") as err:
        evaluate_folder(model, tiny_tree, part="test", n_jobs=1)
    assert "retrain" in str(err.value) and "whole folder" in str(err.value)


def test_reference_model_parts_are_the_fault_filtered_lists(gtzan_tree):
    root = gtzan_tree({"classical": {"train": 2, "valid": 1, "test": 1, "out": 1}, "metal": {"train": 1, "test": 2}})
    # an .au copy matches the list's .wav name (genre folder + file stem)
    wav = root / gtzan_ids("metal", "test", 1)[0]
    y, sr = sf.read(wav)
    sf.write(wav.with_suffix(".au"), y, sr, format="AU", subtype="PCM_16")
    wav.unlink()
    model = load_model("reference")
    rep = evaluate_folder(model, root, part="test", n_jobs=1)
    expected = [
        *gtzan_ids("classical", "test", 1),
        str(Path(gtzan_ids("metal", "test", 1)[0]).with_suffix(".au")),
        *gtzan_ids("metal", "test", 2)[1:],
    ]
    assert sorted(rep.track_ids) == sorted(expected)
    assert (rep.part_found, rep.part_recorded) == (3, 290)
    rep = evaluate_folder(model, root, part="train", n_jobs=1)
    assert sorted(rep.track_ids) == sorted(gtzan_ids("classical", "train", 2) + gtzan_ids("metal", "train", 1))
    assert (rep.part_found, rep.part_recorded) == (3, 443)


def load_model_copy(model):
    """The same model with its own copy of ``info`` (the module's trained model stays as it was)."""
    import copy
    import dataclasses

    return dataclasses.replace(model, info=copy.deepcopy(model.info))


def test_per_genre_support_is_a_count():
    # issue 21 #21: "support 6.0"
    import numpy as np

    from genrelib.evaluation.reports import report_rows

    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    report = report_rows(["jazz", "rock"], proba, np.array([0, 1, 1, 1]), np.array(["a", "b", "c", "c"]))
    table = report.per_genre_table("segment")
    assert table["support"].dtype.kind == "i" and table.loc["rock", "support"] == 3
    assert list(report.flat_metrics())[:2] == ["test_track_accuracy", "test_track_precision_weighted"]
    assert report.headline().startswith("**test accuracy per track: 1.000** on 3 held-out test tracks")
