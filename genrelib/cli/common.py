"""What the commands share: printing skipped files, metrics and split tables; the training and scale options."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from genrelib.cli.options import COUNT, POSITIVE, number
from genrelib.errors import GenrelibError

REGISTERED = "genre-classifier"


def one_line(text) -> str:
    """``text`` with its control characters escaped (a newline as ``\\n``, an escape as ``\\x1b``, a Unicode line
    separator as ``\\u2028``): a file name that holds them prints as one line and cannot forge report lines or
    terminal colours."""
    import unicodedata

    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        ch
        if ch == " " or unicodedata.category(ch)[0] not in "CZ" or unicodedata.category(ch) == "Zs"
        else ascii(ch)[1:-1]
        for ch in text
    )


class OneLineFormatter(logging.Formatter):
    """Log lines whose message has its control characters escaped (:func:`genrelib.cli.common.one_line`)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's hook
        record.message = one_line(record.message)
        return super().formatMessage(record)


def store_failure(exc: BaseException) -> str | None:
    """One line when ``exc`` is the tracking store's failure met in the middle of a command (locked, read-only,
    not a database); None otherwise. MLflow is imported only when the exception comes from a database."""
    chain, e = [], exc
    while e is not None and len(chain) < 20:
        chain.append(type(e).__module__)
        e = e.__cause__ or e.__context__
    if not any(m.startswith(("sqlite3", "sqlalchemy", "mlflow")) for m in chain):
        return None
    from genrelib import tracking

    return tracking.store_problem(exc, tracking.tracking_uri())


def print_skipped(skipped: list[tuple[str, str]]) -> None:
    if skipped:
        print(f"skipped {len(skipped)} files:")
        for tid, why in skipped:
            print(f"  {one_line(tid)}: {one_line(why)}")


def skipped_exit(skipped: list[tuple[str, str]]) -> int:
    """Exit code of a command that read a data folder: 1 when any file or folder was skipped, else 0."""
    if not skipped:
        return 0
    print(
        f"genrelib: {len(skipped)} file{'s' if len(skipped) > 1 else ''} could not be read (listed above) and "
        "{} left out; exit code 1".format("were" if len(skipped) > 1 else "was"),
        file=sys.stderr,
    )
    return 1


def print_failures(failures) -> None:
    for _, why in failures:
        print(f"genrelib: error: {one_line(why)}", file=sys.stderr)


def check_writable(path: Path, option: str, example: str) -> None:
    """Refuse, before any work, an output path that is a folder or lies in a folder that cannot be written."""
    if path.is_dir():
        raise GenrelibError(f"{option} {path} is a folder; give a file name (e.g. {path / example})")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the folders still to be made go in the first that is
        folder = folder.parent
    if not folder.is_dir():
        raise GenrelibError(f"{option} {path}: {folder} is a file, not a folder; give another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise GenrelibError(
            f"{option} {path}: the folder {folder} is not writable (read-only or permission "
            "denied); make it writable or write somewhere else"
        )


def print_metrics(report) -> None:
    print(f"{'':<10}{'accuracy':>10}{'precision':>11}{'recall':>9}{'F1':>8}   (weighted; macro F1)")
    for level in ("segment", "track"):
        m = getattr(report, level).metrics
        print(
            f"{level:<10}{m['accuracy']:>10.3f}{m['precision_weighted']:>11.3f}{m['recall_weighted']:>9.3f}"
            f"{m['f1_weighted']:>8.3f}   ({m['f1_macro']:.3f})"
        )


def print_split_table(split_sizes: dict[str, dict[str, int]]) -> None:
    parts = ("train", "valid", "test")
    print("tracks per genre:")
    print(f"  {'genre':<12}" + "".join(f"{p:>7}" for p in parts))
    for genre in split_sizes["train"]:
        print(f"  {genre:<12}" + "".join(f"{split_sizes[p][genre]:>7}" for p in parts))
    print(f"  {'total':<12}" + "".join(f"{sum(split_sizes[p].values()):>7}" for p in parts))


STREAMED = (
    ": the data set is never held in memory; the Keras families stream its shards through a bounded shuffle buffer"
)


def add_scale_options(p: argparse.ArgumentParser, use: str) -> None:
    """``--scheduler`` and ``--store`` of the commands that extract features (train, sweep, evaluate)."""
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="extract the features on a Dask cluster (as `genrelib features --scheduler`): tcp://HOST:8786 "
        "or local:N; default: local processes",
    )
    p.add_argument(
        "--store",
        default=None,
        metavar="DIR",
        help="extract into the sharded feature store under DIR (as `genrelib features --store`, resuming "
        f"what is there) and {use} (docs/scaling.md)",
    )


#: TrainConfig fields set by `train` and `sweep` options of the same name (dashes for underscores).
TRAINING_FIELDS = (
    "learning_rate",
    "dropout",
    "l2",
    "filters",
    "logreg_c",
    "time_masks",
    "freq_masks",
    "time_mask_width",
    "freq_mask_width",
    "gain_db",
    "noise_std",
    "mixup",
    "aug_copies",
    "pitch_shift",
    "time_stretch",
    "time_shift",
    "noise_snr",
)


