"""genrelib benchmarks: each target is measured against a baseline in the same run and reported as a ratio.

Run with ``make bench``. Prints a table; writes ``results/bench.json``. Every group runs to the end and reports,
whatever another group did; a group that fails is reported (with its error) and the exit code is 1.
``--tiny`` runs every group at toy sizes (the smoke test in ``make test``; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Where the generated bench data lives (``--data-dir``).
DATA = ROOT / "data" / "bench"
#: Sizes of the runs; ``--tiny`` and the size options change them.
SIZES = {
    "tracks": 200,
    "seconds": 30.0,
    "epochs": 4,
    "songs": 20,
    "song_seconds": 180.0,
    "repeats": 10,
    "cold_repeats": 3,
    "clips": 100,
}
TINY = {
    "tracks": 10,
    "seconds": 6.0,
    "epochs": 1,
    "songs": 2,
    "song_seconds": 8.0,
    "repeats": 1,
    "clips": 2,
}
TINY["cold_repeats"] = 0  # fresh processes (4-7 s each) measured in no group: the smoke test stays under a minute
#: Whether the app group also measures the page's load in headless Chromium (not in ``--tiny``).
BROWSER = True


def demo_tracks(n_tracks: int) -> Path:
    """``n_tracks`` demo tracks (a tenth per genre, ``SIZES["seconds"]`` long), generated once and reused."""
    from genrelib.datasets import demo

    root = DATA / "genres"
    demo.make_demo(root, per_genre=max(1, n_tracks // 10), seconds=SIZES["seconds"], seed=123)
    return root


def seed_notebook_way(root: Path, out: Path, *, n_mfcc: int = 16) -> int:
    """The original notebook's extraction: per-segment librosa MFCCs in one process, then JSON with indent=4."""
    import librosa

    sr, duration, num_segments, n_fft, hop = 22050, SIZES["seconds"], 10, 2048, 512
    samples_per_segment = int(sr * duration / num_segments)  # 3 s segments of 30 s tracks
    expected = math.ceil(samples_per_segment / hop)
    data = {"mapping": [], "labels": [], "mfcc": []}
    for i, (dirpath, _, filenames) in enumerate(sorted(os.walk(root))):
        if Path(dirpath) == root:
            continue
        data["mapping"].append(Path(dirpath).name)
        for f in sorted(filenames):
            signal, sr = librosa.load(os.path.join(dirpath, f), sr=sr)
            for d in range(num_segments):
                start = samples_per_segment * d
                mfcc = librosa.feature.mfcc(
                    y=signal[start : start + samples_per_segment], sr=sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop
                ).T
                if len(mfcc) == expected:
                    data["mfcc"].append(mfcc.tolist())
                    data["labels"].append(i - 1)
    with open(out, "w") as fp:
        json.dump(data, fp, indent=4)
    return len(data["mfcc"])


def timed(fn, *args, **kw):
    t = time.perf_counter()
    r = fn(*args, **kw)
    return time.perf_counter() - t, r


def bench_features(n_tracks: int) -> dict:
    root = demo_tracks(n_tracks)
    tmp = Path(tempfile.mkdtemp(prefix="genrelib-bench-"))
    try:
        # Warm both paths once on one file (numba compile, imports) so neither pays it in the timing.
        t_seed, n_seg = timed(seed_notebook_way, root, tmp / "data.json")
        seed_size = (tmp / "data.json").stat().st_size
        env = dict(os.environ, GENRELIB_CACHE=str(tmp / "cache"))
        cmd = [
            str(Path(sys.executable).parent / "genrelib"),
            "features",
            str(root),
            "--kind",
            "mfcc",
            "--out",
            str(tmp / "mfcc.npz"),
            "--no-cache",
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        t_gl = time.perf_counter() - t0
        gl_size = (tmp / "mfcc.npz").stat().st_size
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "tracks": n_tracks,
        "segments_seed": n_seg,
        "cpus": os.cpu_count(),
        "seed_seconds": t_seed,
        "seed_tracks_per_s": n_tracks / t_seed,
        "seed_bytes": seed_size,
        "genrelib_seconds": t_gl,
        "genrelib_tracks_per_s": n_tracks / t_gl,
        "genrelib_bytes": gl_size,
        "speedup": t_seed / t_gl,
        "size_ratio": seed_size / gl_size,
    }


