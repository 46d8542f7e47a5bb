"""The shipped default model: what ships is what `genrelib train-default` builds, it answers with numpy alone,
its timeline has a point every 3 s, and its tags come from the same network pass."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from genrelib.cli import main
from genrelib.datasets import Dataset, Track
from genrelib.errors import ModelError
from genrelib.inference import Predictor, default, load_model
from genrelib.models.base import HEAD_FILE
from genrelib.training.default_model import DEFAULT_FEATURES, fit_head, grouped_cv

from ..conftest import SHARED, needs_shared, sine

ROOT = Path(__file__).resolve().parents[2]
#: The 153 tracks' feature table that `make default-model` writes beside the tests (train-default --table).
TABLE = ROOT / "tests" / "data" / "default_model_features.npz"
HEAVY = ("tensorflow", "keras", "sklearn", "skops", "mlflow", "gradio")


def _table():
    with np.load(TABLE, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_the_shipped_head_is_the_one_its_feature_table_and_grouped_cv_give():
    model = load_model(None)
    assert model.family == "musicnn" and model.feature_config == DEFAULT_FEATURES
    t = _table()
    genres = [str(g) for g in t["genres"]]
    assert genres == model.genres and len(set(t["track_ids"].tolist())) == model.info["tracks"] == 153
    y = np.array([genres.index(str(g)) for g in t["row_genres"]])
    # the grouped cross-validation of the shipped C gives the recorded score, the best of the recorded grid ...
    ids = [str(i) for i in t["track_ids"]]
    ds = Dataset(root=Path("gtzan"), tracks=[Track(Path(i), i.split("/")[0], i) for i in ids], genres=genres)
    fs = type("Table", (), {"X": t["X"], "row_genres": t["row_genres"], "track_ids": t["track_ids"], "genres": genres})
    best = model.info["C"]
    cv, top = grouped_cv(fs, ds, grid=(best,))
    assert np.mean(cv[best]) == pytest.approx(model.info["cv_mean_track_accuracy"], abs=1e-9)
    assert np.mean(top[best]) == pytest.approx(model.info["cv_mean_top_probability"], abs=1e-9)
    by_c = model.info["cv_mean_track_accuracy_by_C"]
    assert by_c[f"{best:g}"] == max(by_c.values()) and len(by_c) == 5
    # ... and the head fitted with it on every track is the shipped one
    head = fit_head(t["X"], y, C=best)
    for name in ("mean", "scale", "coef", "intercept"):
        np.testing.assert_allclose(getattr(head, name), getattr(model.estimator, name), rtol=1e-6, atol=1e-8)


@needs_shared()
def test_the_feature_table_is_genrelibs_features_of_the_shared_tracks(tmp_path):
    from genrelib.features import extract

    t = _table()
    ids = [str(i) for i in t["track_ids"]]
    picked = ["blues/blues.00000.wav", "rock/rock.00000.wav"]  # in sample/ (wav); another file form: ff_more (flac)
    flac = next(i for i in ids if (SHARED / "ff_more" / Path(i).with_suffix(".flac")).exists())
    root = tmp_path / "data"
    for tid in picked:
        (root / tid).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / "sample" / tid, root / tid)
    (root / flac).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHARED / "ff_more" / Path(flac).with_suffix(".flac"), (root / flac).with_suffix(".flac"))
    from genrelib.datasets import scan

    fs = extract(scan(root), DEFAULT_FEATURES, n_jobs=1, progress=False)
    for tid, row in zip(fs.track_ids, fs.X):
        key = tid if tid in ids else str(Path(tid).with_suffix(".wav"))
        np.testing.assert_allclose(row, t["X"][ids.index(key)], atol=1e-4)


def test_predict_with_the_default_model_imports_no_tensorflow_sklearn_skops_or_mlflow(write):
    song = write("song.wav", sine(220, 8.0) + 0.3 * sine(330, 8.0))
    code = (
        "import sys, json; from genrelib.cli import main; rc = main(['predict', sys.argv[1], '--tags', '3', "
        "'--timeline']); print(json.dumps([rc, sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[2:]))]))"
    )
    r = subprocess.run([sys.executable, "-c", code, str(song), *HEAVY], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("model: default (musicnn, 10 genres, trained on 153 tracks")
    # 8 s: two 3 s patches, so one point of the timeline, from both
    assert "    timeline: a point every 3 s, each from the 6 s that start there (2 musicnn patches)\n" in r.stdout
    assert json.loads(lines[-1]) == [0, []]


def test_timeline_points_every_3_s_and_tags_from_the_same_network_pass(write, monkeypatch):
    from genrelib.features import musicnn

    song = write("long.wav", np.concatenate([sine(220, 25.0), 0.5 * sine(880, 25.0)]))  # 50 s: two windows
    predictor = Predictor(tag_model="MSD_musicnn")
    net = musicnn.load("MSD_musicnn")
    original, calls = type(net).__call__, []

    def counting(self, X, **kw):
        calls.append(len(X))
        return original(self, X, **kw)

    monkeypatch.setattr(type(net), "__call__", counting)
    p = predictor.predict(song)
    # 50 s -> windows [0, 30) and [20, 50) (the last one ends at the song's end): one network call per window for
    # genre and tags alike; the timeline takes the second window's patches after 27 s (29 s on: 17 patches)
    assert calls == [10, 10]
    # points 3 s apart, the last window's aligned to the song's end (a 2 s step at 27 -> 29 s); the last point ends
    # with the song
    steps = np.diff(p.starts)
    assert p.starts[0] == 0.0 and len(p.starts) == 13 and p.starts[-1] + 15.0 == 50.0
    assert np.allclose(steps[steps != 2.0], 3.0) and (steps == 2.0).sum() == 1
    assert p.window_seconds == 15.0 and p.window_proba.shape == (13, 10) and p.window_tags.shape == (13, 50)
    np.testing.assert_allclose(p.window_proba.sum(axis=1), 1.0)
    assert p.tags.shape == (50,) and p.proba.shape == (10,)


def test_a_corrupt_shipped_file_names_itself_and_the_rebuild_command(tmp_path, monkeypatch, write):
    folder = tmp_path / "default"
    shutil.copytree(default.default_model_path(), folder)
    (folder / HEAD_FILE).write_bytes(b"not an npz")
    monkeypatch.setattr(default, "default_model_path", lambda: folder)
    with pytest.raises(ModelError, match=rf"{folder}.*cannot be read.*rebuild it with genrelib train-default DATA"):
        load_model(None)
    song = write("x.wav", sine(440, 4.0))
    code = (
        "import sys, pathlib, genrelib.inference.default as d; d.default_model_path = lambda: pathlib.Path(sys.argv[1]); "
        "from genrelib.cli import main; sys.exit(main(['predict', sys.argv[2]]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(song)], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "pickle" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith(f"rebuild it with {default.REBUILD}")


def test_train_default_command_builds_logs_and_is_used_by_predict(gtzan_tree, tmp_path, capsys):
    root = gtzan_tree({g: {"train": 4} for g in ("blues", "classical", "metal")}, seconds=4.0)
    out, table = tmp_path / "model", tmp_path / "table.npz"
    assert main(["train-default", str(root), "--folds", "1"]) == 2  # checked as the command line is read
    assert "argument --folds: must be a whole number >= 2, got '1'" in capsys.readouterr().err
    rc = main(
        [
            "train-default",
            str(root),
            "--out",
            str(out),
            "--table",
            str(table),
            "--folds",
            "2",
            "--repeats",
            "1",
            "--group",
            "blocks:1",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "grouped cross-validation (2-fold x 1 grouped (blocks:1), seed 42)" in text and "chosen C = " in text
    model = load_model(out)
    assert model.genres == ["blues", "classical", "metal"] and (out / default.MODEL_CARD).exists()
    with np.load(table) as f:
        assert f["X"].shape == (12, 500)
    run = mlflow.search_runs(
        experiment_names=["genrelib"], filter_string="tags.`genrelib.stage` = 'default-model'", output_format="list"
    )[0]
    assert run.inputs.dataset_inputs[0].dataset.digest == model.info["manifest_hash"]
    assert float(run.data.params["default.C"]) == model.info["C"]
    pred = Predictor(str(out)).predict(next(root.rglob("*.wav")))
    assert pred.proba.shape == (3,)
