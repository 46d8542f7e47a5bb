"""``genrelib <verb>``: the command line. Each verb calls the same functions the notebooks call.

Errors in the input end the command with a one-line message on stderr and exit code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

from genrelib import __version__
from genrelib.cli.common import (
    OneLineFormatter,
    one_line,
    store_failure,
)
from genrelib.cli.options import Parser, check_combinations
from genrelib.cli.parsers import add_commands
from genrelib.errors import GenrelibError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``genrelib``."""
    p = Parser(prog="genrelib", description="Music genre classification, honestly measured.")
    p.add_argument("--version", action="version", version=f"genrelib {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_commands(sub)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) arrived: unwinds like Ctrl-C, so that an MLflow run in progress ends as KILLED."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame) -> None:
    import signal

    signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once
    raise Terminated(signum)


def _progress_lines(stream) -> logging.Handler | None:
    """Show progress as log lines on ``stream`` when it is not a terminal (a log file, a pipe), where a tqdm bar
    would write nothing readable; on a terminal the commands draw bars instead (``progress=sys.stderr.isatty()``).
    On a terminal only notices (warnings: a locked store waited for) are shown. Returns the handler to remove
    when the command ends."""
    log = logging.getLogger("genrelib.progress")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter("genrelib: %(message)s"))
    # on a terminal the bars show progress; notices (a locked store being waited for) show all the same
    handler.setLevel(logging.INFO)
    if stream.isatty():  # but a line meant for every stream (one per training epoch) shows on a terminal too
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or getattr(r, "every_time", False))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # once, also with -v
    return handler


def _progress_lines_off(handler: logging.Handler | None) -> None:
    if handler is not None:  # main() may run again in one process (tests), on another stream
        log = logging.getLogger("genrelib.progress")
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
        log.propagate = True


#: Commands that log to the tracking store unless given --no-log: its check comes before any of their work.
#: Commands that load a model (possibly from the registry) before they log anything.
MODEL_READING_COMMANDS = ("evaluate", "ensemble", "personal-test")

LOGGING_COMMANDS = ("train", "sweep", "evaluate", "ensemble", "personal-test", "train-reference", "notebook", "run-all")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genrelib`` console script."""
    import signal
    import threading

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version (0) or an option refused in one line (2)
        return int(stop.code or 0)
    contradiction = check_combinations(args)
    if contradiction:  # before any work, in the parser's one-line form
        print(f"genrelib {args.command}: error: {contradiction}", file=sys.stderr)
        return 2
    # The CLI prints skipped files itself; library warnings show with -v.
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )
    for h in logging.getLogger().handlers:  # file names in log lines: one line each, as in the reports
        h.setFormatter(OneLineFormatter(h.formatter._fmt if h.formatter else None))
    progress_handler = _progress_lines(sys.stderr)
    handled = (signal.SIGTERM, signal.SIGHUP) if threading.current_thread() is threading.main_thread() else ()
    previous = {s: signal.signal(s, _terminate) for s in handled}
    try:
        if args.command in LOGGING_COMMANDS and not getattr(args, "no_log", False):
            from genrelib import tracking
            from genrelib.tracking.backend import default_store_missing

            # Outside the project folder, a command that first reads a model must not make an empty store here:
            # a registered model then says where genrelib looked (tracking.download_genre_model); the run is
            # logged (and the store made) only once the model was found.
            if not (args.command in MODEL_READING_COMMANDS and default_store_missing()):
                tracking.setup()  # a store that cannot be written: one line now, not after the work
            # its runs, and the versions they register, say which command made them
            tracking.set_command(shlex.join(["genrelib", *(sys.argv[1:] if argv is None else argv)]))
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away is met here, not as a traceback at exit
        return code
    except GenrelibError as exc:
        print(f"genrelib: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`genrelib predict ... | head`): stop quietly. Output still buffered would raise
        # again at exit, so stdout is pointed at /dev/null first.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):  # no real stdout (tests capture it): nothing left to flush there
            pass
        return 141  # 128 + SIGPIPE, as a shell reports a command that a closed pipe stopped
    except Terminated as exc:
        print(f"genrelib: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("genrelib: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        why = store_failure(exc)
        if why is None:
            raise
        print(f"genrelib: error: {one_line(why)}", file=sys.stderr)
        return 2
    finally:
        if "genrelib.tracking" in sys.modules:
            sys.modules["genrelib.tracking"].set_command(None)
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        _progress_lines_off(progress_handler)


if __name__ == "__main__":
    sys.exit(main())
