"""Feature extraction: pure ``(y, sr) -> ndarray`` functions and a cached, parallel :func:`extract`.

Three kinds, each described by a frozen :class:`FeatureConfig` that is logged and hashed:

``mfcc``
    The original notebook's input: MFCCs (n_fft 2048, hop 512) of 3 s segments, shape ``(130, n_mfcc)``.
``mel``
    Log-mel spectrogram segments in dB, shape ``(130, n_mels)``.
``musicnn``
    Per 30 s window, the mean over its 3 s patches of the pretrained musicnn network's 200-d penultimate
    embedding and its 50 tag probabilities (:mod:`genrelib.musicnn`), one row of 250 per window.
``summary``
    The 57 track-level statistics of the widely used GTZAN feature table (``features_30_sec.csv``), one
    row per 30 s window, with the table's exact column names (:data:`SUMMARY_COLUMNS`).

A file is first cut into 30 s windows (a GTZAN track is one window), each window into 3 s segments; both by
the window rule of :mod:`genrelib.audio`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from . import audio
from .config import HOP_LENGTH, MIN_FRACTION, N_FFT, N_MELS, N_MFCC, SEGMENT_SECONDS, SR, WINDOW_SECONDS
from .dataset import Dataset, Track
from .errors import AudioError, FeatureError

logger = logging.getLogger(__name__)

KINDS = ("mfcc", "mel", "summary", "musicnn")

_BASE_STATS = ["chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff", "zero_crossing_rate",
               "harmony", "perceptr"]
#: The 57 columns of the GTZAN feature table, in its order.
SUMMARY_COLUMNS: list[str] = (
    [f"{name}_{stat}" for name in _BASE_STATS for stat in ("mean", "var")]
    + ["tempo"]
    + [f"mfcc{i}_{stat}" for i in range(1, 21) for stat in ("mean", "var")]
)


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that determines a feature set; hashed to key caches and logged as run parameters.

    Attributes
    ----------
    kind : {"mfcc", "mel", "summary", "musicnn"}
    sr : int
        Sample rate signals are converted to.
    n_fft, hop_length : int
        STFT frame length and hop, in samples.
    n_mfcc : int
        MFCCs per frame (``mfcc`` kind; the original notebook used 16, the 13/20 variants are common).
    n_mels : int
        Mel bands (``mel`` kind).
    segment_seconds : float
        Length of a CNN input segment.
    window_seconds : float
        Length of the windows a file is first cut into.
    min_fraction : float
        Window rule: a tail at least this fraction of a window long gets its own window.
    hpss_kernel : int
        Median-filter length of the harmonic/percussive separation (``summary`` kind; librosa's default 31).
    fmax : float or None
        Highest frequency of the mel filterbank (``mfcc`` and ``mel`` kinds); None: ``sr / 2``. Default 8 kHz:
        lossy codecs remove what lies above about 10 kHz (measured: mp3 at 36-77 kbps of 22050 Hz audio is
        cut at 10.06 kHz, and audio recorded at 16 kHz has nothing above 8 kHz), and features that look there
        made a model change its mind between the flac and the mp3 of one song. ``fmax=None`` with
        ``top_db=80`` gives the original notebook's MFCCs exactly.
    top_db : float or None
        Each segment's dB values are clipped at ``top_db`` below its maximum (librosa's ``power_to_db``
        default, as the notebook's MFCCs were): spectral holes that a codec leaves then sit at the same floor
        as quiet bands of the original instead of at -100 dB. None: no clipping.

    embedding_model : str or None
        The pretrained network of the ``musicnn`` kind (:data:`genrelib.musicnn.MODELS`); None for other kinds.
    patch_hop : float or None
        Step in seconds between the 3 s patches of the ``musicnn`` kind; None: no overlap.

    Configurations saved before ``fmax`` and ``top_db`` existed read back with what they meant then
    (full band; clipping for ``mfcc`` only), so older models keep getting the features they were trained on.
    ``summary`` features follow the GTZAN table's definition and ignore both (stored as None).
    """

    kind: str = "mfcc"
    sr: int = SR
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mfcc: int = N_MFCC
    n_mels: int = N_MELS
    segment_seconds: float = SEGMENT_SECONDS
    window_seconds: float = WINDOW_SECONDS
    min_fraction: float = MIN_FRACTION
    hpss_kernel: int = 31
    fmax: float | None = 8000.0
    top_db: float | None = 80.0
    embedding_model: str | None = "MSD_musicnn"
    patch_hop: float | None = None

    def __post_init__(self) -> None:
        # Fields a kind does not use are stored as None, so equal features have equal configurations.
        if self.kind in ("summary", "musicnn"):  # the table's definition; musicnn has its own fixed front end
            object.__setattr__(self, "fmax", None)
            object.__setattr__(self, "top_db", None)
        if self.kind != "musicnn":
            object.__setattr__(self, "embedding_model", None)
            object.__setattr__(self, "patch_hop", None)
        else:
            from .musicnn import MODELS

            if self.embedding_model not in MODELS:
                raise FeatureError(f"unknown embedding model {self.embedding_model!r}; use one of "
                                   f"{', '.join(MODELS)}")
            if self.patch_hop is not None and not 0 < float(self.patch_hop) <= 3.0:
                raise FeatureError(f"patch_hop must be in (0, 3] seconds or None, got {self.patch_hop!r}")
        if self.fmax is not None and not 0 < float(self.fmax) <= self.sr / 2:
            raise FeatureError(f"fmax must be in (0, sr/2 = {self.sr / 2:g}] Hz or None, got {self.fmax!r}")
        if self.top_db is not None and float(self.top_db) <= 0:
            raise FeatureError(f"top_db must be a positive number of dB or None, got {self.top_db!r}")
        if self.kind not in KINDS:
            raise FeatureError(f"unknown feature kind {self.kind!r}; use one of {', '.join(KINDS)}")
        for name in ("sr", "n_fft", "hop_length", "n_mfcc", "n_mels", "hpss_kernel"):
            if int(getattr(self, name)) <= 0:
                raise FeatureError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not 0 < self.segment_seconds <= self.window_seconds:
            raise FeatureError(
                f"segment_seconds ({self.segment_seconds}) must be > 0 and <= window_seconds ({self.window_seconds})"
            )
        if not 0 < self.min_fraction <= 1:
            raise FeatureError(f"min_fraction must be in (0, 1], got {self.min_fraction}")

    def to_dict(self) -> dict:
        """Plain dict of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        """Inverse of :meth:`to_dict`; ignores unknown keys; fills fields newer than ``d`` with their old meaning."""
        names = {f.name for f in fields(cls)}
        legacy = {"fmax": None, "top_db": 80.0 if d.get("kind", "mfcc") == "mfcc" else None}
        return cls(**{**legacy, **{k: v for k, v in d.items() if k in names}})

    def hash(self) -> str:
        """Short stable hash of the configuration."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def segment_frames(self) -> int:
        """STFT frames in one segment (130 for 3 s at 22050 Hz, hop 512)."""
        return 1 + int(round(self.segment_seconds * self.sr)) // self.hop_length

    @property
    def segments_per_window(self) -> int:
        """Segments in one full window (10 for 30 s / 3 s)."""
        return int(round(self.window_seconds / self.segment_seconds))

    @property
    def per_window(self) -> bool:
        """Whether a row is a whole window (``summary``, ``musicnn``) rather than a 3 s segment."""
        return self.kind in ("summary", "musicnn")

    @property
    def row_shape(self) -> tuple[int, ...]:
        """Shape of one row of ``X``: a segment's ``(frames, coefficients)``, ``(57,)`` for summary, ``(250,)``
        (200 embedding values and 50 tags) for musicnn."""
        if self.kind == "mfcc":
            return (self.segment_frames, self.n_mfcc)
        if self.kind == "mel":
            return (self.segment_frames, self.n_mels)
        if self.kind == "musicnn":
            return (len(musicnn_columns(self.embedding_model)),)
        return (len(SUMMARY_COLUMNS),)


