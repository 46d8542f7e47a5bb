"""The ``scale`` benchmark group (issue 11): the feature store, Dask and streaming training on many short clips.

Run with ``benchmarks/bench.py --only scale`` (not part of the default ``make bench``: it takes minutes, and not
run by the tests). Every measurement runs in a fresh subprocess (``--child``) that reports its own peak RSS
(``resource.getrusage``), so one measurement's memory never counts in another's.

- per-clip cost of each feature kind on one 30 s clip, one process, one thread (the basis of docs/scaling.md);
- extraction of N generated 5 s clips into the store (``--store``) and in memory (``extract``), peak RSS of the
  main process at two N: the store's must not grow with N, the in-memory one grows by the features' size;
- a 2-worker LocalCluster against a 1-worker one on the same clips (speed ratio);
- one seed_cnn epoch from the store (streamed) against in memory, on many MFCC segments, with peak RSS.

The clips: 40 distinct 5 s demo clips (4 per genre) rendered once and hard-linked N times under GTZAN-like
names, so generating 20,000 clips costs nothing; decoding and features cost the same for every file.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "data" / "bench" / "scale"


def make_clips(n: int, seconds: float = 5.0) -> Path:
    """``n`` clips of ``seconds`` under WORK/clips-N/genres (hard links to 40 rendered clips)."""
    import soundfile as sf

    from genrelib.config import GENRES
    from genrelib.datasets import demo

    src = WORK / f"distinct-{seconds:g}s"
    if not src.exists():
        tmp = src.with_name(src.name + ".part")
        tmp.mkdir(parents=True, exist_ok=True)
        for g in GENRES:
            for k in range(4):
                sf.write(
                    tmp / f"{g}.{k}.wav",
                    demo.render(g, seconds, seed=demo.track_seed(11, g, k)),
                    22050,
                    subtype="PCM_16",
                )
        tmp.rename(src)
    root = WORK / f"clips-{n}-{seconds:g}s" / "genres"
    if not root.exists():
        tmp = root.parent.with_name(root.parent.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        for i in range(n):
            g = GENRES[i % 10]
            d = tmp / "genres" / g
            d.mkdir(parents=True, exist_ok=True)
            os.link(src / f"{g}.{(i // 10) % 4}.wav", d / f"{g}.{i // 10:05d}.wav")
        tmp.rename(root.parent)
    return root


class TreeRSS:
    """Peak of the summed RSS of this process and all its descendants (pool workers under the forkserver, Dask
    nannies and workers), sampled every 0.1 s in a thread: ``getrusage`` cannot see grandchildren. Pages shared
    between processes count once per process, so the sum overstates what the machine holds."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.peak, self._stop, self._me = 0, threading.Event(), psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        import psutil

        total = 0
        for p in [self._me, *self._me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:  # a process that ended between the listing and the reading
                pass
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.sample()

    def __enter__(self) -> TreeRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _rss(tree: TreeRSS | None = None) -> dict:
    # peak_rss_mb: this process only (getrusage); peak_tree_rss_mb: with its worker processes (TreeRSS).
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if tree is not None:
        out["peak_tree_rss_mb"] = tree.peak / 2**20
    return out


def child(argv: list[str]) -> dict:
    """One measurement, in this (fresh) process."""
    from genrelib import datasets, features
    from genrelib.features import store

    mode = argv[0]
    if mode == "kind-cost":  # per 30 s clip, one process, one thread
        import soundfile as sf
        from threadpoolctl import threadpool_limits

        from genrelib.datasets import demo

        kind = argv[1]
        clip = WORK / "clip30.wav"
        if not clip.exists():
            WORK.mkdir(parents=True, exist_ok=True)
            sf.write(clip, demo.render("rock", 30.0, seed=7), 22050, subtype="PCM_16")
        cfg = features.FeatureConfig(kind=kind)
        with threadpool_limits(1):
            features.file_features(clip, cfg)  # imports, model load, tracing
            times = []
            for _ in range(3 if kind in ("summary", "musicnn") else 10):
                t = time.perf_counter()
                features.file_features(clip, cfg)
                times.append(time.perf_counter() - t)
        return {"kind": kind, "best_seconds": min(times), "median_seconds": sorted(times)[len(times) // 2]}
    if mode in ("extract-store", "extract-memory"):
        root, kind, jobs = Path(argv[1]), argv[2], int(argv[3])
        ds = datasets.scan(root, check=False)
        cfg = features.FeatureConfig(kind=kind)
        out = WORK / "stores" / f"{root.parent.name}"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        with TreeRSS() as tree:
            if mode == "extract-store":
                rows = len(store.extract_to_store(ds, cfg, out, n_jobs=jobs, progress=False))
            else:
                rows = len(features.extract(ds, cfg, n_jobs=jobs, use_cache=False, progress=False))
        return {"clips": len(ds.tracks), "rows": rows, "seconds": time.perf_counter() - t, **_rss(tree)}
    if mode == "cluster":
        from distributed import Client, LocalCluster

        root, workers = Path(argv[1]), int(argv[2])
        ds = datasets.scan(root, check=False)
        cfg = features.FeatureConfig(kind="mel")
        with (
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as lc,
            Client(lc) as client,
        ):
            client.run(lambda: __import__("genrelib.features.store"))  # imports paid before the clock starts
            out = WORK / "stores" / f"cluster-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            with TreeRSS() as tree:
                sfs = store.extract_to_store(ds, cfg, out, scheduler=client, progress=False)
            seconds = time.perf_counter() - t
        return {"workers": workers, "clips": len(ds.tracks), "rows": len(sfs), "seconds": seconds, **_rss(tree)}
    if mode in ("train-store", "train-memory"):
        import numpy as np

        from genrelib.training.config import TrainConfig
        from genrelib.training.fitting import fit

        sfs = store.open_store(argv[1])
        tracks = np.array(sfs.tracks)
        valid_ids = set(tracks[::50].tolist())  # 2% for validation; the epoch is timed over the rest
        split = {t: "valid" if t in valid_ids else "train" for t in tracks}
        parts = sfs.split(split)
        train, valid = parts["train"], parts["valid"]
        if mode == "train-memory":
            train, valid = train.load(), valid.load()
        cfg = TrainConfig(family="seed_cnn", epochs=1, seed=1, batch_size=32)
        t = time.perf_counter()
        model, _ = fit(train, valid, cfg)
        return {
            "segments": len(train),
            "seconds": time.perf_counter() - t,
            "fit_seconds": model.info["train_seconds"],
            **_rss(),
        }
    raise SystemExit(f"unknown child mode {mode}")


def run_child(*args: str) -> dict:
    """Run ``child(args)`` in a fresh ``nice -n 5`` process; its JSON result."""
    cmd = ["nice", "-n", "5", sys.executable, str(Path(__file__).resolve()), "--child", *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def training_store(segments: int) -> Path:
    """A store of ``segments`` MFCC segments: the segments of 40 distinct 30 s demo clips, tiled under new
    track ids (64 tracks, 640 segments per shard)."""
    import numpy as np

    from genrelib import datasets, features
    from genrelib.features import store

    folder = WORK / f"train-store-{segments}"
    if (folder / "manifest.json").exists():
        return folder
    clips = make_clips(40, seconds=30.0)
    fs = features.extract(datasets.scan(clips, check=False), features.FeatureConfig(), use_cache=False, progress=False)
    per = len(fs) // len(fs.tracks)  # 10 segments per 30 s clip
    keep = (segments // per) * per  # whole tracks only
    reps = -(-keep // len(fs))
    tile = lambda a: np.concatenate([a] * reps)[:keep]  # noqa: E731
    ids = np.concatenate([np.char.add(fs.track_ids.astype(str), f"#{r}") for r in range(reps)])[:keep]
    big = features.FeatureSet(
        X=tile(fs.X),
        track_ids=ids,
        window=tile(fs.window),
        segment=tile(fs.segment),
        row_genres=tile(fs.row_genres),
        genres=fs.genres,
        config=fs.config,
    )
    shutil.rmtree(folder, ignore_errors=True)
    store.write_featureset(big, folder, shard_size=64)
    return folder


PARTS = ("cost", "extract", "cluster", "train")


def bench_scale(
    n_small: int = 1000,
    n_large: int = 4000,
    n_cluster: int = 2000,
    segments: int = 30_000,
    *,
    parts: tuple[str, ...] = PARTS,
    rounds: int = 1,
) -> dict:
    """The measurements of ``parts``; the cluster and training pairs ``rounds`` times each, in ABBA order (A B, then
    B A, ...) so that a drift of the shared machine's load does not favour either side; ratios per round and their
    median."""
    out: dict = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()}
    if "cost" in parts:
        out["kind_cost"] = {k: run_child("kind-cost", k) for k in ("mfcc", "mel", "summary", "musicnn")}
    if "extract" in parts:
        out["extract"] = []
        for n in (n_small, n_large):
            root = make_clips(n)
            out["extract"].append(
                {
                    "clips": n,
                    "store": run_child("extract-store", root, "mel", 2),
                    "memory": run_child("extract-memory", root, "mel", 2),
                }
            )

    def pairs(a: tuple, b: tuple) -> list[tuple[dict, dict]]:
        res = []
        for r in range(rounds):
            if r % 2 == 0:
                x = run_child(*a)
                res.append((x, run_child(*b)))
            else:
                y = run_child(*b)
                res.append((run_child(*a), y))
        return res

    if "cluster" in parts:
        root = make_clips(n_cluster)
        runs = pairs(("cluster", root, 1), ("cluster", root, 2))
        ratios = [one["seconds"] / two["seconds"] for one, two in runs]
        out["cluster"] = {
            "one_worker": runs[0][0],
            "two_workers": runs[0][1],
            "rounds": runs,
            "speedups": ratios,
            "speedup": statistics.median(ratios),
        }
    if "train" in parts:
        folder = training_store(segments)
        runs = pairs(("train-memory", folder), ("train-store", folder))
        ratios = [mem["seconds"] / st["seconds"] for mem, st in runs]
        out["train"] = {
            "memory": runs[0][0],
            "store": runs[0][1],
            "rounds": runs,
            "ratios": ratios,
            "store_speed_vs_memory": statistics.median(ratios),
        }
    out["load_average_after"] = os.getloadavg()
    return out


def report(r: dict) -> None:
    print(
        f"scale group on {r['cpus']} CPUs, load average before {r['load_average_before'][0]:.1f}, "
        f"after {r['load_average_after'][0]:.1f} (shared machine: ratios are noisy)"
    )
    if "kind_cost" in r:
        print("  per-clip cost, one 30 s clip, 1 process, 1 thread (best; median):")
        for k, c in r["kind_cost"].items():
            print(f"    {k:<8} {c['best_seconds']:.3f} s; {c['median_seconds']:.3f} s")
    if "extract" in r:
        print("  mel extraction of 5 s clips, 2 processes (peak RSS of the main process; with its workers, summed):")
        for e in r["extract"]:
            s, m = e["store"], e["memory"]
            print(
                f"    {e['clips']:>6} clips: store {s['seconds']:6.1f} s {s['peak_rss_mb']:6.0f} MB "
                f"(with workers {s.get('peak_tree_rss_mb', float('nan')):6.0f} MB); in memory "
                f"{m['seconds']:6.1f} s {m['peak_rss_mb']:6.0f} MB "
                f"(with workers {m.get('peak_tree_rss_mb', float('nan')):6.0f} MB)"
            )
    if "cluster" in r:
        c = r["cluster"]
        for one, two in c.get("rounds", [(c["one_worker"], c["two_workers"])]):
            print(
                f"  LocalCluster on {one['clips']} clips: 1 worker {one['seconds']:.1f} s, 2 workers "
                f"{two['seconds']:.1f} s: {one['seconds'] / two['seconds']:.2f}x"
            )
        print(f"  LocalCluster speed-up, median over rounds: {c['speedup']:.2f}x (target >= 1.6x)")
    if "train" in r:
        t = r["train"]
        for mem, st in t.get("rounds", [(t["memory"], t["store"])]):
            print(
                f"  seed_cnn, one epoch on {st['segments']} MFCC segments: in memory {mem['seconds']:.1f} s peak "
                f"{mem['peak_rss_mb']:.0f} MB; from the store {st['seconds']:.1f} s peak {st['peak_rss_mb']:.0f} MB: "
                f"{mem['seconds'] / st['seconds']:.2f}x"
            )
        print(
            f"  store speed / in-memory speed, median over rounds: {t['store_speed_vs_memory']:.2f}x "
            "(target >= 0.8x, peak < 2 GB)"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2:])))
    else:
        import argparse

        p = argparse.ArgumentParser(description=__doc__)
        p.add_argument("--small", type=int, default=1000)
        p.add_argument("--large", type=int, default=4000)
        p.add_argument("--cluster", type=int, default=2000)
        p.add_argument("--segments", type=int, default=30_000)
        p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
        p.add_argument("--rounds", type=int, default=1, help="cluster and training pairs, ABBA order")
        a = p.parse_args()
        parts = tuple(x for x in a.parts.split(",") if x)
        if set(parts) - set(PARTS):
            p.error(f"--parts takes {', '.join(PARTS)}; got {a.parts}")
        res = bench_scale(a.small, a.large, a.cluster, a.segments, parts=parts, rounds=a.rounds)
        report(res)
        print(json.dumps(res))
