"""Shared fixtures: generated audio only (no downloads), MLflow and caches under tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gtzan"
TINY_GENRES = ("classical", "metal", "reggae")


def needs_shared():
    """Skip a test when ../shared/data/gtzan (real GTZAN material) is absent."""
    return pytest.mark.skipif(not SHARED.is_dir(), reason=f"real GTZAN material not found at {SHARED}")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRELIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    (tmp_path / "mlruns").mkdir(exist_ok=True)


def sine(freq=440.0, seconds=1.0, sr=22050, amp=0.5, channels=1):
    """A sine tone, shape (n,) or (n, channels)."""
    t = np.arange(int(seconds * sr)) / sr
    y = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


@pytest.fixture(scope="session")
def tiny_tree(tmp_path_factory) -> Path:
    """A GTZAN-shaped tree: 3 audibly different genres x 4 clips of 4 s (synthetic demo music)."""
    from genrelib import demo

    root = tmp_path_factory.mktemp("tiny") / "genres"
    demo.make_demo(root, per_genre=4, seconds=4.0, seed=1, genres=TINY_GENRES, n_jobs=1)
    return root


@pytest.fixture
def write(tmp_path):
    """Write a signal to tmp_path/name with soundfile; returns the path."""

    def _write(name, y, sr=22050, **kw):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, y, sr, **kw)
        return p

    return _write
