"""Option values checked as the command line is read, before any work: types, finite numbers, ranges and existing
paths, each refused in one line naming the option and what it allows (:class:`Parser`)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

#: Largest seed numpy, scikit-learn and Keras all take.
MAX_SEED = 2**32 - 1


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that shows every option's default (``(default: 42)``) unless its text already names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "default" not in text:
            text += (" " if text else "") + "(default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``genrelib train: error: argument --seed: ...``), exit code 2,
    and whose help shows every default (:class:`DefaultsFormatter`, for the sub-commands too)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse's hook
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _describe(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def number(*, low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False):
    """An argparse ``type``: a finite float in the range (open or closed at each end)."""

    def read(text: str) -> float:
        rng = _describe(low, high, low_open, high_open)
        want = f"a finite number{' ' + rng if rng else ''}"
        if low == 0 and not low_open and high is None:
            want = "a finite, non-negative number (>= 0)"
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}") from None
        bad = (
            not math.isfinite(v)
            or (low is not None and (v <= low if low_open else v < low))
            or (high is not None and (v >= high if high_open else v > high))
        )
        if bad:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}")
        return v

    read.__name__ = "number"
    return read


def whole(*, low: int | None = None, high: int | None = None):
    """An argparse ``type``: a whole number in ``[low, high]``."""

    def read(text: str) -> int:
        want = f"a whole number {_describe(low, high, False, False)}".rstrip()
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}") from None
        if (low is not None and v < low) or (high is not None and v > high):
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}")
        return v

    read.__name__ = "whole"
    return read


def existing(kind: str = "any"):
    """An argparse ``type``: a path that exists (``kind``: ``"dir"``, ``"file"`` or ``"any"``)."""

    def read(text: str) -> str:
        p = Path(text).expanduser()
        if not p.exists():
            raise argparse.ArgumentTypeError(f"{text} does not exist; give an existing {_KIND_WORDS[kind]}")
        if kind == "dir" and not p.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a file; give a folder")
        if kind == "file" and p.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder; give a file")
        return text

    read.__name__ = "path"
    return read


_KIND_WORDS = {"dir": "folder", "file": "file", "any": "file or folder"}

SEED = whole(low=0, high=MAX_SEED)
POSITIVE = whole(low=1)
COUNT = whole(low=0)
HOP = number(low=0, low_open=True)

#: Options that make no sense without another, per command: (option, its attribute, is it set?, what it needs).
_NEEDS = {
    "train": [
        ("--promote", lambda a: a.promote and a.no_register, "registers nothing with --no-register; give one of them"),
        ("--repeats", lambda a: a.repeats != 1 and a.cv is None, "repeats cross-validation; give --cv K with it"),
    ],
    "ensemble": [
        (
            "--promote",
            lambda a: a.promote and (a.no_register or a.no_log),
            "moves an alias: not with --no-register or --no-log",
        ),
        (
            "--weights",
            lambda a: a.weights is not None and len(a.weights) != len(a.models),
            lambda a: f"{len(a.weights)} weights for {len(a.models)} models; give one weight per model",
        ),
        ("--weights", lambda a: a.weights is not None and not sum(a.weights) > 0, "needs a weight above 0"),
    ],
    "features": [
        (
            "--map-method",
            lambda a: a.map_method is not None and a.map is None,
            "--map-method needs --map FILE.png (where to write the map)",
        ),
        (
            "--shard-size",
            lambda a: a.shard_size is not None and a.store is None,
            "--shard-size needs --store DIR (where the shards go)",
        ),
        ("--cache-dir", lambda a: a.cache_dir is not None and a.no_cache, "contradicts --no-cache; give one of them"),
    ],
}


def check_combinations(args: argparse.Namespace) -> str | None:
    """The first pair of options of ``args`` that contradict each other, as a one-line message; None if none."""
    for option, bad, why in _NEEDS.get(getattr(args, "command", ""), []):
        if bad(args):
            text = why(args) if callable(why) else why
            return text if text.startswith(option) else f"argument {option}: {text}"
    return None
