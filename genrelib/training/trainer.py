"""Training: :func:`fit` trains one family on feature sets; :func:`train` runs the whole job on a data folder.

The job scans the folder, extracts (or reads cached) features of the family's kind, splits by track
(random stratified or GTZAN fault-filtered), trains on the training part with early stopping on the validation
part, evaluates on the test part (never seen in training or model selection), logs everything to MLflow and
registers the model as ``genre-classifier``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from genrelib import __version__
from genrelib.datasets.splits import SPLIT_NAMES, split_counts
from genrelib.datasets.tracks import Dataset, scan
from genrelib.errors import GenrelibError, ModelError
from genrelib.features.config import FeatureConfig
from genrelib.models import FAMILIES, KERAS_FAMILIES
from genrelib.models.base import GenreModel
from genrelib.training.config import TrainConfig, feature_config_for
from genrelib.training.fitting import fit, with_copies
from genrelib.training.report import TrainResult, architecture_diagram, augmented_examples, history_figure, summary_text
from genrelib.training.splits import check_split, config_split, split_file_record, training_features

logger = logging.getLogger(__name__)


def train(
    data: str | Path | Dataset,
    config: TrainConfig,
    *,
    feature_config: FeatureConfig | None = None,
    evaluate_test: bool = True,
    log: bool = True,
    register: bool = True,
    promote: str = "auto",
    run_name: str | None = None,
    parent_run_id: str | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    tracking_uri: str | None = None,
    tags: dict | None = None,
    scheduler: str | None = None,
    store: str | Path | None = None,
) -> TrainResult:
    """The training job on a data folder: features, split, fit, test evaluation, MLflow logging, registry.

    Parameters
    ----------
    data : path or Dataset
        A folder laid out ``<root>/<genre>/<file>`` or a scanned dataset.
    config : TrainConfig
    feature_config : FeatureConfig, optional
        Default: :func:`feature_config_for` the family.
    evaluate_test : bool
        Evaluate on the test part and log the report.
    log, register : bool
        Log to MLflow; register the model as ``genre-classifier``.
    promote : {"auto", "always", "never"}
        Whether the family's registry alias (``genre-classifier@seed-cnn``) moves to the new version:
        ``auto`` when it is at least as good as the current holder on the same data set
        (:func:`genrelib.tracking.registry.promote`).
    run_name, parent_run_id : str, optional
        MLflow run name; a parent run to nest under (as ``make run-all`` does).
    tracking_uri : str, optional
        MLflow store (default: see :func:`genrelib.tracking.backend.tracking_uri`).
    tags : dict, optional
        Extra run tags.
    scheduler : str, optional
        A Dask scheduler address: extract the features on that cluster (:func:`genrelib.features.extraction.extract`).
    store : path, optional
        A feature store root: extract into it (:func:`genrelib.features.store.extract_to_store`, resuming what is there)
        and train from it without reading the data set into memory (Keras families stream their shards,
        :mod:`genrelib.training.streaming`; summary and musicnn read their small per-window rows).

    Returns
    -------
    TrainResult
    """
    from genrelib import evaluation as ev
    from genrelib.datasets.demo import is_demo

    ds = data if isinstance(data, Dataset) else scan(data)
    fcfg = feature_config or feature_config_for(config.family)
    if fcfg.kind != FAMILIES[config.family]:
        raise ModelError(f"{config.family} needs {FAMILIES[config.family]!r} features, not {fcfg.kind!r}")
    split = config_split(ds, config)
    check_split(split, ds, config)  # refuse before any feature extraction or fitting
    file_record = split_file_record(ds, config)
    left_out = [t.track_id for t in ds.tracks if t.track_id not in split]
    if left_out:
        logger.info("%s split: %d tracks are in no part and are left out", config.split, len(left_out))
    fs = training_features(ds, fcfg, config, n_jobs=n_jobs, progress=progress, scheduler=scheduler, store=store)
    have = set(fs.tracks)  # tracks that could not be decoded have no rows and drop out of every part
    problems = check_split({t: p for t, p in split.items() if t in have}, ds, config)
    if problems:
        logger.warning("training anyway (force): %s", "; ".join(problems))
    parts = fs.split(split)
    sizes = split_counts({t: p for t, p in split.items() if t in have}, ds)
    # Waveform copies of the training tracks only (never of validation or test tracks), cached per track.
    train_rows, copy_settings = with_copies(parts["train"], ds, config, n_jobs=n_jobs, progress=progress)
    result_extra = {
        "data_root": str(ds.root),
        "manifest_hash": ds.manifest_hash(),
        "skipped": fs.skipped,
        "left_out": left_out,
        "split_problems": problems,
        "augment_copies": copy_settings,
        "split_file": file_record,
    }

    trained: dict[str, GenreModel] = {}  # the model once fitted, kept if a later step fails

    def _run() -> TrainResult:
        from genrelib import tracking

        callbacks = (tracking.keras_epoch_logger(),) if (log and config.family in KERAS_FAMILIES) else ()
        model, history = fit(train_rows, parts["valid"], config, callbacks=callbacks)
        trained["model"] = model
        if copy_settings:
            model.info["augmented_rows"] = len(train_rows) - len(parts["train"])
        # The split's own track lists travel with the model: `evaluate --part test` scores exactly these
        # tracks (found in any folder by genre/stem), and never re-splits a folder.
        model.info.update(
            {
                "split": config.split,
                "seed": config.seed,
                "test_size": config.test_size,
                "valid_size": config.valid_size,
                "manifest_hash": ds.manifest_hash(),
                "data_root": str(ds.root),
                "synthetic_demo": is_demo(ds.root),
                "genrelib_version": __version__,
                "split_tracks": {p: sorted(t for t, q in split.items() if q == p and t in have) for p in SPLIT_NAMES},
                "split_left_out": len(left_out),
                "split_problems": problems,
            }
        )
        if file_record:
            model.info["split_file"] = {k: v for k, v in file_record.items() if k != "missing"}
            model.info["split_file"]["missing"] = len(file_record["missing"])
        if model.is_keras:
            # Early stopping never triggered and the last epoch was the best: the validation loss was still
            # falling, so the run stopped at --epochs rather than at a minimum.
            model.info["still_improving"] = bool(model.info["best_epoch"] == model.info["epochs_run"] == config.epochs)
        res = TrainResult(
            model=model, history=history, split=split, split_sizes=sizes, features=fs, extra=result_extra, config=config
        )
        if evaluate_test and len(parts["test"]):  # (empty only when forced)
            res.report = ev.evaluate(model, parts["test"])  # a stored part: predicted shard by shard
        if log:
            tracking.log_data(ds, name=data_name(ds), split=split)  # training, validation, test: each its input
            tracking.log_dict(
                {"split": split, "sizes": sizes, **({"split_file": file_record} if file_record else {})},
                "data/split.json",
            )
            tracking.log_dict(ds.manifest(), "data/manifest.json")
            if res.report is not None:  # the test metrics first: MLflow lists metrics in the order first logged
                keras = config.family in KERAS_FAMILIES
                note = "Metrics named `epoch/...` are curves during training, not results." if keras else ""
                ev.log_report(res.report, prefix="test", note=note)
            tracking.log_metrics(
                {**{f"tracks_{p}": sum(c.values()) for p, c in sizes.items()}, "tracks_left_out": len(left_out)}
            )
            if config.family in KERAS_FAMILIES:
                tracking.log_figure(history_figure(model, history), "figures/training_curves.png")
                tracking.log_text(summary_text(model), "model_summary.txt")
                tracking.log_image(architecture_diagram(model.estimator), "figures/architecture.png")
                tracking.log_metrics(
                    {
                        "epochs_run": model.info["epochs_run"],
                        "best_epoch": model.info["best_epoch"],
                        "train_seconds": model.info["train_seconds"],
                    }
                )
                tracking.set_tags({"genrelib.still_improving": str(model.info["still_improving"]).lower()})
                if config.augmented:
                    from genrelib import plots

                    tracking.log_figure(
                        plots.plot_augmented_examples(augmented_examples(res), kind=fcfg.kind),
                        "figures/augmented_examples.png",
                    )
                if copy_settings:
                    import pandas as pd

                    tracking.log_metrics({"train_rows_augmented": model.info["augmented_rows"]})
                    tracking.log_table(pd.DataFrame(copy_settings), "reports/augment_copies.csv")
            else:
                tracking.log_metrics({f"valid_accuracy_{k}": v for k, v in model.info["validation_accuracy"].items()})
                tracking.log_params({"chosen_estimator": model.info["chosen"]})
            from genrelib.inference import serving

            logged = tracking.log_genre_model(
                model,
                **serving.audio_pyfunc(model.genres),
                register=register,
                dataset_name=data_name(ds),
                promote_alias=promote,
                test_track_accuracy=None if res.report is None else res.report.track.metrics["accuracy"],
            )
            res.model_uri, res.registered_version = logged["model_uri"], logged.get("version")
            res.extra["alias_reason"] = logged.get("alias_reason")
        return res

    if not log:
        return _run()
    from genrelib import tracking

    params = {
        **{f"train.{k}": v for k, v in asdict(config).items()},
        **{f"features.{k}": v for k, v in fcfg.to_dict().items()},
        "data.root": str(ds.root.resolve()),
        "data.tracks": len(ds.tracks),
        "data.genres": ",".join(ds.genres),
        "data.skipped": len(fs.skipped),
        "data.manifest_hash": ds.manifest_hash(),
        **{f"split.{k}": (len(v) if k == "missing" else v) for k, v in file_record.items()},
    }
    with tracking.start_run(
        run_name or run_title("train", config, ds),
        parent_run_id=parent_run_id,
        params=params,
        uri=tracking_uri,
        tags={"genrelib.stage": "train", "genrelib.family": config.family, **(tags or {})},
    ) as run:
        try:
            res = _run()
        except Exception as exc:
            if "model" not in trained:
                raise
            raise keep_unlogged_model(trained["model"], exc, run_id=run.info.run_id) from exc
        res.run_id = run.info.run_id
    return res


#: Where :func:`train` saves a trained model that could not be logged to MLflow (relative to the working folder).
UNLOGGED_DIR = Path("results") / "unlogged-models"


def keep_unlogged_model(model: GenreModel, exc: BaseException, *, run_id: str) -> GenrelibError:
    """Save a trained model whose evaluation or logging failed, and return the error that says so.

    The model goes to ``results/unlogged-models/<family>-<run id>`` (:data:`UNLOGGED_DIR`), a folder that
    ``genrelib predict --model``, ``genrelib evaluate`` and :func:`genrelib.inference.predict.load_model` read; the run gets
    a ``genrelib.unlogged_model`` tag naming it (when the store still takes tags).

    Returns
    -------
    GenrelibError
        One line: what failed, and where the model is (or that saving it failed too).
    """
    from genrelib import tracking

    first = (str(exc).strip().splitlines() or [""])[0][:300]
    what = f"training finished, but evaluating or logging the model failed ({type(exc).__name__}: {first})"
    folder = UNLOGGED_DIR / f"{model.family}-{run_id}"
    try:
        model.save(folder)
    except Exception as again:  # noqa: BLE001 - reported, with the first failure, in the error returned
        return GenrelibError(
            f"{what}; saving the model to {folder} failed too ({type(again).__name__}: {again}), "
            f"so it is lost; MLflow run {run_id} is marked FAILED"
        )
    try:
        tracking.set_tags({"genrelib.unlogged_model": str(folder.resolve())})
    except Exception as tag_exc:  # noqa: BLE001 - the store is what failed; the model is safe, say so below
        logger.warning("could not tag run %s with the saved model's folder: %s", run_id, tag_exc)
    return GenrelibError(
        f"{what}; the trained model is saved in {folder} (use it with --model {folder}); MLflow run "
        f"{run_id} is marked FAILED"
    )


def run_title(stage: str, config, ds: Dataset, *details: str) -> str:
    """A run name that tells runs apart: ``train-seed_cnn · genres (synthetic demo) · 30 epochs · seed 42``
    (epochs for the Keras families only; ``details`` before the seed: ``5x1 folds``, ``20 trials``)."""
    from genrelib.models import KERAS_FAMILIES

    epochs = (f"{config.epochs} epochs",) if config.family in KERAS_FAMILIES else ()
    return " · ".join((f"{stage}-{config.family}", data_name(ds), *details, *epochs, f"seed {config.seed}"))


def data_name(ds: Dataset) -> str:
    """What a data folder is called in MLflow (:func:`genrelib.datasets.demo.dataset_name`)."""
    from genrelib.datasets.demo import dataset_name

    return dataset_name(ds)
