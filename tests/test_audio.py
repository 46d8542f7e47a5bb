import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from genrelib import audio
from genrelib.errors import AudioError

from .conftest import sine


@pytest.mark.parametrize(
    "name,kw",
    [
        ("a.wav", {}),
        ("a.flac", {}),
        ("a.ogg", {}),
        ("a.mp3", {}),
        ("a.au", {}),
        ("a.opus", {"format": "OGG", "subtype": "OPUS"}),
    ],
)
def test_load_formats_to_mono_22050(write, name, kw):
    sr_in = 48000 if name.endswith("opus") else 44100
    path = write(name, sine(440, 2.0, sr_in, channels=2), sr_in, **kw)
    y, sr = audio.load(path)
    assert sr == 22050 and y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / sr - 2.0) < 0.1
    # the tone survives decoding and resampling: its spectral peak is still at 440 Hz
    spec = np.abs(np.fft.rfft(y[2048 : 2048 + 16384]))
    assert abs(np.argmax(spec) * sr / 16384 - 440) < 3


def test_load_other_rate(write):
    y, sr = audio.load(write("b.wav", sine(1000, 1.0, 8000), 8000), sr=16000)
    assert sr == 16000 and abs(len(y) - 16000) < 40


def test_errors_name_file_and_reason(tmp_path, write):
    cases = {}
    cases["missing"] = tmp_path / "nope.wav"
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = tmp_path / "empty.wav"
    (tmp_path / "junk.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    cases["not audio"] = tmp_path / "junk.wav"
    (tmp_path / "notes.mp3").write_text("these are not sounds")
    cases["text"] = tmp_path / "notes.mp3"
    cases["silent"] = write("silent.wav", np.zeros(22050, np.float32))
    (tmp_path / "song.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(100))
    cases["m4a"] = tmp_path / "song.m4a"
    good = write("full.wav", sine(seconds=2.0))
    data = good.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    cases["truncated wav"] = tmp_path / "cut.wav"
    mp3 = write("full.mp3", sine(seconds=6.0))
    data = mp3.read_bytes()
    (tmp_path / "cut.mp3").write_bytes(data[: len(data) // 2])
    cases["truncated mp3"] = tmp_path / "cut.mp3"
    expect = {
        "missing": "no such file",
        "empty": "empty",
        "not audio": "cannot be decoded",
        "text": "cannot be decoded",
        "silent": "silent",
        "m4a": "not supported",
        "truncated wav": "truncated",
        "truncated mp3": "truncated",
    }
    for what, path in cases.items():
        with pytest.raises(AudioError) as err:
            audio.load(path)
        msg = str(err.value)
        assert str(path) in msg, what
        assert expect[what] in msg, (what, msg)


def test_window_rule_gtzan_length():
    sr = 22050
    y = np.random.default_rng(0).standard_normal(661000).astype(np.float32)  # 29.977 s: 9 full segments + tail
    W = audio.windows(y, sr, seconds=3.0)
    assert W.shape == (10, 66150)
    np.testing.assert_array_equal(W[0], y[:66150])
    np.testing.assert_array_equal(W[-1], y[-66150:])  # the last one is aligned to the end, not padded
    starts = audio.window_starts(y, sr, seconds=3.0)
    assert starts[-1] == pytest.approx((661000 - 66150) / sr)


def test_window_rule_short_tail_dropped_and_short_signal_padded():
    sr = 1000
    y = np.ones(3400, np.float32)
    assert audio.windows(y, sr, seconds=1.0).shape == (3, 1000)  # 0.4 s tail < half a window: dropped
    assert audio.windows(np.ones(3600, np.float32), sr, seconds=1.0).shape == (4, 1000)
    short = audio.windows(np.ones(300, np.float32), sr, seconds=1.0)
    assert short.shape == (1, 1000) and short[0, 299] == 1 and short[0, 300] == 0
    unpadded = audio.windows(np.ones(300, np.float32), sr, seconds=1.0, pad=False)
    assert unpadded.shape == (1, 300)
    overlap = audio.windows(np.arange(3000, dtype=np.float32), sr, seconds=1.0, hop_seconds=0.5)
    assert overlap.shape == (5, 1000) and overlap[1, 0] == 500


def test_stream_matches_whole_load(write):
    y = np.random.default_rng(1).uniform(-0.5, 0.5, 44100 * 25).astype(np.float32)
    path = write("long.flac", y, 44100)
    whole, sr = audio.load(path)
    streamed = list(audio.load_windows(path, seconds=3.0))
    W = audio.windows(whole, sr, seconds=3.0)
    assert len(streamed) == len(W)
    for (_start, w), ref in zip(streamed, W):
        np.testing.assert_allclose(w, ref, atol=1e-6)


def test_one_hour_file_streams_in_bounded_memory(tmp_path):
    sr_in = 8000
    path = tmp_path / "hour.wav"
    rng = np.random.default_rng(2)
    with sf.SoundFile(path, "w", sr_in, 1, subtype="PCM_16") as f:
        for _ in range(60):
            f.write((0.3 * rng.standard_normal(sr_in * 60)).astype(np.float32))
    tracemalloc.start()
    n = 0
    for _, _w in audio.load_windows(path, seconds=30.0):
        n += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 120
    # The decoded hour at 22050 Hz would be 318 MB as float32; streaming holds a few windows.
    assert peak < 40e6, f"peak {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("hop", [None, 0.5, 0.75])
def test_streaming_follows_the_same_rule_as_arrays(hop):
    rng = np.random.default_rng(3)
    for total in [1, 50, 99, 100, 101, 149, 150, 151, 199, 200, 201, 250, 333, 1000, 1049, 1050]:
        y = rng.standard_normal(total).astype(np.float32)
        W = audio.windows(y, 100, seconds=1.0, hop_seconds=hop)
        for chunk in (7, 64, 1000):
            chunks = [y[i : i + chunk] for i in range(0, total, chunk)]
            got = [w for _, w in audio.iter_windows(chunks, 100, seconds=1.0, hop_seconds=hop)]
            assert len(got) == len(W), (total, chunk)
            np.testing.assert_array_equal(np.stack(got), W)
