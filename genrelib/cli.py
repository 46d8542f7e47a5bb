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
