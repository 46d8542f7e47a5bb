"""genrelib.features.musicnn against the original musicnn 0.1.0 (TF-1 code, numpy 1.26, librosa 0.10).

The reference numbers in tests/data/musicnn_reference.npz come from scripts/musicnn_reference.py, which ran
the wheel's own code in a separate environment; it takes the generated clips from ``generated_clips`` below
(read from this file's source, so both use the same generator).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrelib.errors import GenrelibError, ModelError
from genrelib.features import musicnn

from ..conftest import SHARED, needs_shared

REFERENCE = Path(__file__).parents[1] / "data" / "musicnn_reference.npz"
ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-4


def generated_clips() -> dict[str, tuple[np.ndarray, int]]:
    """Three deterministic test clips as 16-bit PCM at 22050 Hz: ``{name: (pcm int16, sr)}``.

    Numpy only (scripts/musicnn_reference.py runs this function's source under numpy 1.26); quantized to int16 so
    that last-bit differences of sin/exp between numpy versions cannot change the audio.
    """
    import numpy as np

    sr = 22050
    rng = np.random.default_rng(20191108)

    def t(seconds):
        return np.arange(int(seconds * sr)) / sr

    # 5 s: A major chord with harmonics, a slow tremolo and noise; loud (mel power well above 6.55).
    tt = t(5.0)
    chord = sum(
        (0.5**h) * np.sin(2 * np.pi * f * (h + 1) * tt + rng.uniform(0, 2 * np.pi))
        for f in (220.0, 277.18, 329.63)
        for h in range(4)
    )
    chord = 0.3 * chord * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * tt)) + 0.05 * rng.standard_normal(tt.size)

    # 10 s: drum-like pulse train: kicks (pitch-swept sine), off-beat snares (shaped noise), hats every 1/8.
    tt = t(10.0)
    drums = np.zeros(tt.size)
    for k, start in enumerate(np.arange(0, 10.0, 0.25)):
        i0 = int(start * sr)
        n = min(int(0.2 * sr), tt.size - i0)
        u = np.arange(n) / sr
        if k % 2 == 0:
            hit = np.sin(2 * np.pi * (50 * u + 60 * (1 - np.exp(-30 * u)) / 30)) * np.exp(-15 * u)
        elif k % 4 == 1:
            hit = 0.6 * rng.standard_normal(n) * np.exp(-25 * u)
        else:
            hit = 0.2 * np.diff(rng.standard_normal(n + 1)) * np.exp(-60 * u)
        drums[i0 : i0 + n] += hit
    drums = 0.8 * drums / np.abs(drums).max()

    # 2 s: a 440 Hz tone with short fades (shorter than one 3 s patch).
    tt = t(2.0)
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * tt) * np.minimum(1, np.minimum(tt, tt[-1] - tt) / 0.05)

    def pcm(y):
        return np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)

    return {"chord": (pcm(chord), sr), "drums": (pcm(drums), sr), "tone": (pcm(tone), sr)}


@pytest.fixture(scope="module")
def ref():
    with np.load(REFERENCE, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def clips():
    return {name: (pcm.astype(np.float32) / 32768, sr) for name, (pcm, sr) in generated_clips().items()}


def _check_against_reference(ref, name, y, sr, *, hop_seconds=None, mel=True):
    """Patches, mel input, tags and penultimate of ``y`` against the original's; returns the max abs differences."""
    X = musicnn.patches(y, sr, hop_seconds=hop_seconds)
    assert X.shape == (int(ref[f"{name}.n_patches"]), musicnn.N_FRAMES, musicnn.N_MELS) and X.dtype == np.float32
    k = len(ref[f"{name}.tags"])
    penultimate, tags = musicnn.load()(X[:k])
    diffs = {
        "tags": np.abs(tags - ref[f"{name}.tags"]).max(),
        "penultimate": np.abs(penultimate - ref[f"{name}.penultimate"]).max(),
    }
    if mel:
        diffs["mel"] = np.abs(X[0, ref["mel_rows"]] - ref[f"{name}.mel"]).max()
    assert max(diffs.values()) <= TOL, (name, diffs)
    return diffs


def test_generated_clips_are_the_reference_audio(ref):
    for name, (pcm, _) in generated_clips().items():
        assert hashlib.sha256(pcm.tobytes()).hexdigest() == str(ref[f"{name}.sha256"]), name


@pytest.mark.parametrize("name", ["chord", "drums", "tone"])
def test_matches_original_on_generated_clips(ref, clips, name):
    y, sr = clips[name]
    _check_against_reference(ref, name, y, sr)


def test_hop_seconds_matches_original_input_overlap(ref, clips):
    y, sr = clips["drums"]
    assert int(ref["drums_hop1s.hop_frames"]) == 61  # 1.0 s, counted as the original counts it
    _check_against_reference(ref, "drums_hop1s", y, sr, hop_seconds=1.0, mel=False)


@needs_shared()
def test_matches_original_on_real_tracks(ref):
    tracks = [str(t) for t in ref["real_tracks"]]
    assert len(tracks) == 11
    for track in tracks:
        path = SHARED / "sample" / track
        if not path.is_file():
            pytest.skip(f"{path} not found")
        y, sr = sf.read(path, dtype="float32")  # as librosa.load reads it, before resampling
        _check_against_reference(ref, Path(track).stem, y, sr)


def test_preprocessing_keeps_the_originals_float32_arithmetic():
    # Loud bins: 10000 * x overflows float16 above x = 6.55; the original computes the product in float32.
    y = np.sin(2 * np.pi * 440 * np.arange(48000) / 16000).astype(np.float32)
    S = musicnn.melspec(y)
    assert S.shape == (188, 96) and S.dtype == np.float32
    assert np.isfinite(S).all() and S.max() > 5


def test_every_weight_is_loaded():
    net = musicnn.load("MSD_musicnn")
    assert musicnn.load("MSD_musicnn") is net  # built once per process
    assert len(net.weights) == 64 and net.n_params == 792_079
    assert {k: v.shape for k, v in net.weights.items()} == musicnn.variable_shapes(50)
    assert len(net.tags) == 50 and net.tags[0] == "rock" and net.tags[-1] == "happy"


def test_shipped_weights_file():
    path = musicnn.weights_path("MSD_musicnn")
    assert path.stat().st_size <= 5 * 2**20
    assert (path.parent / "LICENSE").is_file() and (path.parent / "README.md").is_file()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha in (path.parent / "README.md").read_text(), "README.md must record the shipped file's sha256"


def test_embed_shapes_and_batching(clips):
    y, sr = clips["drums"]
    penultimate, tags = musicnn.embed(y, sr)
    assert penultimate.shape == (3, 200) and tags.shape == (3, 50)
    assert penultimate.dtype == tags.dtype == np.float32
    assert ((tags > 0) & (tags < 1)).all()
    p1, t1 = musicnn.embed(y, sr, batch_size=1)
    np.testing.assert_allclose(p1, penultimate, atol=1e-5)
    np.testing.assert_allclose(t1, tags, atol=1e-6)


def test_short_clip_gives_one_zero_padded_patch():
    y = 0.3 * np.sin(2 * np.pi * 330 * np.arange(22050) / 22050).astype(np.float32)  # 1 s
    X = musicnn.patches(y, 22050)
    assert X.shape == (1, 187, 96)
    assert (X[0, 70:] == 0).all() and (X[0, :60] > 0).any()  # log10(10000 * 0 + 1) = 0 after the clip
    penultimate, tags = musicnn.embed(y, 22050)
    assert penultimate.shape == (1, 200) and tags.shape == (1, 50)


def test_unknown_model_lists_the_choices():
    with pytest.raises(ModelError, match="MSD_musicnn"):
        musicnn.load("MSD_vgg")
    with pytest.raises(GenrelibError, match="unknown musicnn model 'msd'"):
        musicnn.embed(np.zeros(16000, np.float32), 16000, model="msd")


def test_missing_or_corrupt_weights_say_how_to_regenerate(tmp_path):
    good = musicnn.weights_path("MSD_musicnn").read_bytes()
    cases = {
        "missing.npz": None,
        "truncated.npz": good[: len(good) // 2],
        "garbage.npz": b"not a zip file at all",
        "flipped.npz": good[:1000] + bytes([good[1000] ^ 0xFF]) + good[1001:],
    }
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(ModelError, match="convert_musicnn.py") as err:
            musicnn.load_weights("MSD_musicnn", path=path)
        assert str(path) in str(err.value), name
    partial = tmp_path / "partial.npz"
    np.savez(partial, **{"conv2d/kernel": np.zeros((7, 38, 1, 204), np.float32)})
    with pytest.raises(ModelError, match="missing"):
        musicnn.load_weights("MSD_musicnn", path=partial)


def test_bad_inputs():
    with pytest.raises(GenrelibError, match="hop_seconds"):
        musicnn.patches(np.zeros(48000, np.float32), 16000, hop_seconds=0.01)
    with pytest.raises(GenrelibError, match="mono"):
        musicnn.patches(np.zeros((2, 48000), np.float32), 16000)
    with pytest.raises(GenrelibError, match="empty"):
        musicnn.patches(np.zeros(0, np.float32), 16000)


def test_import_does_not_load_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, genrelib.features.musicnn; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_onnx_engine_equals_the_tensorflow_port(ref, clips):
    """The default engine (onnxruntime) against the TensorFlow port, on the generated clips and the 11 sample
    tracks."""
    signals = [clips[name] for name in ("chord", "drums", "tone")]
    if SHARED.is_dir():
        signals += [sf.read(SHARED / "sample" / str(t), dtype="float32") for t in ref["real_tracks"]]
    worst = {"penultimate": 0.0, "tags": 0.0}
    for y, sr in signals:
        X = musicnn.patches(y, sr)
        for name, a, b in zip(worst, musicnn.load(engine="onnx")(X), musicnn.load(engine="tensorflow")(X)):
            worst[name] = max(worst[name], float(np.abs(a - b).max()))
    assert len(signals) in (3, 14) and max(worst.values()) <= TOL, worst


def test_the_default_engine_imports_no_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from genrelib.features import musicnn; "
        "e, t = musicnn.embed(np.random.default_rng(0).standard_normal(48000).astype('float32') * 0.1, 16000); "
        "assert e.shape == (1, 200) and t.shape == (1, 50); assert 'tensorflow' not in sys.modules, 'tensorflow'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_engine_lists_the_choices():
    with pytest.raises(GenrelibError, match=r"unknown musicnn engine 'numpy'; use one of onnx, tensorflow"):
        musicnn.load(engine="numpy")


def test_the_engine_variable_sets_the_default_and_a_bad_one_stops_features_before_any_track(
    monkeypatch, tmp_path, capsys
):
    from genrelib.cli import main
    from genrelib.features.musicnn_net import Musicnn
    from genrelib.features.musicnn_onnx import OnnxMusicnn

    assert isinstance(musicnn.load(), OnnxMusicnn)
    monkeypatch.setenv("GENRELIB_MUSICNN_ENGINE", "tensorflow")
    assert isinstance(musicnn.load(), Musicnn) and musicnn.load(engine="onnx") is not musicnn.load()
    monkeypatch.setenv("GENRELIB_MUSICNN_ENGINE", "numpy")
    (tmp_path / "rock").mkdir()
    sf.write(tmp_path / "rock" / "a.wav", np.zeros(22050, np.float32), 22050)
    out = tmp_path / "x.csv"
    assert main(["features", str(tmp_path), "--kind", "musicnn", "--no-cache", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "genrelib: error: GENRELIB_MUSICNN_ENGINE='numpy' is not a musicnn engine; set it to one of onnx, "
        "tensorflow, or unset it (default onnx)"
    ]
    assert not out.exists()


def _build_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_musicnn_onnx", ROOT / "scripts" / "build_musicnn_onnx.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


def test_the_winograd_matrices_compute_the_convolution():
    """F(4, 7) as the ONNX graph's timbral convolutions use it: four outputs of a 7-tap correlation per tile,
    equal to numpy's in float64; points that are not distinct are refused."""
    build = _build_script()
    at, g, bt = build.toom_cook(4, 7)
    assert at.shape == (4, 10) and g.shape == (10, 7) and bt.shape == (10, 10)
    rng = np.random.default_rng(0)
    taps, d = rng.normal(size=7), rng.normal(size=10)
    np.testing.assert_allclose(at @ ((g @ taps) * (bt @ d)), np.correlate(d, taps, "valid"), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"F\(2, 3\) needs 3 distinct finite points"):
        build.toom_cook(2, 3, points=(0, 1, 1))


def test_the_onnx_file_is_rebuilt_byte_for_byte_from_the_shipped_weights():
    pytest.importorskip("onnx")
    build = _build_script()
    npz = musicnn.weights_path("MSD_musicnn")
    rebuilt = build.build(
        musicnn.load_weights("MSD_musicnn"), source_sha256=hashlib.sha256(npz.read_bytes()).hexdigest()
    )
    assert rebuilt.SerializeToString() == musicnn.onnx_path("MSD_musicnn").read_bytes(), (
        "rebuild it with python scripts/build_musicnn_onnx.py"
    )


def test_an_onnx_file_of_other_weights_is_refused(tmp_path):
    from genrelib.features.musicnn_onnx import OnnxMusicnn

    other = tmp_path / "other.npz"
    other.write_bytes(musicnn.weights_path("MSD_musicnn").read_bytes() + b"x")
    with pytest.raises(
        GenrelibError, match=r"was not built from .*other.npz.*build_musicnn_onnx.py --model MSD_musicnn"
    ):
        OnnxMusicnn("MSD_musicnn", musicnn.onnx_path("MSD_musicnn"), other)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(GenrelibError, match=r"bad.onnx is not a readable ONNX model"):
        OnnxMusicnn("MSD_musicnn", bad, musicnn.weights_path("MSD_musicnn"))
