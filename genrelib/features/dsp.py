"""Signal primitives on numpy arrays: mel filterbank and power spectrogram, MFCC, log-mel, HPSS and the GTZAN summary
statistics.
"""

from __future__ import annotations

import functools

import numpy as np

from genrelib.config import HOP_LENGTH, N_FFT, N_MELS, N_MFCC, SR
from genrelib.errors import FeatureError


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


def mel_power(
    y: np.ndarray,
    sr: int = SR,
    *,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
    fmax: float | None = None,
) -> np.ndarray:
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


def mfcc(
    y: np.ndarray,
    sr: int = SR,
    *,
    n_mfcc: int = N_MFCC,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
    fmax: float | None = None,
    top_db: float | None = 80.0,
) -> np.ndarray:
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


def log_mel(
    y: np.ndarray,
    sr: int = SR,
    *,
    n_mels: int = N_MELS,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    fmax: float | None = None,
    top_db: float | None = 80.0,
) -> np.ndarray:
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


def summary(
    y: np.ndarray, sr: int = SR, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, hpss_kernel: int = 31
) -> np.ndarray:
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
