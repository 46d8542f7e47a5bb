"""Synthetic, GTZAN-shaped demo music, generated deterministically with numpy alone.

**This music is synthetic.** It exists so that the whole pipeline runs on a machine without GTZAN; the
accuracies models reach on it say nothing about how they do on real music.

Each genre has a style: a tempo range, a meter and swing, drum patterns, a bass line, a harmonic language and
a set of instruments (e.g. reggae's one-drop with an off-beat skank, disco's four-on-the-floor with open
hi-hats, metal's distorted power chords over a double kick, classical with no drums at all). Every track draws
its own key, tempo, pattern variant, instruments, mix levels, reverb and noise.

Real genres overlap, so the demo's do too, by one knob, ``overlap`` (0 to 1, :data:`DEFAULT_OVERLAP` by
default; ``genrelib demo-data --overlap``): every track is a crossover with one neighbouring genre
(:data:`NEIGHBOURS`: rock next to metal, pop, country and blues; hip hop next to reggae, pop and disco; ...)
that lends it, each with probability ``overlap``, its tempo, drum pattern, bass line, comping, instrument,
harmony, lead and distortion; some tracks get a half- or double-time feel or another timbre (flute, bell,
clavinet, ...); and the production (reverb, band limits, EQ tilt, compression, noise, crackle, level) is drawn
from ranges that widen toward one range for all genres as ``overlap`` grows. With ``overlap=0`` the genres are
distinct and clean (as the demo was before: mel_cnn scored 100% per track on it); the default is tuned so that
genrelib's CNN families land between 60% and 90% per track on the default demo (README, "The demo music").

Rendering caches the notes of a track (a song repeats its chords and bass notes bar after bar): about 0.1-0.2 s
per 30 s track on one core.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import GENRES, SR
from .errors import GenrelibError

logger = logging.getLogger(__name__)

# Chord qualities as semitone offsets from the root.
QUALITIES = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dom7": (0, 4, 7, 10), "min7": (0, 3, 7, 10), "maj7": (0, 4, 7, 11),
    "pow": (0, 7, 12), "min9": (0, 3, 7, 10, 14), "dom9": (0, 4, 7, 10, 14), "sus": (0, 5, 7),
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
        tempo=(62, 96), swing=(0.7, 1.0),
        drums=({"kick": "x.....o.x.......", "snare": "....x.......x...", "ride": "x..ox..ox..ox..o"},
               {"kick": "x.......x.....o.", "snare": "....x.......x..o", "hat": "x..ox..ox..ox..o"}),
        bass=("walk", "shuffle"), comp=("shuffle", "sustain"), instruments=("pluck", "piano", "organ"),
        progressions=(tuple((r, "dom7") for r in (0, 0, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7)),
                      tuple((r, "dom7") for r in (0, 5, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7))),
        scale=BLUES_SCALE, melody=0.8, drive=(0.0, 2.0), reverb=(0.1, 0.3), noise=(0.002, 0.02)),
    "classical": Style(
        tempo=(56, 120), swing=(0.0, 0.0), drums=({},), bass=("long", "arp"), comp=("arpeggio", "sustain"),
        instruments=("strings", "piano", "strings"),
        progressions=(((0, "maj"), (5, "maj"), (7, "dom7"), (0, "maj")), ((0, "min"), (5, "min"), (7, "dom7"),
                      (0, "min")), ((0, "maj"), (9, "min"), (2, "min"), (7, "dom7"))),
        scale=MAJOR, melody=0.9, drive=(0.0, 0.0), reverb=(0.3, 0.6), noise=(0.0, 0.006), meter=(3, 4)),
    "country": Style(
        tempo=(96, 144), swing=(0.0, 0.3),
        drums=({"kick": "x.......x.......", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
               {"kick": "x.......x.......", "snare": "..o.x.o...o.x.o.", "hat": "x.x.x.x.x.x.x.x."}),
        bass=("boomchick",), comp=("strum24", "strum8"), instruments=("pluck", "pluck", "piano"),
        progressions=(((0, "maj"), (5, "maj"), (0, "maj"), (7, "maj")), ((0, "maj"), (0, "maj"), (5, "maj"),
                      (7, "dom7"))),
        scale=MAJOR, melody=0.7, drive=(0.0, 0.5), reverb=(0.05, 0.2), noise=(0.002, 0.015)),
    "disco": Style(
        tempo=(110, 132), swing=(0.0, 0.1),
        drums=({"kick": "x...x...x...x...", "snare": "....x.......x...", "open": "..x...x...x...x.",
                "hat": "x.o.x.o.x.o.x.o."},
               {"kick": "x...x...x...x...", "snare": "....x.......x...", "open": "..x...x...x...x."}),
        bass=("octave8",), comp=("stab", "strum8"), instruments=("strings", "brass", "epiano"),
        progressions=(((0, "min7"), (5, "min7")), ((0, "min7"), (3, "maj7"), (5, "min7"), (7, "min7")),
                      ((0, "maj7"), (2, "min7"))),
        scale=MINOR, melody=0.4, drive=(0.0, 0.0), reverb=(0.1, 0.3), noise=(0.001, 0.01)),
    "hiphop": Style(
        tempo=(78, 100), swing=(0.3, 0.7),
        drums=({"kick": "x.....x...x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
               {"kick": "x......xx.......", "snare": "....x.......x...", "hat": "xoxoxoxoxoxoxoxo"}),
        bass=("sub",), comp=("sparse", "sustain"), instruments=("epiano", "piano", "synth"),
        progressions=(((0, "min7"), (8, "maj7")), ((0, "min"), (3, "maj"), (10, "maj"), (8, "maj")),
                      ((0, "min9"), (5, "min7"))),
        scale=MINOR, melody=0.3, drive=(0.0, 0.3), reverb=(0.05, 0.15), noise=(0.004, 0.03)),
    "jazz": Style(
        tempo=(100, 200), swing=(0.8, 1.0),
        drums=({"ride": "x..ox...x..ox...", "hat": "....x.......x...", "kick": "o...........o..."},
               {"ride": "x..ox..ox..ox..o", "snare": "..o....o..o...o.", "hat": "....x.......x..."}),
        bass=("walk",), comp=("comp",), instruments=("piano", "epiano", "brass"),
        progressions=(((2, "min7"), (7, "dom7"), (0, "maj7"), (0, "maj7")), ((0, "maj7"), (9, "min7"),
                      (2, "min7"), (7, "dom9"))),
        scale=MAJOR, melody=0.8, drive=(0.0, 0.0), reverb=(0.15, 0.4), noise=(0.002, 0.015)),
    "metal": Style(
        tempo=(140, 200), swing=(0.0, 0.0),
        drums=({"kick": "xxxxxxxxxxxxxxxx", "snare": "....x.......x...", "crash": "x...............",
                "hat": "x.x.x.x.x.x.x.x."},
               {"kick": "x.x.x.x.x.x.x.x.", "snare": "....x.......x...", "crash": "x.......x......."}),
        bass=("root8",), comp=("chug", "power8"), instruments=("dist", "dist"),
        progressions=(((0, "pow"), (1, "pow"), (0, "pow"), (3, "pow")), ((0, "pow"), (5, "pow"), (3, "pow"),
                      (1, "pow"))),
        scale=(0, 1, 3, 5, 7, 8, 10), melody=0.2, drive=(6.0, 14.0), reverb=(0.05, 0.2), noise=(0.003, 0.02)),
    "pop": Style(
        tempo=(94, 126), swing=(0.0, 0.15),
        drums=({"kick": "x.......x.x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
               {"kick": "x...x...x...x...", "clap": "....x.......x...", "hat": "..x...x...x...x."}),
        bass=("root8", "octave8"), comp=("pad", "strum8"), instruments=("synth", "piano", "epiano"),
        progressions=(((0, "maj"), (7, "maj"), (9, "min"), (5, "maj")), ((9, "min"), (5, "maj"), (0, "maj"),
                      (7, "maj"))),
        scale=MAJOR, melody=0.9, drive=(0.0, 0.3), reverb=(0.1, 0.3), noise=(0.001, 0.01)),
    "reggae": Style(
        tempo=(64, 90), swing=(0.1, 0.5),
        drums=({"kick": "........x.......", "rim": "........x.......", "hat": "x.x.x.x.x.x.x.x."},
               {"kick": "........x.......", "snare": "........x.......", "hat": "..x...x...x...x."}),
        bass=("dub",), comp=("skank",), instruments=("organ", "pluck", "epiano"),
        progressions=(((0, "min"), (5, "min")), ((0, "maj"), (5, "maj"), (7, "maj"), (5, "maj")),
                      ((0, "min"), (10, "maj")))
        , scale=MINOR, melody=0.3, drive=(0.0, 0.2), reverb=(0.1, 0.35), noise=(0.002, 0.02)),
    "rock": Style(
        tempo=(100, 150), swing=(0.0, 0.1),
        drums=({"kick": "x.......x.x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x.",
                "crash": "x..............."},
               {"kick": "x...x...x...x...", "snare": "....x.......x...", "ride": "x.x.x.x.x.x.x.x."}),
        bass=("root8",), comp=("power8", "strum8"), instruments=("dist", "pluck"),
        progressions=(((0, "maj"), (10, "maj"), (5, "maj"), (0, "maj")), ((0, "pow"), (5, "pow"), (7, "pow"),
                      (5, "pow"))),
        scale=MAJOR, melody=0.5, drive=(1.5, 5.0), reverb=(0.05, 0.25), noise=(0.002, 0.02)),
}


def midi_hz(m: float) -> float:
    """Frequency of a MIDI note number."""
    return 440.0 * 2.0 ** ((m - 69) / 12)


# ------------------------------------------------------------------------------- sound sources


def _env(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / sr
    a = np.minimum(1.0, t / max(attack, 1e-4))
    return a * np.exp(-t / max(decay, 1e-3))


def tone(freq: float, seconds: float, sr: int, timbre: str, rng: np.random.Generator) -> np.ndarray:
    """One note of an instrument: a sum of harmonics under an envelope.

    Parameters
    ----------
    freq : float
        Fundamental in Hz.
    seconds : float
        Sounding length (a release of 50 ms follows).
    timbre : str
        One of sine, organ, piano, epiano, pluck, strings, brass, synth, dist, flute, bell, clav.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    """
    n = max(int((seconds + 0.05) * sr), 16)
    t = np.arange(n) / sr
    if timbre == "organ":
        ks, amps, att, dec = np.array([1, 2, 3, 4, 6]), np.array([1, .7, .5, .25, .15]), .01, 8.0
    elif timbre == "piano":
        ks = np.arange(1, 9); amps, att, dec = 1.0 / ks, .003, 0.9
    elif timbre == "epiano":
        ks, amps, att, dec = np.array([1, 2, 7]), np.array([1, .3, .12]), .005, 1.2
    elif timbre == "pluck":
        ks = np.arange(1, 11); amps, att, dec = 1.0 / ks**1.1, .002, 0.5
    elif timbre == "strings":
        ks = np.arange(1, 11); amps, att, dec = 1.0 / ks, 0.15, 6.0
    elif timbre == "brass":
        ks = np.arange(1, 9); amps, att, dec = 1.0 / ks**0.8, 0.04, 3.0
    elif timbre == "synth":
        ks = np.arange(1, 12, 2); amps, att, dec = 1.0 / ks, 0.01, 3.0
    elif timbre == "dist":
        ks = np.arange(1, 9); amps, att, dec = 1.0 / ks, 0.003, 2.0
    elif timbre == "flute":
        ks, amps, att, dec = np.array([1, 2, 3]), np.array([1, .25, .08]), 0.06, 5.0
    elif timbre == "bell":
        ks, amps, att, dec = np.array([1, 2.76, 5.4, 8.93]), np.array([1, .5, .3, .15]), .002, 1.0
    elif timbre == "clav":
        ks = np.arange(1, 14); amps, att, dec = 1.0 / ks**0.6, .001, 0.25
    else:
        ks, amps, att, dec = np.array([1, 2]), np.array([1, .1]), .01, 2.0
    keep = ks * freq < sr / 2 - 500
    ks, amps = ks[keep], amps[keep]
    vib = 0.0
    if timbre == "strings":
        vib = 0.003 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * freq * (t + np.cumsum(vib) / sr if np.ndim(vib) else t)
    partials = np.sin(ks[:, None] * phase[None, :] + rng.uniform(0, 2 * np.pi, len(ks))[:, None])
    # Higher partials die away faster on struck and plucked strings.
    if timbre in ("piano", "pluck", "epiano", "bell", "clav"):
        partial_env = np.exp(-t[None, :] * (ks[:, None] - 1) * 2.5 / dec)
        y = (amps[:, None] * partials * partial_env).sum(0)
    else:
        y = amps @ partials
    if timbre == "flute":  # breath
        y = y + 0.04 * rng.standard_normal(n)
    y *= _env(n, sr, att, dec)
    rel = int(0.05 * sr)
    y[-rel:] *= np.linspace(1, 0, rel)
    return (y / (np.abs(amps).sum() + 1e-9)).astype(np.float32)


def drum(kind: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One drum hit: kick, snare, rim, clap, hat, open, ride or crash."""
    if kind == "kick":
        n = int(0.35 * sr); t = np.arange(n) / sr
        f = 45 + 110 * np.exp(-t / 0.04)
        y = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)
    elif kind in ("snare", "clap"):
        n = int(0.25 * sr); t = np.arange(n) / sr
        noise = np.diff(rng.standard_normal(n + 1))
        body = np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.03)
        y = 0.6 * noise * np.exp(-t / (0.06 if kind == "snare" else 0.03)) + 0.5 * body
        if kind == "clap":
            y *= 1 + 0.8 * (np.sin(2 * np.pi * 90 * t) > 0)
    elif kind == "rim":
        n = int(0.08 * sr); t = np.arange(n) / sr
        y = np.sin(2 * np.pi * 1700 * t) * np.exp(-t / 0.012) + 0.3 * rng.standard_normal(n) * np.exp(-t / 0.005)
    else:
        decay = {"hat": 0.03, "open": 0.22, "ride": 0.45, "crash": 1.2}[kind]
        n = int(min(4 * decay, 1.5) * sr); t = np.arange(n) / sr
        noise = rng.standard_normal(n + 2)
        y = noise[2:] - 2 * noise[1:-1] + noise[:-2]  # second difference: a crude high-pass
        if kind == "ride":
            y = 0.5 * y + np.sin(2 * np.pi * 3200 * t) + 0.6 * np.sin(2 * np.pi * 4750 * t)
        y *= np.exp(-t / decay)
    y = y / (np.abs(y).max() + 1e-9)
    return y.astype(np.float32)


