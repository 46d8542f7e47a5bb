"""Pretrained musicnn (Pons & Serra 2019) as a feature extractor: ``(y, sr) -> (embeddings, tags)`` per 3 s patch.

A re-implementation, in TensorFlow 2 ops, of musicnn 0.1.0 (https://github.com/jordipons/musicnn, ISC license),
with the weights of its TensorFlow-1 checkpoints converted to ``genrelib/data/musicnn/<model>.npz`` by
``scripts/convert_musicnn.py`` (provenance and license beside them). Its outputs equal the original code's
(TF 1 graph, numpy 1.26, librosa 0.10) to within 1e-4 on generated and real music (``tests/features/test_musicnn.py``).

Pipeline, as in the original
----------------------------
1. :func:`melspec`: the signal at 16 kHz (soxr_hq resampling, as ``librosa.load``), mel power spectrogram
   (n_fft 512, hop 256, centred frames zero-padded at both ends, 96 Slaney mel bands up to 8 kHz), rounded to
   float16, then ``log10(10000 x + 1)`` in float32.
2. :func:`patches`: 187-frame (3 s) patches, one every 187 frames (no overlap) by default; a trailing part
   shorter than a patch is dropped. A signal shorter than 3 s is padded with silence to 3 s: one patch (the
   original fails on such clips).
3. The network (:func:`load`): batch-normalized input; timbral (7x38, 7x67) and temporal (128, 64, 32 frames)
   convolutions max-pooled over frequency (561 channels); three 7-frame convolutions with residual
   connections (64 channels each); max and mean over time (1506); dense 200 with batch norm (the
   *penultimate* embedding returned by :func:`embed`); dense to the tags, sigmoid.

The network runs on onnxruntime by default (:mod:`genrelib.features.musicnn_onnx`, from an ONNX file built from
the same weights; no TensorFlow import); ``engine="tensorflow"`` (or ``$GENRELIB_MUSICNN_ENGINE=tensorflow``, which
sets the default of every call, the CLI's included) runs the TensorFlow 2 port it is checked against, which imports
TensorFlow in :func:`load` (seconds) and traces on the first call. Speed: README, "The default model".
"""

from __future__ import annotations

import functools
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from genrelib.errors import AudioError, FeatureError, ModelError
from genrelib.features.musicnn_net import N_FRAMES, N_MELS, TAGS, Musicnn, variable_shapes

logger = logging.getLogger(__name__)


#: Models that genrelib knows. MSD_musicnn's weights ship with genrelib; MTT_musicnn's must first be converted
#: (``scripts/convert_musicnn.py --model MTT_musicnn``).
MODELS: tuple[str, ...] = ("MSD_musicnn", "MTT_musicnn")
#: Engines that run the network (:func:`load`).
ENGINES: tuple[str, ...] = ("onnx", "tensorflow")
#: Environment variable that sets the default engine (unset: ``onnx``).
ENGINE_ENV = "GENRELIB_MUSICNN_ENGINE"


def default_engine() -> str:
    """The engine :func:`load` and :func:`embed` use when none is given: ``$GENRELIB_MUSICNN_ENGINE``, else onnx.

    Raises
    ------
    ModelError
        The variable names no engine (the message says which values it takes).
    """
    engine = os.environ.get(ENGINE_ENV, "").strip() or "onnx"
    if engine not in ENGINES:
        raise ModelError(
            f"{ENGINE_ENV}={engine!r} is not a musicnn engine; set it to one of {', '.join(ENGINES)}, "
            "or unset it (default onnx)"
        )
    return engine


_SHIPPED = ("MSD_musicnn",)


#: Folder of the converted weights (``<model>.npz``), their LICENSE and README (provenance).
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "data" / "musicnn"


SR = 16000


N_FFT = 512


HOP_LENGTH = 256


PATCH_SECONDS = 3.0


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ModelError(f"unknown musicnn model {model!r}; choose one of {', '.join(MODELS)}")


def weights_path(model: str = "MSD_musicnn") -> Path:
    """The converted weights file of ``model``: ``WEIGHTS_DIR / f"{model}.npz"``."""
    _check_model(model)
    return WEIGHTS_DIR / f"{model}.npz"


def onnx_path(model: str = "MSD_musicnn") -> Path:
    """The ONNX file of ``model`` (built from its weights by ``scripts/build_musicnn_onnx.py``)."""
    _check_model(model)
    return WEIGHTS_DIR / f"{model}.onnx"