def bench_songs(n: int | None = None, seconds: float | None = None) -> list[Path]:
    """n synthetic mp3 songs (20 of 3 minutes; generated once)."""
    import soundfile as sf

    from genrelib.config import GENRES
    from genrelib.datasets import demo

    n = SIZES["songs"] if n is None else n
    seconds = SIZES["song_seconds"] if seconds is None else seconds
    folder = DATA / f"songs-{seconds:g}s"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"song_{i:02d}.mp3"
        if not p.exists():
            y = demo.render(GENRES[i % 10], seconds, seed=1000 + i, sections=True)
            tmp = p.with_suffix(".part.mp3")
            with sf.SoundFile(tmp, "w", 22050, 1, format="MP3", subtype="MPEG_LAYER_III") as f:
                for k in range(0, len(y), 1 << 16):
                    f.write(y[k : k + (1 << 16)])
            tmp.replace(p)
        paths.append(p)
    return paths


def bench_training(n_tracks: int) -> tuple[dict, Path]:
    """Seconds per epoch of seed_cnn on 2,000 segments (10 per track); segment predictions per second. Saves the
    model."""
    import numpy as np

    from genrelib import datasets, features
    from genrelib.training.config import TrainConfig
    from genrelib.training.fitting import fit

    root = demo_tracks(n_tracks)
    ds = datasets.scan(root)
    fs = features.extract(ds, features.FeatureConfig(), cache_dir=DATA / "cache", progress=False)
    rows = np.arange(len(fs))
    valid = fs.subset(rows % 10 == 0)  # a small validation part; the epoch timing is over all the rows
    epochs = SIZES["epochs"]
    t0 = time.perf_counter()
    model, hist = fit(fs, valid, TrainConfig(family="seed_cnn", epochs=epochs, patience=epochs, seed=1))
    total = time.perf_counter() - t0
    # first epoch includes graph tracing; report the mean of the later ones too
    times = model.info["train_seconds"]
    model.predict_proba(fs.X[:64])
    t0 = time.perf_counter()
    model.predict_proba(fs.X)
    pred_s = time.perf_counter() - t0
    out = DATA / "seed_cnn_model"
    model.save(out)
    return {
        "segments": len(fs),
        "epochs": epochs,
        "fit_seconds": total,
        "seconds_per_epoch": times / epochs,
        "segment_predictions_per_second": len(fs) / pred_s,
    }, out


def bench_prediction(seed_model: Path) -> dict:
    """genrelib predict on a 3-minute mp3 (cold, fresh process) and per song over 20 songs (warm).

    The HPSS comparison with librosa passes within :data:`HPSS_TOLERANCE` (the same algorithm, float rounding
    differs), never by exact equality."""
    from genrelib import audio, features
    from genrelib.inference.predict import Predictor

    songs = bench_songs()
    gl = str(Path(sys.executable).parent / "genrelib")
    length = audio.duration(songs[0])
    out = {"song_seconds": length}
    for name, ref in (("reference", "reference"), ("seed_cnn", str(seed_model))):
        cold = _cold([gl, "predict", str(songs[0]), "--model", ref]) if SIZES["cold_repeats"] else math.nan
        p = Predictor(ref)
        p.predict(songs[0])  # warm-up
        t0 = time.perf_counter()
        preds, failures = p.predict_many(songs)
        assert not failures
        warm = (time.perf_counter() - t0) / len(songs)
        out[name] = {"cold_seconds": cold, "warm_seconds_per_song": warm, "warm_x_realtime": length / warm}
    # Baseline for the reference model's features: librosa's own HPSS against genrelib's, same 30 s window.
    import librosa
    import numpy as np

    y, sr = audio.load(songs[0])
    y = y[: 30 * sr]  # a 30 s window (the whole song when shorter)
    D = librosa.stft(y)
    t0 = time.perf_counter()
    a = librosa.decompose.hpss(D)
    t_lib = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = features.hpss(D)
    t_gl = time.perf_counter() - t0
    # the same algorithm; float rounding differs (measured: 7.9e-6 at most on values up to 7.35)
    diff = max(float(np.abs(x - z).max() / max(np.abs(x).max(), 1e-12)) for x, z in zip(a, b))
    out["hpss"] = {
        "librosa_seconds": t_lib,
        "genrelib_seconds": t_gl,
        "speedup": t_lib / t_gl,
        "max_relative_difference": diff,
        "within_tolerance": diff <= HPSS_TOLERANCE,
    }
    return out


