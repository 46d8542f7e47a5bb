"""Ensembles of trained models: build one, measure it against its members on the same tracks, log and register it.

The model itself, and how it predicts and is evaluated, is :mod:`genrelib.models.ensemble`: each member extracts its
own features and aggregates its own rows per window and track; the ensemble averages the members' log-probabilities
with the weights. This module is the job around it (as :mod:`genrelib.training` is for one family):

- :func:`build` loads the members (any references :func:`genrelib.inference.predict.load_model` takes), checks them (one genre
  set, one weight per member, no negative weight) and records their split: the ensemble's test part is the tracks in
  every member's test part and in no member's training or validation part, so ``evaluate --part test`` never scores
  a track any member learned from;
- :func:`make_ensemble` evaluates the ensemble and its members on exactly those tracks of a data folder
  (:func:`genrelib.evaluation.scoring.evaluate_folder`), logs the comparison to MLflow (``genrelib.stage = ensemble``) and logs
  the ensemble as the audio model, registered as ``genre-classifier`` with the alias ``ensemble``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genrelib.datasets.splits import SPLIT_NAMES, track_key
from genrelib.datasets.tracks import Dataset, scan
from genrelib.errors import ModelError
from genrelib.models.ensemble import EnsembleModel, check_weights

logger = logging.getLogger(__name__)

ALIAS = "ensemble"


def _name(ref, k: int) -> str:
    if ref is None:
        return "reference"
    if hasattr(ref, "family"):
        return f"model {k + 1} ({ref.family})"
    return str(ref)


def _version(ref) -> str | None:
    """The registry version of a member given by a registry reference (aliases move; the record must not)."""
    if not isinstance(ref, str | Path) or str(ref) == "reference" or Path(str(ref)).expanduser().exists():
        return None
    from genrelib import tracking

    return tracking.registered_version(str(ref))


def common_split(members: list, names: list[str]) -> dict:
    """The ensemble's split: ``{"train": [...], "valid": [...], "test": [...]}`` or ``{}`` when a member records
    none (then the ensemble cannot be evaluated on a part, only on a folder of unseen tracks).

    Training and validation tracks are every member's; test tracks are those of the first member's test part that
    are in every member's test part and in no member's training or validation part (matched as
    :func:`genrelib.datasets.splits.track_key`).
    """
    from genrelib.evaluation.scoring import split_tracks

    lists = []
    for m, name in zip(members, names):
        try:
            lists.append(split_tracks(m))
        except ModelError as exc:
            logger.info("%s records no split (%s); the ensemble records none", name, exc)
            return {}
    seen = {track_key(t) for parts in lists for p in ("train", "valid") for t in parts[p]}
    tests = [{track_key(t) for t in parts["test"]} for parts in lists]
    test = [t for t in lists[0]["test"] if track_key(t) not in seen and all(track_key(t) in s for s in tests)]
    return {p: sorted({t for parts in lists for t in parts[p]}) for p in SPLIT_NAMES[:2]} | {"test": test}


def build(models: list | str, weights: list[float] | str | None = None) -> EnsembleModel:
    """An ensemble of trained models.

    Parameters
    ----------
    models : list or str
        Two or more models: GenreModels, or references :func:`genrelib.inference.predict.load_model` takes (registry names,
        run ids, folders, ``"reference"``), of any families with the same genres; a string: references separated by
        spaces.
    weights : list of float or str, optional
        One non-negative weight per model (default: equal); a string: numbers separated by spaces.

    Raises
    ------
    ModelError
        When the models know different genre sets (both are named), the weights do not match the models, a weight
        is negative, a model is itself an ensemble, or a model cannot be loaded.
    """
    from genrelib.inference.predict import load_model

    if isinstance(models, str):  # "ref1 ref2" (a notebook parameter)
        models = models.split()
    if isinstance(weights, str):
        try:
            weights = [float(w) for w in weights.split()]
        except ValueError as exc:
            raise ModelError(f"weights must be numbers separated by spaces, got {weights!r}") from exc
    if len(models) < 2:
        raise ModelError(f"an ensemble needs at least two models, got {len(models)}")
    w = check_weights(weights, len(models))  # before loading anything
    names = [_name(ref, k) for k, ref in enumerate(models)]
    members = [load_model(ref) for ref in models]
    records = [
        {
            "name": n,
            "family": m.family,
            "weight": float(wk),
            "version": _version(ref),
            "data_root": m.info.get("data_root"),
            "manifest_hash": m.info.get("manifest_hash"),
            "split": m.info.get("split"),
            "test_tracks": None,
        }
        for n, m, wk, ref in zip(names, members, w, models)
    ]
    model = EnsembleModel(members=members, weights=w, genres=list(members[0].genres), info={"members": records})
    split = common_split(members, names)
    if split:
        from genrelib.evaluation.scoring import split_tracks

        for rec, m in zip(records, members):
            rec["test_tracks"] = len(split_tracks(m)["test"])
        model.info["split_tracks"] = split
    model.info["split"] = "ensemble (" + ", ".join(str(r["split"]) for r in records) + ")"
    for key in ("data_root", "manifest_hash"):
        values = {r[key] for r in records}
        if len(values) == 1 and None not in values:
            model.info[key] = values.pop()
    model.info["synthetic_demo"] = all(bool(m.info.get("synthetic_demo")) for m in members)
    trained_on = {m.info.get("trained_on") or m.info.get("data_root") for m in members}
    if len(trained_on) == 1 and None not in trained_on:
        model.info["trained_on"] = trained_on.pop()
    return model


def split_note(model: EnsembleModel) -> str | None:
    """One line saying that the members' test parts differ and how many tracks they share, or None."""
    counts = [r.get("test_tracks") for r in model.info.get("members", [])]
    common = model.info.get("split_tracks", {}).get("test")
    if common is None or not counts or all(c == len(common) for c in counts):
        return None
    each = ", ".join(f"{r['name']} {c}" for r, c in zip(model.info["members"], counts))
    return (
        f"the members' test parts differ ({each} tracks): {len(common)} are in every member's test part and in "
        "no member's training or validation part; only those are the ensemble's test tracks"
    )


