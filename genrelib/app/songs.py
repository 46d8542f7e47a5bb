"""What the page does with uploaded songs, without the page: the models it offers, one :class:`Predictor` per model
per process (:class:`Predictors`), the checks on an upload, and a request's answer (:class:`PageAnswer`: the
table, the figures, the downloads in the columns of ``genrelib predict --format``).

Nothing here imports Gradio; :mod:`genrelib.app.page` puts it on a page.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from genrelib import audio, jsonio
from genrelib.errors import GenrelibError
from genrelib.inference.formats import csv_table, json_records
from genrelib.inference.predict import Predictor, SongPrediction

logger = logging.getLogger(__name__)

#: The model the page answers with unless another is chosen.
DEFAULT = "default"
#: The musicnn network that gives every song's tags (the default model's own network: its tags come free).
TAG_MODEL = "MSD_musicnn"
#: Genres and tags shown (and written in the downloads) per song and per window.
TOP_GENRES, TOP_TAGS = 3, 5
#: Songs drawn in the page's figures (the table and the downloads have every song).
MAX_FIGURE_SONGS = 12
#: The command whose output the downloads repeat, column for column.
SAME_AS = f"genrelib predict --timeline --tags {TOP_TAGS} --top-k {TOP_GENRES} --format csv|json"


def model_choices(extra: str | None = None) -> tuple[list[tuple[str, str]], str | None]:
    """The models the page offers, as ``(label, reference)``: the shipped default, ``extra`` (the ``--model`` the
    page was started with) and every alias and version of the registry the tracking URI points at.

    Returns
    -------
    choices : list of (str, str)
    note : str or None
        Why the registry's models are missing (a store that cannot be read), else None.
    """
    out = [("default (shipped: musicnn + linear head, 153 real GTZAN tracks)", DEFAULT)]
    if extra and extra != DEFAULT:
        out.append((f"{extra} (given with --model)", extra))
    try:
        from genrelib import tracking

        if tracking.is_server():  # a server that is down: a line now, not MLflow's minutes of retries
            tracking.wait_for_server(tracking.tracking_uri(), timeout=3)
        out += [(label, ref) for ref, label in tracking.registered_choices() if ref != extra]
    except Exception as exc:  # noqa: BLE001 - a store that cannot be read leaves the default model, said on the page
        logger.warning("the registry cannot be listed: %s", exc)
        return out, f"the registry's models are not listed: {' '.join(str(exc).split())[:300]}"
    return out, None


class Predictors:
    """One :class:`Predictor` per model reference in this process, loaded at its first use and kept: a second
    request for a model (at once or later) never loads it again, and two requests that arrive together for a model
    not yet loaded load it once."""

    def __init__(self, tag_model: str = TAG_MODEL):
        self.tag_model = tag_model
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._loaded: dict[str, Predictor] = {}
        #: How many times each model was loaded (1 each: the cache's promise).
        self.loads: dict[str, int] = {}

    def get(self, ref: str) -> tuple[Predictor, float | None]:
        """The predictor of ``ref`` and the seconds its loading took now (None when it was already loaded).

        Raises
        ------
        ModelError
            When the model cannot be loaded (not kept: the next request tries again).
        """
        with self._lock:
            lock = self._locks.setdefault(ref, threading.Lock())
        with lock:
            if ref in self._loaded:
                return self._loaded[ref], None
            t0 = time.perf_counter()
            predictor = Predictor(None if ref == DEFAULT else ref, tag_model=self.tag_model)
            self._loaded[ref] = predictor
            self.loads[ref] = self.loads.get(ref, 0) + 1
            return predictor, time.perf_counter() - t0


def check_upload(path: str | Path, upload_dir: str | Path) -> Path:
    """The file of an upload, if it lies in the page's upload folder (links resolved): the page reads no other file,
    whatever name a client sends.

    Raises
    ------
    GenrelibError
        When the path leads outside the upload folder (the message does not say whether such a file exists).
    """
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(upload_dir))):
        raise GenrelibError(f"{Path(str(path)).name}: not a file uploaded to this page; upload the song")
    return real


def _said(exc: Exception, file: Path, name: str) -> str:
    """An error as the command line words it, one line, naming the upload as the user named it (not the server's
    copy)."""
    msg = " ".join(str(exc).split()).replace(str(file), name)
    return msg if msg.startswith(name) else f"{name}: {msg}"


@dataclass
class PageAnswer:
    """The answer to one request: the songs classified, the ones refused, and what the page shows of them.

    Attributes
    ----------
    model : str
        Which model answered and what it was trained on (:meth:`Predictor.describe`).
    genres : list of str
    predictions : list of SongPrediction
        Their ``path`` is the name the song was uploaded under.
    failures : list of str
        One line per song that could not be classified, in the command line's words.
    notes : list of str
        Other lines for the page (a warning about the model, how long its loading took).
    """

    model: str
    genres: list[str]
    predictions: list[SongPrediction] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def status(self) -> str:
        """The page's message: the model line, then one line per refused song and per note (Markdown)."""
        lines = [f"**{self.model}**"] + [f"- {f}" for f in self.failures] + [f"- {n}" for n in self.notes]
        return "\n".join(lines)

    def table(self) -> list[list]:
        """One row per song: name, duration (s), the top genres with probabilities, the top musicnn tags."""
        return [
            [
                p.path.name,
                round(p.duration, 1),
                *(f"{g} {q:.2f}" for g, q in p.top(self.genres, TOP_GENRES)),
                ", ".join(f"{t} {q:.2f}" for t, q in p.top_tags(TOP_TAGS)),
            ]
            for p in self.predictions
        ]

    def figures(self):
        """Two figures, one row of panels per song (the first :data:`MAX_FIGURE_SONGS`): the top genres as bars,
        and the genre over time (:func:`genrelib.plots.plot_timeline`, as notebook 05 draws it); (None, None)
        without songs."""
        import matplotlib.pyplot as plt

        from genrelib.plots import plot_timeline, plot_top_genres

        preds = self.predictions[:MAX_FIGURE_SONGS]
        if not preds:
            return None, None
        bars, bar_axes = plt.subplots(len(preds), 1, figsize=(5, 2.4 * len(preds)), layout="constrained", squeeze=False)
        line, line_axes = plt.subplots(len(preds), 1, figsize=(9, 3 * len(preds)), layout="constrained", squeeze=False)
        for p, a, b in zip(preds, bar_axes[:, 0], line_axes[:, 0]):
            plot_top_genres(p.proba, self.genres, top=5, title=f"{p.path.name}: top genres", ax=a)
            plot_timeline(
                p.starts,
                p.window_proba,
                self.genres,
                title=f"{p.path.name}: genre over time",
                window_seconds=p.window_seconds,
                ax=b,
            )
        plt.close(bars)
        plt.close(line)
        return bars, line

    def write(self, folder: Path) -> list[Path]:
        """The downloads: ``genrelib-results.csv`` and ``.json`` in ``folder``, the columns and fields of
        :data:`SAME_AS`; none without songs."""
        if not self.predictions:
            return []
        folder.mkdir(parents=True, exist_ok=True)
        kw = {"top_k": TOP_GENRES, "timeline": True, "top_tags": TOP_TAGS}
        csv, js = folder / "genrelib-results.csv", folder / "genrelib-results.json"
        csv_table(self.predictions, self.genres, **kw).to_csv(csv, index=False)
        js.write_text(jsonio.dumps(json_records(self.predictions, self.genres, **kw), indent=2))
        return [csv, js]


