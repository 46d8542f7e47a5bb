"""Commands that run the notebooks: ``notebook``, ``run-all``."""

from __future__ import annotations

import argparse
from pathlib import Path

from genrelib.cli.common import parse_overrides, ui_command


def cmd_notebook(args: argparse.Namespace) -> int:
    from genrelib.pipeline import check_parameters, run_notebook

    # one notebook: a name it does not declare is a mistake (run-all lets each notebook take what it declares)
    params = check_parameters(parse_overrides(args.p), [args.name], notebooks_dir=args.notebooks_dir)
    if args.data:
        params["data_dir"] = str(Path(args.data).resolve())
    if args.personal:
        params["personal_dir"] = str(Path(args.personal).resolve())
    nb = run_notebook(
        args.name,
        parameters=params,
        notebooks_dir=args.notebooks_dir,
        out_dir=args.out,
        parent_run_id=args.parent or "",
    )
    print(f"{nb.name}: done in {nb.seconds:.0f} s -> {nb.output} (+ .html); MLflow run {nb.run_id}")
    return 0


def cmd_run_all(args: argparse.Namespace) -> int:
    import time

    from genrelib.pipeline import run_all

    t0 = time.perf_counter()
    parent, runs = run_all(
        data_dir=args.data,
        personal_dir=args.personal,
        parameters=parse_overrides(args.p),
        notebooks_dir=args.notebooks_dir,
        out_dir=args.out,
    )
    for nb in runs:
        print(f"  {nb.name:<18} {nb.seconds:6.0f} s  run {nb.run_id}  {nb.output}")
    print(f"all {len(runs)} notebooks ran in {time.perf_counter() - t0:.0f} s under MLflow parent run {parent}")
    from genrelib import tracking

    for nb in runs:
        if nb.name == "03_train" and nb.run_id:
            # a sweep's parent run holds the retrained best's numbers as best_test_*; its tags name the run itself
            run_id = tracking.run_tag(nb.run_id, "genrelib.best_run_id") or nb.run_id
            accuracy = tracking.run_metric(run_id, "test_track_accuracy")
            version = tracking.run_tag(run_id, "genrelib.registered_version")
            print(
                f"03_train: test accuracy per track {accuracy:.3f} (held-out tracks)"
                if accuracy is not None
                else "03_train: no test tracks, no test accuracy"
            )
            if version:
                alias = tracking.run_tag(run_id, "genrelib.alias") or ""
                print(f"  registered as genre-classifier/{version}; {alias}".rstrip("; "))
    print(f"executed notebooks (ipynb and html): {Path(args.out).resolve()}")
    print(f"compare runs in the MLflow UI: {ui_command()}")

    print(f"then open {tracking.ui_url()} (genrelib's runs; Models tab: logged models with their test metrics)")
    print(
        "classify your own songs: genrelib predict SONG --timeline (the shipped default model: musicnn features and "
        "a linear head trained on 153 real GTZAN tracks; --model genre-classifier@<family> for the one trained here)"
    )
    return 0
