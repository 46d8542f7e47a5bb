"""The demo music's instruments: pitched tones of a few timbres, drum hits, reverb; plain numpy synthesis."""

from __future__ import annotations

import numpy as np


def midi_hz(m: float) -> float:
    """Frequency of a MIDI note number."""
    return 440.0 * 2.0 ** ((m - 69) / 12)


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
        ks, amps, att, dec = np.array([1, 2, 3, 4, 6]), np.array([1, 0.7, 0.5, 0.25, 0.15]), 0.01, 8.0
    elif timbre == "piano":
        ks = np.arange(1, 9)
        amps, att, dec = 1.0 / ks, 0.003, 0.9
    elif timbre == "epiano":
        ks, amps, att, dec = np.array([1, 2, 7]), np.array([1, 0.3, 0.12]), 0.005, 1.2
    elif timbre == "pluck":
        ks = np.arange(1, 11)
        amps, att, dec = 1.0 / ks**1.1, 0.002, 0.5
    elif timbre == "strings":
        ks = np.arange(1, 11)
        amps, att, dec = 1.0 / ks, 0.15, 6.0
    elif timbre == "brass":
        ks = np.arange(1, 9)
        amps, att, dec = 1.0 / ks**0.8, 0.04, 3.0
    elif timbre == "synth":
        ks = np.arange(1, 12, 2)
        amps, att, dec = 1.0 / ks, 0.01, 3.0
    elif timbre == "dist":
        ks = np.arange(1, 9)
        amps, att, dec = 1.0 / ks, 0.003, 2.0
    elif timbre == "flute":
        ks, amps, att, dec = np.array([1, 2, 3]), np.array([1, 0.25, 0.08]), 0.06, 5.0
    elif timbre == "bell":
        ks, amps, att, dec = np.array([1, 2.76, 5.4, 8.93]), np.array([1, 0.5, 0.3, 0.15]), 0.002, 1.0
    elif timbre == "clav":
        ks = np.arange(1, 14)
        amps, att, dec = 1.0 / ks**0.6, 0.001, 0.25
    else:
        ks, amps, att, dec = np.array([1, 2]), np.array([1, 0.1]), 0.01, 2.0
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
        n = int(0.35 * sr)
        t = np.arange(n) / sr
        f = 45 + 110 * np.exp(-t / 0.04)
        y = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)
    elif kind in ("snare", "clap"):
        n = int(0.25 * sr)
        t = np.arange(n) / sr
        noise = np.diff(rng.standard_normal(n + 1))
        body = np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.03)
        y = 0.6 * noise * np.exp(-t / (0.06 if kind == "snare" else 0.03)) + 0.5 * body
        if kind == "clap":
            y *= 1 + 0.8 * (np.sin(2 * np.pi * 90 * t) > 0)
    elif kind == "rim":
        n = int(0.08 * sr)
        t = np.arange(n) / sr
        y = np.sin(2 * np.pi * 1700 * t) * np.exp(-t / 0.012) + 0.3 * rng.standard_normal(n) * np.exp(-t / 0.005)
    else:
        decay = {"hat": 0.03, "open": 0.22, "ride": 0.45, "crash": 1.2}[kind]
        n = int(min(4 * decay, 1.5) * sr)
        t = np.arange(n) / sr
        noise = rng.standard_normal(n + 2)
        y = noise[2:] - 2 * noise[1:-1] + noise[:-2]  # second difference: a crude high-pass
        if kind == "ride":
            y = 0.5 * y + np.sin(2 * np.pi * 3200 * t) + 0.6 * np.sin(2 * np.pi * 4750 * t)
        y *= np.exp(-t / decay)
    y = y / (np.abs(y).max() + 1e-9)
    return y.astype(np.float32)


def mix_in(buf: np.ndarray, y: np.ndarray, at: int, gain: float) -> None:
    if at >= len(buf) or at < 0:
        return
    m = min(len(y), len(buf) - at)
    buf[at : at + m] += gain * y[:m]


def reverb(y: np.ndarray, sr: int, amount: float, rng: np.random.Generator) -> np.ndarray:
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