@dataclass
class EnsembleResult:
    """What :func:`make_ensemble` returns."""

    model: EnsembleModel
    report: object | None = None  # the ensemble's Report; report.members: the members' on the same tracks
    part: str | None = None
    run_id: str | None = None
    model_uri: str | None = None
    registered_version: str | None = None
    extra: dict = field(default_factory=dict)

    def table(self):
        """One row per member and one for the ensemble: name, family, weight, tracks, per-track accuracy, per-row
        accuracy (segments or windows; the ensemble's rows are windows), per-track macro F1."""
        import pandas as pd

        if self.report is None:
            raise ModelError("the ensemble was not evaluated; give data (--data) to compare it with its members")
        w = self.model.weights / self.model.weights.sum()
        rows = []
        for name, m, wk, rep in zip(self.model.member_names, self.model.members, w, self.report.members):
            rows.append(
                {
                    "model": name,
                    "family": m.family,
                    "weight": float(wk),
                    "tracks": len(rep.track_ids),
                    "track_accuracy": rep.track.metrics["accuracy"],
                    "row_accuracy": rep.segment.metrics["accuracy"],
                    "track_f1_macro": rep.track.metrics["f1_macro"],
                }
            )
        r = self.report
        rows.append(
            {
                "model": "ensemble",
                "family": "ensemble",
                "weight": 1.0,
                "tracks": len(r.track_ids),
                "track_accuracy": r.track.metrics["accuracy"],
                "row_accuracy": r.segment.metrics["accuracy"],
                "track_f1_macro": r.track.metrics["f1_macro"],
            }
        )
        return pd.DataFrame(rows)

    @property
    def best_member(self) -> tuple[str, float]:
        """The member with the highest per-track accuracy on the same tracks, and that accuracy."""
        accs = [rep.track.metrics["accuracy"] for rep in self.report.members]
        k = int(np.argmax(accs))
        return self.model.member_names[k], float(accs[k])

    @property
    def gain(self) -> float:
        """Per-track accuracy of the ensemble minus the best member's, on the same tracks."""
        return float(self.report.track.metrics["accuracy"]) - self.best_member[1]


