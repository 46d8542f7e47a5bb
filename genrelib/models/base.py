"""`GenreModel`: a trained estimator together with its genres and the features it was trained on.

Saved as a folder: ``genrelib-model.json`` (family, genres, feature configuration, info) plus ``model.keras``
(Keras families), ``model.skops`` (scikit-learn pipelines; skops is a safe, non-pickle format) or ``model.npz``
(a :class:`~genrelib.models.linear_head.LinearHead`: plain arrays, read with numpy alone). Loading the
summary family never imports TensorFlow. :meth:`GenreModel.load` also reads an ensemble's folder
(:mod:`genrelib.models.ensemble`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrelib import jsonio
from genrelib.errors import ModelError
from genrelib.features.config import FeatureConfig
from genrelib.models import KERAS_FAMILIES, check_family
from genrelib.models.ensemble import ENSEMBLE, EnsembleModel
from genrelib.models.linear_head import LinearHead

logger = logging.getLogger(__name__)

META = "genrelib-model.json"
#: A :class:`~genrelib.models.linear_head.LinearHead` estimator's file in a model folder.
HEAD_FILE = "model.npz"
#: Types a summary-family skops file may contain besides those skops trusts by default: what the candidates of
#: :func:`genrelib.models.summary.candidates` hold once fitted (every one is logged and loaded in the tests).
SKOPS_TRUSTED = [
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "numpy.dtype",
    "builtins.bytes",
    # the calibrated SVM candidates (Platt scaling on internal folds)
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
]


@dataclass
class GenreModel:
    """A trained genre classifier.

    Attributes
    ----------
    family : str
        ``seed_cnn``, ``mel_cnn``, ``crnn`` or ``summary``.
    genres : list of str
        Output ``i`` is the probability of ``genres[i]``.
    feature_config : FeatureConfig
        The features the model takes (extracted the same way at prediction time).
    estimator : keras.Model or sklearn Pipeline
    info : dict
        Free-form facts about training (data hash, split, chosen candidate, metrics).
    """

    family: str
    genres: list[str]
    feature_config: FeatureConfig
    estimator: object
    info: dict = field(default_factory=dict)

    @property
    def is_keras(self) -> bool:
        return self.family in KERAS_FAMILIES

    def predict_proba(self, X: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        """Genre probabilities of feature rows.

        Parameters
        ----------
        X : np.ndarray [shape=(n, *feature_config.row_shape)]

        Returns
        -------
        P : np.ndarray [shape=(n, len(genres)), dtype=float64], rows summing to 1.
        """
        X = np.asarray(X, dtype=np.float32)
        expected = tuple(self.feature_config.row_shape)
        if X.ndim < 1 or tuple(X.shape[1:]) != expected:
            raise ModelError(f"{self.family} model expects rows of shape {expected}, got {tuple(X.shape[1:])}")
        if len(X) == 0:
            return np.zeros((0, len(self.genres)))
        if self.is_keras:
            out = [
                np.asarray(self.estimator(X[i : i + batch_size, ..., None], training=False))
                for i in range(0, len(X), batch_size)
            ]
            P = np.concatenate(out).astype(np.float64)
        else:
            P = np.asarray(self.estimator.predict_proba(X), dtype=np.float64)
        return P / P.sum(axis=1, keepdims=True)

    def save(self, path: str | Path) -> Path:
        """Write the model folder."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "family": self.family,
            "genres": self.genres,
            "feature_config": self.feature_config.to_dict(),
            "info": self.info,
            "format": 1,
        }
        if self.is_keras:
            self.estimator.save(path / "model.keras")
        elif isinstance(self.estimator, LinearHead):
            self.estimator.save(path / HEAD_FILE)
        else:
            import skops.io

            skops.io.dump(self.estimator, path / "model.skops")
        (path / META).write_text(jsonio.dumps(meta, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> GenreModel:
        """Read a model folder written by :meth:`save`, or an ensemble's folder
        (:class:`~genrelib.models.ensemble.EnsembleModel`, whose members are read by this method).

        Raises
        ------
        ModelError
            When the folder is not a genrelib model.
        """
        path = Path(path)
        if not (path / META).exists():
            raise ModelError(
                f"{path} is not a genrelib model folder (no {META}); give a folder written by "
                "GenreModel.save, an MLflow model URI or a registry name"
            )
        try:
            meta = json.loads((path / META).read_text())
            if not isinstance(meta, dict) or not isinstance(meta.get("family"), str):
                raise ValueError("no family recorded")
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{path / META}: the model's metadata is unreadable or malformed ({exc}); the model folder is "
                "damaged: copy it again, or use another model"
            ) from exc
        if meta.get("family") == ENSEMBLE:  # members' folders inside; each read by this method
            return EnsembleModel.load(path, load_member=cls.load)
        family = check_family(meta["family"])
        if family in KERAS_FAMILIES:
            import keras

            estimator = keras.models.load_model(path / "model.keras", compile=False)
        elif (path / HEAD_FILE).exists():  # a linear head as plain arrays: no scikit-learn, no skops
            estimator = LinearHead.load(path / HEAD_FILE)
        else:
            import skops.io

            file = path / "model.skops"
            unknown = [t for t in skops.io.get_untrusted_types(file=file) if t not in SKOPS_TRUSTED]
            if unknown:
                raise ModelError(f"{file} contains types genrelib does not trust: {unknown}")
            estimator = skops.io.load(file, trusted=SKOPS_TRUSTED)
        return cls(
            family=family,
            genres=list(meta["genres"]),
            feature_config=FeatureConfig.from_dict(meta["feature_config"]),
            estimator=estimator,
            info=meta.get("info", {}),
        )
