"""The demo music's genres: one :class:`Style` per GTZAN genre (tempo, drums, bass, harmony, instruments, production)
and the neighbours each borrows from at a given ``overlap``.
"""

from __future__ import annotations

from dataclasses import dataclass

from genrelib.errors import GenrelibError

# Chord qualities as semitone offsets from the root.
QUALITIES = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dom7": (0, 4, 7, 10),
    "min7": (0, 3, 7, 10),
    "maj7": (0, 4, 7, 11),
    "pow": (0, 7, 12),
    "min9": (0, 3, 7, 10, 14),
    "dom9": (0, 4, 7, 10, 14),
    "sus": (0, 5, 7),
}


MAJOR = (0, 2, 4, 5, 7, 9, 11)


MINOR = (0, 2, 3, 5, 7, 8, 10)


BLUES_SCALE = (0, 3, 5, 6, 7, 10)


class DemoError(GenrelibError, ValueError):
    """A demo genre or setting that does not exist (the CLI prints it as a one-line error)."""


@dataclass(frozen=True)
class Style:
    """How one genre sounds. Drum patterns are one bar of 16th steps: 'x' loud, 'o' soft, '.' silent."""

    tempo: tuple[float, float]
    swing: tuple[float, float]
    drums: tuple[dict[str, str], ...]
    bass: tuple[str, ...]
    comp: tuple[str, ...]
    instruments: tuple[str, ...]
    progressions: tuple[tuple[tuple[int, str], ...], ...]
    scale: tuple[int, ...]
    melody: float  # probability of a lead melody
    drive: tuple[float, float]  # distortion gain on the harmony instrument
    reverb: tuple[float, float]
    noise: tuple[float, float]
    meter: tuple[int, ...] = (4,)


