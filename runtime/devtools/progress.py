"""Progress of a slow developer command (``local-kafka up``): phases with elapsed time.

Each phase is one line on stderr (``[  3.2 s] formatting the storage``), so logs and CI
show where the time went; on a terminal a running detail (artifacts fetched) rewrites
one line in place. stdout stays for the command's answer (and its ``--json``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Reports phases and, on a TTY, live details of the current phase."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._live = _isatty(stream)
        self._pending = 0  # width of a live line not yet ended

    def elapsed(self) -> float:
        """Seconds since this progress began."""
        return self._clock() - self._started

    def phase(self, text: str) -> None:
        """A new step: one line, kept."""
        self._end_live()
        self._stream.write(f"[{self.elapsed():5.1f} s] {text}\n")
        self._stream.flush()

    def detail(self, text: str) -> None:
        """How the current step is going: rewritten in place on a TTY, dropped elsewhere."""
        if not self._live:
            return
        line = f"[{self.elapsed():5.1f} s]   {text}"
        self._stream.write("\r" + line.ljust(self._pending))
        self._stream.flush()
        self._pending = len(line)

    def _end_live(self) -> None:
        if self._pending:
            self._stream.write("\n")
            self._pending = 0


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
