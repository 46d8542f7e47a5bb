"""``genrelib <verb>``: the command line. Each verb calls the same functions the notebooks call.

Errors in the input end the command with a one-line message on stderr and exit code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .errors import DatasetError, GenrelibError

REGISTERED = "genre-classifier"


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from . import demo

    def existing() -> set:
        return {p for p in Path(args.out).rglob("*") if p.is_file() and p.name != demo.MARKER}

    if args.personal:
        settings = demo.demo_settings("personal", seed=args.seed, overlap=args.overlap, sr=demo.SR)
    else:
        settings = demo.demo_settings("genres", seed=args.seed, overlap=args.overlap, sr=demo.SR,
                                      seconds=args.seconds)
    old = demo.stale_settings(args.out, settings)
    # files made with other settings or by an older generator are written again (counted as written, not kept)
    stale = old is not None
    before = set() if stale else existing()
    if args.personal:
        paths = demo.make_personal(args.out, n=args.personal, seed=args.seed, progress=sys.stderr.isatty(),
                                   overlap=args.overlap)
        what = f"{len(paths)} synthetic personal songs"
    else:
        demo.make_demo(args.out, per_genre=args.per_genre, seconds=args.seconds, seed=args.seed,
                       progress=sys.stderr.isatty(), overlap=args.overlap)
        what = f"{args.per_genre} synthetic tracks per genre ({args.seconds:g} s each)"
    written = len(existing() - before)
    kept = f", {len(before)} already there and kept" if before else ""
    redone = (f" (the folder held music made {'with ' + json.dumps(old) if old else 'by an older demo generator'}"
              f": written again with overlap {settings['overlap']:g}, seed {args.seed})") if stale else ""
    print(f"{what} under {args.out}: {written} written{kept}{redone}")
    print("note: this music is synthetic; results on it say nothing about real music")
    return 0


def _print_skipped(skipped: list[tuple[str, str]]) -> None:
    if skipped:
        print(f"skipped {len(skipped)} files:")
        for tid, why in skipped:
            print(f"  {tid}: {why}")


def _skipped_exit(skipped: list[tuple[str, str]]) -> int:
    """Exit code of a command that read a data folder: 1 when any file or folder was skipped, else 0."""
    if not skipped:
        return 0
    print(f"genrelib: {len(skipped)} file{'s' if len(skipped) > 1 else ''} could not be read (listed above) and "
          "{} left out; exit code 1".format("were" if len(skipped) > 1 else "was"), file=sys.stderr)
    return 1


def _print_failures(failures) -> None:
    for _, why in failures:
        print(f"genrelib: error: {why}", file=sys.stderr)


def _cmd_scan(args: argparse.Namespace) -> int:
    from .dataset import scan

    ds = scan(args.root, full=args.full)
    print(f"{ds.root}: {len(ds.tracks)} tracks in {len(ds.genres)} genres")
    for genre, n in ds.counts().items():
        print(f"  {genre:<12} {n:>5}")
    if args.full:
        print("every file decoded to the end, as features and train decode them")
    else:
        print("headers checked; features and train decode every file fully and also skip files that are cut short, "
              "silent or decode to NaN (scan --full decodes them here)")
    _print_skipped(ds.skipped)
    return _skipped_exit(ds.skipped)


def _cmd_features(args: argparse.Namespace) -> int:
    from .dataset import scan
    from .features import cache_path, extract, write_error
    from .train import feature_config_for

    if args.map_method is not None and args.map is None:
        raise GenrelibError("--map-method needs --map FILE.png (where to write the map)")
    # as notebook 02: the family's kind, unless a kind is given explicitly (default family seed_cnn: mfcc)
    cfg = feature_config_for(args.family or "seed_cnn", kind=args.kind or "", n_mfcc=args.n_mfcc, n_mels=args.n_mels)
    if args.store or args.shard_size is not None:
        return _features_store(args, cfg)
    if args.out is None:
        raise GenrelibError("give --out FILE (.npz, or .csv for summary and musicnn) or --store DIR (a sharded store)")
    out = Path(args.out)
    # what can be known before the work is done is refused before it
    _check_writable(out, "--out", "features.csv" if cfg.per_window else "features.npz")
    if args.map is not None:
        _check_writable(Path(args.map), "--map", "map.png")
    ds = scan(args.root)
    fs = extract(ds, cfg, n_jobs=args.jobs, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                 progress=sys.stderr.isatty(), scheduler=args.scheduler)
    if fs.cache_error:
        print(f"genrelib: warning: {fs.cache_error}", file=sys.stderr)
    try:
        if cfg.per_window:
            fs.save_table(out)
        else:
            fs.save(out)
    except GenrelibError as exc:
        if args.no_cache or fs.cache_error:
            raise GenrelibError(f"{exc}; the features were not kept anywhere (no cache was written)") from exc
        raise GenrelibError(f"{exc}; the features are kept in the cache ({cache_path(ds, cfg, args.cache_dir)}), so "
                            "the same command, run again once --out can be written, reads them from there") from exc
    print(f"{cfg.kind} features of {len(fs.tracks)} tracks: X {fs.X.shape} float32 -> {out}")
    if args.map is not None:
        from .plots import plot_embedding_map

        fig = plot_embedding_map(fs.X, fs.row_genres, track_ids=fs.track_ids, method=args.map_method or "pca",
                                 title=f"{cfg.kind} features by genre")
        map_path = Path(args.map)
        try:
            map_path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(map_path, dpi=110)
        except OSError as exc:
            map_path.unlink(missing_ok=True)  # a half-written image
            raise GenrelibError(f"{write_error(map_path, exc, example='map.png')}; the features were written to "
                                f"{out}") from exc
        print(f"map of the features, one point per track ({args.map_method or 'pca'}) -> {map_path}")
    _print_skipped(fs.skipped)
    return _skipped_exit(fs.skipped)


def _features_store(args: argparse.Namespace, cfg) -> int:
    """``features --store DIR``: extract into (or resume) a sharded store; ``--out`` also writes the whole set."""
    from .dataset import scan
    from .store import extract_to_store

    if not args.store:
        raise GenrelibError("--shard-size needs --store DIR (where the shards go)")
    if args.map is not None:
        raise GenrelibError("--map reads every feature into memory; leave it out with --store (or use --out)")
    if args.out is not None:
        _check_writable(Path(args.out), "--out", "features.csv" if cfg.per_window else "features.npz")
    ds = scan(args.root)
    sfs = extract_to_store(ds, cfg, args.store, shard_size=args.shard_size, n_jobs=args.jobs,
                           scheduler=args.scheduler, progress=sys.stderr.isatty())
    for problem in sfs.repaired:
        print(f"genrelib: warning: recomputed shard {problem}", file=sys.stderr)
    print(f"{cfg.kind} features of {len(sfs.tracks)} tracks: {len(sfs)} rows of {tuple(cfg.row_shape)} float32 in "
          f"{sfs.manifest['n_shards']} shards -> {sfs.path}")
    if args.out is not None:
        fs = sfs.load()
        fs.save_table(args.out) if cfg.per_window else fs.save(args.out)
        print(f"X {fs.X.shape} float32 -> {args.out}")
    _print_skipped(sfs.skipped)
    return _skipped_exit(sfs.skipped)


def _check_writable(path: Path, option: str, example: str) -> None:
    """Refuse, before any work, an output path that is a folder or lies in a folder that cannot be written."""
    if path.is_dir():
        raise GenrelibError(f"{option} {path} is a folder; give a file name (e.g. {path / example})")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the folders still to be made go in the first that is
        folder = folder.parent
    if not folder.is_dir():
        raise GenrelibError(f"{option} {path}: {folder} is a file, not a folder; give another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise GenrelibError(f"{option} {path}: the folder {folder} is not writable (read-only or permission "
                            "denied); make it writable or write somewhere else")


def _print_metrics(report) -> None:
    print(f"{'':<10}{'accuracy':>10}{'precision':>11}{'recall':>9}{'F1':>8}   (weighted; macro F1)")
    for level in ("segment", "track"):
        m = getattr(report, level).metrics
        print(f"{level:<10}{m['accuracy']:>10.3f}{m['precision_weighted']:>11.3f}{m['recall_weighted']:>9.3f}"
              f"{m['f1_weighted']:>8.3f}   ({m['f1_macro']:.3f})")


def _print_split_table(split_sizes: dict[str, dict[str, int]]) -> None:
    parts = ("train", "valid", "test")
    print("tracks per genre:")
    print(f"  {'genre':<12}" + "".join(f"{p:>7}" for p in parts))
    for genre in split_sizes["train"]:
        print(f"  {genre:<12}" + "".join(f"{split_sizes[p][genre]:>7}" for p in parts))
    print(f"  {'total':<12}" + "".join(f"{sum(split_sizes[p].values()):>7}" for p in parts))


def _cmd_cv(args: argparse.Namespace, cfg) -> int:
    from .crossval import cross_validate

    if cfg.split != "random":
        raise DatasetError(f"--cv makes its own folds; leave out --split {cfg.split}"
                           + (f" / --split-file {cfg.split_file}" if cfg.split_file else ""))
    res = cross_validate(args.data, cfg, folds=args.cv, repeats=args.repeats, group=args.group, n_jobs=args.jobs,
                         progress=sys.stderr.isatty(), scheduler=args.scheduler, store=args.store)
    grouped = f", grouped by {args.group} (an approximation of artist groups)" if args.group else ""
    print(f"{args.model}: {args.cv}-fold cross-validation by track{grouped}, {args.repeats} repeat(s), seed {args.seed}")
    print(res.table().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for key, label in (("test_track_accuracy", "track accuracy"), ("test_segment_accuracy", "segment accuracy"),
                       ("test_track_f1_macro", "track macro F1")):
        print(f"{label:<17} {res.mean[key]:.3f} +- {res.std[key]:.3f} (mean +- sd over {len(res.folds)} folds)")
    print(f"logged as run {res.run_id} (one nested run per fold; fold models are not registered)")
    return 0


_STREAMED = (": the data set is never held in memory; the Keras families stream its shards through a bounded "
             "shuffle buffer")


def _add_scale_options(p: argparse.ArgumentParser, use: str) -> None:
    """``--scheduler`` and ``--store`` of the commands that extract features (train, sweep, evaluate)."""
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="extract the features on a Dask cluster (as `genrelib features --scheduler`): tcp://HOST:8786 "
                        "or local:N; default: local processes")
    p.add_argument("--store", default=None, metavar="DIR",
                   help="extract into the sharded feature store under DIR (as `genrelib features --store`, resuming "
                        f"what is there) and {use} (docs/scaling.md)")


#: TrainConfig fields set by `train` and `sweep` options of the same name (dashes for underscores).
_TRAINING_FIELDS = ("learning_rate", "dropout", "l2", "filters", "logreg_c", "time_masks", "freq_masks",
                    "time_mask_width", "freq_mask_width", "gain_db", "noise_std", "mixup", "aug_copies",
                    "pitch_shift", "time_stretch", "time_shift", "noise_snr")


def _train_config(args: argparse.Namespace):
    """The TrainConfig of `train` and `sweep` options (options left out keep TrainConfig's defaults)."""
    from .train import TrainConfig

    chosen = {k: getattr(args, k) for k in _TRAINING_FIELDS if getattr(args, k) is not None}
    if args.spec_augment:  # the preset; explicit --time-masks / --freq-masks win
        chosen = {"time_masks": 2, "freq_masks": 2, **chosen}
    return TrainConfig(family=args.model, epochs=args.epochs, split=args.split or "random",
                       split_file=args.split_file or "", seed=args.seed,
                       class_weights=args.class_weights, patience=args.patience, batch_size=args.batch_size,
                       force=args.force, **chosen)


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import train

    cfg = _train_config(args)
    if args.cv is not None:
        return _cmd_cv(args, cfg)
    if args.group:
        raise DatasetError(f"--group {args.group} groups the folds of cross-validation; give --cv K with it")
    res = train(args.data, cfg, n_jobs=args.jobs, register=not args.no_register, progress=sys.stderr.isatty(),
                scheduler=args.scheduler, store=args.store,
                promote="always" if args.promote else "auto")
    sizes = {p: sum(c.values()) for p, c in res.split_sizes.items()}
    print(f"run {res.run_id}: {args.model} on {res.extra['data_root']} "
          f"(tracks: train {sizes['train']}, valid {sizes['valid']}, test {sizes['test']}; split {cfg.split})")
    _print_split_table(res.split_sizes)
    left = res.extra["left_out"]
    if left:
        shown = ", ".join(left[:5]) + (", ..." if len(left) > 5 else "")
        print(f"left out of the {cfg.split} split: {len(left)} track{'s' if len(left) > 1 else ''} "
              f"in none of its lists: {shown}")
    record = res.extra.get("split_file")
    if record:
        print(f"split file {record['files']} (digest {record['digest']}): {record['matched']} of its "
              f"{record['listed']} tracks are in the data")
        missing = record["missing"]
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            print(f"missing from the data: {len(missing)} listed track{'s' if len(missing) > 1 else ''}: {shown}")
    for problem in res.extra["split_problems"]:
        print(f"trained anyway (--force): {problem}")
    _print_skipped(res.extra["skipped"])
    if res.model.info.get("still_improving"):
        n = res.model.info["epochs_run"]
        print(f"validation loss was still falling at the last epoch ({n}); more epochs would likely help: "
              f"--epochs {2 * n}")
    if res.report is None:
        print("no test tracks: no test metrics")
    else:
        print("test metrics (held-out tracks, never seen in training or model selection):")
        _print_metrics(res.report)
    if res.registered_version:
        print(f"registered as {REGISTERED}/{res.registered_version}; model URI {res.model_uri}")
        print(res.extra["alias_reason"])
    if res.features.cache_error:
        print(f"genrelib: warning: {res.features.cache_error}", file=sys.stderr)
    return _skipped_exit(res.extra["skipped"])


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .tune import OBJECTIVE, parse_space, sweep

    space = parse_space(args.param, args.model)  # a bad --param is an error before anything is read
    cfg = _train_config(args)
    res = sweep(args.data, cfg, trials=args.trials, space=space, prune=not args.no_prune, n_jobs=args.jobs,
                register=not args.no_register, progress=sys.stderr.isatty(), scheduler=args.scheduler,
                store=args.store)
    print(f"sweep {res.run_id}: {args.trials} trials of {args.model} on the validation tracks of {args.data} "
          f"(split {cfg.split}, seed {args.seed}); objective: {OBJECTIVE}, lower is better")
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
        _print_metrics(final.report)
    if final.registered_version:
        print(f"registered as {REGISTERED}/{final.registered_version} (alias @{args.model.replace('_', '-')}); "
              f"model URI {final.model_uri}")
    _print_skipped(final.extra["skipped"])
    print(f"to train it again: {res.command(args.data)}")
    return _skipped_exit(final.extra["skipped"])


def _add_training_options(t: argparse.ArgumentParser) -> None:
    """Hyper-parameter and augmentation options shared by `train` and `sweep`."""
    h = t.add_argument_group("hyper-parameters (default: the family's)")
    h.add_argument("--learning-rate", type=float, default=None, help="Adam's learning rate (Keras families)")
    h.add_argument("--dropout", type=float, default=None, help="dropout rate (Keras families; default 0.3)")
    h.add_argument("--l2", type=float, default=None, help="L2 factor of every weight layer (seed_cnn; default 0.001)")
    h.add_argument("--filters", type=int, default=None,
                   help="filters of the first convolution block; later blocks keep the family's ratios (default 32)")
    h.add_argument("--logreg-c", type=float, default=None,
                   help="summary, musicnn: only the logistic regression with this C (default: choose the candidate "
                        "on validation)")
    a = t.add_argument_group(
        "augmentation of the training tracks (Keras families; all off by default; validation and test tracks are "
        "never augmented)")
    a.add_argument("--spec-augment", action="store_true",
                   help="SpecAugment masks on the fly: 2 time and 2 frequency masks per segment (as --time-masks 2 "
                        "--freq-masks 2; those options, given, win)")
    a.add_argument("--time-masks", type=int, default=None, help="time masks per training segment (on the fly)")
    a.add_argument("--freq-masks", type=int, default=None,
                   help="frequency masks (mel bands or MFCC coefficients) per training segment (on the fly)")
    a.add_argument("--time-mask-width", type=float, default=None,
                   help="widest time mask, as a share of a segment's frames (default 0.1)")
    a.add_argument("--freq-mask-width", type=float, default=None,
                   help="widest frequency mask, as a share of the bands (default 0.1)")
    a.add_argument("--mixup", type=float, default=None, metavar="ALPHA",
                   help="mixup: blend training segments and their labels by Beta(ALPHA, ALPHA) (on the fly; 0.2 is "
                        "common)")
    a.add_argument("--gain-db", type=float, default=None, help="random gain up to +- this many dB (on the fly)")
    a.add_argument("--noise-std", type=float, default=None,
                   help="Gaussian noise of this sd in dB per log-mel value / MFCC coefficient (on the fly)")
    a.add_argument("--aug-copies", type=int, default=None, metavar="K",
                   help="K precomputed, cached copies of every training track, each with its own random waveform "
                        "transforms below (needs at least one of them)")
    a.add_argument("--pitch-shift", type=float, default=None, metavar="SEMITONES",
                   help="copies: random pitch shift up to +- this many semitones")
    a.add_argument("--time-stretch", type=float, default=None, metavar="R",
                   help="copies: random tempo change, rate in 1 +- R (e.g. 0.1)")
    a.add_argument("--time-shift", type=float, default=None, metavar="SECONDS",
                   help="copies: random circular time shift up to +- this many seconds")
    a.add_argument("--noise-snr", type=float, default=None, metavar="DB",
                   help="copies: white noise at this signal-to-noise ratio in dB")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import tracking
    from .evaluate import evaluate_folder, log_report
    from .predict import load_model

    model = load_model(args.model)
    report = evaluate_folder(model, args.data, part=args.part, n_jobs=args.jobs, progress=sys.stderr.isatty(),
                             scheduler=args.scheduler, store=args.store)
    print(f"{model.family} model on {args.data}" + (f" ({args.part} part of its split)" if args.part else "")
          + f": {len(report.track_ids)} tracks")
    if report.part is not None:
        print(f"found {report.part_found} of the model's {report.part_recorded} {report.part} tracks in {args.data}")
    _print_metrics(report)
    for name, m, r in zip(getattr(model, "member_names", []), getattr(model, "members", []), report.members):
        print(f"  member {name} ({m.family}) on the same tracks: track accuracy {r.track.metrics['accuracy']:.3f}")
    if report.wrong:
        print("most confidently wrong tracks:")
        for w in report.wrong[:5]:
            print(f"  {w['track_id']}: {w['true']} predicted as {w['predicted']} ({w['probability']:.2f})")
    if not args.no_log:
        with tracking.start_run(f"evaluate-{model.family}", params={"model": str(args.model), "data": str(args.data),
                                                                   "part": str(args.part)},
                                tags={"genrelib.stage": "evaluate"}) as run:
            log_report(report, prefix="eval")
        print(f"logged as run {run.info.run_id}")
    return 0


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from .ensemble import make_ensemble

    part = None if args.part == "all" else args.part
    res = make_ensemble(args.models, weights=args.weights, data=args.data, part=part, log=not args.no_log,
                        register=not args.no_register, promote="always" if args.promote else "auto", out=args.out,
                        n_jobs=args.jobs, progress=sys.stderr.isatty())
    model = res.model
    w = model.weights / model.weights.sum()
    print(f"ensemble of {len(model.members)} models, mean log-probability per window and track with weights "
          + ", ".join(f"{n} ({m.family}) {wk:.3g}" for n, m, wk in zip(model.member_names, model.members, w)))
    if res.extra["split_note"]:
        print(res.extra["split_note"])
    if res.report is not None:
        rep = res.report
        where = f"the {part} part of its split" if part else "every track"
        print(f"evaluated on {where} in {args.data}: {len(rep.track_ids)} tracks, the same for every model"
              + (f" (found {rep.part_found} of the ensemble's {rep.part_recorded} {part} tracks)" if part else ""))
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


def _cmd_train_reference(args: argparse.Namespace) -> int:
    from . import reference

    model, result = reference.train_reference(args.table, seed=args.seed)
    out = Path(args.out) if args.out else None
    if out is not None:
        model.save(out)
        reference.write_card(model, out)
    print(f"reference model ({result['chosen']}) trained on the fault-filtered TRAIN split "
          f"({result['rows']['train']} tracks), chosen on VALID ({result['rows']['valid']})")
    print(f"per-track accuracy on the fault-filtered TEST split ({result['rows']['test']} tracks): "
          f"{result['test_accuracy']:.1%}")
    if out is not None:
        print(f"saved to {out} (with MODEL_CARD.md)")
    if not args.no_log:
        from . import tracking

        with tracking.start_run("train-reference", params={"table": str(args.table), "seed": args.seed,
                                                           "split": "gtzan-ff", "chosen": result["chosen"]},
                                tags={"genrelib.stage": "train-reference", "genrelib.family": "summary"}) as run:
            tracking.log_metrics({"test_track_accuracy": result["test_accuracy"],
                                  **{f"valid_accuracy_{k}": v for k, v in result["validation_accuracy"].items()}})
            logged = tracking.log_genre_model(model, register=True)
            tracking.set_alias(logged["version"], "reference")
        print(f"logged as run {run.info.run_id}; registered as {REGISTERED}/{logged['version']} (@reference)")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import json

    from .dataset import find_audio
    from .predict import Predictor

    files, failures = [], []
    for path in args.paths:  # a missing path or an empty folder is reported; the other paths still run
        try:
            files += find_audio([path])
        except GenrelibError as exc:
            failures.append((Path(path), str(exc)))
    if not files:
        _print_failures(failures)
        return 2
    if args.tags < 0:
        raise GenrelibError(f"--tags must be >= 0, got {args.tags}")
    predictor = Predictor(args.model, hop_seconds=args.hop, tag_model=args.tag_model if args.tags else None)
    # which model answers: first line of a table, on stderr where stdout must stay machine-readable
    print(predictor.describe(), file=sys.stdout if args.format == "table" else sys.stderr)
    warning = predictor.demo_warning(files)
    if warning:
        print(warning, file=sys.stderr)
    preds, bad = predictor.predict_many(files, progress=sys.stderr.isatty() and len(files) > 1)
    failures += bad
    genres = predictor.genres
    k_tags = args.tags

    def tags_json(p, window=None) -> dict:
        if not k_tags:
            return {}
        note = {"tags_note": p.tags_note} if window is None and p.tags_note else {}
        return {"tags": [{"tag": t, "probability": q} for t, q in p.top_tags(k_tags, window=window)], **note}

    def tags_text(p, window=None) -> str:
        return "  ".join(f"{t} {q:.2f}" for t, q in p.top_tags(k_tags, window=window)) if k_tags else ""

    if args.format == "json":
        out = [{"path": str(p.path), "duration": p.duration,
                "top": [{"genre": g, "probability": q} for g, q in p.top(genres, args.top_k)],
                "probabilities": dict(zip(genres, map(float, p.proba))), **tags_json(p),
                **({"windows": [{"start": float(s), "probabilities": dict(zip(genres, map(float, w))),
                                 **tags_json(p, i)}
                                for i, (s, w) in enumerate(zip(p.starts, p.window_proba))]} if args.timeline else {})}
               for p in preds]
        print(json.dumps(out, indent=2))
    elif args.format == "csv":
        print(predictor.table(preds, top_k=args.top_k, per_window=args.timeline, top_tags=k_tags)
              .to_csv(index=False), end="")
        for p in preds:  # stdout stays CSV
            if k_tags and p.tags_note:
                print(f"note: {p.path}: {p.tags_note}", file=sys.stderr)
    else:
        for p in preds:
            top = "  ".join(f"{g} {q:.2f}" for g, q in p.top(genres, args.top_k))
            print(f"{p.path}  [{p.duration:6.1f} s]  {top}" + (f"  | tags: {tags_text(p)}" if k_tags else ""))
            if k_tags and p.tags_note:
                print(f"    note: {p.tags_note}")
            if args.timeline:
                for i, (s, w) in enumerate(zip(p.starts, p.window_proba)):
                    order = np.argsort(-w)[: args.top_k]
                    print(f"    {s:7.1f} s  " + "  ".join(f"{genres[i]} {w[i]:.2f}" for i in order)
                          + (f"  | tags: {tags_text(p, i)}" if k_tags else ""))
    _print_failures(failures)
    return 1 if failures else 0


def _cmd_personal_test(args: argparse.Namespace) -> int:
    from .personal import personal_test

    res = personal_test(args.folder, model=args.model, hop_seconds=args.hop, log=not args.no_log,
                        progress=sys.stderr.isatty(), top_tags=args.tags, tag_model=args.tag_model)
    print(res.model_description)
    if res.warning:
        print(res.warning, file=sys.stderr)
    if len(res.songs):
        print(res.song_table().to_string(index=False))
    if res.labelled:
        for level, m in (("song", res.song_metrics), ("window", res.window_metrics)):
            print(f"per {level}: accuracy {m['accuracy']:.3f}  precision {m['precision_weighted']:.3f}  "
                  f"recall {m['recall_weighted']:.3f}  F1 {m['f1_weighted']:.3f} (weighted)")
    else:
        print("no <genre>/<song> folders: predictions only, no accuracy")
    for genre, songs in res.unknown.items():
        print(f"not scored: genre {genre!r} is unknown to the model ({len(songs)} songs)")
    _print_failures(res.failures)
    if res.run_id:
        print(f"logged as run {res.run_id}")
    return 1 if res.failures else 0


def _overrides(pairs) -> dict:
    # kept as text: genrelib.pipeline.check_parameters reads each value as the type its notebooks declare
    return dict(pairs or [])


def _ui_command() -> str:
    from . import tracking

    if tracking.is_server():  # a tracking server (make server) serves its own UI
        return f"the tracking server at {tracking.tracking_uri()} serves it"
    return f"mlflow ui --backend-store-uri {tracking.tracking_uri()} --host 127.0.0.1 --port 5000   (or: make ui)"


def _cmd_notebook(args: argparse.Namespace) -> int:
    from .pipeline import check_parameters, run_notebook

    # one notebook: a name it does not declare is a mistake (run-all lets each notebook take what it declares)
    params = check_parameters(_overrides(args.p), [args.name], notebooks_dir=args.notebooks_dir)
    if args.data:
        params["data_dir"] = str(Path(args.data).resolve())
    if args.personal:
        params["personal_dir"] = str(Path(args.personal).resolve())
    nb = run_notebook(args.name, parameters=params, notebooks_dir=args.notebooks_dir, out_dir=args.out,
                      parent_run_id=args.parent or "")
    print(f"{nb.name}: done in {nb.seconds:.0f} s -> {nb.output} (+ .html); MLflow run {nb.run_id}")
    return 0


def _cmd_run_all(args: argparse.Namespace) -> int:
    import time

    from .pipeline import run_all

    t0 = time.perf_counter()
    parent, runs = run_all(data_dir=args.data, personal_dir=args.personal, parameters=_overrides(args.p),
                           notebooks_dir=args.notebooks_dir, out_dir=args.out)
    for nb in runs:
        print(f"  {nb.name:<18} {nb.seconds:6.0f} s  run {nb.run_id}  {nb.output}")
    print(f"all {len(runs)} notebooks ran in {time.perf_counter() - t0:.0f} s under MLflow parent run {parent}")
    print(f"executed notebooks (ipynb and html): {Path(args.out).resolve()}")
    print(f"compare runs in the MLflow UI: {_ui_command()}")
    from . import tracking

    print(f"then open {tracking.ui_url()} (genrelib's runs; Models tab: logged models with their test metrics)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``genrelib``."""
    p = argparse.ArgumentParser(prog="genrelib", description="Music genre classification, honestly measured.")
    p.add_argument("--version", action="version", version=f"genrelib {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo-data", help="generate synthetic GTZAN-shaped demo music")
    d.add_argument("out", help="folder to write <genre>/<genre>.000NN.wav into")
    d.add_argument("--per-genre", type=int, default=30, help="tracks per genre (default 30)")
    d.add_argument("--seconds", type=float, default=30.0, help="length of each track (default 30)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--overlap", type=float, default=None, metavar="X",
                   help="how much the genres overlap, from 0 (distinct genres, clean production: easy) to 1 "
                        "(crossover tracks, varied production); default 0.2, tuned so that genrelib's CNN families "
                        "score 60-90%% per track")
    d.add_argument("--personal", type=int, default=0, metavar="N",
                   help="instead, write N longer 'personal' songs (1-3 min; mp3, flac, wav, ogg)")
    d.set_defaults(func=_cmd_demo_data)

    s = sub.add_parser("scan", help="count tracks per genre and list unreadable files")
    s.add_argument("root", help="data folder laid out <root>/<genre>/<file>")
    s.add_argument("--full", action="store_true",
                   help="decode every file to the end (as features and train do), not only its header: finds files "
                        "that are cut short, silent or decode to NaN; slower (about 3 ms per 30 s wav, 15 ms per mp3)")
    s.set_defaults(func=_cmd_scan)

    f = sub.add_parser("features", help="extract features of a data folder (cached)")
    f.add_argument("root", help="data folder laid out <root>/<genre>/<file>")
    f.add_argument("--kind", choices=["mfcc", "mel", "summary", "musicnn"], default=None,
                   help="mfcc, mel, summary (the GTZAN table's 57 columns) or musicnn (pretrained embeddings and "
                        "tags); default: the kind --family trains on, mfcc without --family. Given with --family, "
                        "--kind wins (as notebook 02's kind and family parameters)")
    f.add_argument("--family", choices=["seed_cnn", "mel_cnn", "crnn", "summary", "musicnn"], default=None,
                   help="extract the kind this model family trains on (seed_cnn: mfcc; mel_cnn, crnn: mel; "
                        "summary; musicnn), the features `genrelib train --model FAMILY` uses")
    f.add_argument("--out", default=None,
                   help="output file: .csv for summary and musicnn, else .npz (needed unless --store is given)")
    f.add_argument("--n-mfcc", type=int, default=16, help="MFCCs per frame (mfcc kind; default 16)")
    f.add_argument("--n-mels", type=int, default=128, help="mel bands (mel kind; default 128)")
    f.add_argument("--jobs", type=int, default=None, help="worker processes (default: all CPUs)")
    f.add_argument("--cache-dir", default=None, help="feature cache folder (default $GENRELIB_CACHE or "
                                                     "~/.cache/genrelib)")
    f.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    f.add_argument("--store", default=None, metavar="DIR",
                   help="write the features as a sharded Parquet store under DIR (DIR/<kind>-<key>, the cache's "
                        "key), shard by shard as they are computed; a rerun keeps finished, verified shards and "
                        "computes the rest (docs/scaling.md). For data that does not fit in memory")
    f.add_argument("--shard-size", type=int, default=None, metavar="N",
                   help="tracks per shard of --store (default 64; a store keeps the size it was started with)")
    f.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="extract on a Dask cluster: tcp://HOST:8786 (a running `dask scheduler`; workers need "
                        "genrelib, the audio and the store folder at the same paths), or local:N (N worker "
                        "processes here). Default: local processes")
    f.add_argument("--map", default=None, metavar="FILE.png",
                   help="also draw a 2-D map of the features, one point per track, coloured by genre")
    f.add_argument("--map-method", choices=["pca", "tsne"], default=None,
                   help="how --map reduces the features to 2-D: pca (default) or tsne")
    f.set_defaults(func=_cmd_features)

    t = sub.add_parser("train", help="train a model, evaluate it on held-out tracks, log and register it")
    t.add_argument("data", help="data folder laid out <root>/<genre>/<file>")
    t.add_argument("--model", required=True, choices=["seed_cnn", "mel_cnn", "crnn", "summary", "musicnn"])
    t.add_argument("--epochs", type=int, default=30, help="most epochs (early stopping on validation loss)")
    t.add_argument("--split", choices=["random", "gtzan-ff"], default=None,
                   help="random (default): stratified by genre, by track; gtzan-ff: GTZAN's fault-filtered split")
    t.add_argument("--split-file", default=None, metavar="FILE",
                   help="your own train/valid/test lists, in the format of the shipped GTZAN lists (lines like "
                        "blues/blues.00012.wav): a folder holding train*.txt, valid*.txt (or val*.txt) and test*.txt; "
                        "or train.txt,valid.txt,test.txt; or one file of '<part> <track>' lines. Listed tracks "
                        "missing from DATA are reported, DATA's tracks in no list are left out")
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--class-weights", action="store_true", help="weight genres inversely to their frequency")
    t.add_argument("--jobs", type=int, default=None, help="feature-extraction processes")
    _add_scale_options(t, f"train from it (with --cv: every fold){_STREAMED}")
    t.add_argument("--no-register", action="store_true", help="do not register the model")
    t.add_argument("--promote", action="store_true",
                   help="move the family's registry alias (genre-classifier@<family>) to this version even if it "
                        "scores lower than the holder or was trained on other data")
    t.add_argument("--cv", type=int, default=None, metavar="K",
                   help="instead of one split: K-fold cross-validation by track (stratified), mean and spread of "
                        "every metric, each fold a nested MLflow run; nothing is registered")
    t.add_argument("--repeats", type=int, default=1, help="with --cv: repeat with R different shuffles")
    t.add_argument("--group", default=None, metavar="blocks:N|ff-runs",
                   help="with --cv on GTZAN file names: keep groups of tracks in one part of every fold, an "
                        "approximation of artist groups (GTZAN has no artist labels here): blocks:N = N consecutive "
                        "numbers of a genre (neighbours often share an artist); ff-runs = runs of consecutive "
                        "numbers the fault-filtered lists put in one part (whole artists, if contiguous)")
    t.add_argument("--force", action="store_true",
                   help="train even on a split that cannot give an honest test result (a genre with no training "
                        "or test tracks, a test part under 10 tracks or 2 per genre: gtzan-ff or a split file on "
                        "partial data)")
    _add_training_options(t)
    t.set_defaults(func=_cmd_train)

    from .tune import OBJECTIVE, SEARCHABLE

    sw = sub.add_parser(
        "sweep", help="search hyper-parameters on the validation tracks (Optuna), then train and test the best once",
        description="Each trial trains the family on the training tracks and is scored on the validation tracks "
                    f"({OBJECTIVE}, lower is better); each is a nested MLflow run under one parent run. The best "
                    "configuration is then trained again, evaluated once on the test tracks and registered.")
    sw.add_argument("data", help="data folder laid out <root>/<genre>/<file>")
    sw.add_argument("--model", required=True, choices=["seed_cnn", "mel_cnn", "crnn", "summary", "musicnn"])
    sw.add_argument("--trials", type=int, required=True, help="number of trials")
    keras_names = ", ".join(n for n, s in SEARCHABLE.items() if "mel_cnn" in s.families)
    sw.add_argument("--param", action="append", default=None, metavar="NAME=SPEC",
                    help="a parameter to search: NAME=v1,v2,... (choices) or NAME=lo:hi (a range; log scale for "
                         "learning_rate, l2, logreg_c); repeat for several. Names: Keras families "
                         f"{keras_names}; seed_cnn also l2; summary and musicnn logreg_c. Without --param: the "
                         "family's default space (learning rate, batch size, dropout, filters, mixup, masks; l2 for "
                         "seed_cnn; logreg_c for summary and musicnn)")
    sw.add_argument("--no-prune", action="store_true", help="let every trial run to the end (no median pruner)")
    sw.add_argument("--epochs", type=int, default=30, help="most epochs per trial (early stopping on validation loss)")
    sw.add_argument("--split", choices=["random", "gtzan-ff"], default=None)
    sw.add_argument("--split-file", default=None, metavar="FILE", help="your own train/valid/test lists, as for train")
    sw.add_argument("--seed", type=int, default=42, help="seeds the split, the sampler and every trial")
    sw.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs")
    sw.add_argument("--batch-size", type=int, default=32, help="batch size when not searched")
    sw.add_argument("--class-weights", action="store_true", help="weight genres inversely to their frequency")
    sw.add_argument("--jobs", type=int, default=None, help="feature-extraction processes")
    _add_scale_options(sw, f"run every trial and the retrained best from it{_STREAMED}")
    sw.add_argument("--no-register", action="store_true", help="do not register the best model")
    sw.add_argument("--force", action="store_true", help="as for train")
    _add_training_options(sw)
    sw.set_defaults(func=_cmd_sweep)

    e = sub.add_parser("evaluate", help="segment and track metrics of a model on a labelled folder")
    e.add_argument("model", help="model: reference, a folder, runs:/<id>/model, genre-classifier/<version> or @alias")
    e.add_argument("data", help="labelled folder <root>/<genre>/<file>")
    e.add_argument("--part", choices=["train", "valid", "test"], default=None,
                   help="evaluate only the tracks of DATA in this part of the model's own split (its recorded "
                        "track lists; DATA is never re-split)")
    e.add_argument("--jobs", type=int, default=None)
    _add_scale_options(e, "predict shard by shard, never holding the features in memory (not for ensembles)")
    e.add_argument("--no-log", action="store_true", help="do not log the evaluation to MLflow")
    e.set_defaults(func=_cmd_evaluate)

    en = sub.add_parser(
        "ensemble", help="combine trained models (any families) into one; compare it with its members on the same "
                         "tracks",
        description="The ensemble averages its members' log-probabilities per 30 s window and per track, each member "
                    "on its own features; it is saved, logged and registered like any model (alias @ensemble) and can "
                    "be used wherever a model can (evaluate, predict, personal-test, serving, notebooks 04 and 05).")
    en.add_argument("models", nargs="+", metavar="MODEL",
                    help="two or more models: reference, a folder, runs:/<id>/model, genre-classifier/<version> or "
                         "@alias")
    en.add_argument("--weights", nargs="+", type=float, default=None, metavar="W",
                    help="one non-negative weight per model, in order (default: equal)")
    en.add_argument("--data", default=None, help="labelled folder: evaluate the members and the ensemble on the same "
                                                 "tracks of it and print the comparison")
    en.add_argument("--part", choices=["train", "valid", "test", "all"], default="test",
                    help="with --data: the part of the split to evaluate on (default test: the tracks in every "
                         "member's test part and in none's training or validation part); all: every track of DATA")
    en.add_argument("--out", default=None, help="also save the ensemble's model folder here")
    en.add_argument("--jobs", type=int, default=None, help="feature-extraction processes")
    en.add_argument("--no-log", action="store_true", help="do not log to MLflow (nor register)")
    en.add_argument("--no-register", action="store_true", help="do not register the ensemble")
    en.add_argument("--promote", action="store_true",
                    help="move genre-classifier@ensemble to this version even if it scores lower than the holder or "
                         "was evaluated on other data")
    en.set_defaults(func=_cmd_ensemble)

    r = sub.add_parser("train-reference", help="train the summary model on a GTZAN feature table (fault-filtered)")
    r.add_argument("--table", required=True, help="features_30_sec.csv of the Kaggle GTZAN download")
    r.add_argument("--out", default=None, help="folder to save the model and its model card into")
    r.add_argument("--seed", type=int, default=42)
    r.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    r.set_defaults(func=_cmd_train_reference)

    model_help = ("model: reference (default, shipped), a model folder, runs:/<id>/model, a run id, "
                  "genre-classifier/<version> or genre-classifier@<alias>")
    pr = sub.add_parser("predict", help="classify songs of any length (files or folders)")
    pr.add_argument("paths", nargs="+", help="audio files or folders (searched recursively)")
    pr.add_argument("--model", default=None, help=model_help)
    pr.add_argument("--top-k", type=int, default=3)
    pr.add_argument("--timeline", action="store_true", help="also show every 30 s window")
    pr.add_argument("--tags", type=int, default=0, metavar="K",
                    help="also show the K most probable musicnn tags (per window with --timeline), whatever "
                         "model gives the genre")
    pr.add_argument("--tag-model", default="MSD_musicnn",
                    help="the musicnn network that gives the tags (default MSD_musicnn: Last.fm tags)")
    pr.add_argument("--hop", type=float, default=None, help="seconds between window starts (default 30)")
    pr.add_argument("--format", choices=["table", "json", "csv"], default="table")
    pr.set_defaults(func=_cmd_predict)

    pt = sub.add_parser("personal-test", help="classify a folder of your songs; score it if laid out <genre>/<song>")
    pt.add_argument("folder")
    pt.add_argument("--model", default=None, help=model_help)
    pt.add_argument("--hop", type=float, default=None, help="seconds between window starts (default 30)")
    pt.add_argument("--tags", type=int, default=0, metavar="K", help="also list the K most probable musicnn tags")
    pt.add_argument("--tag-model", default="MSD_musicnn", help="the musicnn network that gives the tags")
    pt.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    pt.set_defaults(func=_cmd_personal_test)

    nb = sub.add_parser("notebook", help="run one notebook headlessly with papermill, logged to MLflow")
    nb.add_argument("name", choices=["01_eda", "02_features", "03_train", "04_evaluate", "05_personal_test",
                                     "06_compare"])
    nb.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="notebook parameter")
    nb.add_argument("--data", default=None, help="data folder (the notebooks' data_dir)")
    nb.add_argument("--personal", default=None, help="folder of personal songs (05's personal_dir)")
    nb.add_argument("--parent", default=None, help="MLflow parent run id")
    nb.add_argument("--notebooks-dir", default="notebooks")
    nb.add_argument("--out", default="results/notebooks", help="where executed notebooks are kept")
    nb.set_defaults(func=_cmd_notebook)

    ra = sub.add_parser("run-all", help="run the six notebooks in order under one MLflow parent run")
    ra.add_argument("--data", required=True, help="data folder <genre>/<file>")
    ra.add_argument("--personal", required=True, help="folder of personal songs, optionally <genre>/<song>")
    ra.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"),
                    help="parameter for every notebook that declares it (e.g. -p epochs 5)")
    ra.add_argument("--notebooks-dir", default="notebooks")
    ra.add_argument("--out", default="results/notebooks", help="where executed notebooks are kept")
    ra.set_defaults(func=_cmd_run_all)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) arrived: unwinds like Ctrl-C, so that an MLflow run in progress ends as KILLED."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame) -> None:
    import signal

    signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once
    raise Terminated(signum)


