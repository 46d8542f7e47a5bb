import numpy as np
import pytest
import soundfile as sf

from genrelib import audio, datasets
from genrelib.config import GENRES
from genrelib.datasets import demo, demo_styles


def test_every_genre_renders_deterministically():
    for g in GENRES:
        a = demo.render(g, 3.0, seed=5)
        assert a.shape == (66150,) and a.dtype == np.float32
        assert 0.3 < np.abs(a).max() < 1.0
        np.testing.assert_array_equal(a, demo.render(g, 3.0, seed=5))
        assert not np.array_equal(a, demo.render(g, 3.0, seed=6))
    with pytest.raises(ValueError, match="unknown demo genre"):
        demo.render("polka", 1.0)


def test_make_demo_is_gtzan_shaped_and_reproducible(tmp_path):
    out = demo.make_demo(tmp_path / "a", per_genre=2, seconds=2.0, seed=3, n_jobs=2)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav"))
    assert files == sorted(f"{g}/{g}.{i:05d}.wav" for g in GENRES for i in range(2))
    info = sf.info(out / "jazz" / "jazz.00001.wav")
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (22050, 1, "PCM_16", 44100)
    other = demo.make_demo(tmp_path / "b", per_genre=2, seconds=2.0, seed=3, n_jobs=1)
    for f in files:
        assert (out / f).read_bytes() == (other / f).read_bytes()
    assert len(datasets.scan(out).tracks) == 20


def test_personal_songs_long_and_in_several_formats(tmp_path):
    paths = demo.make_personal(tmp_path, n=4, seed=0, min_seconds=20, max_seconds=40, n_jobs=1)
    assert {p.suffix for p in paths} == {".mp3", ".flac", ".wav", ".ogg"}
    for p in paths:
        assert p.parent.name in GENRES
        y, sr = audio.load(p)
        assert 19 <= len(y) / sr <= 41


def _mfcc_cv_accuracy(overlap, per_genre=6, seconds=6.0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from genrelib import features

    X, y = [], []
    for gi, g in enumerate(GENRES):
        for i in range(per_genre):
            sig = demo.render(g, seconds, seed=demo.track_seed(11, g, i), overlap=overlap)
            m = features.mfcc(sig, n_mfcc=20)
            X.append(np.concatenate([m.mean(0), m.std(0)]))
            y.append(gi)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return cross_val_score(model, np.array(X), np.array(y), cv=3).mean()


def test_demo_genres_are_learnable_and_overlap_makes_them_harder():
    """Mean MFCCs + logistic regression tell distinct demo genres (overlap 0) apart far better than chance (10%);
    the default overlap (crossover tracks, varied production) is harder, yet still above chance."""
    easy, hard = _mfcc_cv_accuracy(0.0), _mfcc_cv_accuracy(None)
    assert easy > 0.6, easy
    assert 0.15 < hard < easy - 0.1, (hard, easy)


def test_overlap_is_checked_and_deterministic(tmp_path, capsys):
    from genrelib.cli import main

    a = demo.render("rock", 2.0, seed=4, overlap=0.7)
    np.testing.assert_array_equal(a, demo.render("rock", 2.0, seed=4, overlap=0.7))
    assert not np.array_equal(a, demo.render("rock", 2.0, seed=4, overlap=0.0))
    np.testing.assert_array_equal(
        demo.render("rock", 2.0, seed=4), demo.render("rock", 2.0, seed=4, overlap=demo_styles.DEFAULT_OVERLAP)
    )
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises(demo_styles.DemoError, match="overlap must lie between 0 and 1"):
            demo.render("rock", 1.0, overlap=bad)
    assert main(["demo-data", str(tmp_path / "d"), "--per-genre", "1", "--overlap", "1.2"]) == 2
    assert "overlap must lie between 0 and 1, got 1.2" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # refused before anything is written
    assert set(demo_styles.NEIGHBOURS) == set(GENRES) == set(demo_styles.STYLES)
    assert all(n in GENRES and n != g for g, ns in demo_styles.NEIGHBOURS.items() for n in ns)


def test_demo_data_says_what_it_wrote_and_marks_the_folder(tmp_path, capsys):
    from genrelib.cli import main
    from genrelib.inference.predict import Predictor

    out = tmp_path / "d"
    args = ["demo-data", str(out), "--per-genre", "1", "--seconds", "1"]
    assert main(args) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"1 synthetic tracks per genre (1 s each) under {out}: 10 written"
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(": 0 written, 10 already there and kept")
    assert demo.is_demo(out / "rock" / "rock.00000.wav") and not demo.is_demo(tmp_path)
    # a model trained on real music is warned about demo songs; songs elsewhere get no warning
    p = Predictor()
    assert p.demo_warning([out / "rock" / "rock.00000.wav"]).startswith("warning: 1 of these songs")
    assert p.demo_warning([tmp_path / "x.wav"]) is None


def test_a_demo_folder_of_other_settings_or_an_older_generator_is_written_again(tmp_path, capsys):
    # an old checkout's data/demo (the easy music of the generator before the overlap knob) was kept as it was,
    # so `make run-all` went on training on it; the marker now records the settings and stale files are redone
    from genrelib.cli import main

    out = tmp_path / "d"
    args = ["demo-data", str(out), "--per-genre", "1", "--seconds", "1", "--overlap", "0"]
    assert main(args) == 0
    assert demo.recorded_settings(out) == {
        "generator": demo.GENERATOR,
        "kind": "genres",
        "seed": 0,
        "overlap": 0.0,
        "sr": 22050,
        "seconds": 1.0,
    }
    easy = sf.read(out / "rock" / "rock.00000.wav")[0]
    capsys.readouterr()
    assert main(args[:-2]) == 0  # the default overlap: every track written again
    said = capsys.readouterr().out.splitlines()[0]
    assert said.startswith(
        f"1 synthetic tracks per genre (1 s each) under {out}: 10 written (the folder held "
        'music made with {"generator": 2'
    ) and said.endswith(f"written again with overlap {demo_styles.DEFAULT_OVERLAP:g}, seed 0)")
    assert not np.array_equal(sf.read(out / "rock" / "rock.00000.wav")[0], easy)
    assert demo.recorded_settings(out)["overlap"] == demo_styles.DEFAULT_OVERLAP
    # a folder marked by the generator before settings were recorded: written again too
    (out / demo.MARKER).write_text("Synthetic music generated by `genrelib demo-data`.\n")
    (out / "rock" / "rock.00000.wav").write_bytes(b"old")
    assert demo.recorded_settings(out) == {}
    assert main(args[:-2]) == 0
    assert "made by an older demo generator" in capsys.readouterr().out
    assert sf.info(out / "rock" / "rock.00000.wav").duration == 1.0
    # a user's own files in a folder without the marker are never touched
    mine = tmp_path / "mine" / "rock"
    mine.mkdir(parents=True)
    (mine / "rock.00000.wav").write_bytes(b"mine")
    demo.make_demo(tmp_path / "mine", per_genre=1, seconds=1, genres=("rock",), n_jobs=1)
    assert (mine / "rock.00000.wav").read_bytes() == b"mine"
    # personal songs: another seed rewrites them and leaves no empty genre folder behind
    p = tmp_path / "p"
    demo.make_personal(p, n=2, min_seconds=1, max_seconds=2, n_jobs=1)
    demo.make_personal(p, n=2, seed=3, min_seconds=1, max_seconds=2, n_jobs=1)
    assert all(any(g.iterdir()) for g in p.iterdir() if g.is_dir())
    assert demo.recorded_settings(p)["seed"] == 3
