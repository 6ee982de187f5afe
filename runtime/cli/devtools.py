"""Commands backed by :mod:`runtime.devtools`, which the container image leaves out.

Where the package is missing, the command still parses its arguments and then says how
to get it, instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

MISSING_EXIT = 2
_HINT = (
    "kafka-esm {command}: the development tools (runtime.devtools) are not part of this "
    "install; the container image leaves them out. Install the project from a checkout: "
    "pip install -e '.[dev]'"
)


class Missing:
    """Stands in for a devtools command module that this install lacks."""

    def __init__(self, command: str) -> None:
        self._command = command

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Accept any arguments, so that the error below is what the user sees."""
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(self, args: argparse.Namespace) -> int:
        """Say how to get the tools."""
        print(_HINT.format(command=self._command), file=sys.stderr)
        return MISSING_EXIT


def load(module: str, command: str) -> ModuleType | Missing:
    """``runtime.devtools.<module>``, or a stand-in that explains its absence."""
    try:
        return importlib.import_module(f"runtime.devtools.{module}")
    except ModuleNotFoundError as missing:
        if missing.name is None or not missing.name.startswith("runtime.devtools"):
            raise  # a broken install of something else: not ours to hide
        return Missing(command)