def _add(buf: np.ndarray, y: np.ndarray, at: int, gain: float) -> None:
    if at >= len(buf) or at < 0:
        return
    m = min(len(y), len(buf) - at)
    buf[at : at + m] += gain * y[:m]


# ------------------------------------------------------------------------------------ one track


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
        raise DemoError(f"overlap must lie between 0 and 1, got {overlap!r}; 0 = distinct genres, 1 = the most "
                        f"overlap (default {DEFAULT_OVERLAP})")
    return float(overlap)


def _lerp(a: tuple[float, float], b: tuple[float, float], w: float) -> tuple[float, float]:
    return (a[0] + w * (b[0] - a[0]), a[1] + w * (b[1] - a[1]))


def render(genre: str, seconds: float = 30.0, *, sr: int = SR, seed: int = 0, sections: bool = False,
           overlap: float | None = None) -> np.ndarray:
    """Render one synthetic track of ``genre``.

    Parameters
    ----------
    genre : str
        One of :data:`genrelib.config.GENRES`.
    seconds : float
        Length.
    sr : int
        Sample rate.
    seed : int
        Everything random about the track (key, tempo, variant, instruments, mix) follows from it.
    sections : bool
        Vary the arrangement over time (intro without drums, breakdowns): for longer songs.
    overlap : float, optional
        How much genres overlap, from 0 (every part from the genre's own style, clean production: easy to tell
        apart) to 1 (each part of a crossover track from a neighbouring genre, :data:`NEIGHBOURS`, with even
        odds; production drawn from one range for all genres). None: :data:`DEFAULT_OVERLAP`.

    Returns
    -------
    y : np.ndarray [shape=(round(seconds * sr),), dtype=float32], peak below 1.
    """
    if genre not in STYLES:
        raise DemoError(f"unknown demo genre {genre!r}; use one of {', '.join(STYLES)}")
    overlap = check_overlap(overlap)
    own = STYLES[genre]
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    # A crossover track: one neighbour genre lends each part with probability overlap.
    other = STYLES[NEIGHBOURS[genre][rng.integers(len(NEIGHBOURS[genre]))]]

    def part() -> Style:
        return other if rng.random() < overlap else own

    st_tempo, st_drums, st_bass, st_comp, st_inst, st_harm, st_drive = (part() for _ in range(7))
    bpm = rng.uniform(*st_tempo.tempo)
    if rng.random() < 0.25 * overlap:  # half- or double-time feel
        bpm = bpm * 2 if bpm < 90 else bpm / 2 if bpm > 130 else bpm
    beat = 60.0 / bpm
    meter = int(rng.choice(st_harm.meter))
    steps_per_bar = 4 * meter
    sixteenth = beat / 4
    swing = rng.uniform(*st_tempo.swing)
    key = int(rng.integers(40, 52))  # root of the key, E2..D#3
    prog = st_harm.progressions[rng.integers(len(st_harm.progressions))]
    pattern = st_drums.drums[rng.integers(len(st_drums.drums))]
    bass_style = st_bass.bass[rng.integers(len(st_bass.bass))]
    comp = st_comp.comp[rng.integers(len(st_comp.comp))]
    inst = st_inst.instruments[rng.integers(len(st_inst.instruments))]
    if rng.random() < 0.3 * overlap:  # another timbre altogether
        inst = str(rng.choice(["flute", "bell", "clav", "synth", "organ", "strings"]))
    drive = rng.uniform(*st_drive.drive)
    has_melody = rng.random() < part().melody
    scale = st_harm.scale
    leads = ["strings", "piano", "flute"] if st_harm is STYLES["classical"] else \
        ["synth", "brass", "pluck", "organ", "sine", "flute", "bell", "clav"]
    lead = str(rng.choice(leads))
    drum_gain = rng.uniform(0.5 - 0.3 * overlap, 1.0)
    bass_gain = rng.uniform(0.35 - 0.2 * overlap, 0.8)
    harm_gain = rng.uniform(0.3, 0.7 + 0.2 * overlap)
    lead_gain = rng.uniform(0.2, 0.5 + 0.2 * overlap)
    synth = _Synth(sr, rng)

    def step_time(bar: int, step: int) -> float:
        t = (bar * steps_per_bar + step) * sixteenth
        if step % 4 == 2:
            t += swing * beat / 6  # toward the triplet position of the off-beat 8th
        elif step % 2 == 1:
            t += swing * sixteenth / 3
        return t

    n_bars = int(np.ceil(seconds / (beat * meter))) + 1
    drums_buf = np.zeros(n, np.float32)
    bass_buf = np.zeros(n, np.float32)
    harm_buf = np.zeros(n, np.float32)
    lead_buf = np.zeros(n, np.float32)
    hits = {k: drum(k, sr, rng) for k in pattern}
    drum_level = {"kick": 1.0, "snare": 0.7, "clap": 0.6, "rim": 0.5, "hat": 0.25, "open": 0.3, "ride": 0.25,
                  "crash": 0.35}
    bar_len = steps_per_bar
    for bar in range(n_bars):
        drums_on = not sections or (bar % 16) >= 2
        if drums_on:
            for name, pat in pattern.items():
                for step in range(bar_len):
                    c = pat[step % 16]
                    if c == ".":
                        continue
                    vel = (1.0 if c == "x" else 0.55) * rng.uniform(0.85, 1.0)
                    _add(drums_buf, hits[name], int(step_time(bar, step) * sr), vel * drum_level[name])
        root_deg, quality = prog[bar % len(prog)]
        root = key + root_deg
        chord = [root + 12 + i for i in QUALITIES[quality]]
        _bass(bass_buf, bass_style, root, quality, bar, bar_len, step_time, beat, sr, rng, synth)
        _comp(harm_buf, comp, inst, chord, bar, bar_len, step_time, beat, sr, rng, synth)
        if has_melody and (not sections or (bar % 8) < 6):
            _melody(lead_buf, lead, key + 24, scale, chord, bar, bar_len, step_time, beat, sr, rng, synth)
    if drive > 0:
        harm_buf = np.tanh(drive * harm_buf / (np.abs(harm_buf).max() + 1e-9)).astype(np.float32)
    mix = np.zeros(n, np.float32)
    for buf, g in ((drums_buf, drum_gain), (bass_buf, bass_gain), (harm_buf, harm_gain), (lead_buf, lead_gain)):
        peak = np.abs(buf).max()
        if peak > 0:
            mix += g * buf / peak
    return _produce(mix, sr, rng, own, overlap, genre)


