"""Layer 10, making models: configuration, fitting, augmentation, streaming, cross-validation, sweeps, ensembles.

:func:`train` is one honest training run (split by track, fit, evaluate on the test part, log and register);
:func:`cross_validate` and :func:`sweep` choose by (grouped) cross-validation or validation scores;
:func:`make_ensemble` combines registered models; :func:`leaderboard` compares the logged runs of every stage.
Training registers a model with the audio pyfunc that :mod:`genrelib.inference` serves, so it sits above inference.
"""

from genrelib.training.augment import FeatureAugment, WaveAugment
from genrelib.training.augment import describe as describe_augmentation
from genrelib.training.compare import (
    best_per_family,
    configuration,
    leaderboard,
    leaderboard_table,
    log_comparison,
    plot_confusions,
    plot_leaderboard,
)
from genrelib.training.config import TrainConfig, feature_config_for
from genrelib.training.crossval import GROUPINGS, CVResult, cross_validate, cv_groups, cv_splits
from genrelib.training.ensemble import EnsembleResult, make_ensemble, split_note
from genrelib.training.ensemble import build as build_ensemble
from genrelib.training.fitting import fit, seed_everything, with_copies
from genrelib.training.notebook import NotebookTraining, ensemble_or_none, train_or_sweep
from genrelib.training.report import (
    TrainResult,
    architecture_diagram,
    augmented_examples,
    describe,
    history_figure,
    loss_label,
    summary_text,
)
from genrelib.training.search_space import SEARCHABLE, parse_param, parse_space
from genrelib.training.splits import check_split, split_features, training_features
from genrelib.training.trainer import data_name, train
from genrelib.training.tune import OBJECTIVE, SweepResult, sweep
from genrelib.training.tune import describe as describe_sweep

__all__ = [
    "architecture_diagram",
    "augmented_examples",
    "best_per_family",
    "build_ensemble",
    "check_split",
    "configuration",
    "cross_validate",
    "cv_groups",
    "cv_splits",
    "CVResult",
    "data_name",
    "describe",
    "describe_augmentation",
    "describe_sweep",
    "EnsembleResult",
    "ensemble_or_none",
    "feature_config_for",
    "FeatureAugment",
    "fit",
    "GROUPINGS",
    "history_figure",
    "leaderboard",
    "leaderboard_table",
    "log_comparison",
    "loss_label",
    "make_ensemble",
    "NotebookTraining",
    "OBJECTIVE",
    "parse_param",
    "parse_space",
    "plot_confusions",
    "plot_leaderboard",
    "SEARCHABLE",
    "seed_everything",
    "split_features",
    "split_note",
    "summary_text",
    "sweep",
    "SweepResult",
    "train",
    "train_or_sweep",
    "TrainConfig",
    "training_features",
    "TrainResult",
    "WaveAugment",
    "with_copies",
]