def load_weights(model: str = "MSD_musicnn", *, path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Read and check a converted weights file (every variable present, with its shape, finite, float32).

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    path : str or Path, optional
        The ``.npz`` file; default :func:`weights_path` of ``model``.

    Returns
    -------
    weights : dict[str, np.ndarray]
        The 64 float32 arrays under their checkpoint names (see :func:`variable_shapes`).

    Raises
    ------
    ModelError
        Unknown model, missing file, or a file that is corrupt, truncated or of another network.
    """
    _check_model(model)
    path = Path(path) if path is not None else weights_path(model)
    fix = (
        f"regenerate it with `python scripts/convert_musicnn.py --model {model}` from a genrelib source "
        f"checkout (it downloads the musicnn 0.1.0 wheel with pip)"
        + (", or reinstall genrelib, which ships it" if model in _SHIPPED else "")
    )
    if not path.is_file():
        raise ModelError(f"musicnn weights for {model} not found at {path}; {fix}")
    expected = variable_shapes(len(TAGS[model]))
    try:
        with np.load(path, allow_pickle=False) as npz:
            weights = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: corrupt musicnn weights file ({type(exc).__name__}: {exc}); {fix}") from exc
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    bad = [
        f"{name} {weights[name].shape} {weights[name].dtype}"
        for name in expected
        if name in weights
        and (
            weights[name].shape != expected[name]
            or weights[name].dtype != np.float32
            or not np.isfinite(weights[name]).all()
        )
    ]
    if missing or extra or bad:
        raise ModelError(
            f"{path}: not the {model} weights (missing {missing[:3]}, unexpected {extra[:3]}, "
            f"wrong shape, dtype or non-finite values: {bad[:3]}); {fix}"
        )
    return weights


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS (OpenBLAS, under numpy's and scipy's matrix products) uses one thread.

    The front end's one BLAS product (the mel filter bank) is small; with a pool of BLAS threads, the idle ones
    busy-wait for a while after it and take cores from onnxruntime's threads running the network next: the
    ``musicnn`` feature kind took 190-200 ms a 30 s clip on 2 cores instead of 126-130 ms with one BLAS thread.
    """
    return _blas_controller().limit(limits=1, user_api="blas")


def melspec(y16k: np.ndarray) -> np.ndarray:
    """The original's network input: log-compressed mel spectrogram of a 16 kHz signal.

    As musicnn 0.1.0 computes it (librosa 0.10 and numpy 1.26): mel power spectrogram (n_fft 512, hop 256,
    Hann window, centred frames with zero padding, 96 Slaney-normalized bands from 0 to 8 kHz), rounded to
    float16 (so values above 65504 become inf, as in the original), then ``log10(10000 x + 1)`` computed in
    float32. The product is float32 under numpy 1.26 value-based casting; numpy 2 would keep float16 and
    overflow to inf on every bin above 6.55, hence the explicit casts here.

    Parameters
    ----------
    y16k : np.ndarray [shape=(n,)]
        Mono signal at 16 kHz (converted to float32, as ``librosa.load`` returns it).

    Returns
    -------
    S : np.ndarray [shape=(1 + n // 256, 96), dtype=float32]
        Frames by mel bands.
    """
    import librosa

    y = np.asarray(y16k, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise AudioError(f"melspec needs a non-empty mono signal, shape (n,); got shape {y.shape}")
    with one_blas_thread():  # see one_blas_thread
        S = librosa.feature.melspectrogram(
            y=y,
            sr=SR,
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            window="hann",
            center=True,
            pad_mode="constant",
            power=2.0,
            n_mels=N_MELS,
            fmin=0.0,
            fmax=SR / 2,
            htk=False,
            norm="slaney",
        ).T
    S = S.astype(np.float16).astype(np.float32)
    with np.errstate(over="ignore"):  # float16 rounding of values above 65504 is inf in the original too
        return np.log10(np.float32(10000) * S + np.float32(1))


def _hop_frames(hop_seconds: float | None) -> int:
    if hop_seconds is None:
        return N_FRAMES
    import librosa

    # The original's rule for input_overlap (which is this step, not an overlap): frames before the time
    # hop_seconds, counted as librosa.time_to_frames does with n_fft; 1.0 s -> 61 frames (0.976 s).
    ok = np.isfinite(hop_seconds) and hop_seconds > 0
    step = int(librosa.time_to_frames(hop_seconds, sr=SR, n_fft=N_FFT, hop_length=HOP_LENGTH)) if ok else 0
    if step < 1:
        raise FeatureError(
            f"hop_seconds={hop_seconds} gives a step of {step} frames between patches; use hop_seconds >= "
            f"{2 * HOP_LENGTH / SR} (a step of one {HOP_LENGTH / SR * 1000:.0f} ms frame), or None for no overlap"
        )
    return step


def patches(y: np.ndarray, sr: float, *, hop_seconds: float | None = None) -> np.ndarray:
    """The network's input patches of a signal: 3 s of log-mel spectrogram each.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal, any sample rate; resampled to 16 kHz with soxr_hq (as ``librosa.load`` in the original).
    sr : number > 0
        Sample rate of ``y``.
    hop_seconds : float, optional
        Step between patch starts, the original's ``input_overlap``: converted to frames as it does
        (``floor((hop_seconds * 16000 - 256) / 256)``, so 1.0 s is 61 frames). Default: 187 frames, no overlap.

    Returns
    -------
    X : np.ndarray [shape=(n_patches, 187, 96), dtype=float32]
        Patch ``i`` is frames ``i * step`` to ``i * step + 187`` of :func:`melspec`. A trailing part shorter
        than a patch is dropped. A signal shorter than 3 s is padded with zeros (after resampling) to 3 s and
        gives one patch; the original cannot take such a signal.
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise AudioError(
            f"musicnn needs a mono signal, shape (n,); got shape {y.shape}: mix it down first, "
            f"e.g. y.mean(axis=0) for (channels, n)"
        )
    if y.size == 0:
        raise AudioError("musicnn got an empty signal (0 samples); check the file or the slice you passed")
    if not sr > 0:
        raise AudioError(f"sample rate must be positive; got sr={sr}")
    step = _hop_frames(hop_seconds)
    if sr != SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=SR, res_type="soxr_hq")
    min_len = int(PATCH_SECONDS * SR)
    if y.size < min_len:
        y = np.pad(y, (0, min_len - y.size))
    S = melspec(y)
    starts = np.arange(0, S.shape[0] - N_FRAMES + 1, step)
    return np.ascontiguousarray(
        np.lib.stride_tricks.sliding_window_view(S, N_FRAMES, axis=0)[starts].transpose(0, 2, 1)
    )


def load(model: str = "MSD_musicnn", engine: str | None = None):
    """The pretrained network ``model``, built once per process and engine (later calls return the same object).

    Parameters
    ----------
    model : str
        One of :data:`MODELS` (``MSD_musicnn``: 50 Last.fm tags of the Million Song Dataset).
    engine : {"onnx", "tensorflow"}, optional
        ``onnx`` (:class:`genrelib.features.musicnn_onnx.OnnxMusicnn` on onnxruntime: no TensorFlow import,
        faster on CPU) or ``tensorflow`` (:class:`genrelib.features.musicnn_net.Musicnn`, the TensorFlow 2 port
        it is checked against). Both come from the same weights file and agree within 1e-4. Default
        :func:`default_engine` (onnx unless ``$GENRELIB_MUSICNN_ENGINE`` says otherwise).

    Returns
    -------
    net : OnnxMusicnn or Musicnn
        ``net(X, batch_size=4) -> (penultimate, tags)``.

    Raises
    ------
    ModelError
        Unknown model, or its weights file missing or corrupt (the message says how to regenerate it).
    """
    engine = engine or default_engine()
    if engine not in ENGINES:
        raise ModelError(f"unknown musicnn engine {engine!r}; use one of {', '.join(ENGINES)}")
    return _load(model, engine)


@functools.cache
def _load(model: str, engine: str):
    weights = load_weights(model)  # checked: present, complete, finite, of this network
    if engine == "onnx":
        from genrelib.features.musicnn_onnx import OnnxMusicnn

        net = OnnxMusicnn(model, onnx_path(model), weights_path(model))
        net.weights, net.n_params = weights, int(sum(w.size for w in weights.values()))
    else:
        net = Musicnn(model, weights)
    logger.info("loaded musicnn %s, %s engine (%d parameters)", model, engine, net.n_params)
    return net


def embed(
    y: np.ndarray,
    sr: float,
    *,
    model: str = "MSD_musicnn",
    hop_seconds: float | None = None,
    batch_size: int = 4,
    engine: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-patch penultimate embeddings and tag probabilities of a signal.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal.
    sr : number > 0
        Its sample rate (any; resampled to 16 kHz).
    model : str
        One of :data:`MODELS`.
    hop_seconds : float, optional
        Step between 3 s patches (see :func:`patches`); default no overlap.
    batch_size : int
        Patches per forward pass.
    engine : {"onnx", "tensorflow"}, optional
        See :func:`load`.

    Returns
    -------
    penultimate : np.ndarray [shape=(n_patches, 200), dtype=float32]
        The original's ``penultimate`` features (dense layer after batch norm), one row per patch.
    tags : np.ndarray [shape=(n_patches, 50), dtype=float32]
        Tag probabilities (the original's taggram); names in ``TAGS[model]``.
    """
    _check_model(model)
    X = patches(y, sr, hop_seconds=hop_seconds)
    return load(model, engine)(X, batch_size=batch_size)
