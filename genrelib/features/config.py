"""The feature configuration: one frozen :class:`FeatureConfig` per extraction (kind, window, segment and spectral
settings), hashed to key caches and stores.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from genrelib.config import HOP_LENGTH, MIN_FRACTION, N_FFT, N_MELS, N_MFCC, SEGMENT_SECONDS, SR, WINDOW_SECONDS
from genrelib.errors import FeatureError

KINDS = ("mfcc", "mel", "summary", "musicnn")
#: How the ``musicnn`` kind pools the 3 s patches of a window.
POOLINGS = ("mean", "mean_std")


_BASE_STATS = [
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    "harmony",
    "perceptr",
]


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
        The pretrained network of the ``musicnn`` kind (:data:`genrelib.features.musicnn.MODELS`); None for other kinds.
    patch_hop : float or None
        Step in seconds between the 3 s patches of the ``musicnn`` kind; None: no overlap.
    pooling : {"mean", "mean_std"} or None
        How the ``musicnn`` kind pools a window's patches: their mean (250 values: 200 embedding, 50 tags), or
        the mean and then the standard deviation (500 values; what the shipped default model takes). None for
        other kinds. Left out of :meth:`to_dict` at ``"mean"``, so configurations and caches written before it
        existed keep their hash.

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
    pooling: str | None = "mean"

    def __post_init__(self) -> None:
        # Fields a kind does not use are stored as None, so equal features have equal configurations.
        if self.kind in ("summary", "musicnn"):  # the table's definition; musicnn has its own fixed front end
            object.__setattr__(self, "fmax", None)
            object.__setattr__(self, "top_db", None)
        if self.kind != "musicnn":
            object.__setattr__(self, "embedding_model", None)
            object.__setattr__(self, "patch_hop", None)
            object.__setattr__(self, "pooling", None)
        else:
            if self.pooling not in POOLINGS:
                raise FeatureError(
                    f"unknown pooling {self.pooling!r} of the musicnn kind; use one of {', '.join(POOLINGS)}"
                )
            from genrelib.features.musicnn import MODELS

            if self.embedding_model not in MODELS:
                raise FeatureError(f"unknown embedding model {self.embedding_model!r}; use one of {', '.join(MODELS)}")
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
        """Plain dict of the fields (``pooling`` left out at its original meaning, see the class docstring)."""
        d = asdict(self)
        if d["pooling"] in (None, "mean"):
            del d["pooling"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        """Inverse of :meth:`to_dict`; ignores unknown keys; fills fields newer than ``d`` with their old meaning."""
        names = {f.name for f in fields(cls)}
        legacy = {"fmax": None, "top_db": 80.0 if d.get("kind", "mfcc") == "mfcc" else None, "pooling": "mean"}
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
        (200 embedding values and 50 tags) for musicnn, ``(500,)`` with ``pooling="mean_std"``."""
        if self.kind == "mfcc":
            return (self.segment_frames, self.n_mfcc)
        if self.kind == "mel":
            return (self.segment_frames, self.n_mels)
        if self.kind == "musicnn":
            return (len(musicnn_columns(self.embedding_model, self.pooling)),)
        return (len(SUMMARY_COLUMNS),)


def musicnn_columns(model: str = "MSD_musicnn", pooling: str = "mean") -> list[str]:
    """Names of a ``musicnn`` row's values: ``emb000`` ... ``emb199``, then ``tag:<name>`` for each tag (the means
    over the window's patches); with ``pooling="mean_std"`` the same names prefixed ``std:`` follow."""
    from genrelib.features.musicnn_net import N_EMBED, TAGS

    means = [f"emb{i:03d}" for i in range(N_EMBED)] + [f"tag:{t}" for t in TAGS[model]]
    return means + [f"std:{c}" for c in means] if pooling == "mean_std" else means