def classify(
    predictor: Predictor,
    uploads: list[tuple[Path, str]],
    *,
    max_seconds: float,
    progress: Callable[[float, str], None] | None = None,
) -> PageAnswer:
    """Classify uploaded songs; a song that cannot be classified is a line of :attr:`PageAnswer.failures` and the
    others are still classified.

    Parameters
    ----------
    predictor : Predictor
    uploads : list of (Path, str)
        Each upload's file (checked by :func:`check_upload`) and the name it was uploaded under.
    max_seconds : float
        Longest song accepted (its duration read from the header, before any decoding).
    progress : callable, optional
        Called with the fraction done (by seconds of audio) and a line saying where it is.
    """
    answer = PageAnswer(model=predictor.describe(), genres=predictor.genres)
    warning = predictor.demo_warning([f for f, _ in uploads])
    if warning:
        answer.notes.append(warning.removeprefix("warning: "))
    lengths: dict[Path, float] = {}
    for file, name in uploads:
        try:
            lengths[file] = audio.duration(file)
        except GenrelibError as exc:
            answer.failures.append(_said(exc, file, name))
        except OSError as exc:
            answer.failures.append(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})")
    total, done = sum(lengths.values()) or 1.0, 0.0
    for file, name in uploads:
        if file not in lengths:
            continue
        seconds = lengths[file]
        if seconds > max_seconds:
            answer.failures.append(
                f"{name}: {seconds / 60:.0f} min of audio, over this page's limit of {max_seconds / 60:g} min per "
                "song; classify it with genrelib predict (any length), or start the page with a larger --max-minutes"
            )
            continue

        def step(at: float, name=name, base=done, seconds=seconds) -> None:
            if progress is not None:
                progress(min(1.0, (base + at) / total), f"{name}: {min(at, seconds):.0f} of {seconds:.0f} s")

        step(0.0)
        try:
            pred = predictor.predict(file, on_window=step)
            answer.predictions.append(dataclasses.replace(pred, path=Path(name)))
            step(seconds)  # done (a last window too short to classify is not analysed, nor reported)
        except GenrelibError as exc:
            answer.failures.append(_said(exc, file, name))
        except Exception as exc:  # noqa: BLE001 - one song's bug must not cost the others; the log keeps the trace
            logger.exception("unexpected error while classifying %s", name)
            answer.failures.append(f"{name}: internal error ({type(exc).__name__}); the app's log has the details")
        done += seconds
    return answer
