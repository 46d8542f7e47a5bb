"""Layer 9, using a trained model: classify songs of any length and format, the personal-data test, serving.

:func:`load_model` (a folder, a registry reference or the shipped default), :class:`Predictor` (load once, predict
many files: per-window timeline and the whole song), :func:`personal_test` (a folder of your own songs), and in
``serving`` the audio pyfunc that ``mlflow models serve`` runs, which ``served`` writes for ``genrelib serve`` (neither
imported here: they import MLflow). The shipped
reference model is built by ``reference``.
"""

from genrelib.inference.personal import PersonalResult, personal_test, summary_table
from genrelib.inference.predict import (
    Predictor,
    SongPrediction,
    load_model,
    predict_file,
    reference_model_path,
    rows_for,
)
from genrelib.inference.reference import load_table, train_reference, write_card

__all__ = [
    "load_model",
    "load_table",
    "personal_test",
    "PersonalResult",
    "predict_file",
    "Predictor",
    "reference_model_path",
    "rows_for",
    "SongPrediction",
    "summary_table",
    "train_reference",
    "write_card",
]
