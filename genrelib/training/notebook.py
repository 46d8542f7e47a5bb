"""What notebooks 03 and 06 call, one call per cell: train (or search, then train) from the notebook's parameters
and show each part of the result; an optional ensemble.

Each ``show``-like method returns what the notebook should display (a figure, a table) or prints one line when
there is nothing to show (no search, no augmentation, no Keras layers), so that no cell ends in a quoted string.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genrelib.training.config import TrainConfig
from genrelib.training.report import (
    TrainResult,
    architecture_diagram,
    augmented_examples,
    describe,
    history_figure,
    summary_text,
)


@dataclass
class NotebookTraining:
    """A training run made by :func:`train_or_sweep`, with one method per notebook cell that shows it.

    Attributes
    ----------
    config : TrainConfig
        The configuration asked for (the search's best, when there was a search, is ``sweep.best_config``).
    result : TrainResult
        The trained model, its split, features, test report and MLflow run.
    sweep : SweepResult or None
        The hyper-parameter search, when ``sweep_trials`` > 0.
    """

    config: TrainConfig
    result: TrainResult
    sweep: object | None = None

    def describe(self):
        """The one-column table of what the run produced, every line in full (a Styler: a DataFrame would cut
        text at 50 characters)."""
        return describe(self.result).style

    def search(self):
        """The search's summary and its trials (None, and a printed line, without a search)."""
        if self.sweep is None:
            print("no search (sweep_trials = 0)")
            return None
        from IPython.display import display

        from genrelib.training.tune import describe as describe_sweep

        display(describe_sweep(self.sweep).style)
        return self.sweep.table()

    def augmentation(self):
        """A figure of augmented training examples (None, and a printed line, when nothing is augmented)."""
        if not self.config.augmented:
            print("no augmentation: every augmentation parameter is 0")
            return None
        from genrelib import plots

        return plots.plot_augmented_examples(augmented_examples(self.result), kind=self.result.features.config.kind)

    def architecture(self):
        """Prints the Keras summary (or the scikit-learn pipeline) and returns the visualkeras diagram (None, and a
        printed line, for the scikit-learn families)."""
        model = self.result.model
        print(summary_text(model))
        if model.is_keras:
            return architecture_diagram(model.estimator)
        print(
            f"({model.family}: a scikit-learn pipeline on {self.result.features.config.kind} features, no Keras layers)"
        )
        return None

    def curves(self):
        """The training curves of a Keras model; for a scikit-learn family, each candidate's validation accuracy."""
        if self.result.model.is_keras:
            return history_figure(self.result.model, self.result.history)
        import pandas as pd

        return pd.DataFrame(self.result.history)

    def test_metrics(self):
        """Test metrics (held-out tracks) per segment and per track (None, and a printed line, without a test
        part)."""
        if self.result.report is None:
            print("no test tracks, no test metrics")
            return None
        return self.result.report.metrics_table()


def train_or_sweep(
    data_dir: str | Path,
    *,
    sweep_trials: int = 0,
    sweep_params: str = "",
    run_name: str = "03_train",
    parent_run_id: str = "",
    n_jobs: int = 0,
    tracking_uri: str | None = None,
    scheduler: str = "",
    store: str = "",
    tags: dict | None = None,
    **config,
) -> NotebookTraining:
    """Notebook 03's job in one call: build the :class:`TrainConfig` from the notebook's parameters, search
    hyper-parameters first when ``sweep_trials`` > 0 (then train the best), else train once.

    Parameters
    ----------
    data_dir : path
    sweep_trials : int
        0: no search; else the number of trials of :func:`genrelib.training.tune.sweep`.
    sweep_params : str
        What to search, as ``genrelib sweep --param``, space-separated ("": the family's default space).
    run_name, parent_run_id, tracking_uri, tags
        The MLflow run (nested under ``parent_run_id`` when given).
    n_jobs, scheduler, store
        Feature extraction: processes (0: all CPUs), a Dask scheduler address, a sharded store folder ("": none).
    **config
        :class:`TrainConfig` fields (``family``, ``epochs``, ``seed``, augmentation, ...).

    Returns
    -------
    NotebookTraining
    """
    cfg = TrainConfig(**config)
    common = {
        "run_name": run_name,
        "parent_run_id": parent_run_id or None,
        "n_jobs": n_jobs or None,
        "tracking_uri": tracking_uri,
        "scheduler": scheduler or None,
        "store": store or None,
        "tags": tags,
    }
    if sweep_trials:
        from genrelib.training.tune import sweep

        found = sweep(data_dir, cfg, trials=sweep_trials, space=sweep_params or None, **common)
        return NotebookTraining(config=cfg, result=found.result, sweep=found)
    from genrelib.training.trainer import train

    return NotebookTraining(config=cfg, result=train(data_dir, cfg, **common))


def ensemble_or_none(models: str, **kwargs):
    """Notebook 06's optional ensemble: :func:`genrelib.training.ensemble.make_ensemble` of ``models``
    (space-separated) with ``kwargs``, its table displayed; None, and a printed line, when ``models`` is empty."""
    if not models.strip():
        print("no ensemble (ensemble_models is empty)")
        return None
    from IPython.display import display

    from genrelib.training.ensemble import make_ensemble

    result = make_ensemble(models, **kwargs)
    display(result.table())
    return result
