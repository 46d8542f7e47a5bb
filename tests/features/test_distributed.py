"""Extraction on a real Dask LocalCluster (2 worker processes): equal to local extraction, no track lost when a
worker dies mid-run, bad files reported as locally, clear errors for an unreachable scheduler or worker."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from genrelib import datasets, features
from genrelib.errors import FeatureError
from genrelib.features import store

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def broken_tree(tiny_tree, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_tree, root)
    data = (root / "metal" / "metal.00000.wav").read_bytes()
    (root / "metal" / "metal.00099.wav").write_bytes(data[: len(data) // 3])  # passes the scan, fails to decode
    return root


def test_cluster_features_equal_local_and_bad_files_reported_alike(client, broken_tree, tmp_path):
    ds = datasets.scan(broken_tree)
    cfg = features.FeatureConfig()
    ref = features.extract(ds, cfg, n_jobs=1, use_cache=False, progress=False)
    sfs = store.extract_to_store(ds, cfg, tmp_path / "store", shard_size=2, scheduler=client, progress=False)
    got = sfs.load()
    np.testing.assert_array_equal(got.X, ref.X)
    for name in ("track_ids", "window", "segment", "row_genres"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name))
    assert sorted(got.skipped) == sorted(ref.skipped)  # the same files, the same messages
    assert any(t == "metal/metal.00099.wav" and "truncated" in why for t, why in got.skipped)
    assert len(sfs.manifest["shards"]) == 7  # 13 tracks, 2 per shard


def test_a_worker_killed_mid_run_loses_no_track(client, tiny_tree, tmp_path):
    marker = tmp_path / "killed"

    class KillOnce(distributed.WorkerPlugin):
        """Kills the worker process the first time any worker starts computing a shard."""

        def __init__(self, marker: str) -> None:
            self.marker = marker

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and "genrelib-shard" in str(key):
                try:
                    fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os._exit(1)  # the worker dies with the task in hand

    client.register_plugin(KillOnce(str(marker)), name="kill-once")
    try:
        ds = datasets.scan(tiny_tree)
        cfg = features.FeatureConfig()
        sfs = store.extract_to_store(ds, cfg, tmp_path / "store", shard_size=3, scheduler=client, progress=False)
    finally:
        client.unregister_worker_plugin("kill-once")
    assert marker.exists()  # a worker really died mid-run
    ref = features.extract(ds, cfg, n_jobs=1, use_cache=False, progress=False)
    assert sfs.tracks == ref.tracks and not sfs.skipped
    np.testing.assert_array_equal(sfs.load().X, ref.X)
    client.wait_for_workers(2, timeout=30)  # the nanny restarted it


def test_worker_that_cannot_read_the_audio_is_one_clear_error(client, tmp_path):
    from genrelib.features.distributed import check_workers

    with pytest.raises(FeatureError, match=r"cannot read the audio file /no/such/dir/a\.wav.*same path"):
        check_workers(client, Path("/no/such/dir/a.wav"), tmp_path / "store")


def test_unreachable_scheduler_is_one_clear_error(tiny_tree, tmp_path, capsys, monkeypatch):
    from genrelib.cli import main
    from genrelib.features import distributed as gd

    monkeypatch.setattr(gd, "CONNECT_TIMEOUT", 1)  # 5 s by default

    with socket.socket() as s:  # a free port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    code = main(
        [
            "features",
            str(tiny_tree),
            "--kind",
            "mfcc",
            "--out",
            str(tmp_path / "f.npz"),
            "--no-cache",
            "--scheduler",
            address,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot reach a Dask scheduler at {address} within 1 s" in err and "leave out --scheduler" in err
    assert err.count("\n") == 1  # one line, no traceback


def test_train_extracts_on_the_cluster(client, tiny_tree, tmp_path):
    from genrelib.training.config import TrainConfig
    from genrelib.training.trainer import train

    cfg = TrainConfig(family="seed_cnn", epochs=1, seed=1)
    res = train(tiny_tree, cfg, log=False, scheduler=client.scheduler.address)
    ref = features.extract(
        datasets.scan(tiny_tree), features.FeatureConfig(), n_jobs=1, use_cache=False, progress=False
    )
    np.testing.assert_array_equal(res.features.X, ref.X)
    assert res.report is not None and 0 <= res.report.track.metrics["accuracy"] <= 1
    # and cached as a local extraction caches it: the next local run reads it, computing nothing
    again = features.extract(datasets.scan(tiny_tree), features.FeatureConfig(), n_jobs=1, progress=False)
    assert (again.cached, again.computed) == (12, 0)
    np.testing.assert_array_equal(again.X, ref.X)


def test_cv_and_evaluate_take_the_cluster_and_the_store(client, tiny_tree, tmp_path, capsys):
    """``--scheduler`` and ``--store`` reach ``train --cv`` and ``evaluate``: the numbers of a local, in-memory run."""
    from genrelib.cli import main
    from genrelib.training.config import TrainConfig
    from genrelib.training.crossval import cross_validate
    from genrelib.training.trainer import train

    address = client.scheduler.address
    local = cross_validate(tiny_tree, TrainConfig(family="summary", seed=3), folds=2, log=False, n_jobs=1)
    with distributed.get_task_stream(client) as tasks:  # what the cluster ran: the shards, as genrelib-shard-* tasks
        assert (
            main(
                [
                    "train",
                    str(tiny_tree),
                    "--model",
                    "summary",
                    "--cv",
                    "2",
                    "--seed",
                    "3",
                    "--scheduler",
                    address,
                    "--store",
                    str(tmp_path / "cv"),
                ]
            )
            == 0
        )
    assert any(str(t["key"]).startswith("genrelib-shard") for t in tasks.data)
    out = capsys.readouterr().out
    mean, sd = local.mean["test_track_accuracy"], local.std["test_track_accuracy"]
    assert f"track accuracy    {mean:.3f} +- {sd:.3f} (mean +- sd over 2 folds)" in out
    assert len(list((tmp_path / "cv").glob("summary-*/shards/shard-*.parquet"))) >= 1  # the folds read the store

    model_dir = train(tiny_tree, TrainConfig(family="summary", seed=1), log=False, n_jobs=1).model.save(
        tmp_path / "model"
    )
    args = ["evaluate", str(model_dir), str(tiny_tree), "--part", "all", "--no-log", "--jobs", "1"]
    assert main(args) == 0
    in_memory = capsys.readouterr().out
    assert "12 tracks" in in_memory
    with distributed.get_task_stream(client) as tasks:
        assert main([*args, "--scheduler", address, "--store", str(tmp_path / "ev")]) == 0
    assert any(str(t["key"]).startswith("genrelib-shard") for t in tasks.data)
    assert capsys.readouterr().out == in_memory  # predicted shard by shard, extracted on the cluster: same report
    assert len(list((tmp_path / "ev").glob("summary-*/shards/shard-*.parquet"))) >= 1


def test_a_worker_killed_while_writing_a_shard_loses_no_track_and_leaves_no_temporary_file(
    client, tiny_tree, tmp_path, monkeypatch
):
    marker = str(tmp_path / "killed-writing")

    def die_writing_once(marker: str) -> None:
        """In a worker: the first shard file written anywhere is half written, then the worker process dies."""
        from genrelib.features import shards as st

        real = getattr(st, "_real_atomic_write", st.atomic_write)
        st._real_atomic_write = real

        def dying(path, data):
            if path.suffix == ".parquet":
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    return real(path, data)
                path.parent.mkdir(parents=True, exist_ok=True)
                (path.parent / f".{path.name}.killed.tmp").write_bytes(data[: len(data) // 2])
                os._exit(1)
            return real(path, data)

        st.atomic_write = dying

    def restore() -> None:
        from genrelib.features import shards as st

        st.atomic_write = getattr(st, "_real_atomic_write", st.atomic_write)

    client.run(die_writing_once, marker)
    monkeypatch.setattr(store, "STALE_TMP_SECONDS", 0.0)  # the half file is seconds old when the run ends
    try:
        ds = datasets.scan(tiny_tree)
        cfg = features.FeatureConfig()
        sfs = store.extract_to_store(ds, cfg, tmp_path / "store", shard_size=3, scheduler=client, progress=False)
    finally:
        client.run(restore)
    assert os.path.exists(marker)  # a worker really died with half a shard written
    ref = features.extract(ds, cfg, n_jobs=1, use_cache=False, progress=False)
    assert sfs.tracks == ref.tracks and not sfs.skipped
    np.testing.assert_array_equal(sfs.load().X, ref.X)
    assert not list(sfs.path.rglob("*.tmp"))  # the dead writer's half file is gone
    client.wait_for_workers(2, timeout=30)
