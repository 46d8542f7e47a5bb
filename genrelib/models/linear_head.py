"""A linear classifier head kept as plain arrays: standardize, one matrix product, softmax.

What the shipped default model uses on musicnn features: the fitted parameters of a scikit-learn
``StandardScaler`` + multinomial ``LogisticRegression`` pipeline (:meth:`LinearHead.from_pipeline`), saved as one
``.npz`` of float arrays and applied with numpy alone, so predicting needs neither scikit-learn nor skops (whose
imports cost seconds of a cold start) and no unpickling. ``temperature`` divides the logits (1: as fitted).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrelib.errors import ModelError

#: The arrays of a saved head, each with its number of dimensions.
ARRAYS = {"mean": 1, "scale": 1, "coef": 2, "intercept": 1}


@dataclass
class LinearHead:
    """``softmax(((X - mean) / scale) @ coef.T + intercept) / temperature)``.

    Attributes
    ----------
    mean, scale : np.ndarray [shape=(n_features,)]
        The standardization (a ``StandardScaler``'s ``mean_`` and ``scale_``).
    coef : np.ndarray [shape=(n_classes, n_features)]
    intercept : np.ndarray [shape=(n_classes,)]
    temperature : float
        Logits are divided by it before the softmax (> 0).
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    temperature: float = 1.0

    def __post_init__(self) -> None:
        for name, ndim in ARRAYS.items():
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.ndim != ndim or not np.isfinite(value).all():
                raise ModelError(f"linear head: {name} must be a finite {ndim}-d array, got shape {value.shape}")
            setattr(self, name, value)
        n_classes, n_features = self.coef.shape
        if (
            self.mean.shape != (n_features,)
            or self.scale.shape != (n_features,)
            or self.intercept.shape != (n_classes,)
        ):
            raise ModelError(
                f"linear head: shapes do not fit (coef {self.coef.shape}, mean {self.mean.shape}, "
                f"scale {self.scale.shape}, intercept {self.intercept.shape})"
            )
        if not (self.scale > 0).all():
            raise ModelError("linear head: every scale must be > 0")
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise ModelError(f"linear head: temperature must be > 0, got {self.temperature!r}")
        self.temperature = float(self.temperature)

    @property
    def n_features(self) -> int:
        return self.coef.shape[1]

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Logits of rows ``X`` [shape=(n, n_features)], before the temperature."""
        X = np.asarray(X, dtype=np.float64)
        return ((X - self.mean) / self.scale) @ self.coef.T + self.intercept

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities [shape=(n, n_classes)], rows summing to 1."""
        z = self.logits(X) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    @classmethod
    def from_pipeline(cls, pipeline, *, temperature: float = 1.0) -> LinearHead:
        """The head of a fitted ``make_pipeline(StandardScaler(), LogisticRegression(...))`` (multinomial)."""
        scaler, logreg = pipeline[0], pipeline[-1]
        if len(pipeline) != 2 or not hasattr(scaler, "scale_") or not hasattr(logreg, "coef_"):
            raise ModelError("a linear head is made from a fitted StandardScaler + LogisticRegression pipeline")
        if logreg.coef_.shape[0] != len(logreg.classes_):
            raise ModelError("a linear head needs a multinomial logistic regression (one row of coef per class)")
        return cls(scaler.mean_, scaler.scale_, logreg.coef_, logreg.intercept_, temperature)

    def save(self, path: str | Path) -> Path:
        """Write the head as one ``.npz`` of float64 arrays (no pickled objects)."""
        path = Path(path)
        arrays = {name: getattr(self, name) for name in ARRAYS}
        np.savez(path, **arrays, temperature=np.float64(self.temperature))
        return path

    @classmethod
    def load(cls, path: str | Path) -> LinearHead:
        """Read a head written by :meth:`save`; a missing, corrupt or foreign file is a ModelError naming it."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as f:
                missing = [k for k in (*ARRAYS, "temperature") if k not in f.files]
                if missing:
                    raise ModelError(f"{path}: not a genrelib linear head (missing {', '.join(missing)})")
                return cls(**{k: f[k] for k in ARRAYS}, temperature=float(f["temperature"]))
        except ModelError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            # not numpy's own message: it suggests unpickling, which genrelib never does with a model file
            raise ModelError(f"{path}: unreadable linear head (not an .npz of arrays: {type(exc).__name__})") from exc
