"""Issue 12: the adversarial probes, each reproduced with generated files and asserting the good behaviour."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from genrelib import audio, datasets, features
from genrelib.errors import AudioError

from .conftest import sine

GL = [sys.executable, "-m", "genrelib.cli"]


def _cli(*args, **kw):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([*GL, *map(str, args)], capture_output=True, text=True, env=env, timeout=600, **kw)


# ------------------------------------------------------------------------------------------- bad audio


def test_huge_float_samples_are_an_error_naming_the_file(write):
    # probe 1: a float WAV with finite samples of 3e5 made predict crash and mfcc features inf/NaN
    y = sine(440, 3.0) * 3e5 / 0.5
    path = write("loud.wav", y, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"loud\.wav.*samples reach 3e\+05.*\[-1, 1\]"):
        audio.load(path)
    # a float file a little over full scale (common after mixing) is fine
    ok = write("hot.wav", sine(440, 3.0) * 3.0, subtype="FLOAT")
    assert np.abs(audio.load(ok)[0]).max() > 1.0


def test_extraction_never_stores_non_finite_features(tmp_path, write):
    root = tmp_path / "data"
    for i in range(2):
        write(f"data/a/ok{i}.wav", sine(440 + 100 * i, 4.0))
        write(f"data/b/ok{i}.wav", sine(2000 + 100 * i, 4.0))
    write("data/b/loud.wav", sine(440, 4.0) * 1e6, subtype="FLOAT")
    ds = datasets.scan(root)
    for kind in ("mfcc", "mel", "summary"):
        fs = features.extract(ds, features.FeatureConfig(kind=kind), n_jobs=1, progress=False)
        assert np.isfinite(fs.X).all()
        assert "b/loud.wav" not in set(fs.track_ids) and any(t == "b/loud.wav" for t, _ in fs.skipped)


def test_truncated_ogg_is_reported(write, tmp_path):
    # probe 2: an ogg/vorbis file cut at 10% or 50% was classified on the partial audio
    rng = np.random.default_rng(0)
    music = sine(440, 20.0) * 0.6 + 0.1 * rng.standard_normal(22050 * 20).astype(np.float32)
    good = write("full.ogg", music)
    assert len(audio.load(good)[0]) > 19 * 22050
    data = good.read_bytes()
    for frac in (0.1, 0.5):
        cut = tmp_path / f"cut{frac}.ogg"
        cut.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(AudioError, match="truncated"):
            audio.load(cut)
        with pytest.raises(AudioError, match="truncated"):
            datasets.check_file(cut)


def test_too_short_is_a_clear_error(write):
    # probe 3: a 1-sample file was classified "disco 1.00"
    for n in (1, 100, int(0.4 * 22050)):
        path = write(f"short{n}.wav", sine(seconds=1.0)[:n])
        with pytest.raises(AudioError, match=r"too short.*at least 0\.5 s"):
            audio.load(path)
    assert len(audio.load(write("half.wav", sine(seconds=0.6)))[0]) > 0


def test_long_silent_file_fails_before_any_window_is_featurised(write):
    # probe 4: a 2-hour silent file was featurised for 5 minutes before "is silent"; here 20 minutes
    path = write("quiet.wav", np.zeros(22050 * 60 * 20, np.float32))
    passed_on = []
    with pytest.raises(AudioError, match="silent"):
        for chunk in audio.stream(path):
            passed_on.append(chunk)
    assert passed_on == []  # nothing reached a feature extractor
    with pytest.raises(AudioError, match="silent"):
        features.file_features(path, features.FeatureConfig(kind="summary"))


def test_silence_then_sound_gives_the_same_signal(write):
    y = np.concatenate([np.zeros(22050 * 70, np.float32), sine(440, 5.0)])
    path = write("late.wav", y, subtype="FLOAT")
    z, _ = audio.load(path)
    np.testing.assert_allclose(z, y, atol=1e-6)  # (less the sound's DC offset, removed where audio enters)


# ----------------------------------------------------------------------------- exit codes, scan (items 5, 6)


def _copy_tree(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_scan_features_train_exit_1_when_a_file_was_skipped(tiny_tree, tmp_path, capsys):
    from genrelib.cli import main

    root = _copy_tree(tiny_tree, tmp_path / "data")
    assert (
        main(["scan", str(root)]) == 0
        and main(["features", str(root), "--kind", "summary", "--out", str(tmp_path / "ok.csv"), "--jobs", "1"]) == 0
    )
    capsys.readouterr()
    (root / "metal" / "broken.wav").write_bytes(b"RIFF not audio")
    # before: 0 from scan and features although a file was skipped, while the README promised 1
    assert main(["scan", str(root)]) == 1
    out, err = capsys.readouterr()
    assert "metal/broken.wav" in out and "exit code 1" in err
    assert main(["features", str(root), "--kind", "summary", "--out", str(tmp_path / "f.csv"), "--jobs", "1"]) == 1
    out, err = capsys.readouterr()
    assert "metal/broken.wav" in out and (tmp_path / "f.csv").exists()  # the rest was done
    assert main(["train", str(root), "--model", "summary", "--jobs", "1", "--no-register"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("run ") and "metal/broken.wav" in out and "test metrics" in out


def test_scan_says_it_reads_headers_and_full_decodes(tmp_path, write, capsys):
    from genrelib.cli import main

    for g in ("a", "b"):
        for i in range(2):
            write(f"data/{g}/ok{i}.wav", sine(300 + 500 * i + (0 if g == "a" else 1500), 3.0))
    write("data/a/silent.wav", np.zeros(22050 * 3, np.float32))
    y = sine(440, 3.0)
    y[5000] = np.nan
    write("data/a/nan.wav", y, subtype="FLOAT")
    cut = write("data/b/cut.wav", sine(440, 6.0))
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])  # header promises 6 s, 3 s are there
    # header check: the three count as tracks (before: silently), and scan now says what it checked
    assert main(["scan", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "7 tracks in 2 genres" in out and "headers checked" in out and "scan --full" in out
    assert main(["scan", str(tmp_path / "data"), "--full"]) == 1
    out = capsys.readouterr().out
    assert "4 tracks in 2 genres" in out and "every file decoded" in out
    assert "a/silent.wav" in out and "silent" in out and "a/nan.wav" in out and "NaN" in out
    assert "b/cut.wav" in out and "truncated" in out
    # features decodes fully too: the same three are skipped there
    fs = features.extract(
        datasets.scan(tmp_path / "data"), features.FeatureConfig(kind="mfcc"), n_jobs=1, progress=False
    )
    assert {t for t, _ in fs.skipped} == {"a/silent.wav", "a/nan.wav", "b/cut.wav"}


def test_links_in_a_data_folder_are_followed_or_reported(tmp_path, write):
    for g in ("a", "b"):
        write(f"data/{g}/x.wav", sine(440 if g == "a" else 3000, 3.0))
    write("elsewhere/live/y.wav", sine(600, 3.0))
    data = tmp_path / "data"
    (data / "a" / "gone").symlink_to(tmp_path / "no-such-folder")  # a dangling link to a folder
    (data / "a" / "gone.wav").symlink_to(tmp_path / "no-such-file.wav")
    (data / "a" / "cover.jpg").symlink_to(tmp_path / "no-such-cover.jpg")  # not audio: not reported
    (data / "a" / "live").symlink_to(tmp_path / "elsewhere" / "live")  # followed (rglob did not)
    (data / "a" / "more").symlink_to(tmp_path / "elsewhere" / "live")  # the same folder twice: read once
    (data / "b" / "loop").symlink_to(data / "b" / "loop")
    ds = datasets.scan(data)
    assert sorted(t.track_id for t in ds.tracks) == ["a/live/y.wav", "a/x.wav", "b/x.wav"]
    why = dict(ds.skipped)
    assert set(why) == {"a/gone", "a/gone.wav", "a/more/", "b/loop"}
    assert "broken link" in why["a/gone"] and "no-such-folder" in why["a/gone"]
    assert why["a/more/"].startswith("the same folder as a/live (a link), read once")
    assert "Too many levels" in why["b/loop"]


def _without_root_powers() -> list[str]:
    """A command prefix under which mode 000 keeps even root out (root ignores permissions otherwise)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a folder unreadable to this process")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_unreadable_sub_folder_is_reported(tmp_path, write):
    for g in ("a", "b"):
        write(f"data/{g}/x.wav", sine(440 if g == "a" else 3000, 3.0))
    write("data/a/locked/y.wav", sine(500, 3.0))
    locked = tmp_path / "data" / "a" / "locked"
    locked.chmod(0)
    try:
        code = (
            f"from genrelib import datasets; ds = datasets.scan({str(tmp_path / 'data')!r}); "
            "print(sorted(t.track_id for t in ds.tracks)); print(dict(ds.skipped))"
        )
        r = subprocess.run(
            [*_without_root_powers(), sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
    finally:
        locked.chmod(0o755)
    assert r.returncode == 0, r.stderr
    tracks, skipped = r.stdout.strip().splitlines()
    assert tracks == "['a/x.wav', 'b/x.wav']"  # before: the same, and nothing said about a/locked
    assert "'a/locked/': 'cannot read this folder (Permission denied)" in skipped and "chmod" in skipped


# ------------------------------------------------------------------------- writing results (item 7)


def _leftovers(folder):
    return sorted(p.name for p in Path(folder).rglob("*") if p.name.endswith((".part", ".tmp")))


def test_features_out_is_a_folder_is_refused_before_any_work(tiny_tree, tmp_path):
    out = tmp_path / "work"
    out.mkdir()
    for kind, example in (("summary", "features.csv"), ("mfcc", "features.npz")):
        r = _cli("features", tiny_tree, "--kind", kind, "--out", out, "--jobs", "1", "--cache-dir", tmp_path / "c")
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.strip() == f"genrelib: error: --out {out} is a folder; give a file name (e.g. {out / example})"
    assert not (tmp_path / "c").exists()  # refused before extracting
    assert _leftovers(tmp_path) == [] and list(out.iterdir()) == []  # before: .work.part beside it


def _fill(disk: Path, leave: int) -> None:
    """Fill a disk with a file "filler", leaving about ``leave`` bytes free."""
    st = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))


