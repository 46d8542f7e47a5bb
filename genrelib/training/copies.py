"""Precomputed waveform copies of the training tracks (:class:`~genrelib.training.augment.WaveAugment`): drawn per
track and copy, extracted over processes, cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from genrelib import audio
from genrelib.datasets.tracks import Track, file_signature
from genrelib.errors import AudioError, ModelError
from genrelib.features.cache import default_cache_dir
from genrelib.features.compute import window_features
from genrelib.features.config import FeatureConfig
from genrelib.features.featureset import FeatureSet, atomic_save_npz
from genrelib.training.augment import FeatureAugment, WaveAugment, copy_id, copy_rng, draw, transform

logger = logging.getLogger(__name__)


def copy_cache_path(
    track: Track, config: FeatureConfig, wave: WaveAugment, seed: int, cache_dir: str | Path | None = None
) -> Path:
    """Where one track's augmented copies are cached: keyed by the feature configuration, the augmentation
    settings, the seed and the file (id, size, modification time)."""
    payload = json.dumps(
        {
            "features": config.hash(),
            "augment": wave.to_dict(),
            "seed": int(seed),
            "track": [track.track_id, *file_signature(track.path)],
        },
        sort_keys=True,
    )
    key = hashlib.sha256(payload.encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / "augment" / f"{config.kind}-{key}.npz"


def track_copies(
    track: Track, config: FeatureConfig, wave: WaveAugment, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """Compute the ``wave.copies`` augmented copies of one track (no cache).

    Returns
    -------
    X : np.ndarray [shape=(rows, *config.row_shape), dtype=float32]
    copy, window : np.ndarray [shape=(rows,), dtype=int32]
        The copy (0-based) and the window of each row.
    settings : list of dict
        What :func:`draw` gave each copy.
    """
    y, sr = audio.load(track.path, sr=config.sr)
    rows, copy_of, win_of, settings = [], [], [], []
    for k in range(wave.copies):
        rng = copy_rng(seed, track.track_id, k)
        s = draw(rng, wave)
        z = transform(y, sr, rng=rng, **s)
        for w, seg in enumerate(
            audio.windows(z, sr, seconds=config.window_seconds, min_fraction=config.min_fraction, pad=False)
        ):
            X = window_features(seg, sr, config)
            X = X[None, :] if config.per_window else X
            rows.append(X.astype(np.float32))
            copy_of += [k] * len(X)
            win_of += [w] * len(X)
        settings.append(s)
    return (np.concatenate(rows), np.array(copy_of, np.int32), np.array(win_of, np.int32), settings)


def _cached_copies(track: Track, config: FeatureConfig, wave: WaveAugment, seed: int, cache_dir, use_cache: bool):
    path = copy_cache_path(track, config, wave, seed, cache_dir)
    if use_cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                X, copy, window = z["X"], z["copy"], z["window"]
                settings = json.loads(str(z["settings"]))
            n = len(X)
            shaped = tuple(X.shape[1:]) == tuple(config.row_shape) and len(copy) == len(window) == n
            if shaped and np.isfinite(X).all() and isinstance(settings, list) and len(settings) == wave.copies:
                return track, (X, copy, window, settings), None
            why = "its arrays do not fit the configuration"
        except (OSError, EOFError, KeyError, IndexError, TypeError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
            why = f"unreadable ({type(exc).__name__}: {exc})"
        logger.warning("augmented-copy cache entry %s: %s; computed again", path, why)  # never trusted
    try:
        X, copy, window, settings = track_copies(track, config, wave, seed)
    except AudioError as exc:
        return track, None, str(exc)
    if not np.isfinite(X).all():
        return track, None, f"{track.path}: features of an augmented copy are not finite; check the audio"
    if use_cache:
        atomic_save_npz(
            path,
            stored={},
            deflated={"X": X, "copy": copy, "window": window, "settings": np.array(json.dumps(settings))},
        )
    return track, (X, copy, window, settings), None


def _cached_many(tracks, config, wave, seed, cache_dir, use_cache):
    return [_cached_copies(t, config, wave, seed, cache_dir, use_cache) for t in tracks]


def copies(
    tracks: Sequence[Track],
    config: FeatureConfig,
    wave: WaveAugment,
    *,
    seed: int,
    genres: Sequence[str],
    n_jobs: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> tuple[FeatureSet, list[dict]]:
    """Augmented copies of ``tracks`` (give the training tracks only), as a feature set; cached per track.

    Parameters
    ----------
    tracks : sequence of Track
    config : FeatureConfig
        The features of the copies (those the model trains on).
    wave : WaveAugment
    seed : int
        With the track id and the copy, it fixes every random draw.
    genres : sequence of str
        The label set of the feature set returned.
    n_jobs, cache_dir, use_cache, progress
        As :func:`genrelib.features.extraction.extract`.

    Returns
    -------
    fs : FeatureSet
        Rows of every copy; track ids ``<track id>#aug<k>`` (:func:`copy_id`), genres those of the tracks.
    settings : list of dict
        One per copy: ``track_id``, ``copy`` (1-based) and what :func:`draw` gave it.
    """
    from genrelib.progress import Progress

    n_jobs = max(1, min(n_jobs or os.cpu_count() or 1, len(tracks)))
    # a bar on a terminal, else log lines (genrelib.progress)
    bar = Progress(len(tracks), f"augmented {config.kind} copies", bar=progress, unit="tracks")
    done: dict[str, tuple] = {}
    failed = []
    if n_jobs == 1:
        outcomes = (_cached_copies(t, config, wave, seed, cache_dir, use_cache) for t in tracks)
        for outcome in outcomes:
            _collect(outcome, done, failed)
            bar.update(skipped=len(failed))
    else:
        import multiprocessing as mp

        from genrelib.features.workers import init_worker

        size = max(1, min(4, len(tracks) // (4 * n_jobs)))
        with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("forkserver"), initializer=init_worker) as pool:
            futures = [
                pool.submit(_cached_many, tracks[i : i + size], config, wave, seed, cache_dir, use_cache)
                for i in range(0, len(tracks), size)
            ]
            for fut in as_completed(futures):
                outcomes = fut.result()
                for outcome in outcomes:
                    _collect(outcome, done, failed)
                bar.update(len(outcomes), skipped=len(failed))
    bar.close()
    order = [t for t in tracks if t.track_id in done]
    X, ids, window, segment, row_genres, settings = [], [], [], [], [], []
    for t in order:
        Xt, copy, win, s = done[t.track_id]
        X.append(Xt)
        ids += [copy_id(t.track_id, int(k)) for k in copy]
        window.append(win)
        seg = np.zeros(len(copy), np.int32)
        for key in set(zip(copy.tolist(), win.tolist())):  # segment index within each copy's window
            where = np.flatnonzero((copy == key[0]) & (win == key[1]))
            seg[where] = np.arange(len(where))
        segment.append(seg)
        row_genres += [t.genre or ""] * len(copy)
        settings += [{"track_id": t.track_id, "copy": k + 1, **v} for k, v in enumerate(s)]
    empty = np.zeros((0, *config.row_shape), np.float32)
    fs = FeatureSet(
        X=np.concatenate(X) if X else empty,
        track_ids=np.array(ids, dtype=str),
        window=np.concatenate(window) if window else np.zeros(0, np.int32),
        segment=np.concatenate(segment) if segment else np.zeros(0, np.int32),
        row_genres=np.array(row_genres, dtype=str),
        genres=list(genres),
        config=config,
        skipped=failed,
    )
    return fs, settings


def _collect(outcome, done, failed) -> None:
    track, result, err = outcome
    if err is not None:
        logger.warning("no augmented copies of %s", err)
        failed.append((track.track_id, err))
    else:
        done[track.track_id] = result


def concat(a: FeatureSet, b: FeatureSet) -> FeatureSet:
    """Rows of ``a`` then rows of ``b`` (same configuration and genres)."""
    if a.config != b.config or list(a.genres) != list(b.genres):
        raise ModelError("cannot join feature sets of different configurations or genres")
    return FeatureSet(
        np.concatenate([a.X, b.X]),
        np.concatenate([a.track_ids, b.track_ids]),
        np.concatenate([a.window, b.window]),
        np.concatenate([a.segment, b.segment]),
        np.concatenate([a.row_genres, b.row_genres]),
        list(a.genres),
        a.config,
        list(a.skipped),
    )


def examples(
    tracks: Sequence[Track],
    config: FeatureConfig,
    feature_aug: FeatureAugment,
    wave: WaveAugment,
    *,
    seed: int = 0,
    variants: int = 2,
    segment: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """A few augmented versions of one segment of each track, for :func:`genrelib.plots.plot_augmented_examples`.

    For every track: its original segment, ``variants`` on-the-fly variants (the same batch function training
    uses, mixup partners being the other tracks' segments) and its first ``variants`` waveform copies (the same
    draws as training's copies for ``seed``).

    Returns
    -------
    dict
        ``{track_id: {label: S}}``, each ``S`` of shape ``config.row_shape`` (frames, bands).
    """
    from genrelib.training import input_pipeline

    if config.per_window:
        raise ModelError(f"augmentation examples need segment features (mfcc or mel), not {config.kind!r}")
    signals = [audio.load(t.path, sr=config.sr)[0] for t in tracks]
    sr = config.sr
    originals = [_segment(y, sr, config, segment) for y in signals]
    out = {t.track_id: {"original": S} for t, S in zip(tracks, originals)}
    if feature_aug.active:
        X = np.stack(originals)
        fill = X.mean(axis=(0, 1))
        for v in range(variants):
            Xa, Y = input_pipeline.augment_numpy(
                X, np.arange(len(X)), feature_aug, config, seed=seed, step=v, fill=fill, n_classes=len(X)
            )
            for i, (t, S) in enumerate(zip(tracks, Xa)):
                share = f" (mixup: {Y[i, i]:.0%} this track)" if feature_aug.mixup else ""
                out[t.track_id][f"on the fly {v + 1}{share}"] = S
    if wave.active:
        for t, y in zip(tracks, signals):
            for k in range(min(variants, wave.copies)):
                rng = copy_rng(seed, t.track_id, k)
                s = draw(rng, wave)
                out[t.track_id][f"copy {k + 1}: {_describe(s)}"] = _segment(
                    transform(y, sr, rng=rng, **s), sr, config, segment
                )
    return out


def _segment(y: np.ndarray, sr: int, config: FeatureConfig, segment: int) -> np.ndarray:
    first = audio.windows(y, sr, seconds=config.window_seconds, min_fraction=config.min_fraction, pad=False)[0]
    X = window_features(first, sr, config)
    return X[min(segment, len(X) - 1)]


def _describe(s: dict) -> str:
    parts = []
    if s["stretch_rate"] != 1.0:
        parts.append(f"tempo x{s['stretch_rate']:.2f}")
    if s["pitch_steps"]:
        parts.append(f"pitch {s['pitch_steps']:+.1f} st")
    if s["shift_seconds"]:
        parts.append(f"shift {s['shift_seconds']:+.1f} s")
    if s["snr_db"] is not None:
        parts.append(f"noise {s['snr_db']:g} dB SNR")
    return ", ".join(parts)
