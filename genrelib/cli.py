"""``genrelib <verb>``: the command line. Each verb calls the same functions the notebooks call.

Errors in the input end the command with a one-line message on stderr and exit code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import __version__
from .errors import GenrelibError

REGISTERED = "genre-classifier"


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from . import demo

    if args.personal:
        paths = demo.make_personal(args.out, n=args.personal, seed=args.seed, progress=sys.stderr.isatty())
        print(f"wrote {len(paths)} synthetic personal songs under {args.out}")
    else:
        demo.make_demo(args.out, per_genre=args.per_genre, seconds=args.seconds, seed=args.seed,
                       progress=sys.stderr.isatty())
        print(f"wrote {args.per_genre} synthetic tracks per genre ({args.seconds:g} s each) under {args.out}")
    print("note: this music is synthetic; results on it say nothing about real music")
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from .dataset import scan

    ds = scan(args.root)
    print(f"{ds.root}: {len(ds.tracks)} tracks in {len(ds.genres)} genres")
    for genre, n in ds.counts().items():
        print(f"  {genre:<12} {n:>5}")
    if ds.skipped:
        print(f"skipped {len(ds.skipped)} files:")
        for tid, why in ds.skipped:
            print(f"  {tid}: {why}")
    return 0


def _cmd_features(args: argparse.Namespace) -> int:
    from .dataset import scan
    from .features import FeatureConfig, extract

    ds = scan(args.root)
    cfg = FeatureConfig(kind=args.kind, n_mfcc=args.n_mfcc, n_mels=args.n_mels)
    fs = extract(ds, cfg, n_jobs=args.jobs, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                 progress=sys.stderr.isatty())
    out = Path(args.out)
    if args.kind == "summary":
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.part")
        fs.table().to_csv(tmp, index=False)
        tmp.replace(out)
    else:
        fs.save(out)
    print(f"{args.kind} features of {len(fs.tracks)} tracks: X {fs.X.shape} float32 -> {out}")
    if fs.skipped:
        print(f"skipped {len(fs.skipped)} files:")
        for tid, why in fs.skipped:
            print(f"  {tid}: {why}")
    return 0


def _print_metrics(report) -> None:
    print(f"{'':<10}{'accuracy':>10}{'precision':>11}{'recall':>9}{'F1':>8}   (weighted; macro F1)")
    for level in ("segment", "track"):
        m = getattr(report, level).metrics
        print(f"{level:<10}{m['accuracy']:>10.3f}{m['precision_weighted']:>11.3f}{m['recall_weighted']:>9.3f}"
              f"{m['f1_weighted']:>8.3f}   ({m['f1_macro']:.3f})")


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    cfg = TrainConfig(family=args.model, epochs=args.epochs, split=args.split, seed=args.seed,
                      class_weights=args.class_weights, patience=args.patience, batch_size=args.batch_size)
    res = train(args.data, cfg, n_jobs=args.jobs, register=not args.no_register, progress=sys.stderr.isatty())
    sizes = {p: sum(c.values()) for p, c in res.split_sizes.items()}
    print(f"run {res.run_id}: {args.model} on {res.extra['data_root']} "
          f"(tracks: train {sizes['train']}, valid {sizes['valid']}, test {sizes['test']}; split {args.split})")
    if res.extra["skipped"]:
        print(f"skipped {len(res.extra['skipped'])} unreadable files (listed in the run's data/manifest.json)")
    print("test metrics (held-out tracks, never seen in training or model selection):")
    _print_metrics(res.report)
    if res.registered_version:
        print(f"registered as {REGISTERED}/{res.registered_version} (alias @{args.model.replace('_', '-')}); "
              f"model URI {res.model_uri}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import tracking
    from .evaluate import evaluate_folder, log_report
    from .predict import load_model

    model = load_model(args.model)
    report = evaluate_folder(model, args.data, part=args.part, n_jobs=args.jobs, progress=sys.stderr.isatty())
    print(f"{model.family} model on {args.data}" + (f" ({args.part} part of its split)" if args.part else "")
          + f": {len(report.track_ids)} tracks")
    _print_metrics(report)
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
    d.add_argument("--personal", type=int, default=0, metavar="N",
                   help="instead, write N longer 'personal' songs (1-3 min; mp3, flac, wav, ogg)")
    d.set_defaults(func=_cmd_demo_data)

    s = sub.add_parser("scan", help="count tracks per genre and list unreadable files")
    s.add_argument("root", help="data folder laid out <root>/<genre>/<file>")
    s.set_defaults(func=_cmd_scan)

    f = sub.add_parser("features", help="extract features of a data folder (cached)")
    f.add_argument("root", help="data folder laid out <root>/<genre>/<file>")
    f.add_argument("--kind", choices=["mfcc", "mel", "summary"], default="mfcc")
    f.add_argument("--out", required=True, help="output file: .npz for mfcc/mel, .csv for summary")
    f.add_argument("--n-mfcc", type=int, default=16, help="MFCCs per frame (mfcc kind; default 16)")
    f.add_argument("--n-mels", type=int, default=128, help="mel bands (mel kind; default 128)")
    f.add_argument("--jobs", type=int, default=None, help="worker processes (default: all CPUs)")
    f.add_argument("--cache-dir", default=None, help="feature cache folder (default $GENRELIB_CACHE or "
                                                     "~/.cache/genrelib)")
    f.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    f.set_defaults(func=_cmd_features)

    t = sub.add_parser("train", help="train a model, evaluate it on held-out tracks, log and register it")
    t.add_argument("data", help="data folder laid out <root>/<genre>/<file>")
    t.add_argument("--model", required=True, choices=["seed_cnn", "mel_cnn", "crnn", "summary"])
    t.add_argument("--epochs", type=int, default=30, help="most epochs (early stopping on validation loss)")
    t.add_argument("--split", choices=["random", "gtzan-ff"], default="random",
                   help="random: stratified by genre, by track; gtzan-ff: GTZAN's fault-filtered split")
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--class-weights", action="store_true", help="weight genres inversely to their frequency")
    t.add_argument("--jobs", type=int, default=None, help="feature-extraction processes")
    t.add_argument("--no-register", action="store_true", help="do not register the model")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="segment and track metrics of a model on a labelled folder")
    e.add_argument("model", help="model: reference, a folder, runs:/<id>/model, genre-classifier/<version> or @alias")
    e.add_argument("data", help="labelled folder <root>/<genre>/<file>")
    e.add_argument("--part", choices=["train", "valid", "test"], default=None,
                   help="evaluate only this part of the split the model was trained with")
    e.add_argument("--jobs", type=int, default=None)
    e.add_argument("--no-log", action="store_true", help="do not log the evaluation to MLflow")
    e.set_defaults(func=_cmd_evaluate)

    r = sub.add_parser("train-reference", help="train the summary model on a GTZAN feature table (fault-filtered)")
    r.add_argument("--table", required=True, help="features_30_sec.csv of the Kaggle GTZAN download")
    r.add_argument("--out", default=None, help="folder to save the model and its model card into")
    r.add_argument("--seed", type=int, default=42)
    r.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    r.set_defaults(func=_cmd_train_reference)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genrelib`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    parser = build_parser()
    args = parser.parse_args(argv)
    # The CLI prints skipped files itself; library warnings show with -v.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except GenrelibError as exc:
        print(f"genrelib: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genrelib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
