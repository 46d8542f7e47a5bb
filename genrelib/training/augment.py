"""Data augmentation for the Keras families: what it is, and the waveform copies that are precomputed and cached.

Two kinds, both off by default (the original notebook's recipe), both applied to training tracks only:

On the features, on the fly (:class:`FeatureAugment`; applied per batch by :mod:`genrelib.training.input_pipeline`, so that
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
from dataclasses import asdict, dataclass

import numpy as np

from genrelib.errors import ModelError


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
                raise ModelError(
                    f"{name} is the widest mask as a share of the segment's frames or bands, in "
                    f"(0, 1]; got {getattr(self, name)!r}"
                )
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
            raise ModelError(
                f"time_stretch is the largest relative change of tempo, in [0, 1) (0.1: rates "
                f"0.9-1.1); got {self.time_stretch!r}"
            )
        if self.noise_snr is not None and not np.isfinite(self.noise_snr):
            raise ModelError(f"noise_snr must be a finite number of dB or None (off), got {self.noise_snr!r}")
        transforms = bool(self.pitch_shift or self.time_stretch or self.time_shift or self.noise_snr is not None)
        if self.copies and not transforms:
            raise ModelError(
                f"aug_copies={self.copies} would add identical copies: give at least one of "
                "pitch_shift, time_stretch, time_shift, noise_snr (--pitch-shift, --time-stretch, "
                "--time-shift, --noise-snr)"
            )
        if transforms and not self.copies:
            raise ModelError(
                "pitch_shift, time_stretch, time_shift and noise_snr act on precomputed copies of the "
                "training tracks: give aug_copies >= 1 (--aug-copies N)"
            )

    @property
    def active(self) -> bool:
        """Whether copies are made."""
        return self.copies > 0

    def to_dict(self) -> dict:
        """Plain dict of the fields."""
        return asdict(self)


def describe(feature_aug: FeatureAugment, wave: WaveAugment) -> str:
    """What augmentation is on, in words (``"none"`` when nothing is)."""
    on_the_fly = [
        text
        for on, text in (
            (feature_aug.time_masks, f"{feature_aug.time_masks} time masks (<= {feature_aug.time_mask_width:.0%})"),
            (
                feature_aug.freq_masks,
                f"{feature_aug.freq_masks} frequency masks (<= {feature_aug.freq_mask_width:.0%})",
            ),
            (feature_aug.gain_db, f"gain +-{feature_aug.gain_db:g} dB"),
            (feature_aug.noise_std, f"noise sd {feature_aug.noise_std:g} dB"),
            (feature_aug.mixup, f"mixup alpha {feature_aug.mixup:g}"),
        )
        if on
    ]
    parts = [f"on the fly: {', '.join(on_the_fly)}"] if on_the_fly else []
    if wave.active:
        settings = [
            text
            for on, text in (
                (wave.pitch_shift, f"pitch +-{wave.pitch_shift:g} st"),
                (wave.time_stretch, f"tempo x(1 +- {wave.time_stretch:g})"),
                (wave.time_shift, f"shift +-{wave.time_shift:g} s"),
                (wave.noise_snr is not None, f"noise at {wave.noise_snr or 0:g} dB SNR"),
            )
            if on
        ]
        parts.append(f"{wave.copies} waveform cop{'y' if wave.copies == 1 else 'ies'} per track: {', '.join(settings)}")
    return "; ".join(parts) or "none"


def draw(rng: np.random.Generator, wave: WaveAugment) -> dict[str, float | None]:
    """Random settings of one copy: ``stretch_rate``, ``pitch_steps`` (semitones), ``shift_seconds``, ``snr_db``."""
    return {
        "stretch_rate": float(rng.uniform(1 - wave.time_stretch, 1 + wave.time_stretch)) if wave.time_stretch else 1.0,
        "pitch_steps": float(rng.uniform(-wave.pitch_shift, wave.pitch_shift)) if wave.pitch_shift else 0.0,
        "shift_seconds": float(rng.uniform(-wave.time_shift, wave.time_shift)) if wave.time_shift else 0.0,
        "snr_db": None if wave.noise_snr is None else float(wave.noise_snr),
    }


def transform(
    y: np.ndarray,
    sr: int,
    *,
    stretch_rate: float = 1.0,
    pitch_steps: float = 0.0,
    shift_seconds: float = 0.0,
    snr_db: float | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
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
        warnings.filterwarnings(
            "ignore", message="The `(hop_length|n_fft)` parameter is deprecated", category=FutureWarning
        )
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