def musicnn_columns(model: str = "MSD_musicnn") -> list[str]:
    """Names of a ``musicnn`` row's values: ``emb000`` ... ``emb199``, then ``tag:<name>`` for each tag."""
    from .musicnn import N_EMBED, TAGS

    return [f"emb{i:03d}" for i in range(N_EMBED)] + [f"tag:{t}" for t in TAGS[model]]


# ------------------------------------------------------------------------------------ pure functions


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    # Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
    f = np.asarray(f, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep, f * 3.0 / 200.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * 200.0 / 3.0)


def mel_filterbank(sr: int = SR, n_fft: int = N_FFT, n_mels: int = N_MELS, fmax: float | None = None) -> np.ndarray:
    """Slaney-style mel filterbank, equal to ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmax=fmax)``.

    Written out here (and tested against librosa) because extraction workers would otherwise import
    librosa's filters module and numba just for this matrix: a quarter of a second per process, which the
    feature-extraction speed target cannot spare.

    Returns
    -------
    M : np.ndarray [shape=(n_mels, 1 + n_fft // 2), dtype=float32]
    """
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fmax = sr / 2.0 if fmax is None else float(fmax)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:n_mels] / fdiff[:n_mels, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]  # equal area per filter ("slaney")
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=16)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmax: float | None):
    import scipy.sparse

    # Each FFT bin feeds at most two bands, so the filterbank is stored sparse.
    return scipy.sparse.csr_matrix(mel_filterbank(sr, n_fft, n_mels, fmax).T)


