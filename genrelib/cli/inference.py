"""Commands that use models: ``evaluate``, ``predict``, ``personal-test``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from genrelib.cli.common import check_port, one_line, print_failures, print_metrics
from genrelib.errors import GenrelibError


def cmd_evaluate(args: argparse.Namespace) -> int:
    from genrelib import tracking
    from genrelib.evaluation.scoring import evaluate_folder, log_report
    from genrelib.inference.predict import load_model

    model = load_model(args.model)
    part = {None: "auto", "all": None}.get(args.part, args.part)
    report = evaluate_folder(
        model,
        args.data,
        part=part,
        n_jobs=args.jobs,
        progress=sys.stderr.isatty(),
        scheduler=args.scheduler,
        store=args.store,
    )
    print(
        f"{model.family} model on {args.data}"
        + (f" ({report.part} part of its split)" if report.part else "")
        + f": {len(report.track_ids)} tracks"
    )
    if args.part is None:
        print(f"scored: {report.scope}")
    if report.part is not None:
        print(f"found {report.part_found} of the model's {report.part_recorded} {report.part} tracks in {args.data}")
    print_metrics(report)
    for name, m, r in zip(getattr(model, "member_names", []), getattr(model, "members", []), report.members):
        print(f"  member {name} ({m.family}) on the same tracks: track accuracy {r.track.metrics['accuracy']:.3f}")
    if report.wrong:
        print("most confidently wrong tracks:")
        for w in report.wrong[:5]:
            print(f"  {one_line(w['track_id'])}: {w['true']} predicted as {w['predicted']} ({w['probability']:.2f})")
    if not args.no_log:
        from genrelib.datasets import dataset_name

        part = report.part or "all"
        with tracking.start_run(
            f"evaluate-{model.family} · {args.model} · {dataset_name(report.dataset)} · {part} tracks",
            params={"model": str(args.model), "data": str(Path(args.data).resolve()), "part": part},
            tags={"genrelib.stage": "evaluate"},
        ) as run:
            log_report(report)  # test_track_accuracy on the test part, as in the training run
        print(f"logged as run {run.info.run_id}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from genrelib import jsonio
    from genrelib.datasets.tracks import find_audio, unique_files
    from genrelib.inference.formats import csv_table, json_records
    from genrelib.inference.predict import Predictor

    files, failures = [], []
    for path in args.paths:  # a missing path or an empty folder is reported; the other paths still run
        try:
            files += find_audio([path])
        except GenrelibError as exc:
            failures.append((Path(path), str(exc)))
    files = unique_files(files)  # a song given beside the folder that holds it is predicted once
    if not files:
        print_failures(failures)
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

    def tags_text(p, window=None) -> str:
        return "  ".join(f"{t} {q:.2f}" for t, q in p.top_tags(k_tags, window=window)) if k_tags else ""

    if args.format == "json":
        out = json_records(preds, genres, top_k=args.top_k, timeline=args.timeline, top_tags=k_tags)
        print(jsonio.dumps(out, indent=2))
    elif args.format == "csv":
        table = csv_table(preds, genres, top_k=args.top_k, timeline=args.timeline, top_tags=k_tags)
        print(table.to_csv(index=False), end="")
        for p in preds:  # stdout stays CSV
            if k_tags and p.tags_note:
                print(f"note: {one_line(p.path)}: {p.tags_note}", file=sys.stderr)
    else:
        for p in preds:
            top = "  ".join(f"{g} {q:.2f}" for g, q in p.top(genres, args.top_k))
            print(f"{one_line(p.path)}  [{p.duration:6.1f} s]  {top}" + (f"  | tags: {tags_text(p)}" if k_tags else ""))
            if k_tags and p.tags_note:
                print(f"    note: {p.tags_note}")
            if args.timeline:
                if p.timeline_note:
                    print(f"    timeline: {p.timeline_note}")
                for i, (s, w) in enumerate(zip(p.starts, p.window_proba)):
                    order = np.argsort(-w)[: args.top_k]
                    print(
                        f"    {s:7.1f} s  "
                        + "  ".join(f"{genres[i]} {w[i]:.2f}" for i in order)
                        + (f"  | tags: {tags_text(p, i)}" if k_tags else "")
                    )
    print_failures(failures)
    return 1 if failures else 0


def cmd_personal_test(args: argparse.Namespace) -> int:
    from genrelib.inference.personal import personal_test

    res = personal_test(
        args.folder,
        model=args.model,
        hop_seconds=args.hop,
        log=not args.no_log,
        progress=sys.stderr.isatty(),
        top_tags=args.tags,
        tag_model=args.tag_model,
        warn=lambda text: print(text, file=sys.stderr),  # before the progress lines, as predict does
    )
    print(res.model_description)
    if len(res.songs):
        table = res.song_table()
        print(table.map(lambda v: one_line(v) if isinstance(v, str) else v).to_string(index=False))
    if res.labelled:
        for level, m in (("song", res.song_metrics), ("window", res.window_metrics)):
            print(
                f"per {level}: accuracy {m['accuracy']:.3f}  precision {m['precision_weighted']:.3f}  "
                f"recall {m['recall_weighted']:.3f}  F1 {m['f1_weighted']:.3f} (weighted)"
            )
    else:
        print("no <genre>/<song> folders: predictions only, no accuracy")
    for genre, songs in res.unknown.items():
        print(f"not scored: genre {genre!r} is unknown to the model ({len(songs)} songs)")
    print_failures(res.failures)
    if res.run_id:
        print(f"logged as run {res.run_id}")
    return 1 if res.failures else 0


def cmd_serve(args: argparse.Namespace) -> int:
    import os
    import shutil
    import subprocess
    import tempfile

    from genrelib.inference.predict import describe_model
    from genrelib.inference.served import serve_command, serve_env, write_served_model

    check_port(args.host, args.port, who="another genrelib serve?")  # now, in one line, not after the model is written
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no 110-step bar while copying files
    ref = args.model or "default"
    tmp = Path(tempfile.mkdtemp(prefix="genrelib-serve-"))
    try:
        model = write_served_model(ref, tmp / "model")
        print(describe_model(ref, model))
        print(
            f"serving it at http://{args.host}:{args.port}/invocations (POST audio_base64 or path rows: the "
            "README's serving section); Ctrl-C stops it",
            flush=True,
        )
        server = subprocess.Popen(serve_command(tmp / "model", host=args.host, port=args.port), env=serve_env())
        try:
            return server.wait()
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (genrelib.cli.run raises Terminated): stop the server too
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