_PROGRESS = re.compile(r"^genrelib: [\w ]+: \d+(/\d+)? files\b.*$")


def _without_progress(err: str) -> str:
    """stderr without genrelib's progress lines ("mel features: 12 files, 1 process", "...: 2/12 files (16%)...")."""
    return "".join(line for line in err.splitlines(keepends=True) if not _PROGRESS.match(line.rstrip("\n")))


@pytest.fixture
def small_disk(tmp_path):
    """A 5 MB tmpfs (as the tester used), almost full; skips where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip()}); needs root")
    try:
        _fill(mnt, 64 * 1024)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_loses_no_work_and_leaves_no_partial_file(tiny_tree, tmp_path, small_disk):
    cache = tmp_path / "cache"
    args = ["features", tiny_tree, "--kind", "mel", "--jobs", "1"]  # 12 tracks of mel segments: ~0.8 MB
    # --out on the full disk: before, a traceback and the work lost
    r = _cli(*args, "--out", small_disk / "mel.npz", "--cache-dir", cache)
    said = _without_progress(r.stderr)  # stderr is not a terminal here: progress lines come first (issue 10)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(said.strip().splitlines()) == 1
    assert said.startswith(f"genrelib: error: cannot write {small_disk / 'mel.npz'}: the disk is full")
    assert "the features are kept in the cache" in r.stderr and str(cache) in r.stderr
    assert _leftovers(small_disk) == [] and not (small_disk / "mel.npz").exists()
    (small_disk / "filler").unlink()  # space freed: the same command writes --out from the cache
    r = _cli("-v", *args, "--out", small_disk / "mel.npz", "--cache-dir", cache)
    assert r.returncode == 0 and "mel features: 12 files, 12 read from the cache" in r.stderr
    assert features.FeatureSet.load(small_disk / "mel.npz").X.shape == (12, 130, 128)
    (small_disk / "mel.npz").unlink()
    _fill(small_disk, 64 * 1024)
    # the cache on the full disk: --out is written all the same, with a warning
    out = tmp_path / "mel.npz"
    r = _cli(*args, "--out", out, "--cache-dir", small_disk / "cache", "--n-mels", "64")
    assert r.returncode == 0, r.stderr
    assert _without_progress(r.stderr).startswith(
        f"genrelib: warning: the feature cache was not written (cannot write {small_disk / 'cache'}"
    )
    assert "the disk is full" in r.stderr
    assert features.FeatureSet.load(out).X.shape == (12, 130, 64) and _leftovers(small_disk) == []


def test_full_disk_while_writing_a_table_leaves_no_part_file(tiny_tree, tmp_path, small_disk):
    (small_disk / "filler").unlink()
    _fill(small_disk, 4 * 1024)  # less than the 12-row table
    r = _cli("features", tiny_tree, "--kind", "summary", "--jobs", "1", "--no-cache", "--out", small_disk / "table.csv")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (  # (above it: a librosa warning on the synthetic clips)
        f"genrelib: error: cannot write {small_disk / 'table.csv'}: the disk is full; free space there or write to a "
        "folder on another disk; the features were not kept anywhere (no cache was written)"
    )
    assert _leftovers(small_disk) == []  # before: .table.csv.part


def test_read_only_cache_still_writes_out(tiny_tree, tmp_path, small_disk):
    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    out = tmp_path / "t.csv"
    r = _cli("features", tiny_tree, "--kind", "summary", "--jobs", "1", "--out", out, "--cache-dir", small_disk)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "warning: the feature cache was not written" in r.stderr and "read-only" in r.stderr
    assert "--cache-dir" in r.stderr and len(out.read_text().splitlines()) == 13
    # and an --out on the read-only disk is refused before any work
    r = _cli(
        "features", tiny_tree, "--kind", "summary", "--jobs", "1", "--out", small_disk / "sub" / "t.csv", "--no-cache"
    )
    assert r.returncode == 2 and _without_progress(r.stderr).startswith(
        f"genrelib: error: --out {small_disk / 'sub' / 't.csv'}: the folder {small_disk} is not writable"
    )


# ------------------------------------------------------------------------- workers die with genrelib (item 8)


def _session_processes(sid: int) -> dict[int, tuple[int, str]]:
    """Live processes of a session: pid -> (parent pid, command line); zombies count as gone."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):
            continue
        if int(fields[3]) == sid:  # field 6 of /proc/<pid>/stat: the session id
            out[int(d.name)] = (int(fields[1]), cmd)
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="walks /proc")
def test_kill_9_of_features_leaves_no_worker_behind(tmp_path, write):
    one = write(
        "one.wav", sine(440, 30.0) + 0.05 * np.random.default_rng(0).standard_normal(22050 * 30).astype(np.float32)
    )
    for g in ("a", "b"):
        (tmp_path / "data" / g).mkdir(parents=True)
        for i in range(40):  # 80 tracks of 30 s: far longer than the test waits
            os.link(one, tmp_path / "data" / g / f"{i}.wav")
    proc = subprocess.Popen(
        [
            *GL,
            "features",
            str(tmp_path / "data"),
            "--kind",
            "summary",
            "--jobs",
            "2",
            "--no-cache",
            "--out",
            str(tmp_path / "t.csv"),
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            procs = _session_processes(proc.pid)
            servers = [p for p, (pp, cmd) in procs.items() if pp == proc.pid and "forkserver" in cmd]
            workers = [p for p, (pp, _) in procs.items() if pp in servers]
            if len(workers) == 2:
                break
            assert proc.poll() is None, "genrelib features ended before its workers were seen"
            time.sleep(0.2)
        assert len(workers) == 2 and len(servers) == 1
        time.sleep(1.0)  # the workers are at work
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20
        while _session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        # before: both workers (~270 MB each), the fork server and the resource tracker, for good
        assert _session_processes(proc.pid) == {}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _session_processes(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ------------------------------------------------------------------------- MLflow runs that end (item 9)


def _runs(status=None):
    import mlflow

    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [r for r in runs if status is None or r.info.status == status]


def test_sigterm_during_train_ends_the_run_killed(tiny_tree, tmp_path):
    from genrelib import tracking

    tracking.setup()  # the store exists before two processes open it
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [
            *GL,
            "train",
            str(tiny_tree),
            "--model",
            "seed_cnn",
            "--epochs",
            "500",
            "--patience",
            "500",
            "--no-register",
            "--jobs",
            "1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            running = [r for r in _runs("RUNNING") if "epoch/train_loss" in r.data.metrics]
            if running:
                break
            time.sleep(0.5)
        assert proc.poll() is None and running, "no training epoch was logged"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # before: the process died at once and the run stayed RUNNING for good
    assert proc.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in err and "Traceback" not in err
    run = [r for r in _runs() if r.info.run_id == running[0].info.run_id][0]
    assert run.info.status == "KILLED"
    tags = run.data.tags
    assert tags["genrelib.pid"] == str(proc.pid) and tags["genrelib.host"] == socket.gethostname()


def test_runs_of_processes_killed_outright_are_marked_failed(exited_pid, experiment_id):
    import mlflow

    from genrelib import tracking

    client, exp = mlflow.MlflowClient(), experiment_id
    here = socket.gethostname()
    orphan = client.create_run(exp, tags={"genrelib.pid": str(exited_pid), "genrelib.host": here}).info.run_id
    reused = client.create_run(
        exp, tags={"genrelib.pid": str(os.getpid()), "genrelib.host": here, "genrelib.pid_start": "1"}
    ).info.run_id  # a pid since taken by another
    elsewhere = client.create_run(exp, tags={"genrelib.pid": str(exited_pid), "genrelib.host": here + "-other"})
    foreign = client.create_run(exp, tags={}).info.run_id  # not genrelib's: never touched
    alive = tracking.create_parent_run("alive")  # this process: alive
    assert sorted(tracking.reap_orphan_runs()) == sorted([orphan, reused])
    status = {r: client.get_run(r).info.status for r in (orphan, reused, elsewhere.info.run_id, foreign, alive)}
    assert status == {
        orphan: "FAILED",
        reused: "FAILED",
        elsewhere.info.run_id: "RUNNING",
        foreign: "RUNNING",
        alive: "RUNNING",
    }
    assert "ended without ending the run" in client.get_run(orphan).data.tags["genrelib.end_reason"]
    # the next process that opens the store reaps by itself (setup, once per process and store)
    again = client.create_run(exp, tags={"genrelib.pid": str(exited_pid), "genrelib.host": here}).info.run_id
    r = subprocess.run(
        [sys.executable, "-c", "from genrelib import tracking; tracking.setup()"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and client.get_run(again).info.status == "FAILED"


# ------------------------------------------------------------------------- notebook parameters (item 10)

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def test_notebook_parameters_are_checked_before_anything_runs(tiny_tree, tmp_path, capsys):
    from genrelib.cli import main
    from genrelib.pipeline import NOTEBOOKS, check_parameters

    common = ["--notebooks-dir", str(NB_DIR), "--out", str(tmp_path / "nb")]
    # before: the unknown name was ignored and all five notebooks ran on the defaults
    assert main(["run-all", "--data", str(tiny_tree), "--personal", str(tiny_tree), "-p", "epochz", "1", *common]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(
            "genrelib: error: unknown notebook parameter 'epochz' (value '1'): not declared by any "
            f"of the notebooks {', '.join(NOTEBOOKS)}; did you mean 'epochs'? (declared: aug_copies, "
            "batch_size, "
        )
        and len(err.strip().splitlines()) == 1
    )
    # before: 01 and 02 ran, then 03 failed with "TypeError: '<' not supported between 'str' and 'int'"
    assert (
        main(["run-all", "--data", str(tiny_tree), "--personal", str(tiny_tree), "-p", "epochs", "notanumber", *common])
        == 2
    )
    assert capsys.readouterr().err.strip() == (
        "genrelib: error: notebook parameter 'epochs' must be a whole number (int), as 03_train declares it "
        "(epochs: int = 30); got 'notanumber'"
    )
    assert (
        main(["run-all", "--data", str(tiny_tree), "--personal", str(tiny_tree), "-p", "n_jobs", "2.5", *common]) == 2
    )
    err = capsys.readouterr().err
    assert "'n_jobs' must be a whole number (int), as 02_features, 03_train, 04_evaluate" in err
    assert err.strip().endswith("declare it (n_jobs: int = 0); got '2.5'")
    assert not (tmp_path / "nb").exists() and _runs() == []  # nothing ran
    # one notebook: a name it does not declare is an error, even if another notebook declares it
    assert main(["notebook", "04_evaluate", "-p", "epochs", "3", "--data", str(tiny_tree), *common]) == 2
    assert "not declared by notebook 04_evaluate" in capsys.readouterr().err
    # what is right is converted to the declared types: an int for a float; a number kept as text for a str
    assert check_parameters({"epochs": "5", "mixup": "1", "model": "7", "hop_seconds": 2}, notebooks_dir=NB_DIR) == {
        "epochs": 5,
        "mixup": 1.0,
        "model": "7",
        "hop_seconds": 2,
    }
    assert check_parameters({"epochs": "3"}, ["03_train", "04_evaluate"], notebooks_dir=NB_DIR) == {"epochs": 3}


# ---------------------------------------------------------------- a model that cannot be logged (item 16)


def test_train_keeps_the_model_when_logging_it_fails(tiny_tree, tmp_path, monkeypatch, capsys):
    from genrelib import tracking
    from genrelib.cli import main
    from genrelib.inference.predict import load_model

    monkeypatch.chdir(tmp_path)
    # the store's artifact folder cannot be made (a file is in its place): every artifact write fails, for real
    (tmp_path / "mlruns" / "artifacts").write_text("not a folder")
    tracking.setup()  # (MLflow's notices of a new store are not the point here)
    capsys.readouterr()
    assert main(["train", str(tiny_tree), "--model", "summary", "--jobs", "1"]) == 2
    err = _without_progress(capsys.readouterr().err)  # progress lines when stderr is not a terminal (issue 10)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(
        "genrelib: error: training finished, but evaluating or logging the model failed (NotADirectoryError: "
    )
    [run] = _runs()
    folder = Path("results") / "unlogged-models" / f"summary-{run.info.run_id}"
    assert f"the trained model is saved in {folder} (use it with --model {folder})" in err
    assert f"MLflow run {run.info.run_id} is marked FAILED" in err
    assert run.info.status == "FAILED" and run.data.tags["genrelib.unlogged_model"] == str(folder.resolve())
    model = load_model(folder)  # before: the model was lost with the traceback
    assert model.family == "summary" and model.info["split_tracks"]["test"]
    track = next(tiny_tree.rglob("*.wav"))
    assert main(["predict", str(track), "--model", str(folder)]) == 0


# ------------------------------------------------------------------ issue 19: a second set of probes
# 3. training that diverged is never registered; genrelib's JSON is always valid JSON


def _strict_json(text: str):
    import json

    def no_constant(name):
        raise AssertionError(f"not valid JSON: {name}")

    return json.loads(text, parse_constant=no_constant)


def test_diverged_training_fails_and_registers_nothing(tiny_tree):
    import mlflow

    from genrelib.errors import ModelError
    from genrelib.training.config import TrainConfig
    from genrelib.training.trainer import train

    with pytest.raises(ModelError, match=r"training diverged: .*nothing was logged or registered.*--learning-rate"):
        train(tiny_tree, TrainConfig(family="seed_cnn", epochs=2, learning_rate=1e30, seed=1), n_jobs=1)
    client = mlflow.MlflowClient()
    assert client.search_model_versions("name='genre-classifier'") == []
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FAILED"


def test_a_model_with_non_finite_outputs_is_refused_and_json_stays_valid(tiny_tree, tmp_path, capsys):
    from genrelib import jsonio
    from genrelib.cli import main
    from genrelib.training.config import TrainConfig
    from genrelib.training.trainer import train

    model = train(tiny_tree, TrainConfig(family="seed_cnn", epochs=1, seed=1), log=False, n_jobs=1).model
    model.estimator.set_weights([np.full_like(w, np.nan) for w in model.estimator.get_weights()])
    model.info["best_val_loss"] = float("nan")  # a non-finite number in what is saved with the model
    model.save(tmp_path / "broken")
    song = next(tiny_tree.rglob("*.wav"))
    code = main(["predict", str(song), "--model", str(tmp_path / "broken"), "--format", "json"])
    out, err = capsys.readouterr()
    assert code != 0 and _strict_json(out) == []
    assert "not finite" in err and "Traceback" not in err
    assert _strict_json((tmp_path / "broken" / "genrelib-model.json").read_text())["info"]["best_val_loss"] is None
    assert jsonio.dumps({"a": float("nan"), "b": [np.float32("inf"), 1.5], "c": np.array([1.0, np.nan])}) == (
        '{"a": null, "b": [null, 1.5], "c": [1.0, null]}'
    )


# 1. audio with no music: silent, constant or near-silent is reported as such; a DC offset changes nothing


def test_constant_and_near_silent_audio_is_reported_silent_not_classified(tiny_tree, write, capsys):
    from genrelib.cli import main

    music, sr = audio.load(next(tiny_tree.glob("metal/*.wav")))
    files = [
        write("dc.wav", np.full(sr * 3, 0.5, np.float32)),  # pure DC, no sound
        write("tiny.wav", music * 1e-30, subtype="FLOAT"),  # music far under any noise floor
        write("dc_tiny.wav", music * 1e-9 - 0.25, subtype="FLOAT"),
    ]
    for path in files:
        with pytest.raises(AudioError, match=rf"{path.name}: is silent"):
            audio.load(path)
    code = main(["predict", *map(str, files), "--model", "reference"])
    out, err = capsys.readouterr()
    assert code == 2 or code == 1
    assert out.strip().splitlines()[1:] == []  # the model's line only: no genre for any file
    errors = [line for line in err.splitlines() if line.startswith("genrelib: error:")]
    assert len(errors) == 3 and all("is silent" in line for line in errors)


def test_a_dc_offset_changes_no_signal_feature_or_answer(tiny_tree, write):
    from genrelib.inference.predict import load_model, predict_file

    music, sr = audio.load(next(tiny_tree.glob("metal/*.wav")))
    clean = write("clean.wav", music, subtype="FLOAT")
    shifted = write("shifted.wav", music + 0.4, subtype="FLOAT")
    a, b = audio.load(clean)[0], audio.load(shifted)[0]
    np.testing.assert_allclose(b, a, atol=1e-5)
    assert abs(float(b.mean())) < 1e-3
    for kind in ("mfcc", "mel", "summary"):
        cfg = features.FeatureConfig(kind=kind)
        np.testing.assert_allclose(
            features.file_features(shifted, cfg).X, features.file_features(clean, cfg).X, rtol=1e-3, atol=1e-3
        )
    model = load_model("reference")
    np.testing.assert_allclose(predict_file(model, shifted).proba, predict_file(model, clean).proba, atol=1e-3)


# 8. every option and notebook parameter is checked before any work, in one line naming it and what is allowed


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "{data}", "--model", "summary", "--learning-rate", "inf"], "--learning-rate"),
        (["train", "{data}", "--model", "seed_cnn", "--learning-rate", "nan"], "--learning-rate"),
        (["train", "{data}", "--model", "summary", "--seed", "-1"], "--seed"),
        (["train", "{data}", "--model", "summary", "--epochs", "0"], "--epochs"),
        (["train", "{data}", "--model", "summary", "--split-file", "{tmp}/nowhere.txt"], "--split-file"),
        (["train", "{data}", "--model", "summary", "--no-register", "--promote"], "--promote"),
        (["train", "{data}", "--model", "summary", "--repeats", "3"], "--repeats"),
        (["sweep", "{data}", "--model", "summary", "--trials", "0"], "--trials"),
        (["predict", "{song}", "--hop", "0"], "--hop"),
        (["predict", "{song}", "--hop", "nan"], "--hop"),
        (["predict", "{song}", "--top-k", "0"], "--top-k"),
        (["predict", "{song}", "--top-k", "-3"], "--top-k"),
        (["demo-data", "{tmp}/demo", "--seconds", "0"], "--seconds"),
        (["demo-data", "{tmp}/demo", "--per-genre", "0"], "--per-genre"),
        (["features", "{data}", "--out", "{tmp}/f.npz", "--map-method", "tsne"], "--map-method"),
        (["ensemble", "reference", "reference", "--weights", "1"], "--weights"),
        (["run-all", "--data", "{data}", "--personal", "/nonexistent"], "--personal"),
    ],
)
def test_options_are_checked_before_any_work(tiny_tree, tmp_path, capsys, argv, option):
    from genrelib.cli import main

    song = next(tiny_tree.rglob("*.wav"))
    argv = [a.format(data=tiny_tree, tmp=tmp_path, song=song) for a in argv]
    t0 = time.perf_counter()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and option in err and "Traceback" not in err, err
    assert time.perf_counter() - t0 < 2  # refused before any extraction, training or notebook
    assert not (tmp_path / "demo").exists()


def test_library_and_notebook_values_are_checked_before_any_work(tiny_tree, tmp_path):
    from genrelib.datasets import demo
    from genrelib.errors import GenrelibError
    from genrelib.inference.predict import Predictor
    from genrelib.pipeline import NotebookError, check_parameters, run_all
    from genrelib.training.config import TrainConfig

    for bad in ({"learning_rate": float("inf")}, {"seed": -1}, {"learning_rate": float("nan")}):
        with pytest.raises(GenrelibError, match=next(iter(bad))):
            TrainConfig(family="seed_cnn", **bad)
    for hop in (0, float("nan"), -1.0):
        with pytest.raises(GenrelibError, match="hop must be a finite number"):
            Predictor("reference", hop_seconds=hop)
    with pytest.raises(GenrelibError, match="seconds"):
        demo.make_demo(tmp_path / "demo", seconds=0, per_genre=1, genres=("rock",), n_jobs=1)
    nbs = Path(__file__).resolve().parents[1] / "notebooks"
    for name, value in (("epochs", "0"), ("hop_seconds", "nan"), ("seed", "-1"), ("family", "cnn"), ("mixup", "inf")):
        with pytest.raises(NotebookError, match=rf"'{name}' must"):
            check_parameters({name: value}, notebooks_dir=nbs)
    with pytest.raises(NotebookError, match="'personal_dir' must be an existing folder"):
        run_all(data_dir=tiny_tree, personal_dir="/nonexistent", notebooks_dir=nbs, out_dir=tmp_path / "nb")
    assert not (tmp_path / "nb").exists()


# 7. data layouts: one genre is refused before any work; a track's identity is its whole path under its genre


def test_one_genre_is_refused_before_any_extraction(tmp_path, write, monkeypatch):
    from genrelib.errors import DatasetError
    from genrelib.features import extraction
    from genrelib.training.config import TrainConfig
    from genrelib.training.crossval import cross_validate
    from genrelib.training.trainer import train

    for i in range(6):
        write(f"one/rock/{i:02d}.wav", sine(300 + 50 * i, 1.0))
    monkeypatch.setattr(extraction, "track_features", lambda *a, **k: pytest.fail("features were extracted"))
    for run in (
        lambda: train(tmp_path / "one", TrainConfig(family="summary"), log=False, n_jobs=1),
        lambda: cross_validate(tmp_path / "one", TrainConfig(family="summary"), folds=3, log=False, n_jobs=1),
    ):
        with pytest.raises(DatasetError, match=r"at least 2 genres; found 1: rock \(6 tracks\)"):
            run()


def test_nested_folders_with_equal_file_names_are_distinct_tracks(tmp_path, write):
    from genrelib.datasets import track_key
    from genrelib.evaluation.scoring import evaluate_folder
    from genrelib.training.config import TrainConfig
    from genrelib.training.trainer import train

    rng = np.random.default_rng(0)
    for g, f0 in (("a", 220), ("b", 880), ("c", 3000)):
        for cd in ("cd1", "cd2", "cd3"):
            for n in ("01", "02"):
                y = sine(f0 * (1 + 0.05 * rng.random()), 2.0) + 0.01 * rng.standard_normal(44100).astype(np.float32)
                write(f"nested/{g}/{cd}/{n}.wav", y)
    assert track_key("a/cd1/01.wav") != track_key("a/cd2/01.wav") and track_key("blues/blues.00012.au") == (
        "blues/blues.00012"
    )
    res = train(tmp_path / "nested", TrainConfig(family="summary", seed=1), log=False, n_jobs=1)
    assert len(res.features.tracks) == 18  # every file its own rows
    test = res.model.info["split_tracks"]["test"]
    assert len(test) >= 3 and len({track_key(t) for t in test}) == len(test)
    report = evaluate_folder(res.model, tmp_path / "nested", part="test", n_jobs=1)
    assert report.part_recorded == report.part_found == len(report.track_ids) == len(test)
    assert sorted(report.track_ids) == sorted(test)


# 6. files that change under genrelib, odd names, a reader that goes away


def test_a_track_deleted_between_scan_and_extract_is_skipped_with_its_reason(tmp_path, write):
    for g, f0 in (("a", 300), ("b", 2000)):
        for i in range(2):
            write(f"data/{g}/{i}.wav", sine(f0 + 50 * i, 1.0))
    ds = datasets.scan(tmp_path / "data")
    (tmp_path / "data" / "b" / "1.wav").unlink()  # as notebook 02 may meet it: scan, then extract
    fs = features.extract(ds, features.FeatureConfig(kind="summary"), n_jobs=1, progress=False)
    assert set(fs.tracks) == {"a/0.wav", "a/1.wav", "b/0.wav"}
    ((tid, why),) = fs.skipped
    assert tid == "b/1.wav" and "no such file" in why
    assert ds.manifest()["tracks"][-1][2:] == [None, None]


def test_names_with_control_characters_print_as_one_line(tmp_path, write, capsys):
    from genrelib.cli import main

    write("data/a/ok.wav", sine(300, 1.0))
    write("data/b/ok.wav", sine(2000, 1.0))
    evil = tmp_path / "data" / "b" / "x.wav\n  forged.wav: looks fine\x1b[2K.wav"
    evil.write_bytes(b"not audio at all" * 10)
    assert main(["scan", str(tmp_path / "data")]) == 1
    out, err = capsys.readouterr()
    listed = [line for line in out.splitlines() if line.startswith("  ") and ".wav" in line]
    assert len(listed) == 1 and "\\n  forged.wav" in listed[0] and "\x1b" not in out
    assert main(["predict", str(evil), "--model", "reference"]) != 0
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("genrelib: error: ") and "\\x1b" in errors[0]


def test_predict_into_a_closed_pipe_exits_quietly(tiny_tree):
    songs = sorted(map(str, tiny_tree.rglob("*.wav")))[:2]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([*GL, "predict", *songs], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader (`| head`) is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err


# 4. every file genrelib reads back is validated: a bad one is named and computed again, never trusted


def _small_tree(tmp_path, write):
    for g, f0 in (("classical", 300), ("metal", 2000)):
        for i in range(3):
            write(f"data/{g}/{i}.wav", sine(f0 + 50 * i, 1.0))
    return datasets.scan(tmp_path / "data")


def test_a_bad_feature_cache_entry_is_named_and_computed_again(tmp_path, write, capsys):
    from genrelib.cli import main
    from genrelib.features.cache import entry_path, read_entry, write_entry
    from genrelib.features.digests import content_hash

    ds = _small_tree(tmp_path, write)
    cfg = features.FeatureConfig(kind="summary")
    good = features.extract(ds, cfg, n_jobs=1, progress=False)
    entry = entry_path(content_hash(tmp_path / "data" / "classical" / "0.wav"), cfg)  # one entry per file
    # an entry edited to hold values that are not finite: read back, never trusted
    edited, _ = read_entry(entry, cfg)
    edited.X[0, 3] = np.nan
    write_entry(entry, edited, cfg)
    fs = features.extract(ds, cfg, n_jobs=1, progress=False)
    assert len(fs.repaired) == 1 and str(entry) in fs.repaired[0] and "not finite" in fs.repaired[0]
    assert "classical/0.wav" in fs.repaired[0] and (fs.cached, fs.computed) == (5, 1)
    np.testing.assert_array_equal(fs.X, good.X)
    assert features.extract(ds, cfg, n_jobs=1, progress=False).repaired == []  # the entry was rewritten
    for damage in (b"", b"PK\x03\x04 garbage", entry.read_bytes()[: entry.stat().st_size // 2]):
        entry.write_bytes(damage)
        out = tmp_path / "out.csv"
        assert main(["features", str(tmp_path / "data"), "--kind", "summary", "--out", str(out), "--jobs", "1"]) == 0
        err = capsys.readouterr().err
        assert err.count(str(entry)) == 1 and "computed again" in err and "Traceback" not in err  # one line
        assert "allow_pickle" not in err and "unpickl" not in err.lower()
        assert "summary features: 6 files, 5 read from the cache" in err
        assert out.exists()


def test_an_edited_store_record_is_named_and_its_shard_computed_again(tmp_path, write):
    import json

    from genrelib.features import store

    ds = _small_tree(tmp_path, write)
    cfg = features.FeatureConfig(kind="summary")
    first = store.extract_to_store(ds, cfg, tmp_path / "s", shard_size=2, n_jobs=1, progress=False)
    rec_path = first.path / "shards" / "shard-00000.json"
    rec = json.loads(rec_path.read_text())
    assert rec["tracks"][0][:2] == ["classical/0.wav", "classical"]
    rec["tracks"][0][1] = "metal"  # one track's genre changed by hand
    rec_path.write_text(json.dumps(rec))
    again = store.extract_to_store(ds, cfg, tmp_path / "s", shard_size=2, n_jobs=1, progress=False)
    assert len(again.repaired) == 1 and "labels classical/0.wav as 'metal'" in again.repaired[0]
    assert str(rec_path) in again.repaired[0]
    assert set(again.index.loc[again.index.track_id == "classical/0.wav", "genre"]) == {"classical"}
    for broken in ("", "[]", '{"rows": "many"}'):
        rec_path.write_text(broken)
        assert len(store.extract_to_store(ds, cfg, tmp_path / "s", n_jobs=1, progress=False).repaired) == 1
    (first.path / "manifest.json").write_text("{")  # the manifest too: read back, never trusted
    assert set(store.extract_to_store(ds, cfg, tmp_path / "s", n_jobs=1, progress=False).tracks) == {
        t.track_id for t in ds.tracks
    }
    from genrelib.errors import FeatureError
    from genrelib.features.stored import open_store

    manifest = json.loads((first.path / "manifest.json").read_text())
    (first.path / "manifest.json").write_text(json.dumps({**manifest, "tracks": 99}))
    with pytest.raises(FeatureError, match=r"index.parquet lists 6 tracks .*manifest.json 99; the store was edited"):
        open_store(first.path)


def test_a_damaged_model_metadata_file_is_named(tmp_path):
    from genrelib.errors import ModelError
    from genrelib.inference.predict import load_model, reference_model_path

    shutil.copytree(reference_model_path(), tmp_path / "m")
    for text in ("", "{", "[]", '{"genres": []}'):
        (tmp_path / "m" / "genrelib-model.json").write_text(text)
        with pytest.raises(ModelError, match=r"genrelib-model.json: the model's metadata is unreadable or malformed"):
            load_model(tmp_path / "m")


# 5. a tracking store that cannot be written: one line naming it and the fix, before any work


def _store_db() -> Path:
    return Path(os.environ["MLFLOW_TRACKING_URI"][len("sqlite:///") :])


def test_a_locked_store_is_waited_for_then_one_line(tiny_tree, monkeypatch, capsys):
    import sqlite3

    from genrelib import tracking
    from genrelib.cli import main

    tracking.setup()
    monkeypatch.setenv("GENRELIB_STORE_WAIT", "1")
    holder = sqlite3.connect(_store_db())
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the store
    try:
        t0 = time.perf_counter()
        assert main(["evaluate", "reference", str(tiny_tree)]) == 2
        assert time.perf_counter() - t0 < 10  # a bounded wait, and no evaluation before it
    finally:
        holder.rollback()
        holder.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert "is locked by another process; waiting up to 1 s" in lines[0]
    assert lines[-1].startswith("genrelib: error: the tracking store ") and "GENRELIB_STORE_WAIT" in lines[-1]
    assert len(lines) == 2 and str(_store_db()) in lines[-1]


def test_a_store_that_is_not_a_database_or_cannot_be_made_is_one_line(tiny_tree, tmp_path, monkeypatch, capsys):
    import sqlalchemy

    from genrelib import tracking
    from genrelib.cli import main

    bad = tmp_path / "junk" / "mlflow.db"
    bad.parent.mkdir()
    bad.write_bytes(b"this is not a database" * 50)
    for uri, words in (
        (f"sqlite:///{bad}", "is not an SQLite database"),
        ("sqlite:////proc/none/m.db", "cannot be made"),
    ):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert main(["evaluate", "reference", str(tiny_tree)]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and words in err[0] and "MLFLOW_TRACKING_URI" in err[0]
    # met in the middle of a command (another process took the lock later): the same words
    exc = sqlalchemy.exc.OperationalError(
        "INSERT INTO runs", {}, __import__("sqlite3").OperationalError("database is locked")
    )
    assert "is locked by another process" in tracking.store_problem(exc, f"sqlite:///{bad}")


def test_a_read_only_store_is_one_line(tiny_tree, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", "from genrelib import tracking; tracking.setup()"], env=env, check=True)
    (folder / "mlflow.db").chmod(0o444)
    folder.chmod(0o555)
    try:
        r = subprocess.run(
            [*_without_root_powers(), *GL, "evaluate", "reference", str(tiny_tree)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    finally:
        folder.chmod(0o755)
    assert r.returncode == 2, r.stderr
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "is read-only" in err[0] and "Traceback" not in r.stderr


def test_a_registered_model_whose_files_were_deleted_says_so(tiny_tree):
    import mlflow

    from genrelib.errors import ModelError
    from genrelib.inference.predict import load_model
    from genrelib.training.config import TrainConfig
    from genrelib.training.trainer import train

    res = train(tiny_tree, TrainConfig(family="summary", seed=1), n_jobs=1)
    where = mlflow.MlflowClient().get_model_version_download_uri("genre-classifier", res.registered_version)
    shutil.rmtree(where[len("file://") :])
    for ref in (f"genre-classifier/{res.registered_version}", "genre-classifier@summary", res.run_id):
        with pytest.raises(ModelError, match=r"the model's files are missing at /"):
            load_model(ref)


# 2. mp3s whose header misstates their length: the length comes from the stream's frames, not a header estimate


def _mp3_frames(seconds: float, level: float, f0: float) -> bytes:
    """CBR mp3 frames of a tone (the Info frame and tags left out), at the bit rate libsndfile's level gives."""
    import io

    import soundfile as sf

    from genrelib import mp3

    t = np.arange(int(seconds * 22050)) / 22050
    y = (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, y, 22050, format="MP3", compression_level=level, bitrate_mode="CONSTANT")
    data, out, pos = buf.getvalue(), [], 0
    while (h := mp3.parse_header(data[pos : pos + 4])) is not None:
        frame = data[pos : pos + h.length]
        if not (pos == 0 and (b"Info" in frame or b"Xing" in frame)):
            out.append(frame)
        pos += h.length
    return b"".join(out)


def test_vbr_mp3_without_a_xing_header_is_read_to_its_true_end(tmp_path):
    slow_fast = tmp_path / "a.mp3"  # 2 s at 8 kbit/s, then 30 s at 160: the estimate is 606 s
    slow_fast.write_bytes(_mp3_frames(2, 0.99, 440) + _mp3_frames(30, 0.0, 660))
    fast_slow = tmp_path / "b.mp3"  # 10 s at 160 kbit/s, then 120 s at 8: the estimate is 16 s
    fast_slow.write_bytes(_mp3_frames(10, 0.0, 440) + _mp3_frames(120, 0.99, 660))
    for path, seconds in ((slow_fast, 32.0), (fast_slow, 130.0)):
        y, sr = audio.load(path)
        assert abs(len(y) / sr - seconds) < 0.2 and abs(audio.duration(path) - seconds) < 0.2
    tail = audio.load(fast_slow)[0][int(100 * 22050) : int(101 * 22050)]
    assert np.sqrt(np.mean(tail**2)) > 0.1  # the 8 kbit/s part is there, not silence
    data = fast_slow.read_bytes()
    for cut in (len(data) // 2 + 7, len(data) - 5):  # a real truncation is still one
        (tmp_path / "cut.mp3").write_bytes(data[:cut])
        with pytest.raises(AudioError, match="truncated"):
            audio.load(tmp_path / "cut.mp3")


# 9. the served model: one bad row never fails the others, whatever the error


def test_a_row_that_breaks_in_any_way_fails_alone(tiny_tree, tmp_path, monkeypatch):
    import pandas as pd

    from genrelib.inference import serving
    from genrelib.inference.predict import load_model

    model = load_model("reference")
    song = next(tiny_tree.glob("metal/*.wav"))
    folder = tiny_tree
    long_name = "a" * 300 + ".wav"  # inside the allowed folder, longer than a file name may be
    rows = [long_name, str(song), "metal/" + "b" * 260 + "/x.wav", str(song)]
    out = serving._answer(model, pd.DataFrame({"path": rows}), {}, serving.Limits(paths_dir=folder))
    assert list(out["path"]) == rows and list(out["row"]) == [0, 1, 2, 3]
    assert out["error"].iloc[0].startswith(f"{long_name}: ") and "name too long" in out["error"].iloc[0].lower()
    assert out["error"].iloc[2] != "" and list(out["error"].iloc[[1, 3]]) == ["", ""]
    assert out["genre"].iloc[1] is not None and out["genre"].iloc[0] is None
    # an unexpected error while reading one row is that row's error, not a 500 for the batch
    real = serving.audio.duration
    monkeypatch.setattr(
        serving.audio,
        "duration",
        lambda p: (_ for _ in ()).throw(RuntimeError("boom")) if "metal" in str(p) else real(p),
    )
    other = next(tiny_tree.glob("classical/*.wav"))
    out = serving._answer(model, pd.DataFrame({"path": [str(song), str(other)]}), {}, serving.Limits(paths_dir=folder))
    assert "internal error (RuntimeError)" in out["error"].iloc[0] and out["error"].iloc[1] == ""
