"""What the terminal can show: its width, and whether to colour (a TTY without NO_COLOR).

Plain ANSI codes, no library: the doctor and status only colour a status word, and the
poller's image stays free of a terminal toolkit. JSON output never goes through here.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from enum import StrEnum
from typing import TextIO

__all__ = ["Colour", "Painter", "painter_for", "width_of"]

FALLBACK_WIDTH = 100
"""Columns assumed when the output is not a terminal (a pipe, a file, CI)."""


class Colour(StrEnum):
    """The SGR codes used."""

    GREEN = "32"
    YELLOW = "33"
    RED = "31"
    DIM = "2"
    BOLD = "1"


class Painter:
    """Wraps text in colour codes, or returns it unchanged when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, colour: Colour) -> str:
        """``text`` in ``colour`` (the visible width stays ``len(text)``)."""
        return f"\033[{colour.value}m{text}\033[0m" if self.enabled and text else text


def painter_for(stream: TextIO, env: Mapping[str, str] | None = None) -> Painter:
    """Colour for a TTY, unless ``NO_COLOR`` is set (no-color.org) or ``TERM=dumb``."""
    env = os.environ if env is None else env
    wanted = not env.get("NO_COLOR") and env.get("TERM") != "dumb"
    return Painter(wanted and _isatty(stream))


def width_of(stream: TextIO) -> int:
    """The terminal's columns when ``stream`` is one (``COLUMNS`` wins), else 100."""
    if not _isatty(stream):
        return int(os.environ.get("COLUMNS", "0") or 0) or FALLBACK_WIDTH
    return shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or exotic stream
        return False