STYLES: dict[str, Style] = {
    "blues": Style(
        tempo=(62, 96),
        swing=(0.7, 1.0),
        drums=(
            {"kick": "x.....o.x.......", "snare": "....x.......x...", "ride": "x..ox..ox..ox..o"},
            {"kick": "x.......x.....o.", "snare": "....x.......x..o", "hat": "x..ox..ox..ox..o"},
        ),
        bass=("walk", "shuffle"),
        comp=("shuffle", "sustain"),
        instruments=("pluck", "piano", "organ"),
        progressions=(
            tuple((r, "dom7") for r in (0, 0, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7)),
            tuple((r, "dom7") for r in (0, 5, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7)),
        ),
        scale=BLUES_SCALE,
        melody=0.8,
        drive=(0.0, 2.0),
        reverb=(0.1, 0.3),
        noise=(0.002, 0.02),
    ),
    "classical": Style(
        tempo=(56, 120),
        swing=(0.0, 0.0),
        drums=({},),
        bass=("long", "arp"),
        comp=("arpeggio", "sustain"),
        instruments=("strings", "piano", "strings"),
        progressions=(
            ((0, "maj"), (5, "maj"), (7, "dom7"), (0, "maj")),
            ((0, "min"), (5, "min"), (7, "dom7"), (0, "min")),
            ((0, "maj"), (9, "min"), (2, "min"), (7, "dom7")),
        ),
        scale=MAJOR,
        melody=0.9,
        drive=(0.0, 0.0),
        reverb=(0.3, 0.6),
        noise=(0.0, 0.006),
        meter=(3, 4),
    ),
    "country": Style(
        tempo=(96, 144),
        swing=(0.0, 0.3),
        drums=(
            {"kick": "x.......x.......", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
            {"kick": "x.......x.......", "snare": "..o.x.o...o.x.o.", "hat": "x.x.x.x.x.x.x.x."},
        ),
        bass=("boomchick",),
        comp=("strum24", "strum8"),
        instruments=("pluck", "pluck", "piano"),
        progressions=(
            ((0, "maj"), (5, "maj"), (0, "maj"), (7, "maj")),
            ((0, "maj"), (0, "maj"), (5, "maj"), (7, "dom7")),
        ),
        scale=MAJOR,
        melody=0.7,
        drive=(0.0, 0.5),
        reverb=(0.05, 0.2),
        noise=(0.002, 0.015),
    ),
    "disco": Style(
        tempo=(110, 132),
        swing=(0.0, 0.1),
        drums=(
            {
                "kick": "x...x...x...x...",
                "snare": "....x.......x...",
                "open": "..x...x...x...x.",
                "hat": "x.o.x.o.x.o.x.o.",
            },
            {"kick": "x...x...x...x...", "snare": "....x.......x...", "open": "..x...x...x...x."},
        ),
        bass=("octave8",),
        comp=("stab", "strum8"),
        instruments=("strings", "brass", "epiano"),
        progressions=(
            ((0, "min7"), (5, "min7")),
            ((0, "min7"), (3, "maj7"), (5, "min7"), (7, "min7")),
            ((0, "maj7"), (2, "min7")),
        ),
        scale=MINOR,
        melody=0.4,
        drive=(0.0, 0.0),
        reverb=(0.1, 0.3),
        noise=(0.001, 0.01),
    ),
    "hiphop": Style(
        tempo=(78, 100),
        swing=(0.3, 0.7),
        drums=(
            {"kick": "x.....x...x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
            {"kick": "x......xx.......", "snare": "....x.......x...", "hat": "xoxoxoxoxoxoxoxo"},
        ),
        bass=("sub",),
        comp=("sparse", "sustain"),
        instruments=("epiano", "piano", "synth"),
        progressions=(
            ((0, "min7"), (8, "maj7")),
            ((0, "min"), (3, "maj"), (10, "maj"), (8, "maj")),
            ((0, "min9"), (5, "min7")),
        ),
        scale=MINOR,
        melody=0.3,
        drive=(0.0, 0.3),
        reverb=(0.05, 0.15),
        noise=(0.004, 0.03),
    ),
    "jazz": Style(
        tempo=(100, 200),
        swing=(0.8, 1.0),
        drums=(
            {"ride": "x..ox...x..ox...", "hat": "....x.......x...", "kick": "o...........o..."},
            {"ride": "x..ox..ox..ox..o", "snare": "..o....o..o...o.", "hat": "....x.......x..."},
        ),
        bass=("walk",),
        comp=("comp",),
        instruments=("piano", "epiano", "brass"),
        progressions=(
            ((2, "min7"), (7, "dom7"), (0, "maj7"), (0, "maj7")),
            ((0, "maj7"), (9, "min7"), (2, "min7"), (7, "dom9")),
        ),
        scale=MAJOR,
        melody=0.8,
        drive=(0.0, 0.0),
        reverb=(0.15, 0.4),
        noise=(0.002, 0.015),
    ),
    "metal": Style(
        tempo=(140, 200),
        swing=(0.0, 0.0),
        drums=(
            {
                "kick": "xxxxxxxxxxxxxxxx",
                "snare": "....x.......x...",
                "crash": "x...............",
                "hat": "x.x.x.x.x.x.x.x.",
            },
            {"kick": "x.x.x.x.x.x.x.x.", "snare": "....x.......x...", "crash": "x.......x......."},
        ),
        bass=("root8",),
        comp=("chug", "power8"),
        instruments=("dist", "dist"),
        progressions=(
            ((0, "pow"), (1, "pow"), (0, "pow"), (3, "pow")),
            ((0, "pow"), (5, "pow"), (3, "pow"), (1, "pow")),
        ),
        scale=(0, 1, 3, 5, 7, 8, 10),
        melody=0.2,
        drive=(6.0, 14.0),
        reverb=(0.05, 0.2),
        noise=(0.003, 0.02),
    ),
    "pop": Style(
        tempo=(94, 126),
        swing=(0.0, 0.15),
        drums=(
            {"kick": "x.......x.x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
            {"kick": "x...x...x...x...", "clap": "....x.......x...", "hat": "..x...x...x...x."},
        ),
        bass=("root8", "octave8"),
        comp=("pad", "strum8"),
        instruments=("synth", "piano", "epiano"),
        progressions=(
            ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj")),
            ((9, "min"), (5, "maj"), (0, "maj"), (7, "maj")),
        ),
        scale=MAJOR,
        melody=0.9,
        drive=(0.0, 0.3),
        reverb=(0.1, 0.3),
        noise=(0.001, 0.01),
    ),
    "reggae": Style(
        tempo=(64, 90),
        swing=(0.1, 0.5),
        drums=(
            {"kick": "........x.......", "rim": "........x.......", "hat": "x.x.x.x.x.x.x.x."},
            {"kick": "........x.......", "snare": "........x.......", "hat": "..x...x...x...x."},
        ),
        bass=("dub",),
        comp=("skank",),
        instruments=("organ", "pluck", "epiano"),
        progressions=(
            ((0, "min"), (5, "min")),
            ((0, "maj"), (5, "maj"), (7, "maj"), (5, "maj")),
            ((0, "min"), (10, "maj")),
        ),
        scale=MINOR,
        melody=0.3,
        drive=(0.0, 0.2),
        reverb=(0.1, 0.35),
        noise=(0.002, 0.02),
    ),
    "rock": Style(
        tempo=(100, 150),
        swing=(0.0, 0.1),
        drums=(
            {
                "kick": "x.......x.x.....",
                "snare": "....x.......x...",
                "hat": "x.x.x.x.x.x.x.x.",
                "crash": "x...............",
            },
            {"kick": "x...x...x...x...", "snare": "....x.......x...", "ride": "x.x.x.x.x.x.x.x."},
        ),
        bass=("root8",),
        comp=("power8", "strum8"),
        instruments=("dist", "pluck"),
        progressions=(
            ((0, "maj"), (10, "maj"), (5, "maj"), (0, "maj")),
            ((0, "pow"), (5, "pow"), (7, "pow"), (5, "pow")),
        ),
        scale=MAJOR,
        melody=0.5,
        drive=(1.5, 5.0),
        reverb=(0.05, 0.25),
        noise=(0.002, 0.02),
    ),
}


#: Neighbouring genres, as real ones overlap: a track of a genre may be a crossover with one of them (country
#: rock, jazz blues, pop disco, reggae-flavoured hip hop) and borrow that neighbour's tempo, drums, bass line,
#: comping, instruments, harmony, lead and distortion, each part with probability ``overlap``.
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "blues": ("rock", "jazz", "country"),
    "classical": ("jazz", "pop"),
    "country": ("rock", "blues", "pop"),
    "disco": ("pop", "hiphop", "rock"),
    "hiphop": ("reggae", "pop", "disco"),
    "jazz": ("blues", "classical", "disco"),
    "metal": ("rock", "blues"),
    "pop": ("rock", "disco", "country", "hiphop"),
    "reggae": ("hiphop", "pop", "blues"),
    "rock": ("metal", "pop", "country", "blues"),
}


#: The default overlap of :func:`render` and :func:`make_demo`: tuned so that genrelib's Keras families land
#: between 60% and 90% per-track test accuracy on the default demo (30 tracks per genre, seed 0), as on real music.
DEFAULT_OVERLAP = 0.2


#: Production drawn for every track whatever its genre, mixed with the genre's own by ``overlap``.
_ANY_REVERB, _ANY_NOISE = (0.0, 0.5), (0.0, 0.04)


def check_overlap(overlap: float | None) -> float:
    """``overlap`` as a float in [0, 1] (None: :data:`DEFAULT_OVERLAP`); :class:`DemoError` otherwise."""
    if overlap is None:
        return DEFAULT_OVERLAP
    if not isinstance(overlap, (int, float)) or not 0.0 <= float(overlap) <= 1.0:
        raise DemoError(
            f"overlap must lie between 0 and 1, got {overlap!r}; 0 = distinct genres, 1 = the most "
            f"overlap (default {DEFAULT_OVERLAP})"
        )
    return float(overlap)
