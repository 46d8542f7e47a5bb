"""``genrelib serve``: any model genrelib can load (the shipped default when none is named) served over REST by
``mlflow models serve``, as the same audio pyfunc that training registers (:mod:`genrelib.inference.serving`).

The model is written as an MLflow model folder first (:func:`write_served_model`): the shipped default and the
reference model have no run or registry entry, and a registered model is served with this genrelib's code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Default port of ``genrelib serve`` (``make ui`` keeps 5000, ``make server`` 5050).
SERVE_PORT = 5001


def write_served_model(ref, folder: str | Path):
    """Write the model ``ref`` (any reference :func:`genrelib.inference.predict.load_model` takes; None: the shipped
    default) as an MLflow audio model folder at ``folder`` (which must not exist); returns the loaded model.

    Raises
    ------
    ModelError
        When nothing can be loaded from ``ref``.
    """
    from genrelib.inference.predict import load_model
    from genrelib.inference.serving import audio_pyfunc
    from genrelib.tracking.registry import save_audio_pyfunc

    model = load_model(ref)
    save_audio_pyfunc(model, folder, **audio_pyfunc(list(model.genres)))
    return model


def serve_command(folder: str | Path, *, host: str = "127.0.0.1", port: int = SERVE_PORT) -> list[str]:
    """The ``mlflow models serve`` command line for a model folder written by :func:`write_served_model`."""
    mlflow = Path(sys.executable).parent / "mlflow"
    return [str(mlflow), "models", "serve", "-m", str(folder), "--env-manager", "local", "-h", host, "-p", str(port)]


def serve_env(environ=None) -> dict:
    """Environment of the server process: the interpreter's bin folder on PATH (MLflow starts uvicorn by name)."""
    env = dict(os.environ if environ is None else environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return env
