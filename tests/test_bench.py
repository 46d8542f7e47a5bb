"""``make bench`` at toy sizes: every group runs to its end and reports (the smoke test of benchmarks/bench.py)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_bench_runs_every_group_at_tiny_sizes(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_DISABLE_TELEMETRY="true", TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--tiny", "--data-dir", str(tmp_path / "data")]
    r = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, env=env, timeout=420)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "FAILED" not in r.stdout
    for heading in ("MFCC extraction of 10 demo tracks", "seed_cnn training on", "prediction of one 8 s mp3:"):
        assert heading in r.stdout
    assert "pretrained musicnn on" in r.stdout and "the default model (musicnn + linear head)" in r.stdout
    assert "the web page (genrelib app) on a 8 s mp3" in r.stdout
    results = json.loads(out.read_text())
    assert set(results) == {"features", "training", "prediction", "musicnn", "default", "app"}
    assert results["app"]["ratio"] > 0 and results["app"]["page_load_seconds"]
    assert results["prediction"]["hpss"]["within_tolerance"] is True  # a tolerance, never exact equality


def test_a_failing_group_is_reported_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    bench = _bench_module()
    ran = []

    def fake(name):
        def group(results, *args):
            ran.append(name)
            results[name] = {"ok": True}
            return tmp_path if name == "training" else None

        return group

    def broken(results):
        ran.append("features")
        raise RuntimeError("no such engine")

    monkeypatch.setattr(bench, "features_group", broken)
    for name in ("training", "prediction", "musicnn", "default", "app"):
        monkeypatch.setattr(bench, f"{name}_group", fake(name))
    assert bench.main(["--tiny", "--data-dir", str(tmp_path), "--out", str(tmp_path / "b.json")]) == 1
    assert ran == ["features", "training", "prediction", "musicnn", "default", "app"]
    out = capsys.readouterr().out
    assert "features: FAILED: RuntimeError: no such engine" in out
    assert out.rstrip().endswith("1 benchmark group(s) failed: features")
    assert json.loads((tmp_path / "b.json").read_text())["failed"] == {"features": "RuntimeError: no such engine"}
