"""Issue 12: the adversarial probes, each reproduced with generated files and asserting the good behaviour."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from genrelib import audio, dataset, features
from genrelib.errors import AudioError

from .conftest import sine

GL = [sys.executable, "-m", "genrelib.cli"]


def _cli(*args, **kw):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([*GL, *map(str, args)], capture_output=True, text=True, env=env, timeout=600, **kw)


# ------------------------------------------------------------------------------------------- bad audio


def test_huge_float_samples_are_an_error_naming_the_file(write):
    # probe 1: a float WAV with finite samples of 3e5 made predict crash and mfcc features inf/NaN
    y = sine(440, 3.0) * 3e5 / 0.5
    path = write("loud.wav", y, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"loud\.wav.*samples reach 3e\+05.*\[-1, 1\]"):
        audio.load(path)
    # a float file a little over full scale (common after mixing) is fine
    ok = write("hot.wav", sine(440, 3.0) * 3.0, subtype="FLOAT")
    assert np.abs(audio.load(ok)[0]).max() > 1.0


def test_extraction_never_stores_non_finite_features(tmp_path, write):
    root = tmp_path / "data"
    for i in range(2):
        write(f"data/a/ok{i}.wav", sine(440 + 100 * i, 4.0))
        write(f"data/b/ok{i}.wav", sine(2000 + 100 * i, 4.0))
    write("data/b/loud.wav", sine(440, 4.0) * 1e6, subtype="FLOAT")
    ds = dataset.scan(root)
    for kind in ("mfcc", "mel", "summary"):
        fs = features.extract(ds, features.FeatureConfig(kind=kind), n_jobs=1, progress=False)
        assert np.isfinite(fs.X).all()
        assert "b/loud.wav" not in set(fs.track_ids) and any(t == "b/loud.wav" for t, _ in fs.skipped)


def test_truncated_ogg_is_reported(write, tmp_path):
    # probe 2: an ogg/vorbis file cut at 10% or 50% was classified on the partial audio
    rng = np.random.default_rng(0)
    music = sine(440, 20.0) * 0.6 + 0.1 * rng.standard_normal(22050 * 20).astype(np.float32)
    good = write("full.ogg", music)
    assert len(audio.load(good)[0]) > 19 * 22050
    data = good.read_bytes()
    for frac in (0.1, 0.5):
        cut = tmp_path / f"cut{frac}.ogg"
        cut.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(AudioError, match="truncated"):
            audio.load(cut)
        with pytest.raises(AudioError, match="truncated"):
            dataset.check_file(cut)


def test_too_short_is_a_clear_error(write):
    # probe 3: a 1-sample file was classified "disco 1.00"
    for n in (1, 100, int(0.4 * 22050)):
        path = write(f"short{n}.wav", sine(seconds=1.0)[:n])
        with pytest.raises(AudioError, match=r"too short.*at least 0\.5 s"):
            audio.load(path)
    assert len(audio.load(write("half.wav", sine(seconds=0.6)))[0]) > 0


def test_long_silent_file_fails_before_any_window_is_featurised(write):
    # probe 4: a 2-hour silent file was featurised for 5 minutes before "is silent"; here 20 minutes
    path = write("quiet.wav", np.zeros(22050 * 60 * 20, np.float32))
    passed_on = []
    with pytest.raises(AudioError, match="silent"):
        for chunk in audio.stream(path):
            passed_on.append(chunk)
    assert passed_on == []  # nothing reached a feature extractor
    with pytest.raises(AudioError, match="silent"):
        features.file_features(path, features.FeatureConfig(kind="summary"))


def test_silence_then_sound_gives_the_same_signal(write):
    y = np.concatenate([np.zeros(22050 * 70, np.float32), sine(440, 5.0)])
    path = write("late.wav", y, subtype="FLOAT")
    z, _ = audio.load(path)
    np.testing.assert_array_equal(z, y)
