"""The served audio model: the ``mlflow.pyfunc`` class that takes audio and answers genres, its signature, and the
limits and checks that keep one request small enough to answer.

It sits above both :mod:`genrelib.tracking` (the MLflow adapter, which logs it) and :mod:`genrelib.inference.predict` (which
classifies), and imports neither of them at module level. :mod:`genrelib.inference.pyfunc_model` is the file MLflow runs to
build it ("models from code").

A request is refused as a whole (HTTP 400, one line, no stack trace) when its shape, parameters or size are out of
bounds, before any audio is analysed; a row whose audio cannot be read or classified gets its reason in the
``error`` column and the other rows are classified. The bounds are read from the environment at load and at
every request (:class:`Limits`, ``GENRELIB_SERVE_*``).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import numbers
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import DEADLINE_EXCEEDED, INTERNAL_ERROR, INVALID_PARAMETER_VALUE

from genrelib import audio
from genrelib.errors import GenrelibError

logger = logging.getLogger(__name__)

#: Input columns: one of them per row.
COLUMNS = ("path", "audio_base64")
#: Request parameters and their defaults.
PARAMS = {"top_k": 3, "per_window": False, "hop_seconds": 0.0}
#: Environment variables of :class:`Limits`: name -> (field, default, meaning).
ENV = {
    "GENRELIB_SERVE_PATHS_DIR": ("paths_dir", None, "folder whose files rows may name in 'path' (unset: paths off)"),
    "GENRELIB_SERVE_MAX_ROWS": ("max_rows", 64, "rows per request"),
    "GENRELIB_SERVE_MAX_ROW_SECONDS": ("max_row_seconds", 600.0, "seconds of audio per row (header duration)"),
    "GENRELIB_SERVE_MAX_REQUEST_SECONDS": (
        "max_request_seconds",
        600.0,
        "seconds of audio analysed per request (a second in several overlapping windows counts in each)",
    ),
    "GENRELIB_SERVE_MIN_HOP_SECONDS": ("min_hop_seconds", 1.0, "smallest hop_seconds a request may ask for"),
    "GENRELIB_SERVE_MAX_ROW_MB": ("max_row_mb", 40.0, "MB (10^6 characters) of audio_base64 text per row"),
    "GENRELIB_SERVE_MAX_REQUEST_MB": ("max_request_mb", 80.0, "MB of audio_base64 text per request"),
}
#: MLflow's scoring server answers 504 after this many seconds (default 60) but cannot stop the work; the model
#: reads it to stop between rows once the answer can no longer arrive.
TIMEOUT_ENV = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"


class RequestError(MlflowException, GenrelibError):
    """A request refused as a whole: one line; HTTP 400 (``INVALID_PARAMETER_VALUE``) unless told otherwise.

    MLflow 3.17's scoring server rewrites the message of an MlflowException raised in ``predict`` into
    ``"Failed to predict data '<the input DataFrame>'. \\nError: ..."``: several lines echoing the request back.
    This class keeps its own one-line message.
    """

    def __init__(self, message: str, error_code: int = INVALID_PARAMETER_VALUE):
        super().__init__(" ".join(str(message).split()), error_code=error_code)

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_message"):  # the first assignment is ours; later ones are the server's rewrite
            self._message = value


@dataclass(frozen=True)
class Limits:
    """Bounds on one request (see :data:`ENV` for the environment variables and defaults).

    Attributes
    ----------
    paths_dir : Path or None
        Rows may name files under this folder (symlinks resolved; relative paths are taken inside it); None: the
        ``path`` column is refused.
    max_rows : int
    max_row_seconds : float
        Audio seconds per row, from the file's header, checked before any audio is decoded.
    max_request_seconds : float
        Audio seconds analysed per request, summed over rows (:func:`analysed_seconds`): a row's duration, or,
        when ``hop_seconds`` is below the window length, its windows times their length (30 s windows at a 10 s
        hop analyse most seconds three times).
    min_hop_seconds : float
    max_row_mb, max_request_mb : float
        Size of the ``audio_base64`` text, checked before it is decoded. The request body itself is read whole
        by MLflow's server before the model sees it: cap raw bodies in a reverse proxy.
    timeout_seconds : float or None
        The scoring server's request timeout (``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT``; unset when not served):
        rows not started by then are not analysed.
    """

    paths_dir: Path | None = None
    max_rows: int = 64
    max_row_seconds: float = 600.0
    max_request_seconds: float = 600.0
    min_hop_seconds: float = 1.0
    max_row_mb: float = 40.0
    max_request_mb: float = 80.0
    timeout_seconds: float | None = None

    @classmethod
    def from_env(cls, environ=None) -> Limits:
        """Read the limits from the environment.

        Raises
        ------
        RequestError
            (HTTP 500) When a variable is not a positive number, or the paths folder is not a folder.
        """
        environ = os.environ if environ is None else environ
        values = {}
        for name, (attr, default, _) in ENV.items():
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            if attr == "paths_dir":
                folder = Path(raw).expanduser()
                if not folder.is_dir():
                    raise RequestError(f"server misconfigured: {name}={raw!r} is not a folder", INTERNAL_ERROR)
                values[attr] = Path(os.path.realpath(folder))
                continue
            values[attr] = _positive(name, raw, int if isinstance(default, int) else float)
        raw = environ.get(TIMEOUT_ENV, "").strip()
        if raw:
            values["timeout_seconds"] = _positive(TIMEOUT_ENV, raw, float)
        return cls(**values)


def _positive(name: str, raw: str, kind: type):
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        raise RequestError(
            f"server misconfigured: {name}={raw!r} is not a positive {'whole ' if kind is int else ''}number",
            INTERNAL_ERROR,
        )
    return value


# ------------------------------------------------------------------------------------------- signature


def input_schema():
    """Input columns (``path``, ``audio_base64``; optional each) and parameters of the audio model."""
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema([ColSpec("string", c, required=False) for c in COLUMNS])
    params = ParamSchema(
        [
            ParamSpec("top_k", "long", PARAMS["top_k"]),
            ParamSpec("per_window", "boolean", PARAMS["per_window"]),
            ParamSpec("hop_seconds", "double", PARAMS["hop_seconds"]),
        ]
    )
    return inputs, params


#: The MLflow "models from code" file that builds the audio pyfunc (:class:`GenrePyfunc`).
MODEL_FILE = Path(__file__).resolve().with_name("pyfunc_model.py")


def audio_pyfunc(genres: list[str]) -> dict:
    """What :func:`genrelib.tracking.registry.log_genre_model` logs as the audio model: ``python_model`` (:data:`MODEL_FILE`)
    and ``signature`` (:func:`pyfunc_signature`)."""
    return {"python_model": MODEL_FILE, "signature": pyfunc_signature(genres)}


def pyfunc_signature(genres: list[str]):
    """Signature of the audio model: path / audio_base64 in; genre, probabilities, top-k and error out."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Object, Property, Schema

    inputs, params = input_schema()
    top = Array(Object([Property("genre", "string"), Property("probability", "double")]))
    outputs = Schema(
        [
            ColSpec("long", "row"),
            ColSpec("string", "path", required=False),
            ColSpec("double", "window_start"),
            ColSpec("double", "duration"),
            ColSpec("string", "genre"),
            ColSpec("double", "probability"),
            ColSpec(top, "top", required=False),
        ]
        + [ColSpec("double", f"p_{g}") for g in genres]
        + [ColSpec("string", "error")]
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


# ------------------------------------------------------------------------------------------- the model


class GenrePyfunc(mlflow.pyfunc.PythonModel):
    """Audio in, genre probabilities out.

    Input: a DataFrame with a ``path`` column (audio files under ``GENRELIB_SERVE_PATHS_DIR``; off when it is
    unset) or an ``audio_base64`` column (the bytes of an audio file, base64-encoded); one of the two per row.
    Params: ``top_k`` (3, at least 1), ``per_window`` (False: one row per song; True: one row per 30 s window as
    well), ``hop_seconds`` (0: windows do not overlap; else at least ``GENRELIB_SERVE_MIN_HOP_SECONDS``).
    Output: one row per song (and window), keyed as ``genrelib predict --format json``: row (the input row), path
    (as given; null for base64 audio), window_start (-1 for the song), duration, genre, probability, top (a list
    of {genre, probability}), ``p_<genre>`` for every genre, and ``error`` (empty when the row was classified;
    otherwise the reason, and no genre or probabilities).

    Raises
    ------
    RequestError
        When the request as a whole is out of bounds (:class:`Limits`), before any audio is analysed.
    """

    def load_context(self, context):
        from genrelib.models.base import GenreModel

        Limits.from_env()  # a misconfigured server fails at start, not at its first request
        self.model = GenreModel.load(context.artifacts["genre_model"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        try:
            return _answer(self.model, model_input, params or {}, Limits.from_env())
        except MlflowException:
            raise
        except Exception as exc:  # a bug: the client gets one line, the server's log the stack trace
            logger.exception("unexpected error while answering a request")
            raise RequestError(
                f"internal error ({type(exc).__name__}); the server's log has the details", INTERNAL_ERROR
            ) from exc


@dataclass
class _Row:
    index: int
    source: str  # how messages name the row: its path, or "row 3" for base64 audio
    path: str | None = None
    file: Path | None = None
    duration: float | None = None
    error: str = ""


def _answer(model, model_input, params: dict, limits: Limits) -> pd.DataFrame:
    started = time.monotonic()
    df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
    _check_shape(df, limits)
    top_k, per_window, hop = _check_params(params, limits)
    with tempfile.TemporaryDirectory(prefix="genrelib-request-") as tmp:
        rows = [_prepare(i, rec, Path(tmp), limits) for i, rec in enumerate(df.to_dict("records"))]
        # an ensemble has no single feature configuration; its members cut the same windows
        configs = getattr(model, "feature_configs", None) or [model.feature_config]
        _check_seconds(rows, hop, max(c.window_seconds for c in configs), limits)
        out = []
        for row in rows:
            if not row.error:
                if limits.timeout_seconds and time.monotonic() - started > limits.timeout_seconds:
                    if not out:  # nothing answered yet: the whole request is over its time
                        raise RequestError(
                            f"stopped before row {row.index}: the request ran past the server's "
                            f"{limits.timeout_seconds:g} s time limit ({TIMEOUT_ENV}); send fewer or "
                            "shorter rows",
                            DEADLINE_EXCEEDED,
                        )
                    row.error = (  # the rows answered so far keep their answers
                        f"{row.source}: not classified: the request ran past the server's "
                        f"{limits.timeout_seconds:g} s time limit ({TIMEOUT_ENV}); send it again in a smaller request"
                    )
                else:
                    out += _classify(model, row, hop=hop, top_k=top_k, per_window=per_window)
            if row.error:
                out.append(_error_record(row, model.genres))
    return _frame(out)


def _check_params(params: dict, limits: Limits) -> tuple[int, bool, float | None]:
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise RequestError(f"unknown params {unknown}; the model takes {sorted(PARAMS)}")
    top_k = params.get("top_k", PARAMS["top_k"])
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise RequestError(f"top_k must be a whole number >= 1, got {top_k!r}")
    hop = params.get("hop_seconds", PARAMS["hop_seconds"])
    if isinstance(hop, bool) or not isinstance(hop, numbers.Real) or not math.isfinite(hop) or hop < 0:
        raise RequestError(f"hop_seconds must be 0 (no overlap) or a number of seconds, got {hop!r}")
    if 0 < hop < limits.min_hop_seconds:
        raise RequestError(
            f"hop_seconds {hop:g} is below the smallest this server allows, "
            f"{limits.min_hop_seconds:g} s (GENRELIB_SERVE_MIN_HOP_SECONDS); 0 means no overlap"
        )
    return int(top_k), bool(params.get("per_window", PARAMS["per_window"])), float(hop) or None


def _check_shape(df: pd.DataFrame, limits: Limits) -> None:
    given = [c for c in COLUMNS if c in df.columns]
    if not given:
        # MLflow drops columns that are not in the signature before the model sees the request
        raise RequestError(
            "no 'path' or 'audio_base64' column (other columns are ignored): send "
            '{"dataframe_split": {"columns": ["audio_base64"], "data": [["<base64 audio>"]]}}'
        )
    if len(df) == 0:
        raise RequestError(f"the request has no rows; give one audio file per row in {' or '.join(given)}")
    if len(df) > limits.max_rows:
        raise RequestError(
            f"{len(df)} rows, over the limit of {limits.max_rows} per request "
            "(GENRELIB_SERVE_MAX_ROWS); split the request"
        )
    if "audio_base64" in given:
        sizes = [len(v) if isinstance(v, str) else 0 for v in df["audio_base64"]]
        for i, n in enumerate(sizes):
            if n > limits.max_row_mb * 1e6:
                raise RequestError(
                    f"row {i}: audio_base64 is {n / 1e6:.1f} MB, over the limit of "
                    f"{limits.max_row_mb:g} MB per row (GENRELIB_SERVE_MAX_ROW_MB)"
                )
        if sum(sizes) > limits.max_request_mb * 1e6:
            raise RequestError(
                f"audio_base64 totals {sum(sizes) / 1e6:.1f} MB, over the limit of "
                f"{limits.max_request_mb:g} MB per request (GENRELIB_SERVE_MAX_REQUEST_MB); split "
                "the request"
            )


def _text(i: int, rec: dict, column: str) -> str | None:
    value = rec.get(column)
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, str):
        raise GenrelibError(f"row {i}: {column} must be text, got {type(value).__name__} {value!r:.40}")
    return value


def _prepare(i: int, rec: dict, tmp: Path, limits: Limits) -> _Row:
    """Find a row's audio file (a decoded temp file, or a confined path) and its header duration."""
    try:
        path, b64 = _text(i, rec, "path"), _text(i, rec, "audio_base64")
    except GenrelibError as exc:
        return _Row(i, f"row {i}", error=str(exc))
    row = _Row(i, path if path is not None and b64 is None else f"row {i}", path=path)
    if path is not None and b64 is not None:
        row.error = f"row {i}: give either 'path' or 'audio_base64', not both"
        return row
    if path is None and b64 is None:
        row.error = f"row {i}: empty; give an audio file in 'path' or base64 audio bytes in 'audio_base64'"
        return row
    try:
        if b64 is not None:
            try:
                data = base64.b64decode(b64)
            except (binascii.Error, ValueError) as exc:
                raise GenrelibError(f"row {i}: audio_base64 is not base64 ({exc})") from exc
            if not data:
                raise GenrelibError(f"row {i}: audio_base64 holds no bytes")
            row.file = tmp / f"row{i}{sniff_suffix(data)}"
            row.file.write_bytes(data)
        else:
            row.file = confine(path, limits.paths_dir)
        row.duration = audio.duration(row.file)
    except GenrelibError as exc:
        row.error = _said(exc, row)
    except OSError as exc:  # a name too long, a file that vanished, a full temp disk: this row's problem only
        row.error = f"{row.source}: cannot be read ({exc.strerror or type(exc).__name__})"
    except Exception as exc:  # a bug: this row's answer says so, the others are still answered; the log has the trace
        logger.exception("unexpected error while reading %s", row.source)
        row.error = f"{row.source}: internal error ({type(exc).__name__}); the server's log has the details"
    return row


def confine(path: str, folder: Path | None) -> Path:
    """The file a client's ``path`` names, if it lies in ``folder`` (symlinks resolved; relative paths are taken
    inside the folder).

    Raises
    ------
    GenrelibError
        When paths are off (``folder`` None), the path leads outside the folder, or it is not a regular file; the
        message is the same whether or not such a file exists.
    """
    if folder is None:
        raise GenrelibError(
            "reading files by path is off on this server; send the audio bytes in 'audio_base64' "
            "(the server's operator can allow one folder with GENRELIB_SERVE_PATHS_DIR)"
        )
    if "\x00" in path:
        raise GenrelibError(f"{path!r}: not a valid path")
    real = Path(os.path.realpath(folder / Path(path).expanduser()))  # an absolute path replaces the folder
    if not real.is_relative_to(folder):
        raise GenrelibError(
            f"{path}: outside the folder this server reads audio from; give a path inside it "
            "(relative paths are taken inside it)"
        )
    try:
        if real.exists() and not real.is_file():
            raise GenrelibError(f"{path}: not a regular file")
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise GenrelibError(f"{path}: not a usable path ({exc.strerror or type(exc).__name__})") from exc
    return real


def _said(exc: Exception, row: _Row) -> str:
    # Messages name the file the server opened (a temp file, a resolved link): say what the client sent instead.
    msg = " ".join(str(exc).split()).replace("re-copy it or remove it from the folder", "send an audio file")
    if row.file is not None:
        msg = msg.replace(str(row.file), row.source)
    return msg if msg.startswith(row.source) else f"{row.source}: {msg}"


def _check_seconds(rows: list[_Row], hop: float | None, window: float, limits: Limits) -> None:
    for row in rows:
        if not row.error and row.duration is not None and row.duration > limits.max_row_seconds:
            row.error = (  # this row only: the others are still answered
                f"{row.source}: {row.duration:.0f} s of audio, over the limit of "
                f"{limits.max_row_seconds:g} s per row (GENRELIB_SERVE_MAX_ROW_SECONDS); send a "
                "shorter excerpt"
            )
    total = sum(
        analysed_seconds(row.duration, hop, window) for row in rows if row.duration is not None and not row.error
    )
    if total > limits.max_request_seconds:
        overlap = hop is not None and hop < window
        how = f" ({window:g} s windows every {hop:g} s)" if overlap else ""
        raise RequestError(
            f"the request asks for {total:.0f} s of audio analysis{how}, over the limit of "
            f"{limits.max_request_seconds:g} s per request (GENRELIB_SERVE_MAX_REQUEST_SECONDS); "
            "send fewer or shorter rows" + (" or a larger hop_seconds" if overlap else "")
        )


def analysed_seconds(duration: float, hop: float | None, window: float = 30.0) -> float:
    """Seconds of audio the model analyses for a song of ``duration`` s: its windows times their length, so
    overlapping windows (``hop`` below ``window``) count each time (about ``duration * window / hop``)."""
    if hop is None or hop >= window or duration <= window:
        return duration
    return (1 + (duration - window) / hop) * window


def _classify(model, row: _Row, *, hop: float | None, top_k: int, per_window: bool) -> list[dict]:
    from genrelib.inference.predict import predict_file, rows_for

    try:
        pred = predict_file(model, row.file, hop_seconds=hop)
    except GenrelibError as exc:
        row.error = _said(exc, row)
        return []
    except Exception as exc:  # one row's bug must not cost the others their answer; the log keeps the trace
        logger.exception("unexpected error while classifying %s", row.source)
        row.error = f"{row.source}: internal error ({type(exc).__name__}); the server's log has the details"
        return []
    rows = rows_for(pred, model.genres, path=row.path, top_k=top_k, per_window=per_window)
    return [{"row": row.index, **r, "path": row.path, "error": ""} for r in rows]  # path: None for base64 audio


def _error_record(row: _Row, genres: list[str]) -> dict:
    return {
        "row": row.index,
        "path": row.path,
        "window_start": -1.0,
        "duration": row.duration,
        "genre": None,
        "probability": None,
        "top": None,
        **{f"p_{g}": None for g in genres},
        "error": row.error,
    }


def _frame(records: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(records)
    if (df["error"] != "").any():
        # Missing values as None, not NaN: MLflow writes NaN into its JSON answer, which strict parsers refuse.
        df = df.astype(object).where(df.notna(), None)
    return df


def sniff_suffix(data: bytes) -> str:
    """File extension for audio bytes, from their magic numbers (libsndfile needs it for mp3; an m4a is refused
    with a clear message by genrelib.audio)."""
    magic = {b"RIFF": ".wav", b"fLaC": ".flac", b"OggS": ".ogg", b".snd": ".au", b"FORM": ".aiff"}
    if data[:4] in magic:
        return magic[data[:4]]
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return ".mp3"
    return ".m4a" if data[4:8] == b"ftyp" else ".bin"
