"""A tiny progress bar on stderr (standard library only) for rebuilds and catch-ups.

On a terminal it redraws one line (``\\r``) at most ten times a second; into a file
or a pipe it writes a plain line every 10 %, so logs stay readable.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60:d}:{seconds % 60:02d}"


class ProgressBar:
    """``label [#####.....]  45%  12,345/27,000 events  3,456/s  ETA 0:04``."""

    def __init__(self, total: int, *, label: str = "", unit: str = "events", stream: TextIO | None = None,
                 width: int = 30, enabled: bool = True) -> None:
        self.total = max(0, int(total))
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next_tenth = 1

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def relabel(self, label: str) -> None:
        self.label = label
        self._draw(force=True)

    def text(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = min(1.0, self.done / self.total)
            filled = int(share * self.width)
            eta = _duration((self.total - self.done) / rate) if rate > 0 and self.done < self.total else "0:00"
            return (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {share * 100:3.0f}%  "
                    f"{self.done:,}/{self.total:,} {self.unit}  {rate:,.0f}/s  ETA {eta}").strip()
        return f"{self.label} {self.done:,} {self.unit}  {rate:,.0f}/s".strip()

    def _draw(self, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._tty:
            if force or now - self._drawn >= 0.1:
                self.stream.write("\r\x1b[K" + self.text())
                self.stream.flush()
                self._drawn = now
        elif self.total and self.done * 10 >= self._next_tenth * self.total:
            self._next_tenth = self.done * 10 // self.total + 1
            self.stream.write(self.text() + "\n")
            self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._tty:
            self.stream.write("\r\x1b[K" + self.text() + "\n")
        elif self._next_tenth <= 10 or not self.total:
            self.stream.write(self.text() + "\n")
        self.stream.flush()


__all__ = ["ProgressBar"]
