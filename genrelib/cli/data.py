"""Commands on data: ``demo-data``, ``scan``, ``features``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from genrelib.cli.common import check_writable, one_line, print_skipped, skipped_exit
from genrelib.errors import GenrelibError


def cmd_demo_data(args: argparse.Namespace) -> int:
    from genrelib.datasets import demo

    def existing() -> set:
        return {p for p in Path(args.out).rglob("*") if p.is_file() and p.name != demo.MARKER}

    if args.personal:
        settings = demo.demo_settings("personal", seed=args.seed, overlap=args.overlap, sr=demo.SR)
    else:
        settings = demo.demo_settings("genres", seed=args.seed, overlap=args.overlap, sr=demo.SR, seconds=args.seconds)
    old = demo.stale_settings(args.out, settings)
    # files made with other settings or by an older generator are written again (counted as written, not kept)
    stale = old is not None
    before = set() if stale else existing()
    if args.personal:
        paths = demo.make_personal(
            args.out, n=args.personal, seed=args.seed, progress=sys.stderr.isatty(), overlap=args.overlap
        )
        what = f"{len(paths)} synthetic personal songs"
    else:
        demo.make_demo(
            args.out,
            per_genre=args.per_genre,
            seconds=args.seconds,
            seed=args.seed,
            progress=sys.stderr.isatty(),
            overlap=args.overlap,
        )
        what = f"{args.per_genre} synthetic tracks per genre ({args.seconds:g} s each)"
    written = len(existing() - before)
    kept = f", {len(before)} already there and kept" if before else ""
    redone = (
        (
            f" (the folder held music made {'with ' + json.dumps(old) if old else 'by an older demo generator'}"
            f": written again with overlap {settings['overlap']:g}, seed {args.seed})"
        )
        if stale
        else ""
    )
    print(f"{what} under {args.out}: {written} written{kept}{redone}")
    print("note: this music is synthetic; results on it say nothing about real music")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from genrelib.datasets.tracks import scan

    ds = scan(args.root, full=args.full)
    print(f"{one_line(ds.root)}: {len(ds.tracks)} tracks in {len(ds.genres)} genres")
    for genre, n in ds.counts().items():
        print(f"  {one_line(genre):<12} {n:>5}")
    if args.full:
        print("every file decoded to the end, as features and train decode them")
    else:
        print(
            "headers checked; features and train decode every file fully and also skip files that are cut short, "
            "silent or decode to NaN (scan --full decodes them here)"
        )
    print_skipped(ds.skipped)
    return skipped_exit(ds.skipped)


def cmd_features(args: argparse.Namespace) -> int:
    from genrelib.datasets.tracks import scan
    from genrelib.features.cache import entry_folder
    from genrelib.features.extraction import extract
    from genrelib.features.featureset import write_error
    from genrelib.training.config import feature_config_for

    if args.map_method is not None and args.map is None:
        raise GenrelibError("--map-method needs --map FILE.png (where to write the map)")
    # as notebook 02: the family's kind, unless a kind is given explicitly (default family seed_cnn: mfcc)
    cfg = feature_config_for(args.family or "seed_cnn", kind=args.kind or "", n_mfcc=args.n_mfcc, n_mels=args.n_mels)
    if args.store or args.shard_size is not None:
        return features_store(args, cfg)
    if args.out is None:
        raise GenrelibError("give --out FILE (.npz, or .csv for summary and musicnn) or --store DIR (a sharded store)")
    out = Path(args.out)
    # what can be known before the work is done is refused before it
    check_writable(out, "--out", "features.csv" if cfg.per_window else "features.npz")
    if args.map is not None:
        check_writable(Path(args.map), "--map", "map.png")
    ds = scan(args.root)
    fs = extract(
        ds,
        cfg,
        n_jobs=args.jobs,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=sys.stderr.isatty(),
        scheduler=args.scheduler,
    )
    # (cache entries found bad and computed again were reported by extract, on the progress logger)
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
        raise GenrelibError(
            f"{exc}; the features are kept in the cache ({entry_folder(cfg, args.cache_dir)}), so "
            "the same command, run again once --out can be written, reads them from there"
        ) from exc
    print(f"{cfg.kind} features of {len(fs.tracks)} tracks: X {fs.X.shape} float32 -> {out}")
    if args.map is not None:
        from genrelib.plots import plot_embedding_map

        fig = plot_embedding_map(
            fs.X,
            fs.row_genres,
            track_ids=fs.track_ids,
            method=args.map_method or "pca",
            title=f"{cfg.kind} features by genre",
        )
        map_path = Path(args.map)
        try:
            map_path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(map_path, dpi=110)
        except OSError as exc:
            map_path.unlink(missing_ok=True)  # a half-written image
            raise GenrelibError(
                f"{write_error(map_path, exc, example='map.png')}; the features were written to {out}"
            ) from exc
        print(f"map of the features, one point per track ({args.map_method or 'pca'}) -> {map_path}")
    print_skipped(fs.skipped)
    return skipped_exit(fs.skipped)


def features_store(args: argparse.Namespace, cfg) -> int:
    """``features --store DIR``: extract into (or resume) a sharded store; ``--out`` also writes the whole set."""
    from genrelib.datasets.tracks import scan
    from genrelib.features.store import extract_to_store

    if not args.store:
        raise GenrelibError("--shard-size needs --store DIR (where the shards go)")
    if args.map is not None:
        raise GenrelibError("--map reads every feature into memory; leave it out with --store (or use --out)")
    if args.out is not None:
        check_writable(Path(args.out), "--out", "features.csv" if cfg.per_window else "features.npz")
    ds = scan(args.root)
    sfs = extract_to_store(
        ds,
        cfg,
        args.store,
        shard_size=args.shard_size,
        n_jobs=args.jobs,
        scheduler=args.scheduler,
        progress=sys.stderr.isatty(),
    )
    for problem in sfs.repaired:
        print(f"genrelib: warning: recomputed shard {one_line(problem)}", file=sys.stderr)
    print(
        f"{cfg.kind} features of {len(sfs.tracks)} tracks: {len(sfs)} rows of {tuple(cfg.row_shape)} float32 in "
        f"{sfs.manifest['n_shards']} shards -> {sfs.path}"
    )
    if args.out is not None:
        fs = sfs.load()
        fs.save_table(args.out) if cfg.per_window else fs.save(args.out)
        print(f"X {fs.X.shape} float32 -> {args.out}")
    print_skipped(sfs.skipped)
    return skipped_exit(sfs.skipped)