#: Largest difference between librosa's HPSS and genrelib's, relative to the largest magnitude, counted as equal.
HPSS_TOLERANCE = 1e-5


def _medians(runs: dict[str, list[float]]) -> dict[str, float]:
    """The median of each list of timings (NaN when none was measured: ``--cold-repeats 0``)."""
    return {k: statistics.median(v) if v else math.nan for k, v in runs.items()}


def _cold(cmd: list[str], env: dict | None = None) -> float:
    """Seconds a fresh process takes to run ``cmd`` (which must succeed), with ``env`` added to the environment."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return seconds


def bench_musicnn(repeats: int | None = None, cold_repeats: int | None = None) -> dict:
    """Pretrained musicnn: warm embedding of a 30 s clip (against real time), the ``musicnn`` feature kind per
    30 s window, and a fresh ``genrelib predict --tags 3`` against a fresh ``import tensorflow`` (the cost of
    TensorFlow itself) and a fresh ``genrelib predict`` without tags, interleaved in the same run."""
    import statistics

    import soundfile as sf

    repeats = repeats or SIZES["repeats"]
    cold_repeats = cold_repeats or SIZES["cold_repeats"]
    from genrelib import features
    from genrelib.config import SR
    from genrelib.datasets import demo
    from genrelib.features import musicnn

    seconds = 30.0
    y = demo.render("rock", seconds, seed=7)
    t_load, _ = timed(musicnn.load)  # weights, graph; the first call traces
    t_first, _ = timed(musicnn.embed, y, SR)
    cfg = features.FeatureConfig(kind="musicnn")
    features.window_features(y, SR, cfg)
    warm: dict[str, list[float]] = {"embed": [], "patches": [], "window": []}
    for _ in range(repeats):  # interleaved; the minimum is the time with the least interference from other load
        warm["embed"].append(timed(musicnn.embed, y, SR)[0])
        warm["patches"].append(timed(musicnn.patches, y, SR)[0])
        warm["window"].append(timed(features.window_features, y, SR, cfg)[0])
    embed_s, patches_s, window_s = (min(warm[k]) for k in ("embed", "patches", "window"))

    song = DATA / "musicnn_song.wav"
    song.parent.mkdir(parents=True, exist_ok=True)
    sf.write(song, y, SR)
    gl = str(Path(sys.executable).parent / "genrelib")
    cmds = {
        "import_tensorflow": [sys.executable, "-c", "import tensorflow"],
        "predict_tags": [gl, "predict", str(song), "--tags", "3"],
        "predict": [gl, "predict", str(song)],
    }
    cold: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(cold_repeats):  # interleaved, so that a burst of load on the shared machine hits all three
        for name, cmd in cmds.items():
            cold[name].append(_cold(cmd))
    med = _medians(cold)
    diffs = [a - b for a, b in zip(cold["predict_tags"], cold["import_tensorflow"])]
    return {
        "cpus": os.cpu_count(),
        "clip_seconds": seconds,
        "load_seconds": t_load,
        "first_call_seconds": t_first,
        "embed_seconds_per_clip": embed_s,
        "embed_x_realtime": seconds / embed_s,
        "embed_median_seconds_per_clip": statistics.median(warm["embed"]),
        "feature_kind_median_seconds_per_window": statistics.median(warm["window"]),
        "preprocessing_seconds_per_clip": patches_s,
        "feature_kind_seconds_per_window": window_s,
        "cold_seconds": cold,
        "cold_median_seconds": med,
        "tags_minus_tensorflow_seconds": statistics.median(diffs) if diffs else math.nan,
    }


def bench_default(clips: int | None = None, cold_repeats: int | None = None, warm_repeats: int | None = None) -> dict:
    """The default model (musicnn + linear head): a fresh ``genrelib predict`` of a 3-minute mp3 against a fresh
    ``python -c "import tensorflow"`` (interleaved), warm genre + tags of that song against real time, and the
    ``musicnn`` feature kind on ``clips`` 30 s clips with the onnxruntime engine against the TensorFlow port: in
    this process (``musicnn.embed`` and the pooling of a row, on rendered clips) and, unless ``cold_repeats`` is 0,
    as the command ``genrelib features CLIPS --kind musicnn --no-cache`` on ``clips`` wav files, fresh each time,
    with ``GENRELIB_MUSICNN_ENGINE`` unset or ``tensorflow`` (interleaved)."""
    import statistics

    import numpy as np

    from genrelib import audio
    from genrelib.config import GENRES, SR
    from genrelib.datasets import demo
    from genrelib.features import musicnn
    from genrelib.features.compute import pool_patches
    from genrelib.inference import Predictor

    clips = clips or SIZES["clips"]
    cold_repeats = SIZES["cold_repeats"] if cold_repeats is None else cold_repeats
    warm_repeats = warm_repeats or max(1, SIZES["cold_repeats"])
    song = bench_songs(n=1)[0]
    length = audio.duration(song)
    gl = str(Path(sys.executable).parent / "genrelib")
    cmds = {
        "import_tensorflow": [sys.executable, "-c", "import tensorflow"],
        "predict": [gl, "predict", str(song)],
        "predict_tags": [gl, "predict", str(song), "--tags", "3"],
    }
    cold: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(cold_repeats):
        for name, cmd in cmds.items():
            cold[name].append(_cold(cmd))
    p = Predictor(tag_model="MSD_musicnn")
    p.predict(song)
    warm = [timed(p.predict, song)[0] for _ in range(warm_repeats)]
    ys = [demo.render(GENRES[i % 10], 30.0, seed=i) for i in range(clips)]
    engines = {}
    for engine in ("onnx", "tensorflow"):
        musicnn.embed(ys[0], SR, engine=engine)  # load, trace
        t0 = time.perf_counter()
        for y in ys:
            emb, tags = musicnn.embed(y, SR, engine=engine)
            pool_patches(np.concatenate([emb, tags], axis=1), "mean_std")
        engines[engine] = time.perf_counter() - t0
    command: dict[str, list[float]] = {"onnx": [], "tensorflow": []}
    if cold_repeats:
        from genrelib.datasets import demo as demo_data

        root = DATA / "musicnn_clips"
        demo_data.make_demo(root, per_genre=max(1, clips // 10), seconds=30.0, seed=7)
        for _ in range(cold_repeats):
            for engine in command:
                out = DATA / f"musicnn_clips_{engine}.csv"
                cmd = [gl, "features", str(root), "--kind", "musicnn", "--no-cache", "--out", str(out)]
                command[engine].append(_cold(cmd, {"GENRELIB_MUSICNN_ENGINE": engine}))
    med = _medians(cold)
    return {
        "cpus": os.cpu_count(),
        "song_seconds": length,
        "cold_seconds": cold,
        "cold_median_seconds": med,
        "warm_seconds": warm,
        "warm_x_realtime": length / statistics.median(warm),
        "clips": clips,
        "feature_kind_seconds": engines,
        "onnx_speedup": engines["tensorflow"] / engines["onnx"],
        "features_command_seconds": command,
        "features_command_speedup": (
            statistics.median(command["tensorflow"]) / statistics.median(command["onnx"]) if cold_repeats else math.nan
        ),
    }


def _page_assets_seconds(url: str) -> float:
    """Seconds to fetch the page and every script and style sheet its HTML names (what a browser fetches before it
    runs the page's code), over one connection."""
    import re
    from urllib.parse import urljoin

    import requests

    t0 = time.perf_counter()
    with requests.Session() as s:
        html = s.get(url, timeout=60)
        html.raise_for_status()
        for ref in re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html.text):
            s.get(urljoin(url, ref), timeout=60).raise_for_status()
    return time.perf_counter() - t0


