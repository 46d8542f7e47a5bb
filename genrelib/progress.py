"""Progress of a loop over many files: a tqdm bar on a terminal, log lines everywhere else.

A bar drawn with carriage returns is useless in a log file (``genrelib features DATA 2>log`` wrote nothing until
the end), so a loop that is not given a bar logs a line on the ``genrelib.progress`` logger at INFO every tenth of
the work or every ``seconds``, whichever comes first, and one at the end. The library only logs; the CLI shows
these lines when stderr is not a terminal (:func:`genrelib.cli.main`).
"""

from __future__ import annotations

import logging
import math
import time

#: The logger of progress lines; the CLI gives it a handler when stderr is not a terminal.
logger = logging.getLogger("genrelib.progress")


class Progress:
    """Count the files a loop has finished; draw a bar or log progress lines.

    Parameters
    ----------
    total : int
        Files the loop will finish.
    desc : str
        What is being done, first on every line (``"mfcc features"``).
    bar : bool
        Draw a tqdm bar (on stderr) instead of logging lines.
    unit : str
        What is counted, plural (``"files"``).
    seconds : float
        Log at least this often (when files finish at all).
    steps : int
        Log each time another ``1/steps`` of the work is done.

    Examples
    --------
    >>> p = Progress(1000, "mfcc features", bar=False)
    >>> p.update(120, skipped=3)  # logs "mfcc features: 120/1000 files (12%), 3 skipped, 45 s" when due
    >>> p.close()                 # logs the last line
    """

    def __init__(
        self, total: int, desc: str, *, bar: bool, unit: str = "files", seconds: float = 10.0, steps: int = 10
    ):
        self.total, self.desc, self.unit, self.seconds = total, desc, unit, seconds
        self.done = self.skipped = 0
        self._step = max(1, math.ceil(total / steps))
        self._next = self._step
        self._start = self._last = time.monotonic()
        self._bar = None
        self._closed = False
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit.rstrip("s") or unit)

    def update(self, n: int = 1, *, skipped: int | None = None) -> None:
        """Count ``n`` more finished files; ``skipped``: how many of all finished so far were skipped."""
        self.done += n
        if skipped is not None:
            self.skipped = skipped
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if self.done >= self._next or now - self._last >= self.seconds:
            if self.done < self.total:  # the last line comes from close()
                self._log(now)
            while self._next <= self.done:
                self._next += self._step

    def close(self) -> None:
        """Close the bar, or log the last line (once)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        else:
            self._log(time.monotonic())

    def _log(self, now: float) -> None:
        self._last = now
        percent = 100 * self.done // self.total if self.total else 100
        logger.info(
            "%s: %d/%d %s (%d%%), %d skipped, %.0f s",
            self.desc,
            self.done,
            self.total,
            self.unit,
            percent,
            self.skipped,
            now - self._start,
        )
