"""Data augmentation for the Keras families: what it is, and the waveform copies that are precomputed and cached.

Two kinds, both off by default (the original notebook's recipe), both applied to training tracks only:

On the features, on the fly (:class:`FeatureAugment`; applied per batch by :mod:`genrelib.input_pipeline`, so that
every epoch sees new variants; validation and test rows are never touched):

- SpecAugment-style masks (Park et al. 2019): ``time_masks`` bands of up to ``time_mask_width`` of a segment's
  frames and ``freq_masks`` bands of up to ``freq_mask_width`` of its mel bands (or MFCC coefficients) are set to
  the training data's mean of each band (zero after the models' input standardization);
- a random gain, uniform in +-``gain_db`` dB: a constant offset on log-mel dB values; for MFCCs, whose
  orthonormal DCT turns a constant offset ``g`` on all ``n_mels`` log-mel values into ``g * sqrt(n_mels)`` on the
  0th coefficient and nothing on the others, that offset on coefficient 0 (:func:`gain_vector`);
- additive Gaussian noise of standard deviation ``noise_std`` dB per log-mel value (the same per MFCC
  coefficient: the orthonormal DCT keeps white noise white);
- mixup (Zhang et al. 2018): each example is blended with another of its batch by ``lam ~ Beta(mixup, mixup)``,
  labels as well (one-hot, so the model is trained with categorical cross-entropy, which equals the sparse
  cross-entropy the families compile with on the unmixed validation labels).

On the waveform, precomputed (:class:`WaveAugment`; these need the features extracted again from the transformed
audio, too slow to do per batch): ``copies`` extra training copies of every training track, each with its own
random time stretch (rate in ``1 +- time_stretch``), pitch shift (+-``pitch_shift`` semitones, both by
``librosa.effects``), circular time shift (+-``time_shift`` seconds) and white noise at ``noise_snr`` dB SNR.
The draws depend on the seed, the track and the copy only. Each track's copies are extracted by
:mod:`genrelib.features` and cached under a key made of the feature configuration, the augmentation settings,
the seed and the file (:func:`copy_cache_path`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import audio
from .dataset import Track
from .errors import AudioError, ModelError
from .features import FeatureConfig, FeatureSet, _atomic_save_npz, default_cache_dir, window_features

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureAugment:
    """On-the-fly augmentation of feature segments (see the module docstring); all off by default."""

    time_masks: int = 0
    freq_masks: int = 0
    time_mask_width: float = 0.1
    freq_mask_width: float = 0.1
    gain_db: float = 0.0
    noise_std: float = 0.0
    mixup: float = 0.0

    def __post_init__(self) -> None:
        for name in ("time_masks", "freq_masks"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 0:
                raise ModelError(f"{name} must be a whole number >= 0, got {getattr(self, name)!r}")
        for name in ("time_mask_width", "freq_mask_width"):
            if not 0 < getattr(self, name) <= 1:
                raise ModelError(f"{name} is the widest mask as a share of the segment's frames or bands, in "
                                 f"(0, 1]; got {getattr(self, name)!r}")
        for name in ("gain_db", "noise_std", "mixup"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ModelError(f"{name} must be >= 0 (0: off), got {getattr(self, name)!r}")

    @property
    def active(self) -> bool:
        """Whether any of it is on."""
        return bool(self.time_masks or self.freq_masks or self.gain_db or self.noise_std or self.mixup)


@dataclass(frozen=True)
class WaveAugment:
    """Precomputed waveform copies of the training tracks (see the module docstring); none by default."""

    copies: int = 0
    pitch_shift: float = 0.0
    time_stretch: float = 0.0
    time_shift: float = 0.0
    noise_snr: float | None = None

    def __post_init__(self) -> None:
        if int(self.copies) != self.copies or self.copies < 0:
            raise ModelError(f"aug_copies must be a whole number >= 0, got {self.copies!r}")
        for name in ("pitch_shift", "time_shift"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ModelError(f"{name} must be >= 0 (0: off), got {getattr(self, name)!r}")
        if not 0 <= self.time_stretch < 1:
            raise ModelError(f"time_stretch is the largest relative change of tempo, in [0, 1) (0.1: rates "
                             f"0.9-1.1); got {self.time_stretch!r}")
        if self.noise_snr is not None and not np.isfinite(self.noise_snr):
            raise ModelError(f"noise_snr must be a finite number of dB or None (off), got {self.noise_snr!r}")
        transforms = bool(self.pitch_shift or self.time_stretch or self.time_shift or self.noise_snr is not None)
        if self.copies and not transforms:
            raise ModelError(f"aug_copies={self.copies} would add identical copies: give at least one of "
                             "pitch_shift, time_stretch, time_shift, noise_snr (--pitch-shift, --time-stretch, "
                             "--time-shift, --noise-snr)")
        if transforms and not self.copies:
            raise ModelError("pitch_shift, time_stretch, time_shift and noise_snr act on precomputed copies of the "
                             "training tracks: give aug_copies >= 1 (--aug-copies N)")

    @property
    def active(self) -> bool:
        """Whether copies are made."""
        return self.copies > 0

    def to_dict(self) -> dict:
        """Plain dict of the fields."""
        return asdict(self)


def describe(feature_aug: FeatureAugment, wave: WaveAugment) -> str:
    """What augmentation is on, in words (``"none"`` when nothing is)."""
    on_the_fly = [text for on, text in (
        (feature_aug.time_masks, f"{feature_aug.time_masks} time masks (<= {feature_aug.time_mask_width:.0%})"),
        (feature_aug.freq_masks, f"{feature_aug.freq_masks} frequency masks (<= {feature_aug.freq_mask_width:.0%})"),
        (feature_aug.gain_db, f"gain +-{feature_aug.gain_db:g} dB"),
        (feature_aug.noise_std, f"noise sd {feature_aug.noise_std:g} dB"),
        (feature_aug.mixup, f"mixup alpha {feature_aug.mixup:g}")) if on]
    parts = [f"on the fly: {', '.join(on_the_fly)}"] if on_the_fly else []
    if wave.active:
        settings = [text for on, text in (
            (wave.pitch_shift, f"pitch +-{wave.pitch_shift:g} st"),
            (wave.time_stretch, f"tempo x(1 +- {wave.time_stretch:g})"),
            (wave.time_shift, f"shift +-{wave.time_shift:g} s"),
            (wave.noise_snr is not None, f"noise at {wave.noise_snr or 0:g} dB SNR")) if on]
        parts.append(f"{wave.copies} waveform cop{'y' if wave.copies == 1 else 'ies'} per track: {', '.join(settings)}")
    return "; ".join(parts) or "none"


# ------------------------------------------------------------------------------------ waveform transforms


def draw(rng: np.random.Generator, wave: WaveAugment) -> dict[str, float | None]:
    """Random settings of one copy: ``stretch_rate``, ``pitch_steps`` (semitones), ``shift_seconds``, ``snr_db``."""
    return {"stretch_rate": float(rng.uniform(1 - wave.time_stretch, 1 + wave.time_stretch))
            if wave.time_stretch else 1.0,
            "pitch_steps": float(rng.uniform(-wave.pitch_shift, wave.pitch_shift)) if wave.pitch_shift else 0.0,
            "shift_seconds": float(rng.uniform(-wave.time_shift, wave.time_shift)) if wave.time_shift else 0.0,
            "snr_db": None if wave.noise_snr is None else float(wave.noise_snr)}


def transform(y: np.ndarray, sr: int, *, stretch_rate: float = 1.0, pitch_steps: float = 0.0,
              shift_seconds: float = 0.0, snr_db: float | None = None,
              rng: np.random.Generator | None = None) -> np.ndarray:
    """A transformed copy of a signal: time stretch, pitch shift, circular time shift, white noise at an SNR.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : int
    stretch_rate : float
        Tempo factor (``librosa.effects.time_stretch``): 1.1 is 10% faster, so ``n / 1.1`` samples.
    pitch_steps : float
        Semitones (``librosa.effects.pitch_shift``); the length is kept.
    shift_seconds : float
        Circular shift (the end wraps round to the start).
    snr_db : float or None
        White Gaussian noise at this signal-to-noise ratio (in dB, of the whole signal's power).
    rng : numpy Generator
        For the noise.

    Returns
    -------
    y : np.ndarray [shape=(m,), dtype=float32]
    """
    import warnings

    import librosa

    y = np.asarray(y, dtype=np.float32)
    with warnings.catch_warnings():
        # librosa 1.0's own effects pass phase_vocoder arguments it deprecates, and its numba phasor warns of an
        # invalid cast while returning finite values (checked: the copies' features are tested for finiteness).
        warnings.filterwarnings("ignore", message="The `(hop_length|n_fft)` parameter is deprecated",
                                category=FutureWarning)
        warnings.filterwarnings("ignore", message="invalid value encountered in cast", category=RuntimeWarning)
        if stretch_rate != 1.0:
            y = librosa.effects.time_stretch(y, rate=stretch_rate)
        if pitch_steps:
            y = librosa.effects.pitch_shift(y, sr=sr, n_steps=pitch_steps)
    if shift_seconds:
        y = np.roll(y, int(round(shift_seconds * sr)))
    if snr_db is not None:
        rng = rng or np.random.default_rng(0)
        power = float(np.mean(np.square(y, dtype=np.float64)))
        noise = rng.standard_normal(len(y)) * np.sqrt(power / 10 ** (snr_db / 10))
        y = y + noise.astype(np.float32)
    return y.astype(np.float32)


def copy_rng(seed: int, track_id: str, copy: int) -> np.random.Generator:
    """The random generator of one copy of one track: depends on the seed, the track id and the copy only."""
    digest = int.from_bytes(hashlib.sha256(track_id.encode()).digest()[:8], "little")
    return np.random.default_rng([int(seed), digest, int(copy)])


def copy_id(track_id: str, copy: int) -> str:
    """Track id of an augmented copy (``metal/metal.00012.wav#aug1``), so that its rows stay apart."""
    return f"{track_id}#aug{copy + 1}"


def base_id(track_id: str) -> str:
    """The original track of a (possibly augmented) row's track id."""
    return track_id.split("#aug", 1)[0]


# ------------------------------------------------------------------------------------ cached copies


def copy_cache_path(track: Track, config: FeatureConfig, wave: WaveAugment, seed: int,
                    cache_dir: str | Path | None = None) -> Path:
    """Where one track's augmented copies are cached: keyed by the feature configuration, the augmentation
    settings, the seed and the file (id, size, modification time)."""
    st = track.path.stat()
    payload = json.dumps({"features": config.hash(), "augment": wave.to_dict(), "seed": int(seed),
                          "track": [track.track_id, st.st_size, int(st.st_mtime)]}, sort_keys=True)
    key = hashlib.sha256(payload.encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / "augment" / f"{config.kind}-{key}.npz"


def track_copies(track: Track, config: FeatureConfig, wave: WaveAugment, seed: int) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, list[dict]]:
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
        for w, seg in enumerate(audio.windows(z, sr, seconds=config.window_seconds,
                                              min_fraction=config.min_fraction, pad=False)):
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
        with np.load(path, allow_pickle=False) as z:
            return track, (z["X"], z["copy"], z["window"], json.loads(str(z["settings"]))), None
    try:
        X, copy, window, settings = track_copies(track, config, wave, seed)
    except AudioError as exc:
        return track, None, str(exc)
    if not np.isfinite(X).all():
        return track, None, f"{track.path}: features of an augmented copy are not finite; check the audio"
    if use_cache:
        _atomic_save_npz(path, stored={}, deflated={"X": X, "copy": copy, "window": window,
                                                    "settings": np.array(json.dumps(settings))})
    return track, (X, copy, window, settings), None


def _cached_many(tracks, config, wave, seed, cache_dir, use_cache):
    return [_cached_copies(t, config, wave, seed, cache_dir, use_cache) for t in tracks]


def copies(tracks: Sequence[Track], config: FeatureConfig, wave: WaveAugment, *, seed: int, genres: Sequence[str],
           n_jobs: int | None = None, cache_dir: str | Path | None = None, use_cache: bool = True,
           progress: bool = False) -> tuple[FeatureSet, list[dict]]:
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
        As :func:`genrelib.features.extract`.

    Returns
    -------
    fs : FeatureSet
        Rows of every copy; track ids ``<track id>#aug<k>`` (:func:`copy_id`), genres those of the tracks.
    settings : list of dict
        One per copy: ``track_id``, ``copy`` (1-based) and what :func:`draw` gave it.
    """
    from .progress import Progress

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

        from .features import _init_worker

        size = max(1, min(4, len(tracks) // (4 * n_jobs)))
        with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("forkserver"), initializer=_init_worker) as pool:
            futures = [pool.submit(_cached_many, tracks[i : i + size], config, wave, seed, cache_dir, use_cache)
                       for i in range(0, len(tracks), size)]
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
    fs = FeatureSet(X=np.concatenate(X) if X else empty, track_ids=np.array(ids, dtype=str),
                    window=np.concatenate(window) if window else np.zeros(0, np.int32),
                    segment=np.concatenate(segment) if segment else np.zeros(0, np.int32),
                    row_genres=np.array(row_genres, dtype=str), genres=list(genres), config=config,
                    skipped=failed)
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
    return FeatureSet(np.concatenate([a.X, b.X]), np.concatenate([a.track_ids, b.track_ids]),
                      np.concatenate([a.window, b.window]), np.concatenate([a.segment, b.segment]),
                      np.concatenate([a.row_genres, b.row_genres]), list(a.genres), a.config, list(a.skipped))


# ------------------------------------------------------------------------------------ examples for a figure


def examples(tracks: Sequence[Track], config: FeatureConfig, feature_aug: FeatureAugment, wave: WaveAugment, *,
             seed: int = 0, variants: int = 2, segment: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """A few augmented versions of one segment of each track, for :func:`genrelib.plots.plot_augmented_examples`.

    For every track: its original segment, ``variants`` on-the-fly variants (the same batch function training
    uses, mixup partners being the other tracks' segments) and its first ``variants`` waveform copies (the same
    draws as training's copies for ``seed``).

    Returns
    -------
    dict
        ``{track_id: {label: S}}``, each ``S`` of shape ``config.row_shape`` (frames, bands).
    """
    from . import input_pipeline

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
            Xa, Y = input_pipeline.augment_numpy(X, np.arange(len(X)), feature_aug, config, seed=seed, step=v,
                                                 fill=fill, n_classes=len(X))
            for i, (t, S) in enumerate(zip(tracks, Xa)):
                share = f" (mixup: {Y[i, i]:.0%} this track)" if feature_aug.mixup else ""
                out[t.track_id][f"on the fly {v + 1}{share}"] = S
    if wave.active:
        for t, y in zip(tracks, signals):
            for k in range(min(variants, wave.copies)):
                rng = copy_rng(seed, t.track_id, k)
                s = draw(rng, wave)
                out[t.track_id][f"copy {k + 1}: {_describe(s)}"] = _segment(transform(y, sr, rng=rng, **s), sr,
                                                                             config, segment)
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