def _browser_load_seconds(url: str) -> float:
    """Seconds for headless Chromium (/usr/bin/chromium, via playwright) to open the page until its Classify button
    shows; NaN when playwright or Chromium is missing (they are not genrelib dependencies)."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return math.nan
    if not Path(chromium).exists():
        return math.nan
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            t0 = time.perf_counter()
            page.goto(url)
            page.get_by_role("button", name="Classify").wait_for(timeout=60_000)
            return time.perf_counter() - t0
        finally:
            browser.close()


def _app_screenshot():
    """``scripts/app_screenshot.py`` as a module: its ``start_app`` starts the page here too."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("app_screenshot", ROOT / "scripts" / "app_screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_app(repeats: int | None = None) -> dict:
    """The web page (``genrelib app`` in a fresh process, driven by Gradio's client) against a warm in-process
    ``Predictor`` (genre and tags, as the page answers) on the same song, interleaved; the page's start and load."""
    import tempfile

    from gradio_client import Client, handle_file

    from genrelib import audio
    from genrelib.inference import Predictor

    repeats = repeats or max(1, SIZES["cold_repeats"])
    song = bench_songs(n=1)[0]
    home = Path(tempfile.mkdtemp(prefix="genrelib-bench-app-"))
    proc = None
    try:
        proc, url, started = _app_screenshot().start_app(home)
        first_load = _page_assets_seconds(url)
        loads = [_page_assets_seconds(url) for _ in range(repeats)]
        browser = _browser_load_seconds(url) if BROWSER else math.nan
        client = Client(url, verbose=False)
        ask = lambda: client.predict([handle_file(str(song))], None, "default", api_name="/classify")  # noqa: E731
        p = Predictor(tag_model="MSD_musicnn")
        p.predict(song)  # warm-up of both
        status = ask()[0]
        if "model: default" not in status:
            raise RuntimeError(f"the page did not answer: {status}")
        page_s, predict_s = [], []
        for _ in range(repeats):
            page_s.append(timed(ask)[0])
            predict_s.append(timed(p.predict, song)[0])
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)
    return {
        "song_seconds": audio.duration(song),
        "start_seconds": started,
        "page_first_load_seconds": first_load,
        "page_load_seconds": loads,
        "browser_load_seconds": browser,
        "page_seconds": page_s,
        "predict_seconds": predict_s,
        "ratio": statistics.median(page_s) / statistics.median(predict_s),
    }


