"""The musicnn network on onnxruntime: what :func:`genrelib.features.musicnn.load` runs unless told otherwise.

The ONNX file (``genrelib/data/musicnn/<model>.onnx``) is built from the shipped ``.npz`` weights by
``scripts/build_musicnn_onnx.py`` and records the npz's sha256: a file that does not match its weights is refused
with the command that rebuilds it. Its outputs equal the TensorFlow port's (:class:`genrelib.features.musicnn_net.Musicnn`)
within 1e-4 (``tests/features/test_musicnn.py``), though its timbral convolutions use Winograd's F(4, 7) (see the
script); it imports in a few hundredths of a second instead of TensorFlow's seconds, and runs faster (README, "The
default model", gives the figures and the command that measures them).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from genrelib.errors import ModelError
from genrelib.features.musicnn_net import N_EMBED, N_FRAMES, N_MELS, TAGS


def _env_threads() -> int | None:
    """``$OMP_NUM_THREADS`` as a whole number >= 1, or None (unset or not a number): the usual per-process thread
    cap, which onnxruntime's own thread pool does not read by itself."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return n if n >= 1 else None


class OnnxMusicnn:
    """A loaded musicnn on onnxruntime: ``net(X, batch_size=4) -> (penultimate, tags)``, as
    :class:`genrelib.features.musicnn_net.Musicnn`.

    Parameters
    ----------
    model : str
        Its name (:data:`genrelib.features.musicnn.MODELS`).
    path : Path
        The ``.onnx`` file.
    weights_file : Path
        The ``.npz`` the file must have been built from (its sha256 is checked).
    threads : int, optional
        Intra-op threads; default ``$OMP_NUM_THREADS`` when it is set to a whole number, else the number of CPUs.
    """

    engine = "onnx"

    def __init__(self, model: str, path: Path, weights_file: Path, *, threads: int | None = None):
        import onnxruntime as ort

        rebuild = f"rebuild it with `python scripts/build_musicnn_onnx.py --model {model}` from a genrelib checkout"
        if not path.is_file():
            raise ModelError(f"{path} is missing; {rebuild}, or reinstall genrelib, which ships it")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or _env_threads() or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a corrupt or foreign file
            raise ModelError(f"{path} is not a readable ONNX model ({type(exc).__name__}); {rebuild}") from exc
        source = self.session.get_modelmeta().custom_metadata_map.get("source_sha256")
        if source != hashlib.sha256(weights_file.read_bytes()).hexdigest():
            raise ModelError(f"{path} was not built from {weights_file} (its recorded sha256 differs); {rebuild}")
        self.model = model
        self.tags = TAGS[model]
        self.path = path

    def __call__(self, X: np.ndarray, *, batch_size: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate embeddings and tag probabilities of patches.

        Parameters
        ----------
        X : np.ndarray [shape=(n, 187, 96)]
            Patches from :func:`genrelib.features.musicnn.patches`.
        batch_size : int
            Patches per run.

        Returns
        -------
        penultimate : np.ndarray [shape=(n, 200), dtype=float32]
        tags : np.ndarray [shape=(n, n_tags), dtype=float32]
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[1:] != (N_FRAMES, N_MELS):
            raise ModelError(
                f"musicnn takes patches of shape (n, {N_FRAMES}, {N_MELS}); got {X.shape}: "
                "make them with genrelib.features.musicnn.patches(y, sr)"
            )
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1; got {batch_size}")
        pen, tags = [], []
        for i in range(0, len(X), batch_size):
            p, t = self.session.run(["penultimate", "tags"], {"X": X[i : i + batch_size]})
            pen.append(p)
            tags.append(t)
        if not pen:
            return np.zeros((0, N_EMBED), np.float32), np.zeros((0, len(self.tags)), np.float32)
        return np.concatenate(pen), np.concatenate(tags)
