"""A served MLflow model answers POST /invocations with base64 audio (a real server on 127.0.0.1)."""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from genrelib.train import TrainConfig, train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_model_classifies_base64_audio(tiny_tree, tmp_path):
    res = train(tiny_tree, TrainConfig(family="summary", seed=1), n_jobs=1)
    port = _free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([str(mlflow_bin), "models", "serve", "-m", f"models:/genre-classifier/{res.registered_version}",
                               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                              # mlflow starts uvicorn by name: the environment's bin folder must be on PATH
                              env={**os.environ, "PATH": f"{mlflow_bin.parent}{os.pathsep}{os.environ['PATH']}"})
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.time() < deadline, "server did not come up in 120 s"
            time.sleep(1)
        wav = next(tiny_tree.glob("metal/*.wav"))
        body = {"dataframe_split": {"columns": ["audio_base64"],
                                    "data": [[base64.b64encode(wav.read_bytes()).decode()]]},
                "params": {"top_k": 2, "per_window": True}}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            answer = json.loads(r.read())
        rows = answer["predictions"]
        assert len(rows) == 2  # the song and its one window
        song = rows[0]
        probs = {k[2:]: v for k, v in song.items() if k.startswith("p_")}
        assert set(probs) == {"classical", "metal", "reggae"}
        assert sum(probs.values()) == pytest.approx(1.0)
        assert song["genre"] == max(probs, key=probs.get)
        assert len(json.loads(song["top_k"])) == 2
        local = res.model.predict_proba(res.features.select([wav.relative_to(tiny_tree).as_posix()]).X)[0]
        assert probs["metal"] == pytest.approx(local[1], rel=1e-6)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # stop the server (and its gunicorn/uvicorn workers) by process id
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
