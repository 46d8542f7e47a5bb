"""Logged models and the registry: logging a genre model with its audio pyfunc, registering versions, moving aliases,
resolving a reference to a model.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import mlflow
import mlflow.data
import numpy as np

from genrelib.errors import ModelError
from genrelib.tracking.backend import default_store_missing, setup

REGISTERED_MODEL = "genre-classifier"


#: The genrelib package folder: it travels with every logged audio model as its code.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _pins(names: list[str]) -> list[str]:
    out = []
    for n in names:
        try:
            out.append(f"{n}=={metadata.version(n)}")
        except metadata.PackageNotFoundError:
            continue
    return out


def requirements(family: str) -> list[str]:
    """Pinned pip requirements of a model of ``family`` (genrelib itself travels as code with the model)."""
    base = ["numpy", "scipy", "pandas", "librosa", "soundfile", "soxr", "scikit-learn", "skops", "mlflow", "tqdm"]
    if family != "summary":  # Keras families, and musicnn's embedding network
        base += ["tensorflow-cpu", "keras"]
    if family in ("musicnn", "ensemble"):  # the musicnn network's default engine
        base += ["onnxruntime"]
    return _pins(base)


def log_genre_model(
    model,
    *,
    python_model: str | Path,
    signature,
    register: bool = True,
    name: str = "model",
    test_track_accuracy: float | None = None,
    dataset_name: str | None = None,
    promote_alias: str = "auto",
) -> dict:
    """Log a :class:`~genrelib.models.base.GenreModel`: native flavour plus the audio pyfunc; register the pyfunc.
    An ensemble (:mod:`genrelib.models.ensemble`) is logged as the audio pyfunc only (``native_uri`` None).

    The audio pyfunc is given by whoever logs the model (this adapter knows no genrelib layer above the models):
    ``python_model``, its MLflow "models from code" file, and its ``signature``
    (:func:`genrelib.inference.serving.audio_pyfunc` gives both).

    A registered version carries tags and a description (:func:`version_record`); the family's alias moves to
    it by the rule of :func:`promote` (``promote_alias``: ``auto``, ``always`` or ``never``).

    Returns
    -------
    dict
        ``model_uri`` (the pyfunc's URI), ``native_uri`` and, when registered, ``version``, ``alias``,
        ``alias_moved`` and ``alias_reason``.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    reqs = requirements(model.family)
    native = None
    # the second model is named for what it is: the bare network or pipeline on feature rows, no audio in
    native_name = f"{model.family}_on_{model.feature_config.kind}_features" if model.family != "ensemble" else None
    if model.family == "ensemble":
        pass  # no one native model: the members' folders travel inside the audio model
    elif model.is_keras:
        shape = (-1, *model.feature_config.row_shape)
        out_spec = Schema([TensorSpec(np.dtype("float32"), (-1, len(model.genres)))])
        sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (*shape, 1))]), outputs=out_spec)
        native = mlflow.keras.log_model(model.estimator, name=native_name, signature=sig, pip_requirements=reqs)
    else:
        shape = (-1, *model.feature_config.row_shape)
        out_spec = Schema([TensorSpec(np.dtype("float64"), (-1, len(model.genres)))])
        sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float64"), shape)]), outputs=out_spec)
        native = mlflow.sklearn.log_model(
            model.estimator,
            name=native_name,
            signature=sig,
            pip_requirements=reqs,
            serialization_format="skops",
            skops_trusted_types=_skops_trusted(),
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(Path(tmp) / "genre_model")
        with warnings.catch_warnings():
            # An input example would have to be an audio file; the signature documents the input instead.
            warnings.filterwarnings("ignore", message=".*input example was not provided", category=UserWarning)
            # MLflow prints its registry notices ("Registered model ... already exists") to stderr, a red box in
            # an executed notebook; genrelib says what was registered, and where the alias went, itself.
            with contextlib.redirect_stderr(io.StringIO()):
                info = mlflow.pyfunc.log_model(
                    name=name,
                    python_model=str(python_model),
                    artifacts={"genre_model": str(folder)},
                    code_paths=[str(PACKAGE_DIR)],
                    signature=signature,
                    pip_requirements=reqs,
                    registered_model_name=REGISTERED_MODEL if register else None,
                )
    out = {"model_uri": info.model_uri, "native_uri": None if native is None else native.model_uri}
    _describe_logged(model, info, native, name=name, dataset_name=dataset_name, accuracy=test_track_accuracy)
    if register and info.registered_model_version is not None:
        version = str(info.registered_model_version)
        out["version"] = version
        record = version_record(model, test_track_accuracy=test_track_accuracy, dataset_name=dataset_name)
        client = mlflow.MlflowClient()
        for key, value in record.items():
            client.set_model_version_tag(REGISTERED_MODEL, version, key, str(value))
        client.update_model_version(REGISTERED_MODEL, version, description=version_description(record))
        if mlflow.active_run():
            mlflow.set_tag("genrelib.registered_version", version)
        out["alias"], out["alias_moved"], out["alias_reason"] = promote(version, record, how=promote_alias)
        if mlflow.active_run():  # where the alias went, for run-all's summary and whoever reads the run
            mlflow.set_tag("genrelib.alias", out["alias_reason"])
    return out


def save_audio_pyfunc(model, path: str | Path, *, python_model: str | Path, signature) -> Path:
    """Write a :class:`~genrelib.models.base.GenreModel` as an MLflow audio model folder at ``path`` (no run, no
    registry): what ``mlflow models serve -m <path>`` serves, the same pyfunc :func:`log_genre_model` logs.

    ``python_model`` and ``signature`` are given by the caller, as for :func:`log_genre_model`. ``path`` must not
    exist yet.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(Path(tmp) / "genre_model")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input example was not provided", category=UserWarning)
            mlflow.pyfunc.save_model(
                str(path),
                python_model=str(python_model),
                artifacts={"genre_model": str(folder)},
                code_paths=[str(PACKAGE_DIR)],
                signature=signature,
                pip_requirements=requirements(model.family),
            )
    return path


def _describe_logged(model, info, native, *, name: str, dataset_name, accuracy) -> None:
    """A description on each logged model (the UI's Description column, tag ``mlflow.note.content``)."""
    client = mlflow.MlflowClient()
    trained = f" Trained on {dataset_name}" if dataset_name else ""
    score = f"; test accuracy per track {accuracy:.3f}." if accuracy is not None else "."
    client.set_logged_model_tags(
        info.model_id,
        {
            "mlflow.note.content": (
                f"{model.family} genre classifier, audio in: one file per row (path, or base64 bytes in "
                "audio_base64) -> genre, top genres and probabilities per song and 30 s window. Load it with "
                f"genrelib's load_model or mlflow.pyfunc; serve it with mlflow models serve.{trained}{score}"
            )
        },
    )
    if native is not None:
        kind = "Keras network" if model.is_keras else "scikit-learn pipeline"
        client.set_logged_model_tags(
            native.model_id,
            {
                "mlflow.note.content": (
                    f"The bare {kind} inside '{name}': {model.feature_config.kind} feature rows of shape "
                    f"{tuple(model.feature_config.row_shape)} in, probabilities of {', '.join(model.genres)} out. "
                    f"No audio decoding or feature extraction: for audio use '{name}'."
                )
            },
        )


def version_record(model, *, test_track_accuracy: float | None, dataset_name: str | None) -> dict:
    """The tags a registered version carries: family, data set name and digest, split, test accuracy (four
    decimals, so that the registry's text sort orders versions by it), epochs, and where it came from (``source``:
    the genrelib command, the notebook, or the library call; ``run_name``)."""
    info = model.info
    run = mlflow.active_run()
    tags = run.data.tags if run is not None else {}
    if tags.get("genrelib.notebook"):
        source = f"notebook {tags['genrelib.notebook']}"
    else:
        source = tags.get("genrelib.command") or f"library call ({tags.get('genrelib.stage', 'log_genre_model')})"
    rec = {
        "family": model.family,
        "dataset_name": dataset_name or Path(str(info.get("data_root", "?"))).name,
        "dataset_digest": info.get("manifest_hash", ""),
        "split": info.get("split", ""),
        "test_track_accuracy": "" if test_track_accuracy is None else f"{test_track_accuracy:.4f}",
    }
    if "epochs_run" in info:
        rec["epochs"] = info["epochs_run"]
        rec["best_epoch"] = info.get("best_epoch", "")
    rec["source"] = source
    if run is not None:
        rec["run_name"] = run.info.run_name or ""
    return rec


def version_description(record: dict) -> str:
    """One line describing a registered version, for the registry page."""
    acc = record["test_track_accuracy"]
    return (
        f"{record['family']} trained on {record['dataset_name']} (digest {record['dataset_digest']}, split "
        f"{record['split']}); test per-track accuracy {acc or 'not measured'}"
        + (f"; {record['epochs']} epochs" if "epochs" in record else "")
        + (f"; from {record['source']}" if record.get("source") else "")
    )


def promote(version: str, record: dict, *, how: str = "auto") -> tuple[str, bool, str]:
    """Point the family's alias (``genre-classifier@seed-cnn``) at ``version`` if it deserves it.

    Rule (``how="auto"``): the alias moves when nobody holds it, when the holder has no comparable record
    (registered before versions carried one), or when the new version's test per-track accuracy is at least the
    holder's on the same data set (same digest). A version trained on other data never takes the alias by
    itself: ``how="always"`` moves it anyway (``genrelib train --promote``), ``how="never"`` leaves it.

    Returns
    -------
    alias : str
    moved : bool
    reason : str
        One line saying what happened, for the user.
    """
    alias = record["family"].replace("_", "-")
    client = mlflow.MlflowClient()
    try:
        holder = client.get_model_version_by_alias(REGISTERED_MODEL, alias)
    except mlflow.exceptions.MlflowException:
        holder = None
    if how == "never":
        return alias, False, f"@{alias} left where it was (not promoted)"
    if how == "always" or holder is None:
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
        why = "asked for (--promote)" if how == "always" else "no version held it"
        return alias, True, f"@{alias} now points to version {version} ({why})"
    held = holder.tags or {}
    if "dataset_digest" not in held or not held.get("test_track_accuracy"):
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
        return alias, True, f"@{alias} now points to version {version} (version {holder.version} had no record)"
    if held["dataset_digest"] != record["dataset_digest"]:
        return (
            alias,
            False,
            (
                f"@{alias} stays on version {holder.version} (trained on {held.get('dataset_name', '?')}; "
                f"this version on other data, {record['dataset_name']}); use --promote to move it"
            ),
        )
    new, old = record["test_track_accuracy"], held["test_track_accuracy"]
    if new and float(new) >= float(old):
        client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
        return alias, True, f"@{alias} now points to version {version} (test accuracy {new} >= {old} on the same data)"
    return (
        alias,
        False,
        (
            f"@{alias} stays on version {holder.version} (test accuracy {old} > {new or 'unmeasured'} "
            "on the same data); use --promote to move it"
        ),
    )


def set_alias(version: str, alias: str) -> None:
    """Point ``genre-classifier@alias`` at a registered version."""
    mlflow.MlflowClient().set_registered_model_alias(REGISTERED_MODEL, alias, str(version))


def _skops_trusted() -> list[str]:
    from genrelib.models.base import SKOPS_TRUSTED

    return list(SKOPS_TRUSTED)


def resolve_model_uri(ref: str) -> str:
    """Turn a user's model reference into an MLflow URI.

    Accepts ``runs:/...``, ``models:/...``, a run id (32 hex digits), or a registry reference
    ``genre-classifier/3``, ``genre-classifier@alias`` or ``genre-classifier`` (latest version).
    """
    if ref.startswith(("runs:/", "models:/", "mlflow-artifacts:/", "file:")):
        return ref
    if len(ref) == 32 and all(c in "0123456789abcdef" for c in ref):
        return f"runs:/{ref}/model"
    if "@" in ref or "/" in ref:
        return f"models:/{ref}"
    return f"models:/{ref}/latest"


def download_genre_model(ref: str) -> Path:
    """Fetch the genrelib model folder inside a logged pyfunc model; returns a local folder.

    Raises
    ------
    ModelError
        When the reference cannot be found in the tracking store, or there is no store to look in (outside the
        project folder without ``$MLFLOW_TRACKING_URI``: no empty store is made).
    """
    missing = default_store_missing()
    if missing:
        raise ModelError(f"model {ref!r}: {missing}")
    setup()
    uri = resolve_model_uri(ref)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as exc:  # mlflow raises several types (MlflowException, OSError) for a missing model
        missing = _missing_files(uri, ref)
        if missing:
            raise ModelError(missing) from exc
        raise ModelError(
            f"model {ref!r} ({uri}) not found in the tracking store {mlflow.get_tracking_uri()}: "
            f"{str(exc).splitlines()[0]}; {_registry_choices()}"
        ) from exc
    folder = local / "artifacts" / "genre_model"
    if not folder.exists():
        missing = _missing_files(uri, ref)
        if missing:
            raise ModelError(missing)
        raise ModelError(
            f"{uri} is not a genrelib audio model (no artifacts/genre_model); log models with genrelib train"
        )
    return folder


def _model_location(uri: str) -> str | None:
    """Where the store says a model's files are (an artifact URI), or None when it cannot say."""
    client = mlflow.MlflowClient()
    try:
        if uri.startswith("models:/"):
            body = uri[len("models:/") :]
            if body.startswith("m-"):
                return mlflow.get_logged_model(body.split("/")[0]).artifact_location
            if "@" in body:
                name, alias = body.split("@", 1)
                version = client.get_model_version_by_alias(name, alias).version
            else:
                name, version = body.rsplit("/", 1)
                if version == "latest":
                    version = max(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
            return client.get_model_version_download_uri(name, str(version))
        if uri.startswith("runs:/"):
            run_id, _, sub = uri[len("runs:/") :].partition("/")
            models = [m for m in mlflow.search_logged_models(output_format="list") if m.source_run_id == run_id]
            if models:
                return models[0].artifact_location
            return mlflow.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + sub
    except Exception:  # noqa: BLE001 - no such entry: the caller says "not found" with what the registry holds
        return None
    return None


def _missing_files(uri: str, ref: str) -> str | None:
    """The message for a model the store still records but whose files were deleted or moved; None otherwise."""
    from urllib.parse import unquote, urlparse

    where = _model_location(uri)
    if not where or not where.startswith("file:"):
        return None
    path = Path(unquote(urlparse(where).path))
    if (path / "artifacts" / "genre_model").is_dir() and (path / "MLmodel").is_file():
        return None
    return (
        f"the model's files are missing at {path}: the tracking store {mlflow.get_tracking_uri()} still records "
        f"{ref!r}, but its files were deleted or moved; restore them, or train the model again"
    )


def _registry_choices() -> str:
    """What the registry holds, for an error message: its aliases and versions, or how to list models."""
    try:
        rm = mlflow.MlflowClient().get_registered_model(REGISTERED_MODEL)
        versions = mlflow.MlflowClient().search_model_versions(f"name = '{REGISTERED_MODEL}'")
    except Exception:  # no registry entry at all (MlflowException) or a store that cannot be read
        return f"nothing is registered as {REGISTERED_MODEL} yet: train a model with `genrelib train`"
    aliases = ", ".join(f"@{a} (version {v})" for a, v in sorted(rm.aliases.items())) or "none"
    nums = sorted(int(v.version) for v in versions)
    return (
        f"{REGISTERED_MODEL} has aliases {aliases} and versions {nums[0]}-{nums[-1]}"
        if nums
        else f"{REGISTERED_MODEL} has no versions"
    )


def registered_version(ref: str) -> str | None:
    """The registry version a model reference names (``genre-classifier@seed-cnn``, ``genre-classifier/3``,
    ``genre-classifier`` for the latest, ``models:/...``), or None for a reference that is not a registry version
    (a run, a folder). Aliases move: an ensemble records which version each member was."""
    uri = resolve_model_uri(ref)
    if not uri.startswith("models:/"):
        return None
    body = uri[len("models:/") :]
    setup()
    client = mlflow.MlflowClient()
    if "@" in body:
        name, alias = body.split("@", 1)
        return str(client.get_model_version_by_alias(name, alias).version)
    name, _, version = body.partition("/")
    if version == "latest":
        versions = [int(v.version) for v in client.search_model_versions(f"name = '{name}'")]
        return str(max(versions)) if versions else None
    return version if version.isdigit() else None


def load_pyfunc(ref: str):
    """Load a logged audio model as an ``mlflow.pyfunc`` model."""
    setup()
    return mlflow.pyfunc.load_model(resolve_model_uri(ref))


def registered_choices() -> list[tuple[str, str]]:
    """The registry's models a user can pick, as ``(reference, label)``: every alias of ``genre-classifier``
    (``genre-classifier@seed-cnn``), then every version, newest first (``genre-classifier/3``); each label says
    the version, family, data and test accuracy. Empty when nothing is registered.

    Raises
    ------
    GenrelibError
        When the store cannot be read (:func:`genrelib.tracking.store.check_store`).
    """
    from mlflow.exceptions import MlflowException

    setup()
    client = mlflow.MlflowClient()
    try:
        aliases = client.get_registered_model(REGISTERED_MODEL).aliases
    except MlflowException:  # nothing registered under the name yet
        return []
    versions = {str(v.version): v for v in client.search_model_versions(f"name = '{REGISTERED_MODEL}'")}

    def about(number) -> str:
        v = versions.get(str(number))
        if v is None:
            return "?"
        acc = v.tags.get("test_track_accuracy") or "not measured"
        return f"{v.tags.get('family', '?')} on {v.tags.get('dataset_name', '?')}, test accuracy per track {acc}"

    out = [
        (f"{REGISTERED_MODEL}@{a}", f"{REGISTERED_MODEL}@{a} (version {n}: {about(n)})")
        for a, n in sorted(aliases.items())
    ]
    out += [
        (f"{REGISTERED_MODEL}/{n}", f"{REGISTERED_MODEL}/{n} ({about(n)})")
        for n in sorted(versions, key=int, reverse=True)
    ]
    return out