def make_ensemble(
    models: list | str,
    *,
    weights: list[float] | str | None = None,
    data: str | Path | Dataset | None = None,
    part: str | None = "test",
    log: bool = True,
    register: bool = True,
    promote: str = "auto",
    out: str | Path | None = None,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    tracking_uri: str | None = None,
    tags: dict | None = None,
) -> EnsembleResult:
    """Build an ensemble, compare it with its members on the same tracks, log and register it.

    Parameters
    ----------
    models, weights
        See :func:`build`.
    data : path or Dataset, optional
        A labelled folder: the ensemble and every member are evaluated on the same tracks of it
        (:func:`genrelib.evaluation.scoring.evaluate_folder`; the members' reports come with the ensemble's).
    part : {"test", "valid", "train"} or None
        The part of the ensemble's split to evaluate on (default ``test``: tracks in every member's test part,
        :func:`common_split`); None: every track of ``data``.
    log, register, promote
        Log an MLflow run (``genrelib.stage = ensemble``) with the comparison table (``reports/ensemble_members.csv``),
        the members' and the ensemble's metrics and the ensemble's report; log the ensemble as the audio model and
        register it as ``genre-classifier`` (alias ``ensemble``, moved by :func:`genrelib.tracking.registry.promote`'s rule).
    out : path, optional
        Also save the ensemble's folder here.

    Returns
    -------
    EnsembleResult
    """
    from genrelib.evaluation.scoring import evaluate_folder, log_report

    model = build(models, weights)
    result = EnsembleResult(model=model, part=part if data is not None else None)
    result.extra["split_note"] = split_note(model)
    ds = None
    if data is not None:
        ds = data if isinstance(data, Dataset) else scan(data)
        result.report = evaluate_folder(model, ds, part=part, n_jobs=n_jobs, progress=progress)
    if out is not None:
        model.save(out)
    if not log:
        return result
    from genrelib import tracking
    from genrelib.training.trainer import data_name

    prefix = part or "folder"  # as log_report names it: the part scored
    params = {
        "ensemble.members": " ".join(model.member_names),
        "ensemble.families": ",".join(m.family for m in model.members),
        "ensemble.weights": ",".join(f"{v:g}" for v in model.weights),
        "ensemble.versions": ",".join(r["version"] or "" for r in model.info["members"]),
        "part": str(part),
    }
    if ds is not None:
        params |= {
            "data.root": str(ds.root.resolve()),
            "data.tracks": len(ds.tracks),
            "data.manifest_hash": ds.manifest_hash(),
        }
    with tracking.start_run(
        run_name or "ensemble",
        parent_run_id=parent_run_id,
        params=params,
        uri=tracking_uri,
        tags={"genrelib.stage": "ensemble", "genrelib.family": "ensemble", **(tags or {})},
    ) as run:
        result.run_id = run.info.run_id
        accuracy = None
        if result.report is not None:
            log_report(result.report, prefix=prefix)
            table = result.table()
            tracking.log_table(table, "reports/ensemble_members.csv")
            tracking.log_metrics(
                {f"member{k + 1}_{prefix}_track_accuracy": v for k, v in enumerate(table["track_accuracy"][:-1])}
                | {
                    f"best_member_{prefix}_track_accuracy": result.best_member[1],
                    f"gain_{prefix}_track_accuracy": result.gain,
                }
            )
            accuracy = result.report.track.metrics["accuracy"] if part == "test" else None
        from genrelib.inference import serving

        logged = tracking.log_genre_model(
            model,
            **serving.audio_pyfunc(model.genres),
            register=register,
            test_track_accuracy=accuracy,
            dataset_name=data_name(ds) if ds is not None else None,
            promote_alias=promote,
        )
    result.model_uri, result.registered_version = logged["model_uri"], logged.get("version")
    result.extra["alias_reason"] = logged.get("alias_reason")
    return result