def _produce(mix: np.ndarray, sr: int, rng: np.random.Generator, st: Style, overlap: float,
             genre: str) -> np.ndarray:
    """Production: reverb, EQ, compression, noise and level; the wider the ranges, the higher ``overlap``."""
    from scipy.signal import butter, sosfilt

    n = len(mix)
    mix = _reverb(mix, sr, rng.uniform(*_lerp(st.reverb, _ANY_REVERB, overlap)), rng)
    # EQ: a band limit (old recordings, radio, lo-fi) and a random tilt.
    lo = rng.uniform(20, 20 + 280 * overlap)
    hi = min(rng.uniform(11000 - 8000 * overlap, 11000), 0.45 * sr)
    mix = sosfilt(butter(2, [lo, hi], "bandpass", fs=sr, output="sos"), mix).astype(np.float32)
    tilt = rng.uniform(-0.3 - 0.5 * overlap, 0.3 + 0.5 * overlap)
    mix = mix + tilt * np.concatenate([[0], np.diff(mix)]).astype(np.float32)
    # Compression: a soft limiter of random strength.
    squash = rng.uniform(0.0, 4.0 * overlap)
    if squash > 0.05:
        mix = np.tanh(squash * mix / (np.abs(mix).max() + 1e-9)).astype(np.float32)
    mix /= np.abs(mix).max() + 1e-9
    mix += rng.uniform(*_lerp(st.noise, _ANY_NOISE, overlap)) * rng.standard_normal(n).astype(np.float32)
    if genre == "hiphop" or rng.random() < 0.2 * overlap:  # vinyl crackle
        clicks = rng.random(n) < 0.0004
        mix += clicks * rng.uniform(-0.3, 0.3, n).astype(np.float32)
    mix *= rng.uniform(0.5 - 0.3 * overlap, 0.9) / (np.abs(mix).max() + 1e-9)
    return mix.astype(np.float32)