@functools.lru_cache(maxsize=16)
def _hann(n_fft: int) -> np.ndarray:
    n = np.arange(n_fft)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)).astype(np.float32)  # periodic, as librosa's STFT


def mel_power(y: np.ndarray, sr: int = SR, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
              n_mels: int = N_MELS, fmax: float | None = None) -> np.ndarray:
    """Mel power spectrogram of one or many equal-length segments, time first.

    Equals ``librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
    fmax=fmax)``
    (centered frames, zero padding, periodic Hann window, Slaney mel filters) transposed, computed in float32
    with a sparse filterbank: about twice as fast, which the feature-extraction speed target needs.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)]

    Returns
    -------
    S : np.ndarray [shape=(..., 1 + n // hop_length, n_mels), dtype=float32]
    """
    import scipy.fft

    y = np.asarray(y, dtype=np.float32)
    lead = y.shape[:-1]
    rows = y.reshape(-1, y.shape[-1])
    pad = n_fft // 2
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(rows, [(0, 0), (pad, pad)]), n_fft, axis=-1)
    frames = frames[:, ::hop_length, :]
    window, basis = _hann(n_fft), _mel_basis(sr, n_fft, n_mels, None if fmax is None else float(fmax))
    out = np.empty((len(rows), frames.shape[1], n_mels), dtype=np.float32)
    for i in range(len(rows)):  # one segment at a time: its arrays stay in cache (2x faster than all at once)
        F = scipy.fft.rfft(frames[i] * window, axis=-1)
        P = F.real**2
        P += F.imag**2
        out[i] = P @ basis
    return out.reshape(*lead, frames.shape[1], n_mels)


def _db(S: np.ndarray, top_db: float | None) -> np.ndarray:
    db = 10.0 * np.log10(np.maximum(S, 1e-10))
    if top_db is not None:
        # librosa clips each call's spectrogram at top_db below its maximum; the notebook called it per segment.
        db = np.maximum(db, db.max(axis=(-2, -1), keepdims=True) - top_db)
    return db


def mfcc(y: np.ndarray, sr: int = SR, *, n_mfcc: int = N_MFCC, n_fft: int = N_FFT,
         hop_length: int = HOP_LENGTH, n_mels: int = N_MELS, fmax: float | None = None,
         top_db: float | None = 80.0) -> np.ndarray:
    """MFCCs of one or many equal-length segments, time first (as the original notebook stored them).

    Each segment gives what ``librosa.feature.mfcc(y=segment, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft,
    hop_length=hop_length, fmax=fmax, top_db=top_db).T`` gives (log-mel clipped at ``top_db`` below each
    segment's maximum, orthonormal DCT-II). With the defaults: the original notebook's MFCCs.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)]
        Segment(s).
    sr, n_mfcc, n_fft, hop_length, n_mels, fmax, top_db
        librosa's MFCC parameters (see :class:`FeatureConfig` for ``fmax`` and ``top_db``).

    Returns
    -------
    X : np.ndarray [shape=(..., 1 + n // hop_length, n_mfcc), dtype=float32]
    """
    import scipy.fft

    db = _db(mel_power(y, sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmax=fmax), top_db=top_db)
    return scipy.fft.dct(db, type=2, norm="ortho", axis=-1)[..., :n_mfcc].astype(np.float32)


def log_mel(y: np.ndarray, sr: int = SR, *, n_mels: int = N_MELS, n_fft: int = N_FFT,
            hop_length: int = HOP_LENGTH, fmax: float | None = None, top_db: float | None = 80.0) -> np.ndarray:
    """Log-mel spectrogram in dB (ref 1.0, floor -100 dB) of one or many segments, time first.

    Each segment is clipped at ``top_db`` below its own maximum (None: not clipped), as
    ``librosa.power_to_db(..., top_db=top_db)`` of each segment's mel spectrogram.

    Returns
    -------
    X : np.ndarray [shape=(..., frames, n_mels), dtype=float32]
    """
    S = mel_power(y, sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmax=fmax)
    return _db(S, top_db=top_db).astype(np.float32)


