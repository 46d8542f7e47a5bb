"""What a sweep searches: the searchable training options of each family, their ranges and scales,
and ``--param NAME=LOW:HIGH[:log]`` parsed and checked before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from genrelib.errors import ModelError
from genrelib.models import KERAS_FAMILIES, SKLEARN_FAMILIES

INF = math.inf


@dataclass(frozen=True)
class Searchable:
    """A :class:`genrelib.training.config.TrainConfig` field that a sweep can search."""

    type: type
    families: tuple[str, ...]
    log: bool = False
    default: str | None = None  # the search range of the family's default space; None: only when asked
    low: float = -INF  # allowed values: low < v (low <= v when low_closed) and v < high (v <= high when high_closed)
    low_closed: bool = True
    high: float = INF
    high_closed: bool = True

    def allowed(self) -> str:
        lo = "" if self.low == -INF else f"{'>=' if self.low_closed else '>'} {self.low:g}"
        hi = "" if self.high == INF else f"{'<=' if self.high_closed else '<'} {self.high:g}"
        return " and ".join(p for p in (lo, hi) if p) or "any number"

    def accepts(self, v: float) -> bool:
        above = v >= self.low if self.low_closed else v > self.low
        below = v <= self.high if self.high_closed else v < self.high
        return bool(above and below and math.isfinite(v))


K = KERAS_FAMILIES


#: Every parameter a sweep can search, with its type, the families it applies to, its scale and the range of the
#: default search space.
SEARCHABLE: dict[str, Searchable] = {
    "learning_rate": Searchable(float, K, log=True, default="3e-5:3e-3", low=0, low_closed=False),
    "batch_size": Searchable(int, K, default="16,32,64", low=1),
    "dropout": Searchable(float, K, default="0.1:0.5", low=0, high=1, high_closed=False),
    "l2": Searchable(float, ("seed_cnn",), log=True, default="1e-5:1e-2", low=0),
    "filters": Searchable(int, K, default="16,32,64", low=1),
    "mixup": Searchable(float, K, default="0:0.4", low=0),
    "time_masks": Searchable(int, K, default="0:2", low=0),
    "freq_masks": Searchable(int, K, default="0:2", low=0),
    "time_mask_width": Searchable(float, K, low=0, low_closed=False, high=1),
    "freq_mask_width": Searchable(float, K, low=0, low_closed=False, high=1),
    "gain_db": Searchable(float, K, low=0),
    "noise_std": Searchable(float, K, low=0),
    "aug_copies": Searchable(int, K, low=0),
    "pitch_shift": Searchable(float, K, low=0),
    "time_stretch": Searchable(float, K, low=0, high=1, high_closed=False),
    "time_shift": Searchable(float, K, low=0),
    "noise_snr": Searchable(float, K),
    "logreg_c": Searchable(float, SKLEARN_FAMILIES, log=True, default="1e-3:10", low=0, low_closed=False),
}


@dataclass(frozen=True)
class Param:
    """One searched parameter: a list of ``choices``, or a range ``low:high`` (log scale where
    :data:`SEARCHABLE` says so)."""

    name: str
    type: type
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    def suggest(self, trial):
        """The value Optuna's ``trial`` proposes."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type is int:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def values(self) -> tuple:
        """The choices, or the two ends of the range."""
        return self.choices if self.choices is not None else (self.low, self.high)

    def __str__(self) -> str:
        if self.choices is not None:
            return f"{self.name}={','.join(f'{c:g}' for c in self.choices)}"
        return f"{self.name}={self.low:g}:{self.high:g}" + (" (log)" if self.log else "")


def accepted(family: str) -> str:
    """The parameters a sweep of ``family`` accepts, with their types (for messages and ``--help``)."""
    return ", ".join(
        f"{n} ({s.type.__name__}{', log scale' if s.log else ''})"
        for n, s in SEARCHABLE.items()
        if family in s.families
    )