def app_group(results: dict) -> None:
    r = results["app"] = bench_app()
    print(f"the web page (genrelib app) on a {r['song_seconds']:.0f} s mp3, default model:")
    print(f"  start (fresh process until it serves): {r['start_seconds']:.1f} s")
    print(
        f"  page load after start (the HTML, its scripts and styles): first {r['page_first_load_seconds']:.2f} s, "
        f"then median {statistics.median(r['page_load_seconds']):.2f} s; headless Chromium until the page shows: "
        f"{r['browser_load_seconds']:.2f} s (target < 2 s)"
    )
    print(
        f"  the page's answer {statistics.median(r['page_seconds']):.2f} s against a warm Predictor "
        f"{statistics.median(r['predict_seconds']):.2f} s (medians of {len(r['page_seconds'])}, interleaved): "
        f"{r['ratio']:.2f}x (target < 2x)"
    )


def features_group(results: dict) -> None:
    r = results["features"] = bench_features(SIZES["tracks"])
    print(f"MFCC extraction of {r['tracks']} demo tracks ({SIZES['seconds']:g} s) on {r['cpus']} CPUs")
    print(
        f"  original notebook (1 process, JSON indent=4): {r['seed_seconds']:7.1f} s "
        f"{r['seed_tracks_per_s']:6.1f} tracks/s {r['seed_bytes'] / 1e6:8.1f} MB"
    )
    print(
        f"  genrelib features --kind mfcc (fresh process): {r['genrelib_seconds']:6.1f} s "
        f"{r['genrelib_tracks_per_s']:6.1f} tracks/s {r['genrelib_bytes'] / 1e6:8.1f} MB"
    )
    print(f"  speed-up {r['speedup']:.1f}x (target >= 5x), size ratio {r['size_ratio']:.1f}x (target >= 10x)")


