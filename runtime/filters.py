"""Lambda's event filtering grammar (stub: being written; interface is fixed)."""

from __future__ import annotations


class FilterPatternError(ValueError):
    """A filter pattern breaks Lambda's grammar; ``path`` points at the faulty part."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


def validate_pattern(pattern: str) -> None:
    """Raise FilterPatternError when ``pattern`` (a JSON string) is not a valid filter."""
