"""Rendering one demo track: a genre's :class:`~genrelib.datasets.demo_styles.Style`, crossed with a neighbour at
``overlap``, played bar by bar and produced.
"""

from __future__ import annotations

import numpy as np

from genrelib.config import SR
from genrelib.datasets.demo_sounds import drum, midi_hz, mix_in, reverb, tone
from genrelib.datasets.demo_styles import (
    _ANY_NOISE,
    _ANY_REVERB,
    NEIGHBOURS,
    QUALITIES,
    STYLES,
    DemoError,
    Style,
    check_overlap,
)


def _lerp(a: tuple[float, float], b: tuple[float, float], w: float) -> tuple[float, float]:
    return (a[0] + w * (b[0] - a[0]), a[1] + w * (b[1] - a[1]))


def render(
    genre: str,
    seconds: float = 30.0,
    *,
    sr: int = SR,
    seed: int = 0,
    sections: bool = False,
    overlap: float | None = None,
) -> np.ndarray:
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
    leads = (
        ["strings", "piano", "flute"]
        if st_harm is STYLES["classical"]
        else ["synth", "brass", "pluck", "organ", "sine", "flute", "bell", "clav"]
    )
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
    drum_level = {
        "kick": 1.0,
        "snare": 0.7,
        "clap": 0.6,
        "rim": 0.5,
        "hat": 0.25,
        "open": 0.3,
        "ride": 0.25,
        "crash": 0.35,
    }
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
                    mix_in(drums_buf, hits[name], int(step_time(bar, step) * sr), vel * drum_level[name])
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


def _produce(mix: np.ndarray, sr: int, rng: np.random.Generator, st: Style, overlap: float, genre: str) -> np.ndarray:
    """Production: reverb, EQ, compression, noise and level; the wider the ranges, the higher ``overlap``."""
    from scipy.signal import butter, sosfilt

    n = len(mix)
    mix = reverb(mix, sr, rng.uniform(*_lerp(st.reverb, _ANY_REVERB, overlap)), rng)
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
        mix_in(buf, synth(midi, beats * beat, timbre), int(step_time(bar, step) * sr), 1.0)


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
            mix_in(buf, synth(midi, 0.6 * beat, inst), int(step_time(bar, s) * sr), 0.6)
        return
    if comp == "chug":
        chord = chord[:2]
    for step, beats in hits:
        at = int(step_time(bar, step) * sr)
        for k, midi in enumerate(chord):
            strum = int(k * 0.008 * sr) if inst in ("pluck", "dist") else 0
            mix_in(buf, synth(midi, beats * beat, inst), at + strum, 1.0 / len(chord))


def _melody(buf, lead, base, scale, chord, bar, bar_len, step_time, beat, sr, rng, synth) -> None:
    deg = int(rng.integers(0, len(scale)))
    for s in range(0, bar_len, 2):
        if rng.random() < 0.35:
            continue
        deg = int(np.clip(deg + rng.integers(-2, 3), 0, 2 * len(scale) - 1))
        midi = base + scale[deg % len(scale)] + 12 * (deg // len(scale))
        beats = float(rng.choice([0.45, 0.9, 1.4]))
        mix_in(buf, synth(midi, beats * beat, lead), int(step_time(bar, s) * sr), 0.7)
