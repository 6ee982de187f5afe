"""The toolkit the mapping rules are written with: problems, and typed checks.

Checks report into one list instead of raising, so a user sees every problem of a
definition at once. Each check first asks whether the value is unresolved (a CDK
token at synth time) and then leaves it alone.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

_REPR_LIMIT: Final = 120
ROOT: Final = "(mapping)"
"""The field name used for the document itself."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One broken rule: the field's path, its value and the rule it broke."""

    field: str
    value: Any
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {short_repr(self.value)} {self.rule}"


class MappingValidationError(ValueError):
    """A mapping definition broke one or more rules; ``problems`` lists them all."""

    def __init__(self, problems: Collection[FieldProblem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        count = len(self.problems)
        plural = "" if count == 1 else "s"
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid event source mapping{where} ({count} problem{plural}):\n{lines}")


class _Missing:
    """An absent field; prints as ``<missing>`` in messages."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()


def short_repr(value: Any) -> str:
    """``repr`` cut to a readable length, so one huge value cannot flood a message."""
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def never_unresolved(_value: Any) -> bool:
    """The default predicate: outside the CDK every value is concrete."""
    return False


def join(path: str, key: str) -> str:
    """The dotted path of ``key`` inside the object at ``path``."""
    return key if path in ("", ROOT) else f"{path}.{key}"


def unknown_field_rule(key: str, known: Collection[str]) -> str:
    """The rule for an unknown key, with a "did you mean" when a known key is close."""
    rule = "is not a field of CreateEventSourceMapping for a self-managed Kafka source"
    return rule + _suggestion(key, known)


def _suggestion(word: str, choices: Collection[str]) -> str:
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


@dataclass(frozen=True, slots=True)
class Text:
    """What a string field must look like: its length and, optionally, its pattern."""

    low: int
    high: int
    pattern: re.Pattern[str] | None = None
    rule: str = ""


_E = TypeVar("_E", bound=StrEnum)


class Checker:
    """Collects problems; each check returns the value when it is concrete and valid."""

    def __init__(self, is_unresolved: Callable[[Any], bool]) -> None:
        self.problems: list[FieldProblem] = []
        self._is_unresolved = is_unresolved

    def fail(self, field: str, value: Any, rule: str) -> None:
        self.problems.append(FieldProblem(field, value, rule))

    def skip(self, value: Any) -> bool:
        """Whether to leave ``value`` alone: it is absent or not resolved yet."""
        return value is MISSING or bool(self._is_unresolved(value))

    def required(self, doc: Mapping[str, Any] | None, path: str, key: str) -> Any:
        """The value at ``key`` of the object at ``path``, reporting it when absent."""
        if doc is None:
            return MISSING
        value = doc.get(key, MISSING)
        if value is MISSING:
            self.fail(join(path, key), MISSING, "is required")
        return value

    def obj(
        self,
        path: str,
        value: Any,
        known: Collection[str] | None,
        other: Mapping[str, str] | None = None,
    ) -> Mapping[str, Any] | None:
        """The object at ``path``; keys not in ``known`` (``None``: any key) are reported,
        with the reason from ``other`` when it names them."""
        if self.skip(value):
            return None
        if not isinstance(value, Mapping):
            self.fail(path, value, "must be a JSON object")
            return None
        for key, item in value.items():
            if known is not None and key not in known:
                rule = (other or {}).get(key) or unknown_field_rule(str(key), known)
                self.fail(join(path, str(key)), item, rule)
        return value

    def array(self, path: str, value: Any, low: int, high: int, what: str) -> list[Any] | None:
        """The list at ``path`` with ``low``-``high`` items; a repeat is reported at its index."""
        if self.skip(value):
            return None
        if not isinstance(value, list):
            self.fail(path, value, "must be a JSON array")
            return None
        if not low <= len(value) <= high:
            span = f"exactly {low}" if low == high else f"{low}-{high}"
            self.fail(path, value, f"must hold {span} {what} (has {len(value)})")
        for index, item in enumerate(value):
            first = value.index(item)
            if first < index and not self.skip(item):
                self.fail(f"{path}[{index}]", item, f"repeats {path}[{first}]")
        return value

    def text(self, path: str, value: Any, spec: Text) -> str | None:
        """A string of the length ``spec`` allows, fully matching its pattern."""
        if self.skip(value):
            return None
        if not isinstance(value, str):
            self.fail(path, value, "must be a string")
        elif not spec.low <= len(value) <= spec.high:
            span = f"{spec.low}-{spec.high}" if spec.low < spec.high else str(spec.low)
            self.fail(path, value, f"must be {span} characters long (is {len(value)})")
        elif spec.pattern is not None and spec.pattern.fullmatch(value) is None:
            self.fail(path, value, spec.rule)
        else:
            return value
        return None

    def integer(self, path: str, value: Any, low: int, high: int, rule: str = "") -> int | None:
        """An integer in ``low``..``high``; JSON booleans and fractions are refused."""
        if self.skip(value):
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, value, "must be an integer")
        elif not low <= value <= high:
            self.fail(path, value, rule or f"must be an integer from {low} to {high}")
        else:
            return value
        return None

    def boolean(self, path: str, value: Any) -> bool | None:
        if self.skip(value):
            return None
        if isinstance(value, bool):
            return value
        self.fail(path, value, "must be true or false")
        return None

    def enum(self, path: str, value: Any, kind: type[_E]) -> _E | None:
        """A member of ``kind``, spelled exactly as AWS spells it."""
        if self.skip(value):
            return None
        allowed = [member.value for member in kind]
        if isinstance(value, str) and value in allowed:
            return kind(value)
        hint = _suggestion(value, allowed) if isinstance(value, str) else ""
        self.fail(path, value, f"must be one of {', '.join(allowed)}{hint}")
        return None
