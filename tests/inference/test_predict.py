"""Prediction on songs of any length and format; the personal-data test; the predict command."""

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from genrelib.cli import main
from genrelib.datasets import demo
from genrelib.errors import AudioError, DatasetError
from genrelib.inference.personal import personal_test, summary_table
from genrelib.inference.predict import Predictor

from ..conftest import sine


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """Long labelled songs in several formats, two of a genre the reference model does not know."""
    root = tmp_path_factory.mktemp("songs")
    demo.make_personal(root, n=4, seed=5, min_seconds=62, max_seconds=80, n_jobs=1)
    import soundfile as sf

    (root / "polka").mkdir()
    sf.write(root / "polka" / "oompah.wav", demo.render("country", 12.0, seed=9), 22050)
    return root


def test_predict_long_song_windows_and_aggregate(songs):
    p = Predictor("reference")  # 30 s windows (the default model draws a finer timeline: test_default_model.py)
    mp3 = next(songs.rglob("*.mp3"))
    s = p.predict(mp3)
    n_windows = len(s.starts)
    assert n_windows >= 2 and s.window_proba.shape == (n_windows, 10)
    np.testing.assert_allclose(s.window_proba.sum(axis=1), 1.0)
    assert s.proba.sum() == pytest.approx(1.0)
    assert list(s.starts[:2]) == [0.0, 30.0]
    assert s.duration > 39
    top = s.top(p.genres, 3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    overlapping = Predictor("reference", hop_seconds=10.0).predict(mp3)
    assert len(overlapping.starts) > n_windows


def test_short_song_is_one_window(write):
    s = Predictor().predict(write("short.flac", sine(330, 4.0)))
    assert len(s.starts) == 1


def test_bad_files_reported_others_classified(songs, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "song.m4a").write_bytes(bytes(64))
    good = next(songs.rglob("*.wav"))
    preds, failures = Predictor().predict_many([tmp_path / "empty.wav", good, tmp_path / "song.m4a"])
    assert [p.path for p in preds] == [good]
    reasons = {p.name: r for p, r in failures}
    assert "empty" in reasons["empty.wav"] and "not supported" in reasons["song.m4a"]
    with pytest.raises(AudioError, match="no such file"):
        Predictor().predict(tmp_path / "nothing.mp3")


def test_personal_test_labelled_with_unknown_genre(songs):
    res = personal_test(songs, log=True)
    assert len(res.songs) == 5
    assert res.unknown == {"polka": ["polka/oompah.wav"]}
    scored = res.songs[res.songs["known_genre"]]
    assert len(scored) == 4
    assert res.song_metrics["accuracy"] == pytest.approx(np.mean(scored["true"] == scored["predicted"]))
    assert res.song_confusion.sum() == 4  # the polka song is not counted
    assert res.window_confusion.sum() == int((res.windows["true"] != "polka").sum())
    assert res.run_id is not None
    import mlflow

    run = mlflow.get_run(res.run_id)
    assert "personal_song_accuracy" in run.data.metrics and run.data.params["unknown_genres"] == "polka"
    # the songs are the run's dataset input (context evaluation), by absolute path, with their genre folders
    (entry,) = run.inputs.dataset_inputs
    assert {t.key: t.value for t in entry.tags}["mlflow.data.context"] == "evaluation"
    assert entry.dataset.name == songs.name and str(songs.resolve()) in entry.dataset.source
    assert '"num_rows": 5' in entry.dataset.profile
    # timelines named for the song and titled with its true genre; confusion matrices over the genres that occur,
    # not the model's 10 (issue 21 #21)
    figures = {a.path for a in mlflow.MlflowClient().list_artifacts(res.run_id, "figures")}
    names = res.timeline_names()
    assert len(names) == 5 and set(names) <= figures and "figures/timeline_polka-oompah.png" in names
    i = list(res.songs["song"]).index("polka/oompah.wav")
    assert res.timeline(i).axes[0].get_title() == (
        "polka/oompah.wav: genre probabilities (true genre: polka, unknown to the model)"  # one window: bars
    )
    fig = res.confusion_figure("song")
    occurring = set(scored["true"]) | set(scored["predicted"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [g for g in res.genres if g in occurring]
    # the scores with three decimals each, counts as integers
    table = res.song_table()
    summary = summary_table(res)
    assert summary.loc["per song", "accuracy"] == f"{res.song_metrics['accuracy']:.3f}"
    assert summary["songs scored"].dtype.kind == "i" and len(table) == 5


def test_personal_test_unlabelled_folder(tmp_path, write):
    write("a.wav", sine(440, 3.0))
    write("b.ogg", sine(220, 5.0))
    res = personal_test(tmp_path, log=False)
    assert not res.labelled and len(res.songs) == 2 and set(res.songs["true"]) == {""}
    assert res.confusion_figure() is None  # and says why, in one printed line
    assert res.timeline_names() == ["figures/timeline_a.png", "figures/timeline_b.png"]
    # what the user reads: no "known_genre False" and no empty "true" column (issue 10 #8)
    assert {"known_genre", "true"}.isdisjoint(res.song_table().columns)
    # a song of one window is drawn as a bar chart of genre probabilities, not a dot at x=0
    fig = res.timeline(0)
    ax = fig.axes[0]
    assert len(ax.patches) == len(res.genres) and not ax.lines
    assert [t.get_text() for t in ax.get_xticklabels()][0] == res.songs["predicted"][0]
    with pytest.raises(DatasetError, match="no such folder"):
        personal_test(tmp_path / "missing", log=False)


def test_predict_command_formats_and_exit_codes(songs, tmp_path, capsys):
    flac = next(songs.rglob("*.flac"))
    assert main(["predict", str(flac), "--timeline", "--top-k", "2"]) == 0
    cap = capsys.readouterr()
    out = cap.out.splitlines()
    # the first line says which model answers (issue 10 #9)
    assert out[0] == (
        "model: default (musicnn, 10 genres, trained on 153 tracks of gtzan_ff_train_valid (blues 17, classical 15, "
        "country 18, disco 16, hiphop 14, jazz 14, metal 14, pop 13, reggae 16, rock 16))"
    )
    assert out[1].startswith(str(flac)) and "s]" in out[1] and len(out) >= 4  # song line + timeline lines
    # these are synthetic demo songs: the user is warned that the real-music default model does not know them
    assert cap.err.startswith("warning: 1 of these songs is genrelib's synthetic demo music; the default model")
    assert main(["predict", str(flac), "--format", "json"]) == 0
    cap = capsys.readouterr()
    assert cap.err.startswith("model: default (musicnn")  # json stays parseable on stdout
    data = json.loads(cap.out)
    assert data[0]["path"] == str(flac) and len(data[0]["top"]) == 3
    assert main(["predict", str(flac), "--format", "csv", "--timeline"]) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert csv["window_start"].iloc[0] == -1 and len(csv) >= 3 and "p_rock" in csv.columns
    # the top genres as columns, not a JSON string in a cell
    assert {"top1_genre", "top1_probability", "top3_genre"} <= set(csv.columns) and "top_k" not in csv.columns
    assert csv["path"].iloc[0] == str(flac) and csv["top1_genre"].iloc[0] == data[0]["top"][0]["genre"]
    (tmp_path / "bad.mp3").write_text("not audio")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "genrelib.cli",
            "predict",
            str(flac),
            str(tmp_path / "bad.mp3"),
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1  # one song classified, two inputs failed
    assert str(flac) in r.stdout
    # every line the user sees is genrelib's, once: libmpg123's "Note: ..." lines are not passed on (issue 10 #7)
    progress = [e for e in r.stderr.splitlines() if e.startswith("genrelib: songs: ")]  # stderr is a pipe
    assert progress[-1].startswith("genrelib: songs: 2/2 songs (100%), 1 skipped, ")  # one line per tenth
    lines = [e for e in r.stderr.splitlines() if e not in progress]
    errs = [e for e in lines if e.startswith("genrelib: error: ")]
    assert len(errs) == 2 and "bad.mp3" in errs[0] + errs[1] and "missing" in errs[0] + errs[1]
    assert len(lines) == 3 and lines[0].startswith("warning: 1 of these songs is genrelib's synthetic demo")
    assert "libsndfile found no audio stream in it" in errs[0] + errs[1]
    r = subprocess.run(
        [sys.executable, "-m", "genrelib.cli", "predict", str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "no such file or folder" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "genrelib.cli", "predict", str(flac), "--model", "genre-classifier/42"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "not found" in r.stderr


def test_personal_test_command(songs, capsys):
    assert main(["personal-test", str(songs), "--no-log"]) == 0
    cap = capsys.readouterr()
    assert "per song: accuracy" in cap.out and "not scored: genre 'polka'" in cap.out
    # the synthetic-demo warning comes first, before the progress lines (as predict's), not after the work
    err = cap.err.splitlines()
    assert err[0].startswith("warning: 5 of these songs are genrelib's synthetic demo music"), err
    assert [line for line in err if line.startswith("warning: ")] == err[:1]
    assert err[-1].startswith("genrelib: songs: 5/5 songs (100%)"), err


def test_predict_a_song_given_beside_the_folder_that_holds_it_classifies_it_once(tmp_path, capsys):
    import soundfile as sf

    folder = tmp_path / "my_music"
    folder.mkdir()
    for name, genre in (("song.wav", "rock"), ("other.wav", "jazz")):
        sf.write(folder / name, demo.render(genre, 4.0, seed=3), 22050)
    song = folder / "song.wav"
    args = ["predict", str(song), str(folder), f"{folder}/./song.wav", "--format", "json"]
    assert main(args) == 0
    paths = [row["path"] for row in json.loads(capsys.readouterr().out)]
    assert paths == [str(song), str(folder / "other.wav")]