def parse_param(text: str, family: str) -> Param:
    """Parse ``name=v1,v2,...`` (choices) or ``name=lo:hi`` (a range) for ``family``.

    Raises
    ------
    ModelError
        For an unknown name, a name that does not apply to ``family``, a value of the wrong type or out of its
        allowed range, or an empty range; the message names the parameter and the accepted names and types.
    """
    name, sep, spec = str(text).partition("=")
    name, spec = name.strip(), spec.strip()
    where = f"--param {text!r}"
    if name not in SEARCHABLE:
        raise ModelError(f"{where}: unknown parameter {name!r}; {family} accepts {accepted(family)}")
    s = SEARCHABLE[name]
    if family not in s.families:
        raise ModelError(
            f"{where}: {name} does not apply to {family} (it applies to {', '.join(s.families)}); "
            f"{family} accepts {accepted(family)}"
        )
    if not sep or not spec:
        raise ModelError(f"{where}: give values as {name}=v1,v2,... (choices) or {name}=lo:hi (a range)")

    def number(v: str):
        try:
            return s.type(v) if s.type is int else float(v)
        except ValueError:
            raise ModelError(
                f"{where}: {name} takes {'whole numbers (int)' if s.type is int else 'numbers (float)'}"
                f", got {v.strip()!r}; {family} accepts {accepted(family)}"
            ) from None

    if ":" in spec:
        ends = spec.split(":")
        if len(ends) != 2:
            raise ModelError(f"{where}: a range is lo:hi, got {spec!r}")
        lo, hi = (number(v.strip()) for v in ends)
        if not lo < hi:
            raise ModelError(f"{where}: the low end of a range must be below the high end, got {lo:g}:{hi:g}")
        if s.log and lo <= 0:
            raise ModelError(f"{where}: {name} is searched on a log scale, so both ends must be > 0, got {lo:g}")
        param = Param(name, s.type, low=lo, high=hi, log=s.log)
    else:
        choices = tuple(number(v.strip()) for v in spec.split(","))
        if len(set(choices)) != len(choices):
            raise ModelError(f"{where}: a value is given twice")
        param = Param(name, s.type, choices=choices)
    bad = [v for v in param.values() if not s.accepts(float(v))]
    if bad:
        raise ModelError(f"{where}: {name} must be {s.allowed()}, got {bad[0]:g}")
    return param


def default_space(family: str) -> dict[str, Param]:
    """The family's default search space (the ``default`` ranges of :data:`SEARCHABLE`)."""
    return {
        n: parse_param(f"{n}={s.default}", family)
        for n, s in SEARCHABLE.items()
        if family in s.families and s.default is not None
    }


def parse_space(specs, family: str) -> dict[str, Param]:
    """A search space from ``--param`` texts (a list, or one string of them separated by spaces or ``;``).

    Empty or None: :func:`default_space` of the family. Given: exactly the parameters given.
    """
    if isinstance(specs, str):
        specs = specs.replace(";", " ").split()
    specs = [s for s in (specs or []) if str(s).strip()]
    if not specs:
        return default_space(family)
    space: dict[str, Param] = {}
    for text in specs:
        p = parse_param(text, family)
        if p.name in space:
            raise ModelError(f"--param {p.name} is given twice ({space[p.name]} and {p})")
        space[p.name] = p
    return space


def check_space(space: dict[str, Param], config) -> None:
    """Refuse a space whose every parameter at its high end still makes an invalid configuration (for example a
    waveform transform searched without ``aug_copies``), before any work.

    Raises
    ------
    ModelError
    """
    high = {n: (max(p.choices) if p.choices is not None else p.high) for n, p in space.items()}
    try:
        replace(config, **{n: (int(v) if space[n].type is int else float(v)) for n, v in high.items()})
    except ModelError as exc:
        raise ModelError(
            f"the search space {', '.join(map(str, space.values()))} on top of the given training "
            f"options makes an invalid configuration even at its high end: {exc}"
        ) from None