def median_filter_rows(S: np.ndarray, size: int, *, block: int = 64) -> np.ndarray:
    """Running median of odd length ``size`` along the last axis, edges mirrored (scipy.ndimage's "reflect").

    Gives exactly what ``scipy.ndimage.median_filter(S, size=(1, size), mode="reflect")`` gives, about ten
    times faster: ``np.partition`` over sliding windows, a block of rows at a time so the windows stay in cache.

    Parameters
    ----------
    S : np.ndarray [shape=(rows, n)]
    size : int
        Odd window length.

    Returns
    -------
    M : np.ndarray [shape=(rows, n)], same dtype as ``S``.
    """
    if size % 2 != 1:
        raise FeatureError(f"median filter length must be odd, got {size}")
    half = size // 2
    padded = np.pad(S, ((0, 0), (half, half)), mode="symmetric")  # numpy's "symmetric" is ndimage's "reflect"
    out = np.empty_like(S)
    for i in range(0, S.shape[0], block):
        W = np.lib.stride_tricks.sliding_window_view(padded[i : i + block], size, axis=1)
        out[i : i + block] = np.partition(W, half, axis=-1)[..., half]
    return out


def hpss(D: np.ndarray, *, kernel_size: int = 31) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic/percussive separation of a complex STFT by soft median-filter masks.

    Identical to ``librosa.decompose.hpss(D, kernel_size=kernel_size)`` (margin 1, power 2), but with the
    median filters of :func:`median_filter_rows`: they dominate librosa's cost (about 2 s per 30 s window).

    Parameters
    ----------
    D : np.ndarray [shape=(1 + n_fft // 2, frames), dtype=complex]

    Returns
    -------
    D_harmonic, D_percussive : np.ndarray, same shape as ``D``
    """
    import librosa

    S, phase = librosa.magphase(D)
    harm = median_filter_rows(S, kernel_size)  # smooth along time: sustained partials
    perc = np.ascontiguousarray(median_filter_rows(np.ascontiguousarray(S.T), kernel_size).T)  # along frequency
    mask_harm = librosa.util.softmask(harm, perc, power=2.0, split_zeros=True)
    mask_perc = librosa.util.softmask(perc, harm, power=2.0, split_zeros=True)
    return (S * mask_harm) * phase, (S * mask_perc) * phase


def summary(y: np.ndarray, sr: int = SR, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
            hpss_kernel: int = 31) -> np.ndarray:
    """The 57 statistics of the GTZAN feature table for one window.

    One STFT serves every spectral feature, the MFCCs and the harmonic/percussive split, with librosa's
    default parameters (as the table was computed).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal, normally 30 s.
    sr : int
        Sample rate.

    Returns
    -------
    x : np.ndarray [shape=(57,), dtype=float64]
        In the order of :data:`SUMMARY_COLUMNS`.
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    D = librosa.stft(y, n_fft=n_fft, hop_length=hop_length)
    S = np.abs(D)
    power = S**2
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=n_fft, hop_length=hop_length)
    rms = librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop_length)
    centroid = librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=n_fft, hop_length=hop_length)
    bandwidth = librosa.feature.spectral_bandwidth(S=S, sr=sr, n_fft=n_fft, hop_length=hop_length)
    rolloff = librosa.feature.spectral_rolloff(S=S, sr=sr, n_fft=n_fft, hop_length=hop_length)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop_length)
    D_h, D_p = hpss(D, kernel_size=hpss_kernel)
    y_h = librosa.istft(D_h, hop_length=hop_length, length=len(y))
    y_p = librosa.istft(D_p, hop_length=hop_length, length=len(y))
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_fft=n_fft, hop_length=hop_length)
    mel_db = librosa.power_to_db(mel)
    onset = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=hop_length)
    tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=hop_length))[0])
    mfccs = librosa.feature.mfcc(S=mel_db, sr=sr, n_mfcc=20)
    out: list[float] = []
    for a in (chroma, rms, centroid, bandwidth, rolloff, zcr, y_h, y_p):
        out += [float(np.mean(a)), float(np.var(a))]
    out.append(tempo)
    for row in mfccs:
        out += [float(np.mean(row)), float(np.var(row))]
    return np.array(out, dtype=np.float64)


