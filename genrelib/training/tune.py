"""Hyper-parameter search on the validation tracks (Optuna), then one test evaluation of the best configuration.

:func:`sweep` splits a data folder by track as :func:`genrelib.training.trainer.train` does and extracts the features once.
Each trial trains the family with the configuration Optuna's TPE sampler proposes (seeded by ``config.seed``) on
the training tracks and scores it on the validation tracks; the test tracks play no part in the search. Keras
trials report the validation cross-entropy after every epoch, and Optuna's median pruner stops a trial whose
curve is worse than the median of earlier trials at the same epoch (from epoch ``config.patience`` on).

The objective is the validation cross-entropy per segment (``-mean log p(true genre)``, minimized) of the model
a trial keeps (early stopping restores the best epoch's weights), without the weight penalty: seed_cnn's training
loss includes its L2 term, which would favour small ``l2`` values for no other reason, and accuracy on a few
validation tracks moves in large steps and is often tied. Every trial also records its validation accuracy
per segment and per track.

MLflow: one parent run holds the search (its settings, a table of the trials, the best configuration); every
trial is a nested run with its parameters and validation metrics, tagged ``genrelib.trial_state`` = complete,
pruned or failed (a failed trial's run is FAILED and does not stop the search). The best configuration is then
trained once more by :func:`genrelib.training.trainer.train`, nested under the parent, evaluated once on the test tracks and
registered like any training run.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from genrelib.datasets.tracks import Dataset, scan
from genrelib.errors import ModelError
from genrelib.features.config import FeatureConfig
from genrelib.models import FAMILIES, KERAS_FAMILIES
from genrelib.training.search_space import SEARCHABLE, Param, accepted, check_space, parse_space

logger = logging.getLogger(__name__)


#: What the search minimizes (a metric of every trial run).
OBJECTIVE = "valid_cross_entropy"


@dataclass
class SweepResult:
    """What :func:`sweep` returns.

    Attributes
    ----------
    family : str
    space : dict
        The searched parameters.
    trials : list of dict
        Per trial: ``trial``, ``state`` (complete, pruned, failed), ``valid_cross_entropy``,
        ``valid_track_accuracy``, ``epochs``, the parameters, ``run_id`` and, for failed trials, ``error``.
    best_params : dict
    best_value : float
        The best trial's validation cross-entropy.
    best_config : genrelib.training.config.TrainConfig
    result : genrelib.training.report.TrainResult
        The best configuration trained once more, evaluated on the test tracks, logged and registered.
    run_id : str
        The parent MLflow run.
    """

    family: str
    space: dict[str, Param]
    trials: list[dict] = field(default_factory=list)
    best_params: dict = field(default_factory=dict)
    best_value: float | None = None
    best_config: object | None = None
    result: object | None = None
    run_id: str | None = None

    def table(self):
        """One row per trial."""
        import pandas as pd

        return pd.DataFrame(self.trials)

    def command(self, data: str = "DATA") -> str:
        """The ``genrelib train`` command line that trains the best configuration again."""
        cfg, base = self.best_config, type(self.best_config)(family=self.family)
        args = [f"genrelib train {data} --model {self.family}"]
        for name in ("epochs", "patience", "split", "split_file", "seed", *SEARCHABLE):
            value = getattr(cfg, name)
            if value != getattr(base, name) and not (name == "split" and value == "file"):  # --split-file says it
                args.append(
                    f"--{name.replace('_', '-')} {value!r}"
                    if isinstance(value, float)
                    else f"--{name.replace('_', '-')} {value}"
                )  # repr: the float exactly
        if cfg.class_weights:
            args.append("--class-weights")
        return " ".join(args)


def validation_scores(model, valid) -> dict[str, float]:
    """The objective and the validation metrics of a trained model on the validation part (a FeatureSet, or a
    stored part predicted shard by shard).

    Returns
    -------
    dict
        ``valid_cross_entropy`` (mean ``-log p(true genre)`` per row, no weight penalty) and
        ``valid_{segment,track}_{accuracy,...}``.
    """
    from genrelib import evaluation as ev

    P, y, ids = ev.predict_rows(model, valid)
    ce = float(-np.mean(np.log(np.clip(P[np.arange(len(P)), y], 1e-12, 1.0))))
    return {OBJECTIVE: ce, **ev.report_rows(model.genres, P, y, ids).flat_metrics("valid")}


def _pruning_callback(trial, seen: dict):
    """Report each epoch's validation cross-entropy (the Keras ``val_loss`` less the weight penalty, which the
    objective leaves out) to Optuna; raise ``optuna.TrialPruned`` when the pruner says so. ``seen["epochs"]``
    counts the epochs run."""
    import keras
    import optuna

    class Pruning(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            penalty = float(sum(float(v) for v in self.model.losses))
            value = float((logs or {})["val_loss"]) - penalty
            trial.report(value, step=epoch + 1)
            seen["epochs"] = epoch + 1
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1} (validation cross-entropy {value:.4f})")

    return Pruning()


def sweep(
    data: str | Path | Dataset,
    config,
    *,
    trials: int,
    space=None,
    feature_config: FeatureConfig | None = None,
    prune: bool = True,
    pruner=None,
    register: bool = True,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    tracking_uri: str | None = None,
    tags: dict | None = None,
    scheduler=None,
    store: str | Path | None = None,
) -> SweepResult:
    """Search hyper-parameters of ``config.family`` on the validation tracks; train the best once more and test it.

    Parameters
    ----------
    data : path or Dataset
    config : genrelib.training.config.TrainConfig
        The family, the split and everything not searched (epochs, patience, seed, augmentation ...).
    trials : int
        Number of trials (>= 1).
    space : dict of Param, list of str, str or None
        What to search: ``--param`` texts (see :func:`parse_param`) or parsed parameters; None: the family's
        :func:`default_space`.
    feature_config : FeatureConfig, optional
        Default: the family's.
    prune : bool
        Stop unpromising Keras trials early (Optuna's median pruner; ``pruner`` replaces it).
    register : bool
        Register the retrained best model as ``genre-classifier``.
    run_name, parent_run_id, tracking_uri, tags
        The parent MLflow run's name (default ``sweep-<family>``), a run to nest it under, the store, extra tags
        of the parent run.
    scheduler : str, optional
        A Dask scheduler address (or ``local:N``): extract the features on that cluster.
    store : path, optional
        A feature store root: extract into it (resuming what is there); trials read the parts lazily and the
        Keras families stream from the shards (:func:`genrelib.training.splits.training_features`); the retrained best
        model uses the same store.

    Returns
    -------
    SweepResult

    Raises
    ------
    ModelError
        For a bad search space (before any work), or when no trial completes.
    """
    import optuna

    from genrelib import tracking
    from genrelib.training.config import feature_config_for
    from genrelib.training.fitting import fit, with_copies
    from genrelib.training.splits import check_split, config_split, split_features, training_features
    from genrelib.training.trainer import data_name, run_title, train

    if int(trials) != trials or trials < 1:
        raise ModelError(f"--trials must be a whole number >= 1, got {trials!r}")
    family = config.family
    space = space if isinstance(space, dict) else parse_space(space, family)
    for p in space.values():
        if family not in SEARCHABLE[p.name].families:
            raise ModelError(f"{p.name} does not apply to {family}; {family} accepts {accepted(family)}")
    check_space(space, config)
    if store is not None and ("aug_copies" in space or config.aug_copies):
        raise ModelError(
            "waveform copies (aug_copies) are not written to a feature store; leave out --store, or "
            "leave aug_copies out of --param and the options"
        )
    ds = data if isinstance(data, Dataset) else scan(data)
    fcfg = feature_config or feature_config_for(family)
    if fcfg.kind != FAMILIES[family]:
        raise ModelError(f"{family} needs {FAMILIES[family]!r} features, not {fcfg.kind!r}")
    check_split(config_split(ds, config), ds, config)  # refuse before any feature extraction
    fs = training_features(ds, fcfg, config, n_jobs=n_jobs, progress=progress, scheduler=scheduler, store=store)
    split, parts = split_features(fs, ds, config)
    keras_family = family in KERAS_FAMILIES
    name = run_name or f"sweep-{family}"
    result = SweepResult(family=family, space=space)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if pruner is None:
        # A trial gets as many epochs as early stopping tolerates (patience) before it can be pruned: judged
        # after one or two epochs, slow starters (a small learning rate) lose to fast ones whatever their end.
        pruner = (
            optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=max(1, config.patience))
            if prune and keras_family
            else optuna.pruners.NopPruner()
        )
    sampler = optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=max(2, min(10, trials // 2)))
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)

    def objective(trial) -> float:
        params = {n: p.suggest(trial) for n, p in space.items()}
        row = {
            "trial": trial.number,
            "state": "failed",
            OBJECTIVE: None,
            "valid_track_accuracy": None,
            "epochs": None,
            **params,
        }
        result.trials.append(row)
        pruned, seen = None, {}
        with tracking.start_run(
            f"{name}-trial-{trial.number:02d}",
            parent_run_id=result.run_id,
            params={f"train.{k}": v for k, v in params.items()},
            tags={"genrelib.stage": "sweep-trial", "genrelib.family": family, "genrelib.trial": str(trial.number)},
        ) as run:
            row["run_id"] = run.info.run_id
            try:
                cfg = replace(config, **params)
                tracking.log_params({f"train.{k}": v for k, v in asdict(cfg).items() if k not in params})
                train_rows, _ = with_copies(parts["train"], ds, cfg, n_jobs=n_jobs)
                callbacks = (tracking.keras_epoch_logger(), _pruning_callback(trial, seen)) if keras_family else ()
                model, _ = fit(train_rows, parts["valid"], cfg, callbacks=callbacks)
                scores = validation_scores(model, parts["valid"])
                tracking.log_metrics(scores)
                row.update(
                    {
                        "state": "complete",
                        OBJECTIVE: scores[OBJECTIVE],
                        "valid_track_accuracy": scores["valid_track_accuracy"],
                        "epochs": model.info.get("epochs_run"),
                    }
                )
                tracking.set_tags({"genrelib.trial_state": "complete"})
                return scores[OBJECTIVE]
            except optuna.TrialPruned as exc:
                pruned = exc
                row.update({"state": "pruned", "epochs": seen.get("epochs")})
                tracking.set_tags({"genrelib.trial_state": "pruned", "genrelib.pruned": str(exc)})
            except Exception as exc:  # recorded on the trial's run (FAILED) and in the table; optuna goes on
                row["error"] = f"{type(exc).__name__}: {exc}"
                tracking.set_tags({"genrelib.trial_state": "failed", "genrelib.error": row["error"][:5000]})
                logger.warning("trial %d failed: %s", trial.number, row["error"])
                raise
        raise pruned

    params = {
        **{f"train.{k}": v for k, v in asdict(config).items()},
        **{f"features.{k}": v for k, v in fcfg.to_dict().items()},
        "sweep.trials": trials,
        "sweep.space": "; ".join(map(str, space.values())),
        "sweep.objective": f"{OBJECTIVE} (minimized)",
        "sweep.pruner": type(pruner).__name__,
        "sweep.sampler": f"TPESampler(seed={config.seed})",
        "data.root": str(ds.root.resolve()),
        "data.tracks": len(ds.tracks),
        "data.manifest_hash": ds.manifest_hash(),
    }
    with tracking.start_run(
        run_name or run_title("sweep", config, ds, f"{trials} trials"),
        parent_run_id=parent_run_id,
        params=params,
        uri=tracking_uri,
        tags={"genrelib.stage": "sweep", "genrelib.family": family, **(tags or {})},
    ) as run:
        result.run_id = run.info.run_id
        tracking.log_data(ds, name=data_name(ds), split=split)
        study.optimize(objective, n_trials=int(trials), catch=(Exception,))
        counts = {s: sum(r["state"] == s for r in result.trials) for s in ("complete", "pruned", "failed")}
        tracking.log_metrics({f"trials_{s}": n for s, n in counts.items()})
        tracking.log_table(result.table(), "reports/trials.csv")
        if not counts["complete"]:
            errors = [r["error"] for r in result.trials if r.get("error")]
            raise ModelError(
                f"none of the {trials} trials completed ({counts['failed']} failed, {counts['pruned']} "
                f"pruned){'; first error: ' + errors[0] if errors else ''}; see the trial runs under "
                f"MLflow run {result.run_id}"
            )
        best = study.best_trial
        result.best_params, result.best_value = dict(best.params), float(best.value)
        result.best_config = replace(config, **best.params)
        tracking.log_params({f"best.{k}": v for k, v in best.params.items()} | {"best.trial": best.number})
        tracking.log_metrics({f"best_{OBJECTIVE}": best.value})
        tracking.log_dict(asdict(result.best_config), "sweep/best_config.json")
        # The best configuration once more, as an ordinary training run: evaluated once on the test tracks and
        # registered. Same seed, same data: it retrains the best trial's model exactly (checked below).
        res = train(
            ds,
            result.best_config,
            feature_config=fcfg,
            run_name=f"{name}-best",
            parent_run_id=result.run_id,
            n_jobs=n_jobs,
            progress=progress,
            tracking_uri=tracking_uri,
            register=register,
            scheduler=scheduler,
            store=store,
            tags={"genrelib.sweep_run_id": result.run_id, "genrelib.best_trial": str(best.number)},
        )
        result.result = res
        again = validation_scores(res.model, parts["valid"])[OBJECTIVE]
        if not np.isclose(again, best.value, rtol=1e-4, atol=1e-6):
            logger.warning(
                "the retrained best configuration scores %.6f on validation, its trial %.6f", again, best.value
            )
        tracking.log_metrics(
            {
                f"best_retrained_{OBJECTIVE}": again,
                **(
                    {k.replace("test_", "best_test_", 1): v for k, v in res.report.flat_metrics("test").items()}
                    if res.report is not None
                    else {}
                ),
            }
        )
        tracking.set_tags({"genrelib.best_run_id": res.run_id})
    return result


def describe(result: SweepResult):
    """A one-column table of a sweep: trials by state, the best trial and configuration, the test result."""
    import pandas as pd

    states = [r["state"] for r in result.trials]
    facts = {
        "family": result.family,
        "sweep run id": result.run_id,
        "searched": "; ".join(map(str, result.space.values())),
        "trials complete / pruned / failed": " / ".join(str(states.count(s)) for s in ("complete", "pruned", "failed")),
        f"best {OBJECTIVE}": round(result.best_value, 4) if result.best_value is not None else None,
        "best parameters": ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items()
        ),
    }
    res = result.result
    if res is not None:
        facts["retrained run id"] = res.run_id
        facts["registered version"] = res.registered_version
        if res.report is not None:
            facts["test accuracy per segment"] = round(res.report.segment.metrics["accuracy"], 4)
            facts["test accuracy per track"] = round(res.report.track.metrics["accuracy"], 4)
    return pd.DataFrame({"value": {k: str(v) for k, v in facts.items()}})
