"""Commands that make models: ``train`` (and ``--cv``), ``sweep``, ``ensemble``, ``train-reference``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrelib.cli.common import (
    REGISTERED,
    one_line,
    print_metrics,
    print_skipped,
    print_split_table,
    skipped_exit,
    train_config,
)
from genrelib.errors import DatasetError


def cmd_cv(args: argparse.Namespace, cfg) -> int:
    from genrelib.training.crossval import cross_validate

    if cfg.split != "random":
        raise DatasetError(
            f"--cv makes its own folds; leave out --split {cfg.split}"
            + (f" / --split-file {cfg.split_file}" if cfg.split_file else "")
        )
    res = cross_validate(
        args.data,
        cfg,
        folds=args.cv,
        repeats=args.repeats,
        group=args.group,
        n_jobs=args.jobs,
        progress=sys.stderr.isatty(),
        scheduler=args.scheduler,
        store=args.store,
    )
    grouped = f", grouped by {args.group} (an approximation of artist groups)" if args.group else ""
    print(
        f"{args.model}: {args.cv}-fold cross-validation by track{grouped}, {args.repeats} repeat(s), seed {args.seed}"
    )
    print(res.table().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for key, label in (
        ("test_track_accuracy", "track accuracy"),
        ("test_segment_accuracy", "segment accuracy"),
        ("test_track_f1_macro", "track macro F1"),
    ):
        print(f"{label:<17} {res.mean[key]:.3f} +- {res.std[key]:.3f} (mean +- sd over {len(res.folds)} folds)")
    print(f"logged as run {res.run_id} (one nested run per fold; fold models are not registered)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from genrelib.features.stored import StoredFeatureSet
    from genrelib.training.trainer import train

    cfg = train_config(args)
    if args.cv is not None:
        return cmd_cv(args, cfg)
    if args.group:
        raise DatasetError(f"--group {args.group} groups the folds of cross-validation; give --cv K with it")
    res = train(
        args.data,
        cfg,
        n_jobs=args.jobs,
        register=not args.no_register,
        progress=sys.stderr.isatty(),
        scheduler=args.scheduler,
        store=args.store,
        promote="always" if args.promote else "auto",
    )
    sizes = {p: sum(c.values()) for p, c in res.split_sizes.items()}
    print(
        f"run {res.run_id}: {args.model} on {res.extra['data_root']} "
        f"(tracks: train {sizes['train']}, valid {sizes['valid']}, test {sizes['test']}; split {cfg.split})"
    )
    print_split_table(res.split_sizes)
    left = res.extra["left_out"]
    if left:
        shown = ", ".join(left[:5]) + (", ..." if len(left) > 5 else "")
        print(
            f"left out of the {cfg.split} split: {len(left)} track{'s' if len(left) > 1 else ''} "
            f"in none of its lists: {shown}"
        )
    record = res.extra.get("split_file")
    if record:
        print(
            f"split file {record['files']} (digest {record['digest']}): {record['matched']} of its "
            f"{record['listed']} tracks are in the data"
        )
        missing = record["missing"]
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            print(f"missing from the data: {len(missing)} listed track{'s' if len(missing) > 1 else ''}: {shown}")
    for problem in res.extra["split_problems"]:
        print(f"trained anyway (--force): {problem}")
    print_skipped(res.extra["skipped"])
    if res.model.info.get("still_improving"):
        n = res.model.info["epochs_run"]
        print(
            f"validation loss was still falling at the last epoch ({n}); more epochs would likely help: "
            f"--epochs {2 * n}"
        )
    if res.report is None:
        print("no test tracks: no test metrics")
    else:
        print("test metrics (held-out tracks, never seen in training or model selection):")
        print_metrics(res.report)
    if res.registered_version:
        print(f"registered as {REGISTERED}/{res.registered_version}; model URI {res.model_uri}")
        print(res.extra["alias_reason"])
    if isinstance(res.features, StoredFeatureSet):  # (extract reports bad cache entries itself, as it meets them)
        for problem in res.features.repaired:
            print(f"genrelib: warning: {one_line(problem)}", file=sys.stderr)
    if res.features.cache_error:
        print(f"genrelib: warning: {res.features.cache_error}", file=sys.stderr)
    return skipped_exit(res.extra["skipped"])


def cmd_sweep(args: argparse.Namespace) -> int:
    from genrelib.training import OBJECTIVE, parse_space, sweep

    space = parse_space(args.param, args.model)  # a bad --param is an error before anything is read
    cfg = train_config(args)
    res = sweep(
        args.data,
        cfg,
        trials=args.trials,
        space=space,
        prune=not args.no_prune,
        n_jobs=args.jobs,
        register=not args.no_register,
        progress=sys.stderr.isatty(),
        scheduler=args.scheduler,
        store=args.store,
    )
    print(
        f"sweep {res.run_id}: {args.trials} trials of {args.model} on the validation tracks of {args.data} "
        f"(split {cfg.split}, seed {args.seed}); objective: {OBJECTIVE}, lower is better"
    )
    print(f"searched: {'; '.join(map(str, space.values()))}")
    table = res.table()
    cols = ["trial", "state", OBJECTIVE, "valid_track_accuracy", "epochs", *space]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for row in res.trials:
        if row.get("error"):
            print(f"trial {row['trial']} failed: {row['error']}")
    best = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in res.best_params.items())
    print(f"best: {best} ({OBJECTIVE} {res.best_value:.4f})")
    final = res.result
    print(f"the best configuration trained again (run {final.run_id}) and tested once on the held-out tracks:")
    if final.report is None:
        print("no test tracks: no test metrics")
    else:
        print_metrics(final.report)
    if final.registered_version:
        print(f"registered as {REGISTERED}/{final.registered_version}; model URI {final.model_uri}")
        print(final.extra["alias_reason"])
    print_skipped(final.extra["skipped"])
    print(f"to train it again: {res.command(args.data)}")
    return skipped_exit(final.extra["skipped"])


def cmd_ensemble(args: argparse.Namespace) -> int:
    from genrelib.training.ensemble import make_ensemble

    part = None if args.part == "all" else args.part
    res = make_ensemble(
        args.models,
        weights=args.weights,
        data=args.data,
        part=part,
        log=not args.no_log,
        register=not args.no_register,
        promote="always" if args.promote else "auto",
        out=args.out,
        n_jobs=args.jobs,
        progress=sys.stderr.isatty(),
    )
    model = res.model
    w = model.weights / model.weights.sum()
    print(
        f"ensemble of {len(model.members)} models, mean log-probability per window and track with weights "
        + ", ".join(f"{n} ({m.family}) {wk:.3g}" for n, m, wk in zip(model.member_names, model.members, w))
    )
    if res.extra["split_note"]:
        print(res.extra["split_note"])
    if res.report is not None:
        rep = res.report
        where = f"the {part} part of its split" if part else "every track"
        print(
            f"evaluated on {where} in {args.data}: {len(rep.track_ids)} tracks, the same for every model"
            + (f" (found {rep.part_found} of the ensemble's {rep.part_recorded} {part} tracks)" if part else "")
        )
        if part and len(rep.track_ids) <= 20:
            print("  tracks: " + ", ".join(map(str, rep.track_ids)))
        table = res.table().rename(columns={"row_accuracy": "segment/window accuracy"})
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        name, best = res.best_member
        print(f"gain over the best member ({name}, {best:.3f}): {res.gain:+.3f} per-track accuracy")
    else:
        print("not evaluated (give --data DATA to compare it with its members on the same tracks)")
    if args.out:
        print(f"saved to {args.out}")
    if res.run_id:
        print(f"logged as run {res.run_id}")
    if res.registered_version:
        print(f"registered as {REGISTERED}/{res.registered_version}; model URI {res.model_uri}")
        print(res.extra["alias_reason"])
    return 0


def cmd_train_reference(args: argparse.Namespace) -> int:
    from genrelib.inference import reference

    model, result = reference.train_reference(args.table, seed=args.seed)
    out = Path(args.out) if args.out else None
    if out is not None:
        model.save(out)
        reference.write_card(model, out)
    print(
        f"reference model ({result['chosen']}) trained on the fault-filtered TRAIN split "
        f"({result['rows']['train']} tracks), chosen on VALID ({result['rows']['valid']})"
    )
    print(
        f"per-track accuracy on the fault-filtered TEST split ({result['rows']['test']} tracks): "
        f"{result['test_accuracy']:.1%}"
    )
    if out is not None:
        print(f"saved to {out} (with MODEL_CARD.md)")
    if not args.no_log:
        from genrelib import tracking

        with tracking.start_run(
            "train-reference",
            params={"table": str(args.table), "seed": args.seed, "split": "gtzan-ff", "chosen": result["chosen"]},
            tags={"genrelib.stage": "train-reference", "genrelib.family": "summary"},
        ) as run:
            tracking.log_metrics(
                {
                    "test_track_accuracy": result["test_accuracy"],
                    **{f"valid_accuracy_{k}": v for k, v in result["validation_accuracy"].items()},
                }
            )
            from genrelib.inference import serving

            logged = tracking.log_genre_model(model, **serving.audio_pyfunc(model.genres), register=True)
            tracking.set_alias(logged["version"], "reference")
        print(f"logged as run {run.info.run_id}; registered as {REGISTERED}/{logged['version']} (@reference)")
    return 0


def cmd_train_default(args: argparse.Namespace) -> int:
    from genrelib.datasets import scan
    from genrelib.training.crossval import cv_groups
    from genrelib.training.default_model import train_default

    ds = scan(args.data)
    cv_groups(ds, args.group)  # a bad --group or names that are not GTZAN's: refused before any extraction
    res = train_default(
        ds,
        out=args.out,
        folds=args.folds,
        repeats=args.repeats,
        seed=args.seed,
        group=args.group,
        n_jobs=args.jobs,
        progress=sys.stderr.isatty(),
        log=not args.no_log,
        table=args.table,
    )
    print(f"default model: musicnn (MSD) mean+std features, linear head; {res.info['trained_on']}")
    print(f"grouped cross-validation ({res.info['cv']}), per-track accuracy:")
    print(res.cv_table().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"chosen C = {res.C:g}; written to {res.folder}" + (f"; MLflow run {res.run_id}" if res.run_id else ""))
    print_skipped(res.features.skipped)
    return skipped_exit(res.features.skipped)