class _Synth:
    """The notes of one track, each rendered once: a track repeats the same notes (chords, bass lines) bar after
    bar, so caching them makes rendering several times faster."""

    def __init__(self, sr: int, rng: np.random.Generator):
        self.sr, self.rng, self.cache = sr, rng, {}

    def __call__(self, midi: float, seconds: float, timbre: str) -> np.ndarray:
        k = (midi, int(seconds * self.sr), timbre)
        y = self.cache.get(k)
        if y is None:
            y = self.cache[k] = tone(midi_hz(midi), seconds, self.sr, timbre, self.rng)
        return y


def _bass(buf, style, root, quality, bar, bar_len, step_time, beat, sr, rng, synth) -> None:
    third = QUALITIES[quality][1] if quality != "pow" else 7
    notes: list[tuple[int, int, float]] = []  # (step, midi, beats)
    if style == "walk":
        tones = [root, root + third, root + 7, root + (10 if quality in ("dom7", "min7", "dom9") else 9)]
        notes = [(s, tones[i % 4] + int(rng.choice([0, 0, 12])), 0.9) for i, s in enumerate(range(0, bar_len, 4))]
    elif style == "shuffle":
        tones = [root, root + 4, root + 7, root + 9]
        notes = [(s, tones[(i // 2) % 4], 0.6) for i, s in enumerate(range(0, bar_len, 2))]
    elif style == "boomchick":
        notes = [(s, root if (s // 8) % 2 == 0 else root + 7 - 12, 0.8) for s in range(0, bar_len, 8)]
    elif style == "octave8":
        notes = [(s, root + (12 if (s // 2) % 2 else 0), 0.4) for s in range(0, bar_len, 2)]
    elif style == "root8":
        notes = [(s, root, 0.45) for s in range(0, bar_len, 2)]
    elif style == "sub":
        notes = [(0, root - 12, 2.5), (10, root - 12, 1.2)]
    elif style == "dub":
        notes = [(0, root, 1.4), (6, root + 7, 0.4), (8, root + 3, 0.9), (12, root - 2, 0.9)]
    elif style == "long":
        notes = [(0, root, bar_len / 4 * 0.95)]
    elif style == "arp":
        tones = [root, root + 7, root + 12, root + 7]
        notes = [(s, tones[(s // 2) % 4], 0.5) for s in range(0, bar_len, 2)]
    timbre = "sine" if style in ("sub", "dub", "long") else "pluck"
    for step, midi, beats in notes:
        _add(buf, synth(midi, beats * beat, timbre), int(step_time(bar, step) * sr), 1.0)


def _comp(buf, comp, inst, chord, bar, bar_len, step_time, beat, sr, rng, synth) -> None:
    hits: list[tuple[int, float]] = []  # (step, beats)
    if comp == "sustain" or comp == "pad":
        hits = [(0, bar_len / 4 * 0.98)]
    elif comp == "shuffle":
        hits = [(s, 0.6) for s in range(0, bar_len, 2)]
    elif comp == "strum24":
        hits = [(s, 0.8) for s in range(4, bar_len, 8)]
    elif comp == "strum8":
        hits = [(s, 0.45) for s in range(0, bar_len, 2)]
    elif comp == "stab":
        hits = [(s, 0.3) for s in range(2, bar_len, 4)]
    elif comp == "skank":
        hits = [(s, 0.2) for s in range(2, bar_len, 4)]
    elif comp == "sparse":
        hits = [(0, 1.5), (11, 0.8)] if rng.random() < 0.7 else [(0, 3.0)]
    elif comp == "comp":
        hits = [(int(s), float(rng.choice([0.3, 0.6, 1.0]))) for s in sorted(rng.choice(bar_len, 3, replace=False))]
    elif comp == "power8":
        hits = [(s, 0.45) for s in range(0, bar_len, 2)]
    elif comp == "chug":
        hits = [(s, 0.2) for s in range(0, bar_len, 1) if rng.random() < 0.75]
    elif comp == "arpeggio":
        for i, s in enumerate(range(0, bar_len, 2)):
            midi = chord[i % len(chord)] + 12 * ((i // len(chord)) % 2)
            _add(buf, synth(midi, 0.6 * beat, inst), int(step_time(bar, s) * sr), 0.6)
        return
    if comp == "chug":
        chord = chord[:2]
    for step, beats in hits:
        at = int(step_time(bar, step) * sr)
        for k, midi in enumerate(chord):
            strum = int(k * 0.008 * sr) if inst in ("pluck", "dist") else 0
            _add(buf, synth(midi, beats * beat, inst), at + strum, 1.0 / len(chord))


def _melody(buf, lead, base, scale, chord, bar, bar_len, step_time, beat, sr, rng, synth) -> None:
    deg = int(rng.integers(0, len(scale)))
    for s in range(0, bar_len, 2):
        if rng.random() < 0.35:
            continue
        deg = int(np.clip(deg + rng.integers(-2, 3), 0, 2 * len(scale) - 1))
        midi = base + scale[deg % len(scale)] + 12 * (deg // len(scale))
        beats = float(rng.choice([0.45, 0.9, 1.4]))
        _add(buf, synth(midi, beats * beat, lead), int(step_time(bar, s) * sr), 0.7)


def _reverb(y: np.ndarray, sr: int, amount: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import fftconvolve

    if amount <= 0:
        return y
    m = int(0.4 * sr)
    t = np.arange(m) / sr
    ir = rng.standard_normal(m).astype(np.float32) * np.exp(-t / (0.08 + 0.25 * amount)).astype(np.float32)
    ir[0] = 0
    wet = fftconvolve(y, ir)[: len(y)].astype(np.float32)
    wet *= np.abs(y).max() / (np.abs(wet).max() + 1e-9)
    return (1 - amount) * y + amount * wet


# ------------------------------------------------------------------------------------ folders


def _write(path: Path, y: np.ndarray, sr: int) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    fmt = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".mp3": ("MP3", "MPEG_LAYER_III"),
           ".ogg": ("OGG", "VORBIS")}[path.suffix.lower()]
    # Written in blocks: libsndfile's vorbis encoder crashes on one very large write.
    with sf.SoundFile(tmp, "w", sr, 1, format=fmt[0], subtype=fmt[1]) as f:
        for i in range(0, len(y), 1 << 16):
            f.write(y[i : i + (1 << 16)])
    tmp.replace(path)


def track_seed(seed: int, genre: str, index: int) -> int:
    """The seed of one demo track: a function of the demo seed, the genre and the track number."""
    return int(np.random.SeedSequence([seed, GENRES.index(genre) if genre in GENRES else 99, index])
               .generate_state(1)[0])


#: File that marks a folder as genrelib's synthetic demo music (so that tools can say so).
MARKER = "GENRELIB_DEMO.txt"
_MARKER_TEXT = ("Synthetic music generated by `genrelib demo-data` (numpy synthesis, deterministic by seed).\n"
                "Results on it say nothing about how a model does on real music.\n")


#: Bumped when the same seed and settings render different music (2: the overlap generator of issue 9).
GENERATOR = 2
_SETTINGS = "settings: "


def _mark(out: Path, settings: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = _MARKER_TEXT + (f"{_SETTINGS}{json.dumps(settings, sort_keys=True)}\n" if settings else "")
    tmp = out / f".{MARKER}.tmp"
    tmp.write_text(text)
    tmp.replace(out / MARKER)


def recorded_settings(out: str | Path) -> dict | None:
    """The settings the demo folder ``out`` was written with (``{}``: by a generator before :data:`GENERATOR` 2
    recorded them), or None when ``out`` holds no demo marker."""
    marker = Path(out) / MARKER
    if not marker.is_file():
        return None
    for line in marker.read_text().splitlines():
        if line.startswith(_SETTINGS):
            try:
                return json.loads(line[len(_SETTINGS):])
            except json.JSONDecodeError:
                return {}
    return {}


def demo_settings(kind: str, *, seed: int, overlap: float | None, sr: int, seconds: float | None = None) -> dict:
    """What decides the music of a demo folder (besides how many tracks it holds): kept in its marker file."""
    settings = {"generator": GENERATOR, "kind": kind, "seed": int(seed), "overlap": check_overlap(overlap),
                "sr": int(sr)}
    if seconds is not None:
        settings["seconds"] = float(seconds)
    return settings


def stale_settings(out: str | Path, settings: dict) -> dict | None:
    """The settings recorded in the demo folder ``out`` when they differ from ``settings`` in any key ``settings``
    has (``{}``: written by an older generator that recorded none); None when they agree or ``out`` is no demo
    folder."""
    old = recorded_settings(out)
    if old is None or {k: old.get(k) for k in settings} == settings:
        return None
    return old


def _replace_stale(out: Path, settings: dict, pattern: str) -> int:
    """Delete the demo files (``pattern`` under ``out``) written with other settings or by an older generator,
    so that a re-run (``make run-all`` on an old checkout) gets the music of today's settings; returns how many.

    Only files of a folder that carries genrelib's demo marker are touched: they are genrelib's own output."""
    old = stale_settings(out, settings)
    if old is None:
        return 0
    stale = sorted(out.glob(pattern))
    for p in stale:
        p.unlink()
    for folder in {p.parent for p in stale}:
        if not any(folder.iterdir()):
            folder.rmdir()
    if stale:
        logger.warning("%s: %d demo files were made %s; they are written again with %s", out, len(stale),
                       f"with {old}" if old else "by an older demo generator", settings)
    return len(stale)


def is_demo(path: str | Path) -> bool:
    """Whether ``path`` (a file or folder) lies in a folder written by :func:`make_demo` or :func:`make_personal`."""
    p = Path(path).resolve()
    return any((q / MARKER).is_file() for q in [p, *p.parents][:4])


def make_demo(out: str | Path, *, per_genre: int = 30, seconds: float = 30.0, seed: int = 0,
              genres: tuple[str, ...] = GENRES, sr: int = SR, n_jobs: int | None = None,
              progress: bool = False, overlap: float | None = None) -> Path:
    """Write a GTZAN-shaped folder of synthetic music: ``out/<genre>/<genre>.000NN.wav``.

    22050 Hz, mono, 16-bit wav, deterministic by ``seed`` and ``overlap`` (see :func:`render`; None:
    :data:`DEFAULT_OVERLAP`). Existing files are kept when the folder's marker records the same settings (a re-run
    resumes); files written with other settings or by an older generator are written again.

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    settings = demo_settings("genres", seed=seed, overlap=overlap, sr=sr, seconds=seconds)  # checks overlap first
    _replace_stale(out, settings, "*/*.[0-9][0-9][0-9][0-9][0-9].wav")
    jobs = [(g, i) for g in genres for i in range(per_genre)]
    todo = [(g, i) for g, i in jobs if not (out / g / f"{g}.{i:05d}.wav").exists()]
    _mark(out, settings)
    _run(_demo_job, [(out, g, i, seconds, seed, sr, overlap) for g, i in todo], n_jobs, progress, "demo tracks")
    logger.info("demo music under %s: %d tracks written, %d already there", out, len(todo), len(jobs) - len(todo))
    return out


def _demo_job(args) -> None:
    out, g, i, seconds, seed, sr, overlap = args
    y = render(g, seconds, sr=sr, seed=track_seed(seed, g, i), overlap=overlap)
    _write(out / g / f"{g}.{i:05d}.wav", y, sr)


PERSONAL_FORMATS = (".mp3", ".flac", ".wav", ".ogg")


def make_personal(out: str | Path, *, n: int = 6, seed: int = 0, sr: int = SR, min_seconds: float = 60.0,
                  max_seconds: float = 180.0, genres: tuple[str, ...] = GENRES, n_jobs: int | None = None,
                  progress: bool = False, overlap: float | None = None) -> list[Path]:
    """Write ``n`` longer synthetic "personal" songs, ``out/<genre>/song_NN.<ext>``, in mp3, flac, wav and ogg.

    Lengths are drawn between ``min_seconds`` and ``max_seconds``; arrangements vary over time. Deterministic
    by ``seed`` (and ``overlap``, as in :func:`render`) and different from the tracks of :func:`make_demo`.
    """
    out = Path(out)
    settings = demo_settings("personal", seed=seed, overlap=overlap, sr=sr)  # checks overlap first
    settings.update(min_seconds=float(min_seconds), max_seconds=float(max_seconds))
    _replace_stale(out, settings, "*/song_[0-9][0-9].*")
    _mark(out, settings)
    rng = np.random.default_rng([seed, 7777])
    args, paths = [], []
    for k in range(n):
        g = genres[(k * 3 + int(rng.integers(0, 3))) % len(genres)]
        secs = float(np.round(rng.uniform(min_seconds, max_seconds), 1))
        path = out / g / f"song_{k:02d}{PERSONAL_FORMATS[k % len(PERSONAL_FORMATS)]}"
        paths.append(path)
        if not path.exists():
            args.append((path, g, secs, track_seed(seed, g, 10_000 + k), sr, overlap))
    _run(_personal_job, args, n_jobs, progress, "personal songs")
    return paths


def _personal_job(args) -> None:
    path, g, secs, s, sr, overlap = args
    _write(path, render(g, secs, sr=sr, seed=s, sections=True, overlap=overlap), sr)


def _run(fn, args: list, n_jobs: int | None, progress: bool, desc: str) -> None:
    import os

    from .progress import Progress

    n_jobs = max(1, min(n_jobs or os.cpu_count() or 1, len(args) or 1))
    bar = Progress(len(args), desc, bar=progress)  # a bar on a terminal, else log lines (genrelib.progress)
    if n_jobs == 1 or len(args) < 4:
        for a in args:
            fn(a)
            bar.update()
        bar.close()
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("forkserver")) as pool:
        for _ in pool.map(fn, args, chunksize=4):
            bar.update()
    bar.close()