def training_group(results: dict) -> Path:
    r, model_dir = bench_training(SIZES["tracks"])
    results["training"] = r
    print(
        f"seed_cnn training on {r['segments']} MFCC segments: {r['seconds_per_epoch']:.2f} s per epoch "
        f"(mean of {r['epochs']}, first epoch's tracing included); "
        f"{r['segment_predictions_per_second']:.0f} segment predictions/s"
    )
    return model_dir


def prediction_group(results: dict, model_dir: Path) -> None:
    r = results["prediction"] = bench_prediction(model_dir)
    print(f"prediction of one {r['song_seconds']:.0f} s mp3:")
    for name in ("reference", "seed_cnn"):
        q = r[name]
        print(
            f"  {name:<10} cold (fresh process) {q['cold_seconds']:5.1f} s; warm {q['warm_seconds_per_song']:5.2f} s "
            f"per song over {SIZES['songs']} songs = {q['warm_x_realtime']:.0f}x real time"
        )
    h = r["hpss"]
    print(
        f"  HPSS of a 30 s window: librosa {h['librosa_seconds']:.2f} s, genrelib {h['genrelib_seconds']:.2f} s "
        f"(output within {HPSS_TOLERANCE:g} relative: {h['within_tolerance']}, max "
        f"{h['max_relative_difference']:.1e}): {h['speedup']:.1f}x faster"
    )
    print("  targets: seed_cnn warm >= 100x real time; reference cold < 8 s, warm >= 30x real time")


def musicnn_group(results: dict) -> None:
    r = results["musicnn"] = bench_musicnn()
    print(
        f"pretrained musicnn on {r['cpus']} CPUs (load {r['load_seconds']:.1f} s, first call "
        f"{r['first_call_seconds']:.1f} s):"
    )
    n = SIZES["repeats"]
    print(
        f"  warm musicnn.embed of a {r['clip_seconds']:.0f} s clip: {r['embed_seconds_per_clip']:.2f} s "
        f"= {r['embed_x_realtime']:.0f}x real time (target >= 60x; best of {n}, median "
        f"{r['embed_median_seconds_per_clip']:.2f} s); of which mel preprocessing "
        f"{r['preprocessing_seconds_per_clip']:.3f} s"
    )
    print(
        f"  musicnn feature kind (features.window_features): {r['feature_kind_seconds_per_window']:.2f} s "
        f"per 30 s window (best of {n}, median {r['feature_kind_median_seconds_per_window']:.2f} s)"
    )
    _print_cold(
        r,
        (
            ("import_tensorflow", 'fresh python -c "import tensorflow"'),
            ("predict_tags", "fresh genrelib predict song.wav --tags 3"),
            ("predict", "fresh genrelib predict song.wav (no tags)"),
        ),
    )
    print(
        f"  --tags 3 minus import tensorflow: {r['tags_minus_tensorflow_seconds']:.1f} s (median of "
        f"the per-round differences; target <= 5 s)"
    )


def _print_cold(r: dict, labels) -> None:
    """One line per fresh-process command of ``labels`` (key, label): its median and every run's seconds."""
    m, runs = r["cold_median_seconds"], r["cold_seconds"]
    for name, label in labels:
        print(f"  {label:<42} {m[name]:5.1f} s (median of " + ", ".join(f"{v:.1f}" for v in runs[name]) + ")")