def _progress_lines(stream) -> logging.Handler | None:
    """Show progress as log lines on ``stream`` when it is not a terminal (a log file, a pipe), where a tqdm bar
    would write nothing readable; on a terminal the commands draw bars instead (``progress=sys.stderr.isatty()``).
    Returns the handler to remove when the command ends (None on a terminal)."""
    if stream.isatty():
        return None
    log = logging.getLogger("genrelib.progress")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("genrelib: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # once, also with -v
    return handler


def _progress_lines_off(handler: logging.Handler | None) -> None:
    if handler is not None:  # main() may run again in one process (tests), on another stream
        log = logging.getLogger("genrelib.progress")
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
        log.propagate = True


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genrelib`` console script."""
    import signal
    import threading

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    parser = build_parser()
    args = parser.parse_args(argv)
    # The CLI prints skipped files itself; library warnings show with -v.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    progress_handler = _progress_lines(sys.stderr)
    handled = (signal.SIGTERM, signal.SIGHUP) if threading.current_thread() is threading.main_thread() else ()
    previous = {s: signal.signal(s, _terminate) for s in handled}
    try:
        return int(args.func(args) or 0)
    except GenrelibError as exc:
        print(f"genrelib: error: {exc}", file=sys.stderr)
        return 2
    except Terminated as exc:
        print(f"genrelib: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("genrelib: interrupted", file=sys.stderr)
        return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        _progress_lines_off(progress_handler)


if __name__ == "__main__":
    sys.exit(main())
