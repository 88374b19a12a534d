"""How far a read has got, for a person watching a terminal or reading a log.

Per space and overall: runs read of runs listed (the live ``count`` of the space's last response, or the
last load's count before its first response), share done, rate and time left. A space that is finished
counts as done whatever it read: an incremental night reads a few pages of a big space and is done.

On a terminal it is a live bar, redrawn at most every half second; anywhere else, ``key=value`` log lines
at most every few seconds, so a nightly log stays readable.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO

log = logging.getLogger(__name__)

LOG_EVERY_S = 5.0
BAR_EVERY_S = 0.5
BAR_WIDTH = 20


@dataclass
class SpaceProgress:
    listed: int | None  # None until known
    read: int = 0
    pages: int = 0
    started: bool = False
    done: bool = False

    @property
    def share(self) -> float:
        if self.done:
            return 1.0
        if not self.listed:
            return 0.0
        # Never 100% before the space says it is finished: pages may still come (drift, open runs).
        return min(self.read / self.listed, 0.99)


class Progress:
    """Fed with every page and every finished space by the thread that reads them, and nothing else."""

    def __init__(
        self,
        spaces: dict[str, int | None],
        stream: TextIO | None = None,
        live: bool | None = None,
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``spaces``: each space's token and its runs listed at the last load (None when unknown)."""
        self.stream = stream or sys.stderr
        self.live = _is_terminal(self.stream) if live is None else live
        self.every_s = every_s if every_s is not None else (BAR_EVERY_S if self.live else LOG_EVERY_S)
        self.clock = clock
        self.started_at = clock()
        self.spaces = {token: SpaceProgress(listed) for token, listed in spaces.items()}
        self._last_shown: float | None = None if self.live else self.started_at
        self._bar_shown = False
        self._erase_filter = _EraseBarBeforeLogging(self) if self.live else None
        if self._erase_filter is not None:
            for handler in logging.getLogger().handlers:
                handler.addFilter(self._erase_filter)

    def page(self, space_token: str, served: int, count: int) -> None:
        space = self.spaces[space_token]
        space.started = True
        space.read += served
        space.pages += 1
        space.listed = count
        self._maybe_show()

    def space_done(self, space_token: str) -> None:
        """The space finished, loaded or failed: it has nothing left to read tonight."""
        space = self.spaces[space_token]
        space.done = True
        if space.listed is None:
            space.listed = space.read
        self._maybe_show()

    def close(self) -> None:
        if self._erase_filter is not None:
            for handler in logging.getLogger().handlers:
                handler.removeFilter(self._erase_filter)
        self.erase()

    # What is shown

    @property
    def runs_read(self) -> int:
        return sum(space.read for space in self.spaces.values())

    @property
    def runs_listed(self) -> int:
        return sum(space.listed or 0 for space in self.spaces.values())

    @property
    def share(self) -> float:
        """Weighted by runs listed; a space whose size is not known yet weighs as much as an average one."""
        known = [space.listed for space in self.spaces.values() if space.listed]
        average = sum(known) / len(known) if known else 1
        weights = {token: average if space.listed is None else space.listed for token, space in self.spaces.items()}
        total = sum(weights.values())
        if not total:
            return 1.0 if all(space.done for space in self.spaces.values()) else 0.0
        return sum(weights[token] * space.share for token, space in self.spaces.items()) / total

    def seconds_left(self) -> float | None:
        share, elapsed = self.share, self.clock() - self.started_at
        if share <= 0 or elapsed <= 0:
            return None
        return elapsed * (1 - share) / share

    def rate(self) -> float:
        elapsed = self.clock() - self.started_at
        return self.runs_read / elapsed if elapsed > 0 else 0.0

    def log_lines(self) -> list[str]:
        done = sum(space.done for space in self.spaces.values())
        left = self.seconds_left()
        lines = [
            f"event=progress spaces_done={done}/{len(self.spaces)} runs_read={self.runs_read} "
            f"runs_listed={self.runs_listed} done_pct={100 * self.share:.1f} rate_runs_s={self.rate():.0f} "
            f"eta_s={'unknown' if left is None else f'{left:.0f}'}"
        ]
        for token, space in self.spaces.items():
            if space.started and not space.done:
                lines.append(
                    f"event=progress_space space={token} runs_read={space.read} runs_listed={space.listed} "
                    f"done_pct={100 * space.share:.1f} pages={space.pages}"
                )
        return lines

    def bar(self, width: int) -> str:
        share = self.share
        filled = int(share * BAR_WIDTH)
        done = sum(space.done for space in self.spaces.values())
        left = self.seconds_left()
        reading = ", ".join(
            f"{token[:8]} {100 * space.share:.0f}%"
            for token, space in self.spaces.items() if space.started and not space.done
        )
        text = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {100 * share:3.0f}% {self.runs_read:,}/"
            f"{self.runs_listed:,} runs, {done}/{len(self.spaces)} spaces, {self.rate():,.0f} runs/s, "
            f"{_duration(left)} left" + (f", reading {reading}" if reading else "")
        )
        return text[: max(10, width - 1)]

    def _maybe_show(self) -> None:
        now = self.clock()
        if self._last_shown is not None and now - self._last_shown < self.every_s:
            return
        self._last_shown = now
        if self.live:
            self.stream.write("\r\x1b[K" + self.bar(_columns(self.stream)))
            self.stream.flush()
            self._bar_shown = True
        else:
            for line in self.log_lines():
                log.info(line)

    def erase(self) -> None:
        if self._bar_shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._bar_shown = False


class _EraseBarBeforeLogging(logging.Filter):
    """A log line written over the bar would start mid-line: erase the bar first; the next page redraws it."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        self.progress.erase()
        return True


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream: TextIO) -> int:
    """The width of the terminal the bar is drawn on; a terminal that reports none gets a common 80."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = shutil.get_terminal_size().columns
    return columns if columns >= 40 else 80


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