def default_group(results: dict) -> None:
    r = results["default"] = bench_default()
    m = r["cold_median_seconds"]
    print(f"the default model (musicnn + linear head) on {r['cpus']} CPUs, a {r['song_seconds']:.0f} s mp3:")
    _print_cold(
        r,
        (
            ("import_tensorflow", 'fresh python -c "import tensorflow"'),
            ("predict", "fresh genrelib predict song.mp3"),
            ("predict_tags", "fresh genrelib predict song.mp3 --tags 3"),
        ),
    )
    print(
        f"  targets: predict <= 4 s and below import tensorflow: "
        f"{'met' if m['predict'] <= 4 and m['predict'] < m['import_tensorflow'] else 'NOT met'}"
    )
    print(
        f"  warm genre + tags of the song: {statistics.median(r['warm_seconds']):.2f} s = "
        f"{r['warm_x_realtime']:.0f}x real time (target >= 60x)"
    )
    e = r["feature_kind_seconds"]
    print(
        f"  musicnn features of {r['clips']} 30 s clips in this process: onnxruntime {e['onnx']:.1f} s, TensorFlow "
        f"port {e['tensorflow']:.1f} s: {r['onnx_speedup']:.1f}x"
    )
    c = r["features_command_seconds"]
    if c["onnx"]:
        runs = {k: ", ".join(f"{v:.1f}" for v in c[k]) for k in c}
        print(
            f"  fresh genrelib features CLIPS --kind musicnn ({r['clips']} 30 s wav clips): onnxruntime "
            f"{statistics.median(c['onnx']):.1f} s ({runs['onnx']}), TensorFlow port "
            f"{statistics.median(c['tensorflow']):.1f} s ({runs['tensorflow']}): {r['features_command_speedup']:.1f}x "
            "(target >= 2x)"
        )


def scale_group(results: dict) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scale

    r = results["scale"] = scale.bench_scale()
    scale.report(r)


def main(argv: list[str] | None = None) -> int:
    global DATA, BROWSER
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument(
        "--only",
        default=None,
        choices=["features", "train", "predict", "musicnn", "default", "app", "scale"],
        help="run only this benchmark (predict includes train, which makes its model); scale (the "
        "feature store, Dask and streaming training on many clips, benchmarks/scale.py) runs only "
        "when asked for: it takes minutes",
    )
    p.add_argument("--tiny", action="store_true", help=f"every size at toy values, for a smoke test: {TINY}")
    for name, value in SIZES.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=None, help=f"(default {value})")
    p.add_argument("--data-dir", type=Path, default=DATA, help="where the generated bench data is kept")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench.json", help="the JSON results")
    args = p.parse_args(argv)
    SIZES.update(TINY if args.tiny else {})
    BROWSER = not args.tiny
    SIZES.update({k: getattr(args, k) for k in SIZES if getattr(args, k) is not None})
    DATA = args.data_dir
    results: dict = {}
    failed: dict[str, str] = {}

    def group(name: str, fn, *a):
        """Run one group to its end; a failure is reported and the next group runs all the same."""
        try:
            return fn(results, *a)
        except Exception as exc:  # noqa: BLE001 - reported below, the exit code says so
            failed[name] = f"{type(exc).__name__}: {exc}"
            print(f"{name}: FAILED: {failed[name]}", flush=True)
            return None

    if args.only in (None, "features"):
        group("features", features_group)
    if args.only in (None, "train", "predict"):
        model_dir = group("train", training_group)
        if args.only in (None, "predict"):
            if model_dir is None:
                failed["predict"] = "not run: the training benchmark, which makes its model, failed"
                print(f"predict: FAILED: {failed['predict']}")
            else:
                group("predict", prediction_group, model_dir)
    if args.only in (None, "musicnn"):
        group("musicnn", musicnn_group)
    if args.only in (None, "default"):
        group("default", default_group)
    if args.only in (None, "app"):
        group("app", app_group)
    if args.only == "scale":
        group("scale", scale_group)
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    # --only runs one benchmark: keep the others' last results
    previous = json.loads(out.read_text()) if args.only and out.exists() else {}
    out.write_text(json.dumps(previous | results | ({"failed": failed} if failed else {}), indent=2))
    print(f"wrote {out}")
    if failed:
        print(f"{len(failed)} benchmark group(s) failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