def window_features(y: np.ndarray, sr: int, config: FeatureConfig) -> np.ndarray:
    """Features of one window (normally 30 s) by ``config``.

    Returns
    -------
    X : np.ndarray
        ``(n_segments, frames, coefficients)`` float32 for ``mfcc``/``mel``; ``(57,)`` float64 for ``summary``;
        ``(250,)`` float32 for ``musicnn`` (means over the window's 3 s patches).
    """
    if config.kind == "summary":
        return summary(y, sr, n_fft=config.n_fft, hop_length=config.hop_length, hpss_kernel=config.hpss_kernel)
    if config.kind == "musicnn":
        from . import musicnn

        emb, tags = musicnn.embed(y, sr, model=config.embedding_model, hop_seconds=config.patch_hop)
        return np.concatenate([emb.mean(axis=0), tags.mean(axis=0)]).astype(np.float32)
    segs = audio.windows(y, sr, seconds=config.segment_seconds, min_fraction=config.min_fraction, pad=True)
    kw = {"n_fft": config.n_fft, "hop_length": config.hop_length, "n_mels": config.n_mels, "fmax": config.fmax,
          "top_db": config.top_db}
    if config.kind == "mfcc":
        return mfcc(segs, sr, n_mfcc=config.n_mfcc, **kw)
    return log_mel(segs, sr, **kw)


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
    for w, (start, y) in enumerate(audio.load_windows(path, sr=config.sr, seconds=config.window_seconds,
                                                      hop_seconds=hop_seconds, min_fraction=config.min_fraction,
                                                      pad=False)):
        X = window_features(y, config.sr, config)
        if config.per_window:
            X = X[None, :]
        rows.append(X.astype(np.float32))
        win += [w] * len(X)
        seg += list(range(len(X)))
        starts += [start] * len(X)
    X = np.concatenate(rows) if rows else np.zeros((0, *config.row_shape), np.float32)
    return FileFeatures(X=X, window=np.array(win, np.int32), segment=np.array(seg, np.int32),
                        window_start=np.array(starts, np.float32))


# --------------------------------------------------------------------------------- feature sets


