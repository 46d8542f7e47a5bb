"""Layer 8, honest measurement of a trained model: metrics per segment and per track, reports, scoring a folder.

:func:`evaluate` scores a labelled :class:`~genrelib.features.featureset.FeatureSet` (or a stored part, shard by shard);
:func:`evaluate_folder` scores a model on the tracks of a folder it did not train on (by default its test part);
:func:`log_report` logs a report's metrics, tables and confusion matrices to MLflow. Imports the layers below:
models, features, datasets, tracking.
"""

from genrelib.evaluation.reports import LevelReport, Report, aggregate, genre_index, metrics, report_rows
from genrelib.evaluation.scoring import (
    evaluate,
    evaluate_ensemble,
    evaluate_folder,
    labels_for,
    log_report,
    predict_rows,
    split_tracks,
)
from genrelib.evaluation.stored import predict_stored

__all__ = [
    "aggregate",
    "evaluate",
    "evaluate_ensemble",
    "evaluate_folder",
    "genre_index",
    "labels_for",
    "LevelReport",
    "log_report",
    "metrics",
    "predict_rows",
    "predict_stored",
    "Report",
    "report_rows",
    "split_tracks",
]
