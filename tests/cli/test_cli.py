import fcntl
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import termios

import numpy as np
import pandas as pd
import soundfile as sf

from genrelib.cli import main
from genrelib.features.config import SUMMARY_COLUMNS


def test_demo_scan_features(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo-data", str(out), "--per-genre", "1", "--seconds", "3.5", "--seed", "2"]) == 0
    cap = capsys.readouterr()
    assert "synthetic" in cap.out
    # stderr is not a terminal here: progress comes as log lines, the last one when all is written
    assert cap.err.splitlines()[-1].startswith("genrelib: demo tracks: 10/10 files (100%), 0 skipped, ")
    (out / "jazz" / "jazz.00054.wav").write_bytes(b"not audio at all")
    assert main(["scan", str(out)]) == 1  # a file was skipped (listed)
    text = capsys.readouterr().out
    assert "10 tracks in 10 genres" in text and "jazz/jazz.00054.wav" in text
    assert main(["features", str(out), "--kind", "summary", "--out", str(tmp_path / "f.csv"), "--jobs", "1"]) == 1
    df = pd.read_csv(tmp_path / "f.csv")
    assert list(df.columns)[0] == "filename" and set(SUMMARY_COLUMNS) <= set(df.columns) and len(df) == 10
    assert main(["features", str(out), "--out", str(tmp_path / "m.npz"), "--jobs", "2"]) == 1
    assert (tmp_path / "m.npz").stat().st_size > 0


def test_demo_data_with_nothing_to_write_draws_no_progress_line(tmp_path, capsys):
    args = ["demo-data", str(tmp_path / "demo"), "--per-genre", "1", "--seconds", "3.5"]
    assert main(args) == 0
    assert "demo tracks: 10/10 files (100%)" in capsys.readouterr().err
    assert main(args) == 0
    cap = capsys.readouterr()
    assert "0 written, 10 already there and kept" in cap.out and "demo tracks" not in cap.err


def test_bad_input_one_line_error_nonzero_exit(tmp_path):
    for args in (["scan", str(tmp_path / "missing")], ["features", str(tmp_path), "--out", str(tmp_path / "x.npz")]):
        r = subprocess.run([sys.executable, "-m", "genrelib.cli", *args], capture_output=True, text=True)
        assert r.returncode == 2
        assert r.stderr.startswith("genrelib: error: ") and len(r.stderr.strip().splitlines()) == 1
        assert "Traceback" not in r.stderr


def test_train_and_evaluate_commands(tiny_tree, capsys):
    assert main(["train", str(tiny_tree), "--model", "summary", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run ") and "test metrics" in out and "track" in out and "genre-classifier/" in out
    assert main(["evaluate", "genre-classifier@summary", str(tiny_tree), "--part", "test", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "(test part of its split)" in out and "logged as run" in out


def test_evaluate_without_part_scores_only_the_test_tracks_of_a_folder_the_model_trained_on(
    tiny_tree, tmp_path, capsys
):
    import mlflow

    assert main(["train", str(tiny_tree), "--model", "summary", "--jobs", "1", "--no-register"]) == 0
    run_id = capsys.readouterr().out.split()[1].rstrip(":")
    uri = f"runs:/{run_id}/model"
    assert main(["evaluate", uri, str(tiny_tree), "--jobs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    n_test = int(lines[0].rsplit(": ", 1)[1].split()[0])
    assert lines[0] == f"summary model on {tiny_tree} (test part of its split): {n_test} tracks"
    assert 0 < n_test < 12
    assert lines[1] == (
        f"scored: test part of the model's split only: {12 - n_test} of the folder's 12 tracks are in its train or "
        "valid part and are not scored (--part all scores every track, not a held-out score)"
    )
    eval_run = mlflow.get_run(lines[-1].rsplit(" ", 1)[1])
    assert eval_run.data.params["part"] == "test"
    # the same quantity on the same part has the same name as in the training run (issue 21 #9): Compare lines up
    train_run = mlflow.get_run(run_id)
    tested = {k for k in train_run.data.metrics if k.startswith("test_")}
    assert tested and tested <= set(eval_run.data.metrics)
    assert eval_run.data.metrics["test_track_accuracy"] == train_run.data.metrics["test_track_accuracy"]
    client = mlflow.MlflowClient()
    figures = {a.path for a in client.list_artifacts(eval_run.info.run_id, "figures")}
    assert figures == {"figures/test_confusion_segment.png", "figures/test_confusion_track.png"}
    assert figures <= {a.path for a in client.list_artifacts(run_id, "figures")}
    # each part its own dataset input, by absolute path; the evaluation of the test part names the same tracks
    trained, evaluated = dataset_inputs(run_id), dataset_inputs(eval_run.info.run_id)
    assert sorted(trained) == ["test", "training", "validation"] and list(evaluated) == ["test"]
    assert {d.source for d in (*trained.values(), *evaluated.values())} == {f'{{"uri": "{tiny_tree.resolve()}"}}'}
    assert evaluated["test"].digest == trained["test"].digest != trained["training"].digest
    assert all(d.name == "genres (synthetic demo)" for d in trained.values())
    assert main(["evaluate", uri, str(tiny_tree), "--part", "all", "--jobs", "1", "--no-log"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"summary model on {tiny_tree}: 12 tracks"
    # a folder of tracks it never saw (copies under other names) is scored whole, and the output says why
    other = tmp_path / "other"
    for f in tiny_tree.glob("*/*.wav"):
        (other / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, other / f.parent.name / f"new-{f.name}")
    assert main(["evaluate", uri, str(other), "--jobs", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"summary model on {other}: 12 tracks",
        "scored: every track of the folder (none of them in the model's train or valid part)",
    ]
    whole = mlflow.search_runs(search_all_experiments=True, output_format="list", order_by=["start_time DESC"])[0]
    assert list(dataset_inputs(whole.info.run_id)) == ["evaluation"]
    assert "folder_track_accuracy" in whole.data.metrics and not any(k.startswith("test_") for k in whole.data.metrics)


def dataset_inputs(run_id):
    """A run's MLflow dataset inputs by their context."""
    import mlflow

    out = {}
    for d in mlflow.get_run(run_id).inputs.dataset_inputs:
        tags = {t.key: t.value for t in d.tags}
        out[tags["mlflow.data.context"]] = d.dataset
    return out


def test_train_bad_input_exit_codes(tmp_path, tiny_tree):
    r = subprocess.run(
        [sys.executable, "-m", "genrelib.cli", "train", str(tiny_tree), "--model", "resnet"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "invalid choice: 'resnet'" in r.stderr
    (tmp_path / "empty" / "rock").mkdir(parents=True)
    r = subprocess.run(
        [sys.executable, "-m", "genrelib.cli", "train", str(tmp_path / "empty"), "--model", "summary"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.startswith("genrelib: error: no readable audio")
    r = subprocess.run(
        [sys.executable, "-m", "genrelib.cli", "evaluate", "genre-classifier/77", str(tiny_tree)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "not found in the tracking store" in r.stderr and "Traceback" not in r.stderr


def test_evaluate_reference_on_a_part_of_the_fault_filtered_split(gtzan_tree, capsys):
    root = gtzan_tree({"classical": {"train": 2, "valid": 1, "test": 1, "out": 1}, "metal": {"test": 2}})
    assert main(["evaluate", "reference", str(root), "--part", "test", "--no-log", "--jobs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [
        f"summary model on {root} (test part of its split): 3 tracks",
        f"found 3 of the model's 290 test tracks in {root}",
    ]
    assert main(["evaluate", "reference", str(root), "--part", "valid", "--no-log", "--jobs", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"found 1 of the model's 197 valid tracks in {root}"
    # a part with none of its tracks in the folder: a one-line error that does not talk of making a split
    only_test = gtzan_tree({"metal": {"test": 1}}, name="only_test")
    assert main(["evaluate", "reference", str(only_test), "--part", "train", "--no-log"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genrelib: error: none of the model's 443 train tracks is in ")
    assert len(err.strip().splitlines()) == 1 and "split" not in err.split(";")[0]


def test_train_gtzan_ff_on_partial_gtzan_refused_unless_forced(gtzan_tree, capsys):
    import mlflow

    from genrelib.inference.predict import load_model

    from ..conftest import gtzan_ids
    from ..training.test_train import SMALL_TEST_PART

    root = gtzan_tree(SMALL_TEST_PART)
    (root / "metal" / "broken.wav").write_bytes(b"RIFF not really audio")
    args = [
        "train",
        str(root),
        "--model",
        "seed_cnn",
        "--epochs",
        "1",
        "--split",
        "gtzan-ff",
        "--no-register",
        "--jobs",
        "1",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("genrelib: error: the gtzan-ff split of ") and len(err.strip().splitlines()) == 1
    assert "the test part has 4 tracks" in err and "Use --split random" in err and "--force" in err
    assert main([*args, "--force"]) == 1  # trained; exit 1 for the skipped broken.wav
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("run ") and lines[0].endswith("(tracks: train 6, valid 3, test 4; split gtzan-ff)")
    broken_reason = dict(dataset_skipped(root))["metal/broken.wav"]
    assert lines[1:14] == [
        "tracks per genre:",
        "  genre         train  valid   test",
        "  classical         2      1      1",
        "  metal             2      1      2",
        "  reggae            2      1      1",
        "  total             6      3      4",
        f"left out of the gtzan-ff split: 1 track in none of its lists: {gtzan_ids('classical', 'out', 1)[0]}",
        "trained anyway (--force): the test part has 4 tracks (an honest test part needs at least 10, and 2 of "
        "every genre; classical 1, reggae 1)",
        "skipped 1 files:",
        f"  metal/broken.wav: {broken_reason}",
        "validation loss was still falling at the last epoch (1); more epochs would likely help: --epochs 2",
        "test metrics (held-out tracks, never seen in training or model selection):",
        "            accuracy  precision   recall      F1   (weighted; macro F1)",
    ]
    run_id = lines[0].split()[1].rstrip(":")
    run = mlflow.get_run(run_id)
    assert run.data.tags["genrelib.still_improving"] == "true" and run.data.params["train.force"] == "True"
    assert run.data.metrics["tracks_left_out"] == 1
    # the model keeps what was forced, and the tracks of each part (the fault-filtered ones present)
    info = load_model(f"runs:/{run_id}/model").info
    assert info["still_improving"] is True and info["split_left_out"] == 1
    assert info["split_problems"][0].startswith("the test part has 4 tracks")
    assert sorted(info["split_tracks"]["test"]) == sorted(
        gtzan_ids("classical", "test", 1) + gtzan_ids("metal", "test", 2) + gtzan_ids("reggae", "test", 1)
    )


def dataset_skipped(root):
    from genrelib.datasets.tracks import scan

    return scan(root).skipped


def test_features_family_picks_its_kind_and_draws_a_map(tiny_tree, tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert (
        main(
            [
                "features",
                str(tiny_tree),
                "--family",
                "crnn",
                "--out",
                str(out),
                "--jobs",
                "1",
                "--map",
                str(tmp_path / "maps" / "map.png"),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mel features of 12 tracks: X (12, 130, 128)")  # crnn trains on mel segments
    assert lines[1] == f"map of the features, one point per track (pca) -> {tmp_path / 'maps' / 'map.png'}"
    assert (tmp_path / "maps" / "map.png").read_bytes()[:4] == b"\x89PNG"
    # an explicit --kind wins over the family's, as notebook 02's kind parameter does
    assert (
        main(["features", str(tiny_tree), "--family", "crnn", "--kind", "mfcc", "--out", str(out), "--jobs", "1"]) == 0
    )
    assert capsys.readouterr().out.startswith("mfcc features of 12 tracks: X (12, 130, 16)")
    assert main(["features", str(tiny_tree), "--out", str(out), "--map-method", "tsne"]) == 2
    assert "--map-method needs --map FILE.png" in capsys.readouterr().err


def _features_cmd(data, out):
    return [
        sys.executable,
        "-m",
        "genrelib.cli",
        "features",
        str(data),
        "--kind",
        "summary",
        "--out",
        str(out),
        "--no-cache",
        "--jobs",
        "1",
    ]


def test_features_logs_progress_lines_when_stderr_is_not_a_terminal(tiny_tree, tmp_path):
    # issue 10 item 10: `genrelib features DATA 2>log` wrote nothing until the end (a tqdm bar only)
    data = tmp_path / "data"
    shutil.copytree(tiny_tree, data)
    sf.write(data / "metal" / "silent.wav", np.zeros(3 * 22050, np.float32), 22050)  # skipped by extraction
    r = subprocess.run(_features_cmd(data, tmp_path / "f.csv"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr  # a file was skipped
    assert "\r" not in r.stderr  # no bar
    lines = [
        m.groups()
        for m in re.finditer(
            r"^genrelib: summary features: (\d+)/13 files \((\d+)%\), "
            r"(\d+) skipped, \d+ s$",
            r.stderr,
            flags=re.M,
        )
    ]
    done = [int(d) for d, _, _ in lines]
    assert len(done) >= 5 and done == sorted(done) and done[-1] == 13, r.stderr  # every 2 files (a tenth), and the end
    assert lines[-1][1:] == ("100", "1")
    assert r.stderr.startswith("genrelib: summary features: 13 files, 1 process\n"), r.stderr
    assert r.stderr.count("genrelib: summary features: 13/13") == 1


def test_features_draws_a_bar_on_a_terminal(tiny_tree, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_tree / "metal", data / "metal")
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 0 columns: tqdm draws nothing
    proc = subprocess.Popen(_features_cmd(data, tmp_path / "f.csv"), stderr=slave, stdout=subprocess.DEVNULL)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=300) == 0, seen
    text = seen.decode(errors="replace")
    assert "summary features: 100%" in text and "4/4" in text and "\r" in text  # tqdm's bar
    assert "genrelib: summary features" not in text  # no log lines beside it


def test_a_new_tracking_store_is_made_without_mlflow_log_lines(tmp_path):
    """The first command against a new store: MLflow's schema lines ("Creating initial MLflow database tables...")
    are not shown; every line a user sees is genrelib's (issue 10 #7)."""
    (tmp_path / "new").mkdir()
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}")
    r = subprocess.run(
        [sys.executable, "-c", "from genrelib import tracking; print(tracking.setup())"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    assert (tmp_path / "new" / "mlflow.db").stat().st_size > 0
    assert r.stderr == ""


def test_every_option_has_help_and_its_default_shown():
    import argparse

    from genrelib.cli.run import build_parser

    def commands(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                yield from action.choices.items()

    quiet = (argparse._HelpAction, argparse._VersionAction, argparse._StoreTrueAction)
    for name, sub in commands(build_parser()):
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or isinstance(action, quiet):
                continue
            text = formatter._expand_help(action)
            assert text, f"{name} {action.option_strings[0]} has no help"
            if action.default not in (None, False):
                assert "default" in text, f"{name} {action.option_strings[0]}: {text}"
    top_k, seed, jobs = "--top-k TOP_K genres shown per song (default 3)", "(default: 42)", "(default: all CPUs)"
    assert top_k in commands_help("predict") and seed in commands_help("train") and jobs in commands_help("evaluate")


def commands_help(name):
    from genrelib.cli.run import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices[name]
    return " ".join(sub.format_help().split())


def test_train_prints_one_line_per_epoch_on_stderr(tiny_tree, capsys):
    args = ["train", str(tiny_tree), "--model", "seed_cnn", "--epochs", "2", "--patience", "5", "--jobs", "1"]
    assert main([*args, "--no-register"]) == 0
    err = capsys.readouterr().err.splitlines()
    epochs = [line for line in err if " epoch " in line]
    assert len(epochs) == 2, err
    for n, line in enumerate(epochs, 1):
        assert re.fullmatch(
            rf"genrelib: seed_cnn epoch {n}/2: loss \d+\.\d{{3}}, val loss \d+\.\d{{3}}, val accuracy [01]\.\d{{3}}, \d+ s",
            line,
        ), line


def test_runs_record_absolute_data_roots_and_names_that_tell_them_apart(tiny_tree, monkeypatch, capsys):
    import mlflow

    from genrelib.datasets import scan
    from genrelib.training.config import TrainConfig
    from genrelib.training.trainer import run_title

    monkeypatch.chdir(tiny_tree.parent)  # the data given as a relative path, "genres"
    assert main(["train", "genres", "--model", "summary", "--seed", "3", "--jobs", "1", "--no-register"]) == 0
    run_id = capsys.readouterr().out.split()[1].rstrip(":")
    run = mlflow.get_run(run_id)
    assert run.info.run_name == "train-summary · genres (synthetic demo) · seed 3"
    assert run.data.params["data.root"] == str(tiny_tree.resolve())
    assert main(["evaluate", f"runs:/{run_id}/model", "genres", "--part", "test", "--jobs", "1"]) == 0
    evaluated = mlflow.get_run(capsys.readouterr().out.split()[-1])
    assert evaluated.info.run_name == f"evaluate-summary · runs:/{run_id}/model · genres (synthetic demo) · test tracks"
    assert evaluated.data.params["data"] == str(tiny_tree.resolve())
    # two runs of one family on one folder, of 30 and of 3 epochs, have two names
    ds = scan("genres")
    names = {run_title("train", TrainConfig(family="seed_cnn", epochs=n), ds) for n in (30, 3)}
    assert names == {
        "train-seed_cnn · genres (synthetic demo) · 30 epochs · seed 42",
        "train-seed_cnn · genres (synthetic demo) · 3 epochs · seed 42",
    }


def test_run_all_summary_says_the_test_accuracy_and_where_the_alias_went(tmp_path, monkeypatch, capsys):
    import mlflow

    from genrelib import pipeline, tracking
    from genrelib.pipeline.run import NotebookRun

    tracking.setup()
    with mlflow.start_run(run_name="03_train") as run:  # what notebook 03 leaves in the store
        mlflow.log_metric("test_track_accuracy", 0.617)
        mlflow.set_tags(
            {"genrelib.registered_version": "5", "genrelib.alias": "@seed-cnn stays on version 2 (test accuracy ...)"}
        )
    runs = [
        NotebookRun(n, tmp_path / f"{n}.ipynb", tmp_path / f"{n}.html", None, 1.0) for n in ("01_eda", "02_features")
    ]
    runs.append(NotebookRun("03_train", tmp_path / "03.ipynb", tmp_path / "03.html", run.info.run_id, 2.0))
    monkeypatch.setattr(pipeline, "run_all", lambda **kw: ("parent-id", runs))
    assert main(["run-all", "--data", str(tmp_path), "--personal", str(tmp_path), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "03_train: test accuracy per track 0.617 (held-out tracks)\n" in out
    assert "  registered as genre-classifier/5; @seed-cnn stays on version 2 (test accuracy ...)\n" in out
    # the UI line works as printed on a clean PATH, without MLflow's job runner (issue 21 #7)
    line = next(x for x in out.splitlines() if x.startswith("compare runs in the MLflow UI: "))
    words = shlex.split(line.split(": ", 1)[1].split("   (or: make ui)")[0])
    assert words[0] == "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" and words[2:4] == ["ui", "--backend-store-uri"]
    clean = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    r = subprocess.run([words[1], "ui", "--help"], capture_output=True, text=True, env=clean, timeout=60)
    assert r.returncode == 0 and "--backend-store-uri" in r.stdout


def test_evaluate_outside_the_project_folder_says_where_it_looked_and_makes_no_empty_store(
    tmp_path, monkeypatch, capsys
):
    """Without MLFLOW_TRACKING_URI and outside the project folder, a registered model is not looked for in a new
    empty store made on the spot: one line says where genrelib looked and how to point at the project's store
    (issue 21 item 17)."""
    from genrelib.tracking import backend

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setattr(backend, "_configured_uri", None)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "songs" / "jazz").mkdir(parents=True)
    sf.write(elsewhere / "songs" / "jazz" / "a.wav", np.zeros(22050, dtype="float32"), 22050)
    monkeypatch.chdir(elsewhere)
    for argv in (
        ["evaluate", "genre-classifier@seed-cnn", "songs"],
        ["personal-test", "songs", "--model", "genre-classifier@seed-cnn"],
        ["predict", "songs", "--model", "genre-classifier/3"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("genrelib: error: model 'genre-classifier"), err
        assert f"{elsewhere / 'mlruns' / 'mlflow.db'} does not exist (no store was made)" in err[0]
        assert (
            "run from the project folder, or point at the project's store: export MLFLOW_TRACKING_URI=sqlite:///"
            in (err[0])
        )
        assert not (elsewhere / "mlruns").exists(), argv
