"""librdkafka's repeated complaints, said once: one line per distinct error per interval.

An unreachable broker makes librdkafka report the same refusal several times a second;
logging each drowns everything else. The first occurrence of an error is logged at once;
repeats within the interval are counted, and the next line about it says how many there
were. The PollingErrorCount metric still counts every one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RepeatFilter", "RepeatLimiter"]

DEFAULT_INTERVAL_S = 30.0

# Parts of librdkafka's messages that change between repeats of one error.
_VARYING = re.compile(r" \(after \d+ms in state \w+[^)]*\)|, \d+ identical error\(s\) suppressed")


@dataclass
class _Seen:
    since: float
    repeats: int = 0


class _Window:
    """Which texts were said within the interval, and how often they were held back."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._seen: dict[tuple[object, str], _Seen] = {}

    def admit(self, kind: object, text: str) -> str | None:
        """The line to log for ``text`` now (with the count of held-back repeats), or None."""
        key = (kind, _VARYING.sub("", text))
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.since < self._interval_s:
            seen.repeats += 1
            return None
        message = key[1]
        if seen is not None and seen.repeats:
            message += f" (repeated {seen.repeats} more time(s) in {self._interval_s:.0f} s)"
        self._seen[key] = _Seen(now)
        return message


class RepeatLimiter:
    """Logs ``warning(code, text)`` once per distinct error per ``interval_s``."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._window = _Window(interval_s, clock)

    def warning(self, code: str, text: str, **extra: Any) -> bool:
        """Log ``text`` unless the same error was logged within the interval; True if logged."""
        message = self._window.admit(code, text)
        if message is None:
            return False
        self._log.warning("%s", message, extra={"code": code, **extra})
        return True


class RepeatFilter(logging.Filter):
    """The same limit for a logger librdkafka writes to itself (``"logger"`` setting)."""

    def __init__(
        self, *, interval_s: float = DEFAULT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._window = _Window(interval_s, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop a repeat within the interval; the next line says how many were dropped."""
        message = self._window.admit(record.levelno, record.getMessage())
        if message is None:
            return False
        record.msg, record.args = message, None
        return True