@dataclass
class FeatureSet:
    """Features of many tracks: one row per segment (``mfcc``, ``mel``) or per window (``summary``, ``musicnn``).

    Attributes
    ----------
    X : np.ndarray [shape=(n_rows, *config.row_shape), dtype=float32]
    track_ids : np.ndarray [shape=(n_rows,), dtype=str]
    window, segment : np.ndarray [shape=(n_rows,), dtype=int32]
        Window index within the track, segment index within the window.
    row_genres : np.ndarray [shape=(n_rows,), dtype=str]
        Genre of each row's track ("" when unlabelled).
    genres : list of str
        The label set, sorted; ``labels`` index into it.
    config : FeatureConfig
    skipped : list of (track_id, reason)
        Files that could not be read.
    cache_error : str or None
        Set by :func:`extract` when the features were computed but could not be written to the cache (why, and
        the fix); not saved with the features.
    """

    X: np.ndarray
    track_ids: np.ndarray
    window: np.ndarray
    segment: np.ndarray
    row_genres: np.ndarray
    genres: list[str]
    config: FeatureConfig
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cache_error: str | None = None

    def __len__(self) -> int:
        return len(self.X)

    @property
    def labels(self) -> np.ndarray:
        """Integer label of each row (index into :attr:`genres`)."""
        index = {g: i for i, g in enumerate(self.genres)}
        return np.array([index[g] for g in self.row_genres], dtype=np.int64)

    @property
    def tracks(self) -> list[str]:
        """Distinct track ids in first-seen order."""
        return list(dict.fromkeys(self.track_ids.tolist()))

    def subset(self, mask: np.ndarray) -> FeatureSet:
        """Rows where ``mask`` is true (boolean array or indices)."""
        return FeatureSet(self.X[mask], self.track_ids[mask], self.window[mask], self.segment[mask],
                          self.row_genres[mask], list(self.genres), self.config, list(self.skipped))

    def select(self, track_ids: Sequence[str]) -> FeatureSet:
        """Rows of the given tracks."""
        return self.subset(np.isin(self.track_ids, np.asarray(list(track_ids))))

    def split(self, split: dict[str, str]) -> dict[str, FeatureSet]:
        """Partition by a ``track_id -> part`` map (see :mod:`genrelib.dataset`); rows of unlisted tracks drop."""
        parts = np.array([split.get(t, "") for t in self.track_ids])
        return {p: self.subset(parts == p) for p in ("train", "valid", "test")}

    def save(self, path: str | Path) -> Path:
        """Write a ``.npz`` (float32 features plus ids, indices, genres and the config), atomically.

        ``X`` is stored losslessly as little-endian float32 split into byte planes: the plane holding the
        sign and exponent is deflated (it compresses about 3:1), the mantissa planes, which are noise to a
        compressor, are stored as they are. Any ``np.load`` reads the file; :meth:`load` reassembles ``X``.

        Raises
        ------
        FeatureError
            When the file cannot be written (a full disk, a read-only or missing folder, ``path`` is a folder):
            the message names the path, the reason and the fix; no partial file is left behind.
        """
        meta = {"genres": self.genres, "config": self.config.to_dict(), "skipped": self.skipped}
        planes = np.ascontiguousarray(self.X.astype("<f4").reshape(-1).view(np.uint8).reshape(-1, 4).T)
        try:
            return _atomic_save_npz(
                Path(path),
                stored={"X_mantissa": planes[:3]},
                deflated={"X_exponent": planes[3], "X_shape": np.array(self.X.shape, np.int64),
                          "track_ids": self.track_ids.astype(str), "window": self.window, "segment": self.segment,
                          "row_genres": self.row_genres.astype(str), "meta": np.array(json.dumps(meta))},
            )
        except OSError as exc:
            raise FeatureError(write_error(path, exc)) from exc

    def save_table(self, path: str | Path) -> Path:
        """Write :meth:`table` as CSV, atomically (a hidden ``.<name>.part`` file beside it, then a rename).

        Raises
        ------
        FeatureError
            When the file cannot be written (see :meth:`save`); the ``.part`` file is removed.
        """
        path = Path(path)
        df = self.table()
        tmp = path.with_name(f".{path.name}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(tmp, index=False)
            tmp.replace(path)
        except OSError as exc:
            raise FeatureError(write_error(path, exc, example="features.csv")) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureSet:
        """Read a file written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                planes = np.concatenate([z["X_mantissa"], z["X_exponent"][None, :]])
                X = np.ascontiguousarray(planes.T).view("<f4").reshape(tuple(z["X_shape"]))
                return cls(X=X.astype(np.float32, copy=False), track_ids=z["track_ids"], window=z["window"],
                           segment=z["segment"], row_genres=z["row_genres"], genres=meta["genres"],
                           config=FeatureConfig.from_dict(meta["config"]),
                           skipped=[tuple(s) for s in meta["skipped"]])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise FeatureError(f"{path}: not a readable genrelib feature file ({exc}); delete it and extract again") \
                from exc

    def table(self) -> "pandas.DataFrame":  # noqa: F821
        """Per-window features as a table: ``filename``, ``window``, the named columns (the 57 of the GTZAN
        table for ``summary``; :func:`musicnn_columns` for ``musicnn``), ``label``."""
        import pandas as pd

        if not self.config.per_window:
            raise FeatureError(f"a table needs per-window features (summary or musicnn), this set is "
                               f"{self.config.kind!r}")
        columns = SUMMARY_COLUMNS if self.config.kind == "summary" else musicnn_columns(self.config.embedding_model)
        df = pd.DataFrame(self.X.astype(np.float64), columns=columns)
        df.insert(0, "filename", [Path(t).name for t in self.track_ids])
        df.insert(1, "window", self.window)
        df["label"] = self.row_genres
        return df


def describe(fs: FeatureSet):
    """A one-column table describing a feature set: kind, shape, tracks, genres, skipped, config hash."""
    import pandas as pd

    facts = {"kind": fs.config.kind, "X shape": str(fs.X.shape), "dtype": str(fs.X.dtype), "rows": len(fs),
             "tracks": len(fs.tracks), "genres": ", ".join(fs.genres), "skipped files": len(fs.skipped),
             "config hash": fs.config.hash(), "size (MB)": round(fs.X.nbytes / 1e6, 1)}
    return pd.DataFrame({"value": facts})


def rows_per_genre(fs: FeatureSet):
    """Rows and tracks per genre."""
    import pandas as pd

    df = pd.DataFrame({"genre": fs.row_genres, "track": fs.track_ids})
    out = df.groupby("genre").agg(rows=("track", "size"), tracks=("track", "nunique"))
    return out.reindex(fs.genres, fill_value=0)


def _atomic_save_npz(path: Path, *, stored: dict[str, np.ndarray], deflated: dict[str, np.ndarray]) -> Path:
    """Write arrays as an ``.npz`` through a temporary file and a rename, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as zf:
            for arrays, method in ((stored, zipfile.ZIP_STORED), (deflated, zipfile.ZIP_DEFLATED)):
                for name, arr in arrays.items():
                    buf = io.BytesIO()
                    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
                    zf.writestr(name + ".npy", buf.getbuffer(), compress_type=method, compresslevel=1)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; the result should be an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_error(path: str | Path, exc: OSError, *, example: str = "features.npz") -> str:
    """One line saying why ``path`` could not be written and what to do about it (``example``: a file name to
    suggest when ``path`` is a folder)."""
    import errno

    path = Path(path)
    if path.is_dir():  # os.replace onto a folder fails with EISDIR, ENOTEMPTY or EEXIST depending on the folder
        return f"cannot write {path}: it is a folder; give a file name (e.g. {path / example})"
    fixes = {
        errno.ENOSPC: "the disk is full; free space there or write to a folder on another disk",
        errno.EDQUOT: "the disk quota is used up; free space there or write to a folder on another disk",
        errno.EROFS: "the file system is read-only; write to a writable folder",
        errno.EACCES: "permission denied; make the folder writable (chmod u+w) or write to another folder",
        errno.EPERM: "permission denied; make the folder writable (chmod u+w) or write to another folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder; give another path",
        errno.EFBIG: "the file is larger than this process may write (ulimit -f); raise the limit or write elsewhere",
    }
    why = fixes.get(exc.errno, f"{exc.strerror or exc}; check the path and the disk")
    return f"cannot write {path}: {why}"


def default_cache_dir() -> Path:
    """``$GENRELIB_CACHE`` or ``~/.cache/genrelib``."""
    return Path(os.environ.get("GENRELIB_CACHE", Path.home() / ".cache" / "genrelib"))


def cache_path(dataset: Dataset, config: FeatureConfig, cache_dir: str | Path | None = None) -> Path:
    """Where the features of ``dataset`` by ``config`` are cached: keyed by the config and the data manifest."""
    key = hashlib.sha256(f"{config.hash()}-{dataset.manifest_hash()}".encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / "features" / f"{config.kind}-{key}.npz"


def _work(track: Track, config: FeatureConfig) -> tuple[Track, FileFeatures | None, str | None]:
    try:
        ff = file_features(track.path, config)
    except AudioError as exc:
        return track, None, str(exc)
    if not np.isfinite(ff.X).all():  # never stored, whatever the cause
        return track, None, f"{track.path}: its {config.kind} features are not finite (NaN or inf); check the audio"
    return track, ff, None


def extract(
    dataset: Dataset,
    config: FeatureConfig | None = None,
    *,
    n_jobs: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    scheduler: str | None = None,
) -> FeatureSet:
    """Compute (or read from the cache) the features of every track of ``dataset``.

    Runs over processes with a progress bar; a file that cannot be decoded is logged, listed in
    ``skipped`` and left out. The cache file is written atomically (temporary file, then rename); when it cannot
    be written (a full disk, a read-only folder) the features are returned all the same, with the reason in
    :attr:`FeatureSet.cache_error`.

    Parameters
    ----------
    dataset : Dataset
        From :func:`genrelib.dataset.scan`.
    config : FeatureConfig, optional
        Default ``FeatureConfig()`` (the original notebook's MFCC segments).
    n_jobs : int, optional
        Worker processes; default the number of CPUs. 1 runs in this process (always for ``musicnn``).
    cache_dir : path, optional
        Default :func:`default_cache_dir`.
    use_cache : bool
        Read and write the cache.
    progress : bool
        Show a tqdm progress bar; when False, log a line on the ``genrelib.progress`` logger every tenth of the
        tracks or every 10 s instead (:class:`genrelib.progress.Progress`; the CLI shows them when stderr is not
        a terminal).
    scheduler : str, optional
        A Dask scheduler address (or ``local:N``): on a cache miss the features are computed on that cluster,
        through a sharded store under the cache folder (:func:`genrelib.store.extract_to_store`), then read back
        and cached as usual. The result equals the local one; None (the default): local processes.

    Returns
    -------
    FeatureSet
        Rows in the order of ``dataset.tracks``.

    Raises
    ------
    FeatureError
        When no track could be read at all.
    """
    from .progress import Progress
    from .progress import logger as progress_log

    config = config or FeatureConfig()
    path = cache_path(dataset, config, cache_dir)
    if use_cache and path.exists():
        logger.info("reading cached features %s", path)
        fs = FeatureSet.load(path)
        # The cache is keyed by the readable tracks, so files that scan skips now (added, or broken, since) may
        # differ from those of the extraction that wrote it: they come from this scan; the tracks that failed to
        # decode then are tracks of this data too, and still fail.
        ids = {t.track_id for t in dataset.tracks}
        fs.skipped = list(dataset.skipped) + [tuple(s) for s in fs.skipped if s[0] in ids]
        progress_log.info("%s features: %d tracks read from the cache %s", config.kind, len(fs.tracks), path)
        return fs
    if scheduler:
        from .store import extract_to_store

        fs = extract_to_store(dataset, config, Path(cache_dir or default_cache_dir()) / "store", scheduler=scheduler,
                              progress=progress).load()
        return _cache(fs, path) if use_cache else fs
    n_jobs = n_jobs or os.cpu_count() or 1
    if config.kind == "musicnn":
        # One network in this process runs on every core; each worker process would load TensorFlow and the
        # network again (seconds and hundreds of MB each).
        n_jobs = 1
    n_jobs = max(1, min(n_jobs, len(dataset.tracks)))
    results: dict[str, FileFeatures] = {}
    skipped = list(dataset.skipped)
    if not progress:
        progress_log.info("%s features: %d files, %d process%s", config.kind, len(dataset.tracks), n_jobs,
                          "es" if n_jobs > 1 else "")
    bar = Progress(len(dataset.tracks), f"{config.kind} features", bar=progress)
    if n_jobs == 1:
        outcomes = (_work(t, config) for t in dataset.tracks)
        for track, ff, err in outcomes:
            _collect(track, ff, err, results, skipped)
            bar.update(skipped=len(skipped) - len(dataset.skipped))
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("forkserver"),
                                 initializer=_init_worker) as pool:
            # A few tracks per task: fewer round trips, still a smooth progress bar.
            size = max(1, min(8, len(dataset.tracks) // (4 * n_jobs)))
            batches = [dataset.tracks[i : i + size] for i in range(0, len(dataset.tracks), size)]
            futures = [pool.submit(_work_many, b, config) for b in batches]
            try:
                for fut in as_completed(futures):
                    outcomes = fut.result()
                    for outcome in outcomes:
                        _collect(*outcome, results, skipped)
                    bar.update(len(outcomes), skipped=len(skipped) - len(dataset.skipped))
            except BaseException:
                # Ctrl-C, SIGTERM or an error: the tracks not started are dropped, rather than all extracted
                # before the pool's exit lets the exception through.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    bar.close()
    order = [t for t in dataset.tracks if t.track_id in results]
    if not order:
        raise FeatureError(f"no track under {dataset.root} could be read; skipped: {skipped[:3]} ...")
    fs = FeatureSet(
        X=np.concatenate([results[t.track_id].X for t in order]),
        track_ids=np.concatenate([[t.track_id] * len(results[t.track_id].X) for t in order]).astype(str),
        window=np.concatenate([results[t.track_id].window for t in order]),
        segment=np.concatenate([results[t.track_id].segment for t in order]),
        row_genres=np.concatenate([[t.genre or ""] * len(results[t.track_id].X) for t in order]).astype(str),
        genres=list(dataset.genres),
        config=config,
        skipped=skipped,
    )
    return _cache(fs, path) if use_cache else fs


def _cache(fs: FeatureSet, path: Path) -> FeatureSet:
    try:
        fs.save(path)
        logger.info("cached features in %s", path)
    except FeatureError as exc:
        # The features are computed and returned all the same; only the next run pays for them again.
        fs.cache_error = (f"the feature cache was not written ({exc}); the next run extracts these features "
                          "again. Give another cache folder (--cache-dir or $GENRELIB_CACHE), or --no-cache")
        logger.warning("%s", fs.cache_error)
    return fs


def _work_many(tracks: list[Track], config: FeatureConfig) -> list:
    return [_work(t, config) for t in tracks]


def _init_worker() -> None:
    # One BLAS thread per worker: n_jobs processes already use the cores; more threads only contend.
    # (No warm-up call here: computing features inside the initializer made every later call about 40%
    # slower in measurements, for reasons not found; the first task pays the imports instead.)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    die_with_parent()


def die_with_parent() -> None:
    """Make this worker process end as soon as the process that started the pool ends, however it ends.

    A pool's workers otherwise outlive a parent killed with SIGKILL: with the ``forkserver`` start method each
    worker holds the write end of the fork server's "parent alive" pipe and of its own task queue, so the
    workers wait for tasks forever, the fork server waits for them, and the resource tracker for both (measured:
    two idle workers of ~270 MB each, still there minutes later). Here a daemon thread waits on a pidfd of the
    pool's parent (:func:`multiprocessing.parent_process`; with ``forkserver`` the worker's OS parent is the fork
    server, not that process) and kills this process when it exits; PR_SET_PDEATHSIG covers the OS parent. Once
    the workers are gone the fork server and the resource tracker see their pipes close and exit by themselves.
    Linux only (Python >= 3.9, kernel >= 5.3); elsewhere nothing is done.
    """
    import multiprocessing
    import signal
    import threading

    parent = multiprocessing.parent_process()
    if parent is None or not hasattr(os, "pidfd_open"):
        return
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        fd = os.pidfd_open(parent.pid)
    except ProcessLookupError:  # the parent is already gone
        os.kill(os.getpid(), signal.SIGKILL)
    except OSError:  # no pidfd support in this kernel
        return

    def watch() -> None:
        import select

        select.select([fd], [], [])  # readable once the parent has exited
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="genrelib-parent-watch", daemon=True).start()


def _collect(track, ff, err, results, skipped) -> None:
    if err is not None:
        logger.warning("skipping %s", err)
        skipped.append((track.track_id, err))
    else:
        results[track.track_id] = ff
