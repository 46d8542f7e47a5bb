"""Ensembles: members of different families on their own features, combined per window and track; a model like any
other (saved, loaded, logged, registered, served, evaluated); compared with its members on the same tracks."""

import copy
import dataclasses

import mlflow
import numpy as np
import pandas as pd
import pytest

from genrelib import tracking
from genrelib.cli import main
from genrelib.errors import ModelError
from genrelib.evaluation.scoring import evaluate_folder
from genrelib.inference.predict import load_model, predict_file
from genrelib.models.ensemble import EnsembleModel
from genrelib.training.config import TrainConfig
from genrelib.training.ensemble import build, make_ensemble, split_note
from genrelib.training.trainer import train


@pytest.fixture(scope="module")
def members(tiny_tree, tmp_path_factory):
    """A summary model (57-column windows) and a seed_cnn (MFCC segments) trained on the same split, saved."""
    folder = tmp_path_factory.mktemp("members")
    out = {}
    for family, epochs in (("summary", 1), ("seed_cnn", 1)):
        model = train(tiny_tree, TrainConfig(family=family, seed=1, epochs=epochs), log=False, n_jobs=1).model
        out[family] = (model, model.save(folder / family))
    return out


def _combine(weights, *probas):
    w = np.asarray(weights, dtype=float) / sum(weights)
    logp = sum(wk * np.log(p) for wk, p in zip(w, probas))
    p = np.exp(logp - logp.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def test_members_on_their_own_features_combined_per_window_and_track(members, tiny_tree):
    (summary, _), (cnn, _) = members["summary"], members["seed_cnn"]
    ens = build([summary, cnn], [1, 3])
    assert [m.feature_config.kind for m in ens.members] == ["summary", "mfcc"]
    song = next(tiny_tree.glob("metal/*.wav"))
    p, ps, pc = (predict_file(m, song) for m in (ens, summary, cnn))
    np.testing.assert_allclose(p.proba, _combine([1, 3], ps.proba, pc.proba), rtol=1e-9)
    np.testing.assert_allclose(p.window_proba, _combine([1, 3], ps.window_proba, pc.window_proba), rtol=1e-9)
    assert p.proba.sum() == pytest.approx(1.0) and list(p.starts) == list(ps.starts)

    rep = evaluate_folder(ens, tiny_tree, part="test", n_jobs=1)
    test = sorted(summary.info["split_tracks"]["test"])
    assert sorted(rep.track_ids) == test and rep.part_found == rep.part_recorded == len(test)
    assert [sorted(r.track_ids) for r in rep.members] == [test, test]  # members scored on the same tracks
    by_track = [dict(zip(r.track_ids, r.track.proba)) for r in rep.members]
    for tid, P in zip(rep.track_ids, rep.track.proba):
        np.testing.assert_allclose(P, _combine([1, 3], by_track[0][tid], by_track[1][tid]), rtol=1e-9)
    # each member's own report on those tracks is what it gets alone
    alone = evaluate_folder(cnn, tiny_tree, part="test", n_jobs=1)
    np.testing.assert_allclose(rep.members[1].track.proba, alone.track.proba)


def test_an_ensemble_of_one_model_twice_is_that_model(members, tiny_tree):
    summary, _ = members["summary"]
    rep = evaluate_folder(build([summary, summary], [2, 5]), tiny_tree, part="test", n_jobs=1)
    np.testing.assert_allclose(rep.track.proba, rep.members[0].track.proba, rtol=1e-9)
    assert rep.track.metrics == rep.members[0].track.metrics


def test_bad_ensembles_are_one_clear_error(members):
    summary, path = members["summary"]
    other = dataclasses.replace(summary, genres=["blues", "metal", "reggae"])
    with pytest.raises(ModelError, match=r"different genre sets .*classical, metal, reggae.*blues, metal, reggae"):
        build([summary, other])
    with pytest.raises(ModelError, match="3 weights for 2 models"):
        build([path, path], [1, 2, 3])
    with pytest.raises(ModelError, match="non-negative.* -1"):
        build([path, path], [1, -1])
    with pytest.raises(ModelError, match="all weights are 0"):
        build([path, path], [0, 0])
    with pytest.raises(ModelError, match="at least two models"):
        build([path])
    ens = build([path, path])
    with pytest.raises(ModelError, match="itself an ensemble"):
        EnsembleModel(members=[ens, summary], weights=None, genres=[])
    with pytest.raises(ModelError, match="no single feature configuration"):
        _ = ens.feature_config


def test_members_with_different_test_parts_share_only_the_common_tracks(members, tiny_tree):
    summary, _ = members["summary"]
    moved = sorted(summary.info["split_tracks"]["test"])[0]
    info = copy.deepcopy(summary.info)  # the same model, as if trained with that test track among its training ones
    info["split_tracks"]["test"].remove(moved)
    info["split_tracks"]["train"].append(moved)
    ens = build([summary, dataclasses.replace(summary, info=info)])
    common = sorted(set(summary.info["split_tracks"]["test"]) - {moved})
    assert ens.info["split_tracks"]["test"] == common
    n = len(common) + 1
    assert split_note(ens) == (
        f"the members' test parts differ (model 1 (summary) {n}, model 2 (summary) {n - 1} "
        f"tracks): {n - 1} are in every member's test part and in no member's training or "
        "validation part; only those are the ensemble's test tracks"
    )
    assert split_note(build([summary, summary])) is None
    rep = evaluate_folder(ens, tiny_tree, part="test", n_jobs=1)
    assert sorted(rep.track_ids) == common and [sorted(r.track_ids) for r in rep.members] == [common, common]


def test_logged_registered_and_used_as_any_model(members, tiny_tree, tmp_path, monkeypatch):
    (_, spath), (_, cpath) = members["summary"], members["seed_cnn"]
    res = make_ensemble([str(spath), str(cpath)], weights=[1, 1], data=tiny_tree, n_jobs=1, out=tmp_path / "ens")
    table = res.table()
    assert list(table["model"]) == [str(spath), str(cpath), "ensemble"]
    assert len(set(table["tracks"])) == 1
    assert res.gain == pytest.approx(table["track_accuracy"].iloc[-1] - table["track_accuracy"].iloc[:-1].max())
    run = mlflow.get_run(res.run_id)
    assert run.data.tags["genrelib.stage"] == "ensemble" and run.data.params["ensemble.families"] == "summary,seed_cnn"
    assert run.data.metrics["test_track_accuracy"] == table["track_accuracy"].iloc[-1]
    assert "gain_test_track_accuracy" in run.data.metrics and "member2_test_track_accuracy" in run.data.metrics
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(res.run_id, "reports")}
    assert {"reports/ensemble_members.csv", "reports/test_report.json"} <= arts
    version = mlflow.MlflowClient().get_model_version_by_alias("genre-classifier", "ensemble")
    assert str(version.version) == res.registered_version and version.tags["family"] == "ensemble"
    # members given by a registry reference are recorded with the version it named (aliases move); folders have none
    assert [r["version"] for r in res.model.info["members"]] == [None, None]
    assert tracking.registered_version("genre-classifier@ensemble") == res.registered_version
    assert tracking.registered_version("genre-classifier") == res.registered_version  # the latest
    assert tracking.registered_version(f"runs:/{res.run_id}/model") is None
    song = next(tiny_tree.glob("reggae/*.wav"))
    expected = predict_file(res.model, song).proba
    for ref in ("genre-classifier@ensemble", tmp_path / "ens"):  # the registry, the saved folder
        loaded = load_model(ref)
        assert isinstance(loaded, EnsembleModel) and loaded.member_names == res.model.member_names
        np.testing.assert_allclose(predict_file(loaded, song).proba, expected)
    # the audio pyfunc (what a served model runs), reading files by path under the folder it is allowed
    monkeypatch.setenv("GENRELIB_SERVE_PATHS_DIR", str(tiny_tree))
    answer = tracking.load_pyfunc("genre-classifier@ensemble").predict(pd.DataFrame({"path": [str(song)]}))
    np.testing.assert_allclose([answer[f"p_{g}"][0] for g in res.model.genres], expected, rtol=1e-6)


def test_ensemble_command(members, tiny_tree, capsys):
    (_, spath), (_, cpath) = members["summary"], members["seed_cnn"]
    assert (
        main(
            [
                "ensemble",
                str(spath),
                str(cpath),
                "--weights",
                "1",
                "3",
                "--data",
                str(tiny_tree),
                "--jobs",
                "1",
                "--no-log",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "summary" in out and "seed_cnn" in out and "track_accuracy" in out
    assert "gain over the best member" in out and "the same for every model" in out
    assert main(["ensemble", str(spath), str(cpath), "--weights", "1", "--no-log"]) == 2
    assert "1 weights for 2 models" in capsys.readouterr().err
    assert main(["ensemble", str(spath), str(cpath), "--weights", "1", "-2", "--no-log"]) == 2
    assert "non-negative" in capsys.readouterr().err