def train_config(args: argparse.Namespace):
    """The TrainConfig of `train` and `sweep` options (options left out keep TrainConfig's defaults)."""
    from genrelib.training.config import TrainConfig

    chosen = {k: getattr(args, k) for k in TRAINING_FIELDS if getattr(args, k) is not None}
    if args.spec_augment:  # the preset; explicit --time-masks / --freq-masks win
        chosen = {"time_masks": 2, "freq_masks": 2, **chosen}
    return TrainConfig(
        family=args.model,
        epochs=args.epochs,
        split=args.split or "random",
        split_file=args.split_file or "",
        seed=args.seed,
        class_weights=args.class_weights,
        patience=args.patience,
        batch_size=args.batch_size,
        force=args.force,
        **chosen,
    )


def add_training_options(t: argparse.ArgumentParser) -> None:
    """Hyper-parameter and augmentation options shared by `train` and `sweep`."""
    h = t.add_argument_group("hyper-parameters (default: the family's)")
    h.add_argument(
        "--learning-rate", type=number(low=0, low_open=True), default=None, help="Adam's learning rate (Keras families)"
    )
    h.add_argument(
        "--dropout",
        type=number(low=0, high=1, high_open=True),
        default=None,
        help="dropout rate (Keras families; default 0.3)",
    )
    h.add_argument(
        "--l2", type=number(low=0), default=None, help="L2 factor of every weight layer (seed_cnn; default 0.001)"
    )
    h.add_argument(
        "--filters",
        type=POSITIVE,
        default=None,
        help="filters of the first convolution block; later blocks keep the family's ratios (default 32)",
    )
    h.add_argument(
        "--logreg-c",
        type=number(low=0, low_open=True),
        default=None,
        help="summary, musicnn: only the logistic regression with this C (default: choose the candidate on validation)",
    )
    a = t.add_argument_group(
        "augmentation of the training tracks (Keras families; all off by default; validation and test tracks are "
        "never augmented)"
    )
    a.add_argument(
        "--spec-augment",
        action="store_true",
        help="SpecAugment masks on the fly: 2 time and 2 frequency masks per segment (as --time-masks 2 "
        "--freq-masks 2; those options, given, win)",
    )
    a.add_argument("--time-masks", type=COUNT, default=None, help="time masks per training segment (on the fly)")
    a.add_argument(
        "--freq-masks",
        type=COUNT,
        default=None,
        help="frequency masks (mel bands or MFCC coefficients) per training segment (on the fly)",
    )
    a.add_argument(
        "--time-mask-width",
        type=number(low=0, high=1, low_open=True),
        default=None,
        help="widest time mask, as a share of a segment's frames (default 0.1)",
    )
    a.add_argument(
        "--freq-mask-width",
        type=number(low=0, high=1, low_open=True),
        default=None,
        help="widest frequency mask, as a share of the bands (default 0.1)",
    )
    a.add_argument(
        "--mixup",
        type=number(low=0),
        default=None,
        metavar="ALPHA",
        help="mixup: blend training segments and their labels by Beta(ALPHA, ALPHA) (on the fly; 0.2 is common)",
    )
    a.add_argument("--gain-db", type=number(low=0), default=None, help="random gain up to +- this many dB (on the fly)")
    a.add_argument(
        "--noise-std",
        type=number(low=0),
        default=None,
        help="Gaussian noise of this sd in dB per log-mel value / MFCC coefficient (on the fly)",
    )
    a.add_argument(
        "--aug-copies",
        type=COUNT,
        default=None,
        metavar="K",
        help="K precomputed, cached copies of every training track, each with its own random waveform "
        "transforms below (needs at least one of them)",
    )
    a.add_argument(
        "--pitch-shift",
        type=number(low=0),
        default=None,
        metavar="SEMITONES",
        help="copies: random pitch shift up to +- this many semitones",
    )
    a.add_argument(
        "--time-stretch",
        type=number(low=0, high=1, high_open=True),
        default=None,
        metavar="R",
        help="copies: random tempo change, rate in 1 +- R (e.g. 0.1)",
    )
    a.add_argument(
        "--time-shift",
        type=number(low=0),
        default=None,
        metavar="SECONDS",
        help="copies: random circular time shift up to +- this many seconds",
    )
    a.add_argument(
        "--noise-snr",
        type=number(),
        default=None,
        metavar="DB",
        help="copies: white noise at this signal-to-noise ratio in dB",
    )


def parse_overrides(pairs) -> dict:
    # kept as text: genrelib.pipeline.check_parameters reads each value as the type its notebooks declare
    return dict(pairs or [])


def ui_command() -> str:
    from genrelib import tracking

    if tracking.is_server():  # a tracking server (make server) serves its own UI
        return f"the tracking server at {tracking.tracking_uri()} serves it"
    # as printed it must work on a clean PATH (the venv's mlflow, by its path), and without MLflow's job runner and
    # its 7 consumer processes (~1.4 GB that stay up), as make ui and make server start it
    mlflow = Path(sys.executable).parent / "mlflow"
    return (
        f"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false {shlex.quote(str(mlflow))} ui --backend-store-uri "
        f"{shlex.quote(tracking.tracking_uri())} --host 127.0.0.1 --port 5000   (or: make ui)"
    )


def check_port(host: str, port: int, *, who: str) -> None:
    """Refuse, in one line and before any work, a port that is taken (``who`` guesses by what, in the message) or a
    host that is not this machine's. Closed connections still lingering on the port do not count (SO_REUSEADDR, as
    the servers themselves bind): a server stopped a moment ago can be started again."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise GenrelibError(f"--host {host}: not an address of this machine ({exc.strerror}); give 127.0.0.1") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise GenrelibError(f"port {port} on {host} is in use ({who}); give another with --port") from exc
            raise GenrelibError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from exc
