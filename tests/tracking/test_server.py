"""A team tracking server (issue 11 #4): genrelib, unchanged, against a real ``mlflow server`` over HTTP.

One server for the module, as ``make server`` starts it (:func:`genrelib.tracking.server.server_command`): a SQLite store
and proxied artifacts under tmp_path, on a free loopback port, stopped by its process group at the end. Clients see
only ``MLFLOW_TRACKING_URI=http://127.0.0.1:PORT``: everything they read back (models, reports) comes through the
server's REST API, and the artifacts land in the server's folder, not in a local ``mlruns``.
"""

import base64
import importlib.util
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from genrelib import tracking
from genrelib.cli import main
from genrelib.errors import GenrelibError
from genrelib.inference.predict import load_model, predict_file
from genrelib.training.config import TrainConfig
from genrelib.training.trainer import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(backend: str, artifacts: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = tracking.server_command(backend, artifacts, port=port, workers=1)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | tracking.SERVER_ENV
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.close()  # the child holds its own copy
    return proc, f"http://127.0.0.1:{port}"


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its uvicorn workers by process group (the group's id is the server's pid)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    try:  # workers that outlived the server process
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A running tracking server: yields (its URL, its artifact folder, its process)."""
    tmp = tmp_path_factory.mktemp("server")
    proc, url = _start(f"sqlite:///{tmp / 'db' / 'server.db'}", tmp / "artifacts", tmp / "server.log")
    try:
        tracking.wait_for_server(url, process=proc, timeout=120, log=tmp / "server.log")
        yield url, tmp / "artifacts", proc
    finally:
        _stop(proc)


@pytest.fixture
def client(server, tmp_path, monkeypatch):
    """This test's genrelib talks to the server only (and works in an empty folder, to see what it writes)."""
    url = server[0]
    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setattr(tracking.backend, "_configured_uri", None)  # an earlier test's setup(uri) must not win
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield server
    mlflow.set_tracking_uri(before)  # MLflow's process-wide URI: later tests must not talk to a stopped server


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_train_register_evaluate_predict_through_the_server(client, tiny_tree, tmp_path, capsys):
    url, artifacts, _ = client
    assert main(["train", str(tiny_tree), "--model", "summary", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "@summary now points to version" in out
    # the registry and its alias live on the server
    mc = mlflow.MlflowClient()
    version = mc.get_model_version_by_alias("genre-classifier", "summary")
    assert version.tags["family"] == "summary" and version.tags["test_track_accuracy"]
    run = mc.get_run(version.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri  # proxied, not a path
    # the model comes back by its models:/ URI, over HTTP, and predicts a file
    wav = next(tiny_tree.glob("reggae/*.wav"))
    model = load_model("models:/genre-classifier@summary")
    pred = predict_file(model, wav)
    assert model.family == "summary" and np.isclose(pred.proba.sum(), 1.0)
    # the served form (what `mlflow models serve -m models:/...` loads) answers base64 audio the same
    pyfunc = tracking.load_pyfunc("genre-classifier@summary")
    answer = pyfunc.predict(pd.DataFrame({"audio_base64": [base64.b64encode(wav.read_bytes()).decode()]}))
    assert answer["error"].iloc[0] == ""
    np.testing.assert_allclose(answer[[f"p_{g}" for g in model.genres]].to_numpy()[0], pred.proba, rtol=1e-6)
    # evaluate by alias logs a run whose report reads back through the server, as the server stored it
    assert main(["evaluate", "genre-classifier@summary", str(tiny_tree), "--part", "test"]) == 0
    eval_run = tracking.find_run("genrelib.stage", "evaluate")
    report = tracking.load_run_dict(eval_run, "reports/test_report.json")  # the test part: named as in training
    stored = [p for p in _files(artifacts) if p.name == "test_report.json" and eval_run in p.parts]
    assert len(stored) == 1 and json.loads(stored[0].read_text()) == report
    # the registered model's files are in the server's artifact folder; nothing was written to a local store
    model_id = version.source.removeprefix("models:/")  # models:/m-...: the logged model the version is
    model_files = [p for p in _files(artifacts) if model_id in p.parts]
    assert {"MLmodel", "genrelib-model.json", "model.skops"} <= {p.name for p in model_files}
    assert _files(tmp_path / "work") == [] and _files(tmp_path / "mlruns") == []
    # the UI link is the server's own UI
    assert tracking.ui_url().startswith(f"{url}/#/experiments/")


def test_a_keras_model_round_trips_through_the_server(client, tiny_tree):
    res = train(tiny_tree, TrainConfig(family="seed_cnn", epochs=1, seed=1), n_jobs=1)
    assert (
        mlflow.MlflowClient().get_model_version_by_alias("genre-classifier", "seed-cnn").version
        == res.registered_version
    )
    wav = next(tiny_tree.glob("metal/*.wav"))
    expected = predict_file(res.model, wav).proba
    back = load_model("models:/genre-classifier@seed-cnn")
    np.testing.assert_allclose(predict_file(back, wav).proba, expected, rtol=1e-5, atol=1e-6)


def test_a_server_command_refuses_what_mlflow_would_not_serve(tmp_path):
    with pytest.raises(GenrelibError, match=r"'mlruns' is not a SQL database URI; give sqlite:///"):
        tracking.server_command("mlruns", tmp_path / "a")
    with pytest.raises(GenrelibError, match=r"server port 70000 is not a port number; give one from 1 to 65535"):
        tracking.server_command(f"sqlite:///{tmp_path / 's.db'}", tmp_path / "a", port=70000)
    if importlib.util.find_spec("MySQLdb") is None:  # a driver this machine lacks: said before the server dies
        with pytest.raises(
            GenrelibError,
            match=r"backend mysql://\.\.\. needs the database driver mysqldb .*; "
            r"pip install mysqlclient",
        ):
            tracking.server_command("mysql://u:pw@db.lab/mlflow", tmp_path / "a")
    cmd = tracking.server_command("sqlite:///rel/s.db", tmp_path / "a", port=5999)
    backend = cmd[cmd.index("--backend-store-uri") + 1]
    assert backend == f"sqlite:///{Path('rel/s.db').resolve()}" and "--serve-artifacts" in cmd
    assert cmd[cmd.index("--artifacts-destination") + 1] == str((tmp_path / "a").resolve())


def test_a_shared_store_keeps_runs_of_a_machine_with_the_same_host_name(exited_pid, experiment_id):
    # on a team server, two machines may share a host name: the orphan reaper must only judge its own machine's runs
    mc, exp = mlflow.MlflowClient(), experiment_id
    here = {"genrelib.pid": str(exited_pid), "genrelib.host": socket.gethostname()}
    twin = mc.create_run(exp, tags=here | {"genrelib.machine_id": "0" * 32}).info.run_id
    mine = mc.create_run(exp, tags=here | {"genrelib.machine_id": tracking.machine_id()}).info.run_id
    if tracking.machine_id():
        assert tracking.reap_orphan_runs() == [mine]
        assert mc.get_run(twin).info.status == "RUNNING" and mc.get_run(mine).info.status == "FAILED"
    else:  # a machine without an id cannot tell its runs from a twin's: it leaves every run with an id alone
        assert tracking.reap_orphan_runs() == []
    assert "genrelib.machine_id" in mc.get_run(tracking.create_parent_run("p")).data.tags or not tracking.machine_id()


#: A PostgreSQL database to test the team backend against, e.g. postgresql://genrelib:pw@127.0.0.1:5432/mlflow
#: (the README's "Team tracking server" says how to make one).
PG_URI = os.environ.get("GENRELIB_TEST_POSTGRES_URI", "")


def _postgres_skip_reason() -> str | None:
    if not PG_URI:
        return (
            "GENRELIB_TEST_POSTGRES_URI is not set: no PostgreSQL database to test the team backend against "
            "(set it to postgresql://user:password@host/database to run this test)"
        )
    try:
        import psycopg  # SQLAlchemy 2.1's driver for postgresql://
    except ImportError:
        return "psycopg is not installed: pip install 'genrelib[server]' to test the PostgreSQL backend"
    try:
        psycopg.connect(PG_URI, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return f"no PostgreSQL answers at GENRELIB_TEST_POSTGRES_URI: {str(exc).strip().splitlines()[0]}"
    return None


def test_a_postgresql_backed_server(tiny_tree, tmp_path, monkeypatch):
    reason = _postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    proc, url = _start(PG_URI, tmp_path / "artifacts", tmp_path / "server.log")
    before = mlflow.get_tracking_uri()
    try:
        tracking.wait_for_server(url, process=proc, timeout=120, log=tmp_path / "server.log")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setattr(tracking.backend, "_configured_uri", None)
        res = train(tiny_tree, TrainConfig(family="summary", seed=1), n_jobs=1)
        wav = next(tiny_tree.glob("classical/*.wav"))
        back = load_model(f"models:/genre-classifier/{res.registered_version}")
        np.testing.assert_allclose(predict_file(back, wav).proba, predict_file(res.model, wav).proba, rtol=1e-6)
        assert any(p.name == "MLmodel" for p in _files(tmp_path / "artifacts"))
    finally:
        _stop(proc)
        mlflow.set_tracking_uri(before)
