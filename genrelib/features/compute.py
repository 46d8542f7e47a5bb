"""Features of one signal or one file, by a :class:`~genrelib.features.config.FeatureConfig`: windows of the signal,
then the kind's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrelib import audio
from genrelib.datasets.tracks import Track
from genrelib.errors import AudioError
from genrelib.features.config import FeatureConfig
from genrelib.features.dsp import log_mel, mfcc, summary


def window_features(y: np.ndarray, sr: int, config: FeatureConfig) -> np.ndarray:
    """Features of one window (normally 30 s) by ``config``.

    Returns
    -------
    X : np.ndarray
        ``(n_segments, frames, coefficients)`` float32 for ``mfcc``/``mel``; ``(57,)`` float32 for ``summary``;
        ``(250,)`` float32 for ``musicnn`` (means over the window's 3 s patches; ``(500,)``, means then standard
        deviations, with ``pooling="mean_std"``).
    """
    if config.kind == "summary":
        # float32 as every kind's rows: the feature store keeps float32, so features held in memory and features
        # read from a store (or the cache) are the same numbers
        return summary(y, sr, n_fft=config.n_fft, hop_length=config.hop_length, hpss_kernel=config.hpss_kernel).astype(
            np.float32
        )
    if config.kind == "musicnn":
        from genrelib.features import musicnn

        emb, tags = musicnn.embed(y, sr, model=config.embedding_model, hop_seconds=config.patch_hop)
        return pool_patches(np.concatenate([emb, tags], axis=1), config.pooling)
    segs = audio.windows(y, sr, seconds=config.segment_seconds, min_fraction=config.min_fraction, pad=True)
    kw = {
        "n_fft": config.n_fft,
        "hop_length": config.hop_length,
        "n_mels": config.n_mels,
        "fmax": config.fmax,
        "top_db": config.top_db,
    }
    if config.kind == "mfcc":
        return mfcc(segs, sr, n_mfcc=config.n_mfcc, **kw)
    return log_mel(segs, sr, **kw)


def pool_patches(P: np.ndarray, pooling: str = "mean") -> np.ndarray:
    """One ``musicnn`` row from patch rows ``P`` [shape=(n_patches, 250)]: their mean, then (``mean_std``) their
    standard deviation (0 for a single patch)."""
    P = np.asarray(P, dtype=np.float32)
    parts = [P.mean(axis=0)] + ([P.std(axis=0)] if pooling == "mean_std" else [])
    return np.concatenate(parts).astype(np.float32)


@dataclass
class FileFeatures:
    """Features of one file: rows of ``X`` with the window and segment each row comes from."""

    X: np.ndarray
    window: np.ndarray
    segment: np.ndarray
    window_start: np.ndarray


def file_features(path: str | Path, config: FeatureConfig, *, hop_seconds: float | None = None) -> FileFeatures:
    """Stream a file window by window and compute its features (bounded memory for long files).

    Parameters
    ----------
    path : str or Path
        Audio file.
    config : FeatureConfig
    hop_seconds : float, optional
        Hop between windows (default: ``config.window_seconds``, no overlap).

    Raises
    ------
    AudioError
        When the file cannot be read.
    """
    rows, win, seg, starts = [], [], [], []
    for w, (start, y) in enumerate(
        audio.load_windows(
            path,
            sr=config.sr,
            seconds=config.window_seconds,
            hop_seconds=hop_seconds,
            min_fraction=config.min_fraction,
            pad=False,
        )
    ):
        X = window_features(y, config.sr, config)
        if config.per_window:
            X = X[None, :]
        rows.append(X.astype(np.float32))
        win += [w] * len(X)
        seg += list(range(len(X)))
        starts += [start] * len(X)
    X = np.concatenate(rows) if rows else np.zeros((0, *config.row_shape), np.float32)
    return FileFeatures(
        X=X, window=np.array(win, np.int32), segment=np.array(seg, np.int32), window_start=np.array(starts, np.float32)
    )


def track_features(track: Track, config: FeatureConfig) -> tuple[Track, FileFeatures | None, str | None]:
    try:
        ff = file_features(track.path, config)
    except AudioError as exc:
        return track, None, str(exc)
    if not np.isfinite(ff.X).all():  # never stored, whatever the cause
        return track, None, f"{track.path}: its {config.kind} features are not finite (NaN or inf); check the audio"
    return track, ff, None
