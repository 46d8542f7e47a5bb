"""Reading audio files and cutting signals into windows.

Every file is decoded by libsndfile (through :mod:`soundfile`): wav, flac, ogg/vorbis, opus, mp3, au and
aiff, at any sample rate and channel count. Signals come out mono, float32, at ``sr`` (22050 Hz by default),
resampled with soxr's high-quality filter (librosa's default).

The window rule, used for 3 s segments and for 30 s song windows alike
-----------------------------------------------------------------------
Windows of ``seconds`` start at 0 and every ``hop_seconds`` (default: ``seconds``, no overlap).
After the last full window, a remaining tail of at least ``min_fraction`` of a window (default 0.5)
gets one more window, *aligned to the end of the signal* (so it overlaps its neighbour instead of being
padded with silence); a shorter tail is dropped. A signal shorter than one window is a single window,
zero-padded at the end when ``pad=True`` (fixed-shape model input) and left as it is when ``pad=False``.
A GTZAN track of 29.98 s thus gives ten 3 s segments, the last one ending at the end of the track.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from genrelib import mp3
from genrelib.config import MIN_FRACTION, SR, UNSUPPORTED_EXTENSIONS
from genrelib.errors import AudioError

logger = logging.getLogger(__name__)

#: Native-rate seconds decoded per block when streaming a file.
BLOCK_SECONDS = 30.0
#: Shortest file genrelib classifies (a sixth of a 3 s segment; shorter is an error, not a guess).
MIN_SECONDS = 0.5
#: Largest sample magnitude accepted. Decoded audio lies in [-1, 1]; float files may go a little over after
#: mixing, but values of hundreds or more are integer-scaled samples stored as float, or garbage, and gave
#: infinite features.
MAX_PEAK = 16.0
#: Loudest sample (after the DC offset is removed) below which a whole file counts as silent: -80 dBFS, below
#: the dither and noise floor of any recording (16-bit audio's floor is -96 dBFS). Music scaled far below it,
#: or a constant signal, would otherwise get a confident genre from features of numerical noise.
SILENCE_PEAK = 1e-4


@contextlib.contextmanager
def _quiet_c_stderr(enabled: bool = True):
    """Send what C libraries write to file descriptor 2 to /dev/null while the block runs.

    libmpg123 prints "Note: Illegal Audio-MPEG-Header ..." lines straight to the process's stderr while it
    tries a junk .mp3; genrelib reports the file itself, in one line. Python's own ``sys.stderr`` writes in the
    block are flushed first and go nowhere, so the block holds only the library call.
    """
    if not enabled:
        yield
        return
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _check_extension(path: Path) -> None:
    ext = path.suffix.lower()
    if ext in UNSUPPORTED_EXTENSIONS:
        raise AudioError(
            f"{path}: {ext} files are not supported (no decoder for them here); "
            f"convert it first, e.g. `ffmpeg -i '{path.name}' '{path.stem}.flac'`"
        )


def _declared_data_bytes(path: Path) -> int | None:
    """Size of the audio data a WAV or AU header promises, or None when unknown."""
    ext = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(12)
        if ext == ".wav" and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"data":
                    return None if size in (0, 0xFFFFFFFF) else size
                f.seek(size + (size & 1), 1)
        if ext in (".au", ".snd") and head[:4] == b".snd":
            size = struct.unpack(">I", head[8:12])[0]
            return None if size == 0xFFFFFFFF else size
    return None


def _open(path: Path) -> sf.SoundFile:
    if not path.exists():
        raise AudioError(f"{path}: no such file (deleted or moved?); check the path")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    _check_extension(path)
    try:
        if path.stat().st_size == 0:
            raise AudioError(f"{path}: the file is empty (0 bytes); re-copy or re-download it")
        with open(path, "rb"):
            pass
    except PermissionError as exc:
        raise AudioError(f"{path}: permission denied; make it readable (chmod a+r) or run as its owner") from exc
    except FileNotFoundError as exc:  # gone between the checks above and here
        raise AudioError(f"{path}: no such file (deleted or moved while genrelib read it); check the path") from exc
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror or exc}); check the file and its disk") from exc
    source, walked = path, None
    if path.suffix.lower() == ".mp3":
        walked = mp3.walk(path)  # the true length, from the frames (None: not followable; libsndfile decides)
        if walked is not None and (walked.cut or (walked.xing_frames or 0) > walked.frames):
            why = (
                "its last MPEG frame is cut short"
                if walked.cut
                else f"its Xing header counts {walked.xing_frames} frames, the file holds {walked.frames}"
            )
            raise AudioError(
                f"{path}: truncated: {why} (after {walked.seconds:.1f} s of audio); re-copy or re-download the file"
            )
        if walked is not None and mp3.needs_true_header(walked):
            source = mp3.with_true_header(path, walked)  # else libsndfile stops at (or waits for) a wrong estimate
    try:
        with _quiet_c_stderr(path.suffix.lower() == ".mp3"):
            f = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        why = str(exc)
        if "does not exist" in why:  # libsndfile's words for a file it opened but found no stream in
            why = "libsndfile found no audio stream in it"
        raise AudioError(
            f"{path}: cannot be decoded as audio ({why}); the file is corrupt or not audio - "
            "re-copy it or remove it from the folder"
        ) from exc
    if f.frames == 0 or f.samplerate <= 0:
        f.close()
        raise AudioError(f"{path}: contains no audio samples; re-copy or re-encode it")
    if f.frames < MIN_SECONDS * f.samplerate:
        f.close()
        raise AudioError(
            f"{path}: too short ({f.frames / f.samplerate:.3g} s); genrelib needs at least "
            f"{MIN_SECONDS:g} s of audio to classify"
        )
    if f.format == "OGG" and not _ogg_complete(path):
        f.close()
        raise AudioError(
            f"{path}: truncated: the Ogg stream has no end-of-stream page (the file was cut "
            "short); re-copy or re-download the file"
        )
    return f


def _ogg_complete(path: Path) -> bool:
    """Whether the last Ogg page of the file carries the end-of-stream flag (a cut file's last page does not)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    i = tail.rfind(b"OggS")
    # page header: "OggS", version 0, header-type flags (0x04: end of stream)
    return i >= 0 and len(tail) > i + 5 and tail[i + 4] == 0 and bool(tail[i + 5] & 0x04)


def _expected_frames(path: Path, f: sf.SoundFile) -> int | None:
    """Frames the header promises, where the format states it exactly."""
    fmt = f.format
    if fmt in ("WAV", "AU"):
        declared = _declared_data_bytes(path)
        if declared is None:
            return None
        width = {
            "PCM_16": 2,
            "PCM_24": 3,
            "PCM_32": 4,
            "FLOAT": 4,
            "DOUBLE": 8,
            "PCM_U8": 1,
            "PCM_S8": 1,
            "ULAW": 1,
            "ALAW": 1,
        }.get(f.subtype)
        return None if width is None else declared // (width * f.channels)
    return None  # (mp3: its frames were walked in _open, where a cut last frame is refused)


def stream(path: str | Path, *, sr: int = SR, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Decode a file block by block into mono float32 chunks at ``sr``.

    Memory stays bounded by one block, whatever the file's length.

    Parameters
    ----------
    path : str or Path
        An audio file of a kind genrelib reads.
    sr : int
        Target sample rate.
    block_seconds : float
        Seconds of audio (at the file's own rate) decoded per step.

    Yields
    ------
    y : np.ndarray [shape=(n,), dtype=float32]
        Consecutive pieces of the signal.

    Raises
    ------
    AudioError
        When the file is missing, empty, too short, corrupt, truncated, silent, of an unsupported kind, or
        holds samples far outside [-1, 1] (see :data:`MAX_PEAK`).

    Notes
    -----
    The DC offset is removed where audio enters genrelib: each decoded block (``block_seconds``, at the file's
    own rate) has its mean subtracted, so a constant added to the samples changes nothing downstream, for every
    feature kind and model. Leading silence (blocks whose loudest sample stays under :data:`SILENCE_PEAK` once
    the offset is gone) is held back (counted, not yielded, then passed on as zeros) until the first sound, so
    that a silent, constant or near-silent file fails after decoding alone, before any window of it has been
    featurised.
    """
    import soxr

    path = Path(path)
    f = _open(path)
    with f:
        native = f.samplerate
        expected = _expected_frames(path, f)
        fmt_mpeg = f.format == "MP3"
        resampler = None if native == sr else soxr.ResampleStream(native, sr, 1, dtype="float32", quality="HQ")
        blocksize = max(1, int(block_seconds * native))
        read = 0
        peak = 0.0  # of the samples as decoded
        level = 0.0  # loudest sample once the DC offset is removed
        silent_lead = 0  # samples of leading silence not yet passed on
        try:
            if fmt_mpeg:
                # Sequential reads only: in mp3, even soundfile's position query (a seek to the current
                # frame) makes libmpg123 resync and print errors, and a real seek corrupts samples.
                f._info.seekable = 0
            while len(block := _read(f, blocksize, quiet=fmt_mpeg)):
                read += len(block)
                y = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
                y = np.ascontiguousarray(y, dtype=np.float32)
                if not np.all(np.isfinite(y)):
                    raise AudioError(f"{path}: decodes to NaN or infinite samples; the file is corrupt")
                peak = max(peak, float(np.abs(y).max(initial=0.0)))
                if peak > MAX_PEAK:
                    raise AudioError(
                        f"{path}: samples reach {peak:.0e}, while audio lies in [-1, 1]; the file "
                        "holds integer-scaled or garbage values as float: rescale it to [-1, 1]"
                    )
                y = (y - y.mean(dtype=np.float64)).astype(np.float32)  # the block's DC offset
                level = max(level, float(np.abs(y).max(initial=0.0)))
                if level < SILENCE_PEAK:
                    silent_lead += len(y)
                    continue
                while silent_lead:  # the silence before the first sound, now that there is one
                    n = min(silent_lead, blocksize)
                    silent_lead -= n
                    yield from _emit(np.zeros(n, np.float32), resampler)
                yield from _emit(y, resampler)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{path}: decoding failed after {read} samples ({exc}); the file is corrupt") from exc
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                yield tail.astype(np.float32, copy=False)
    if read == 0:
        raise AudioError(f"{path}: contains no audio samples; re-copy or re-encode it")
    if expected is not None and read < 0.99 * expected:
        raise AudioError(
            f"{path}: truncated: the header promises {expected} samples but only {read} could be read; "
            "re-copy or re-download the file"
        )
    if peak == 0.0:
        raise AudioError(f"{path}: is silent (every sample is zero); nothing to classify")
    if level == 0.0:
        raise AudioError(
            f"{path}: is silent (a constant value, {peak:.3g}: a DC offset and no sound); nothing to classify"
        )
    if level < SILENCE_PEAK:
        raise AudioError(
            f"{path}: is silent or nearly so (its loudest sound reaches {20 * np.log10(level):.0f} dBFS, under "
            f"{20 * np.log10(SILENCE_PEAK):.0f} dBFS); nothing to classify"
        )


def _read(f: sf.SoundFile, n: int, *, quiet: bool) -> np.ndarray:
    with _quiet_c_stderr(quiet):
        return f.read(n, dtype="float32", always_2d=True)


def _emit(y: np.ndarray, resampler) -> Iterator[np.ndarray]:
    if resampler is not None:
        y = resampler.resample_chunk(y, last=False)
    if len(y):
        yield y


def load(path: str | Path, *, sr: int = SR) -> tuple[np.ndarray, int]:
    """Load a whole file as a mono float32 signal at ``sr``.

    Parameters
    ----------
    path : str or Path
        An audio file (wav, flac, ogg, opus, mp3, au, aiff).
    sr : int
        Target sample rate.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    sr : int

    Raises
    ------
    AudioError
        When the file cannot be used; the message names the file and the reason.
    """
    chunks = list(stream(path, sr=sr))
    return np.concatenate(chunks).astype(np.float32, copy=False), sr


def duration(path: str | Path) -> float:
    """Duration of a file in seconds, from its header (cheap); for mp3, from its walked frames, not the header's
    estimate (a VBR file without a Xing header states a wrong length)."""
    f = _open(Path(path))
    with f:
        return f.frames / f.samplerate


def _window_lengths(seconds: float, hop_seconds: float | None, sr: int) -> tuple[int, int]:
    if seconds <= 0:
        raise ValueError(f"window seconds must be > 0, got {seconds}")
    n = int(round(seconds * sr))
    hop = n if hop_seconds is None else int(round(hop_seconds * sr))
    if hop <= 0:
        raise ValueError(f"hop_seconds must be > 0, got {hop_seconds}")
    return n, hop


def iter_windows(
    chunks: Iterable[np.ndarray],
    sr: int,
    *,
    seconds: float,
    hop_seconds: float | None = None,
    min_fraction: float = MIN_FRACTION,
    pad: bool = True,
) -> Iterator[tuple[float, np.ndarray]]:
    """Cut a signal, given as consecutive chunks, into windows by the module's window rule.

    Only about one window plus one chunk is held in memory.

    Parameters
    ----------
    chunks : iterable of np.ndarray [shape=(k,)]
        Consecutive pieces of a mono signal.
    sr : int
        Sample rate of the signal.
    seconds : float
        Window length.
    hop_seconds : float or None
        Distance between window starts; ``None`` means ``seconds`` (no overlap).
    min_fraction : float
        A tail after the last full window gets its own (end-aligned) window when at least this long.
    pad : bool
        Zero-pad a signal shorter than one window to the full length.

    Yields
    ------
    start : float
        Start of the window in seconds.
    window : np.ndarray [shape=(n,), dtype=float32]
    """
    n, hop = _window_lengths(seconds, hop_seconds, sr)
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # absolute index of buf[0]
    next_start = 0
    emitted = 0
    total = 0
    for chunk in chunks:
        total += len(chunk)
        buf = np.concatenate([buf, np.asarray(chunk, dtype=np.float32)])
        while next_start + n <= total:
            i = next_start - buf_start
            yield next_start / sr, buf[i : i + n].copy()
            emitted += 1
            next_start += hop
        # Keep the last n samples (for an end-aligned final window) and everything from next_start on.
        keep_from = min(next_start, max(total - n, 0))
        if keep_from > buf_start:
            buf = buf[keep_from - buf_start :]
            buf_start = keep_from
    if total == 0:
        return
    if emitted == 0:  # shorter than one window
        y = buf[-total:]
        if pad:
            y = np.pad(y, (0, n - total))
        yield 0.0, y.astype(np.float32, copy=True)
    elif len(window_starts_samples(total, n, hop, min_fraction)) > emitted:  # the end-aligned extra window
        yield (total - n) / sr, buf[len(buf) - n :].copy()


def window_starts_samples(total: int, n: int, hop: int, min_fraction: float = MIN_FRACTION) -> list[int]:
    """Start samples of the windows of a signal of ``total`` samples: the window rule, in one place.

    Full windows at ``0, hop, 2 hop, ...``; then one window ending at ``total`` when the uncovered tail is at
    least ``min_fraction * n`` long; a single window at 0 when ``total <= n``.
    """
    if total <= n:
        return [0] if total > 0 else []
    starts = list(range(0, total - n + 1, hop))
    if total - (starts[-1] + n) >= min_fraction * n:
        starts.append(total - n)
    return starts


def windows(
    y: np.ndarray,
    sr: int,
    *,
    seconds: float,
    hop_seconds: float | None = None,
    min_fraction: float = MIN_FRACTION,
    pad: bool = True,
) -> np.ndarray:
    """Cut a signal into windows (see the module docstring for the rule).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal.
    sr : int
        Its sample rate.
    seconds, hop_seconds, min_fraction, pad
        As in :func:`iter_windows`. With ``pad=False`` a signal shorter than one window is returned
        as a single, shorter row.

    Returns
    -------
    W : np.ndarray [shape=(n_windows, window_samples), dtype=float32]
    """
    if y.ndim != 1:
        raise ValueError(f"expected a mono signal of shape (n,), got shape {y.shape}")
    if len(y) == 0:
        raise ValueError("cannot cut an empty signal into windows")
    n, hop = _window_lengths(seconds, hop_seconds, sr)
    y = np.asarray(y, dtype=np.float32)
    if len(y) <= n:
        return (np.pad(y, (0, n - len(y))) if pad else y)[None, :]
    return np.stack([y[s : s + n] for s in window_starts_samples(len(y), n, hop, min_fraction)])


def window_starts(
    y: np.ndarray, sr: int, *, seconds: float, hop_seconds: float | None = None, min_fraction: float = MIN_FRACTION
) -> np.ndarray:
    """Start times in seconds of the windows :func:`windows` returns for ``y``."""
    n, hop = _window_lengths(seconds, hop_seconds, sr)
    return np.array(window_starts_samples(len(y), n, hop, min_fraction)) / sr


def load_windows(
    path: str | Path,
    *,
    sr: int = SR,
    seconds: float,
    hop_seconds: float | None = None,
    min_fraction: float = MIN_FRACTION,
    pad: bool = True,
) -> Iterator[tuple[float, np.ndarray]]:
    """Stream a file's windows without loading it whole (for hour-long files).

    Yields ``(start_seconds, window)`` pairs as :func:`iter_windows` does; raises :class:`AudioError`
    as :func:`stream` does.
    """
    yield from iter_windows(
        stream(path, sr=sr), sr, seconds=seconds, hop_seconds=hop_seconds, min_fraction=min_fraction, pad=pad
    )
