"""Lambda's event filtering grammar for Kafka records: validate a pattern, match a value.

Lambda filters with EventBridge's pattern syntax ("Control which events Lambda sends
to your function"), and for Amazon MSK and self-managed Kafka only the record's
``value`` can be filtered ("Filtering events from Amazon MSK and self-managed Apache
Kafka event sources"). One grammar serves both halves of the project: the CDK
constructs call :func:`validate_pattern` at synth time, the poller calls
:func:`compile_filters` once and then :meth:`RecordFilter.matches` per record.

How a record's value is seen by a pattern (the Kafka page's format table):

* Lambda decodes the bytes as UTF-8. A JSON object is matched field by field by an
  object pattern (``{"value": {"device_ID": [...]}}``); anything else, including
  JSON scalars and arrays, is a plain string matched by a rule list
  (``{"value": [{"anything-but": ["error"]}]}``).
* When the formats differ (plain string against an object pattern, JSON object
  against a rule list), Lambda "processes metadata filters only"; Kafka has no
  filterable metadata, so the ``value`` criterion is not met and the record is
  dropped, as "Lambda drops messages that don't match all fields included in the
  filter" says.
* A value that is not UTF-8, and a tombstone (null value), has no ``value`` field at
  all: only ``{"value": [{"exists": false}]}`` matches it.

Operators are those of Lambda's operator table (null, empty, equals,
equals-ignore-case, $or, anything-but, numeric, exists, prefix, suffix) plus the
EventBridge forms Pipes also accept (anything-but of one value, prefix/suffix with
equals-ignore-case). EventBridge-bus-only operators (wildcard, cidr, anything-but
with prefix/suffix/equals-ignore-case/wildcard) are refused. Exact numbers compare
by spelling (300, 300.0 and 3.0e2 differ), ``numeric`` compares values, and
ignore-case compares Unicode case folds.

Several filters are ORed; a record passes when any filter matches, and every
record passes when there is no filter.
"""

from __future__ import annotations

import difflib
import json
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from runtime.records import Record

#: Longest ``Filter.Pattern`` the Lambda API accepts (CreateEventSourceMapping).
MAX_PATTERN_LENGTH: Final = 4096
#: Filters per event source mapping under the default quota.
MAX_FILTERS: Final = 5
#: Filters per event source mapping after the largest quota increase AWS grants.
MAX_FILTERS_WITH_QUOTA_INCREASE: Final = 10
#: The only record field a Kafka mapping can filter on.
VALUE_KEY: Final = "value"
#: Deepest object nesting this implementation evaluates. AWS documents no such limit
#: (4096 characters allow ~800 levels); real patterns stay far below it, and the guard
#: keeps matching clear of Python's recursion limit.
MAX_NESTING_DEPTH: Final = 100

_OR_KEY: Final = "$or"
_NUMERIC_OPS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LOWER_OPS: Final = (">", ">=")
_UPPER_OPS: Final = ("<", "<=")
_UNSUPPORTED_OPERATORS: Final = ("wildcard", "cidr")
_UNSUPPORTED_ANYTHING_BUT: Final = ("prefix", "suffix", "equals-ignore-case", "wildcard")
_OBJECT_START: Final = re.compile(r"[ \t\n\r]*\{")


class FilterPatternError(ValueError):
    """A filter pattern breaks Lambda's grammar; ``path`` points at the faulty part."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


class _Absent:
    """The field is not in the record (unlike JSON ``null``, which is a value)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Final = _Absent()
_NO_FIELDS: Final[dict[str, Any]] = {}


class _JsonFloat(float):
    """A float that keeps its JSON spelling: Lambda compares numbers by their text."""

    __slots__ = ("text",)

    text: str

    def __new__(cls, text: str) -> _JsonFloat:
        number = super().__new__(cls, text)
        number.text = text
        return number


class _NonFiniteNumber(ValueError):
    """``NaN``/``Infinity``: Python's json accepts them, JSON does not."""


def _reject_constant(token: str) -> Any:
    raise _NonFiniteNumber(f"{token} is not a JSON number")


def _loads_exact(text: str) -> Any:
    return json.loads(text, parse_float=_JsonFloat, parse_constant=_reject_constant)


def _loads_fast(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


Predicate = Callable[[Any], bool]
"""Tests one present scalar value (str, number, bool or None)."""
NodeMatcher = Callable[[Any], bool]
"""Tests the node at a pattern's position: a JSON value, or ``ABSENT``."""


# --------------------------------------------------------------------------- public API


class RecordFilter:
    """Compiled filters. Build once with :func:`compile_filters`; match per record."""

    __slots__ = ("_loads", "_matchers", "patterns")

    def __init__(
        self, patterns: tuple[str, ...], matchers: tuple[NodeMatcher, ...], exact_floats: bool
    ) -> None:
        self.patterns = patterns
        self._matchers = matchers
        # Keeping float spellings costs a Python call per float; pay it only when a
        # pattern compares a float literal exactly.
        self._loads = _loads_exact if exact_floats else _loads_fast

    def __len__(self) -> int:
        return len(self._matchers)

    def matches(self, value: bytes | None) -> bool:
        """True when any filter matches ``value`` (always true without filters)."""
        if not self._matchers:
            return True
        document = decode_value(value, self._loads)
        # Hot path: plain loops here and below skip a generator frame per call.
        for match in self._matchers:  # noqa: SIM110
            if match(document):
                return True
        return False

    def matches_record(self, record: Record) -> bool:
        """:meth:`matches` on the record's value: Kafka filters see nothing else."""
        return self.matches(record.value)


def validate_pattern(pattern: str) -> None:
    """Raise FilterPatternError when ``pattern`` (a JSON string) is not a valid filter."""
    _Compiler().compile(pattern)


def compile_filters(patterns: Iterable[str]) -> RecordFilter:
    """Validate and compile filter patterns; errors name the filter as ``Filters[i].Pattern``.

    The number of filters is the mapping's concern (see ``MAX_FILTERS``), not checked here.
    """
    compiler = _Compiler()
    texts = tuple(patterns)
    matchers = []
    for index, pattern in enumerate(texts):
        try:
            matchers.append(compiler.compile(pattern))
        except FilterPatternError as exc:
            prefix = f"Filters[{index}].Pattern"
            path = _join(prefix, exc.path) if exc.path else prefix
            raise FilterPatternError(exc.reason, path) from None
    return RecordFilter(texts, tuple(matchers), compiler.exact_floats)


def decode_value(value: bytes | None, loads: Callable[[str], Any] = _loads_fast) -> Any:
    """What a pattern's ``value`` sees: a dict (JSON object), a str, or ``ABSENT``."""
    if value is None:
        return ABSENT
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return ABSENT
    if _OBJECT_START.match(text) is None:
        return text
    try:
        return loads(text)  # text opens with "{", so whatever parses is an object
    except (ValueError, RecursionError):
        return text


# --------------------------------------------------------------------------- compiling


class _Compiler:
    """Validates a pattern while turning it into closures, so both share one grammar."""

    def __init__(self) -> None:
        self.exact_floats = False

    def compile(self, pattern: str) -> NodeMatcher:
        document = _parse(pattern)
        _check_depth(document)
        return self._top(document, "")

    def _top(self, pattern: Any, path: str) -> NodeMatcher:
        fields = _require_object(pattern, path, "pattern")
        parts: list[NodeMatcher] = []
        for key, sub in fields.items():
            sub_path = _join(path, key)
            if key == _OR_KEY:
                parts.append(self._or(sub, sub_path, self._top))
            elif key == VALUE_KEY:
                parts.append(self._value(sub, sub_path))
            else:
                raise FilterPatternError(
                    f"Kafka event source mappings filter only on {VALUE_KEY!r}; "
                    f"field {_name(key)} cannot be filtered",
                    sub_path,
                )
        return _all_of(tuple(parts))

    def _value(self, sub: Any, path: str) -> NodeMatcher:
        """The format check of the Kafka page: object patterns need JSON, rules need text."""
        if isinstance(sub, dict):
            fields = self._object(sub, path)
            return lambda document: type(document) is dict and fields(document)
        if isinstance(sub, list):
            rules = self._leaf(sub, path)
            return lambda document: type(document) is not dict and rules(document)
        raise FilterPatternError(_leaf_reason(sub), path)

    def _object(self, pattern: Any, path: str) -> NodeMatcher:
        fields = _require_object(pattern, path, "object")
        checks: list[tuple[str, NodeMatcher]] = []
        alternatives: list[NodeMatcher] = []
        for key, sub in fields.items():
            sub_path = _join(path, key)
            if key == _OR_KEY:
                alternatives.append(self._or(sub, sub_path, self._object))
            elif isinstance(sub, dict):
                checks.append((key, self._object(sub, sub_path)))
            elif isinstance(sub, list):
                checks.append((key, self._leaf(sub, sub_path)))
            else:
                raise FilterPatternError(_leaf_reason(sub), sub_path)
        return _object_matcher(tuple(checks), tuple(alternatives))

    def _or(
        self, sub: Any, path: str, compile_alternative: Callable[[Any, str], NodeMatcher]
    ) -> NodeMatcher:
        if not isinstance(sub, list) or len(sub) < 2:
            raise FilterPatternError(
                f"$or must be an array of at least two pattern objects, got {_show(sub)}", path
            )
        options = tuple(compile_alternative(item, _index(path, i)) for i, item in enumerate(sub))
        return lambda node: any(option(node) for option in options)

    def _leaf(self, rules: list[Any], path: str) -> NodeMatcher:
        if not rules:
            raise FilterPatternError(
                "a rule list must not be empty (use [null] to match a null value)", path
            )
        leaf = _Leaf()
        for i, rule in enumerate(rules):
            self._rule(leaf, rule, _index(path, i))
        return leaf.build()

    def _rule(self, leaf: _Leaf, rule: Any, path: str) -> None:
        if isinstance(rule, dict):
            self._operator(leaf, rule, path)
        elif isinstance(rule, list):
            raise FilterPatternError(
                "rules must be literals or operator objects; arrays cannot nest", path
            )
        else:
            if isinstance(rule, _JsonFloat):
                self.exact_floats = True
            leaf.add_literal(rule)

    def _operator(self, leaf: _Leaf, rule: dict[str, Any], path: str) -> None:
        if len(rule) != 1:
            names = ", ".join(_name(name) for name in rule) or "none"
            raise FilterPatternError(
                f"an operator object must have exactly one key, got {len(rule)}: {names}", path
            )
        ((name, argument),) = rule.items()
        sub_path = _join(path, name)
        if name == "exists":
            leaf.add_exists(_exists(argument, sub_path))
            return
        build = _OPERATORS.get(name)
        if build is not None:
            leaf.add_predicate(build(argument, sub_path))
            return
        raise FilterPatternError(_unknown_operator_reason(name), sub_path)


class _Leaf:
    """A rule list: literals go to hashed sets, operators to predicates, tried in turn."""

    def __init__(self) -> None:
        self.strings: set[str] = set()
        self.ints: set[int] = set()
        self.float_texts: set[str] = set()
        self.bools: set[bool] = set()
        self.null = False
        self.exists_true = False
        self.exists_false = False
        self.predicates: list[Predicate] = []

    def add_literal(self, rule: Any) -> None:
        if rule is None:
            self.null = True
        elif isinstance(rule, bool):
            self.bools.add(rule)
        elif isinstance(rule, str):
            self.strings.add(rule)
        elif isinstance(rule, _JsonFloat):
            self.float_texts.add(rule.text)
        else:
            self.ints.add(rule)

    def add_exists(self, exists: bool) -> None:
        if exists:
            self.exists_true = True
        else:
            self.exists_false = True

    def add_predicate(self, predicate: Predicate) -> None:
        self.predicates.append(predicate)

    def build(self) -> NodeMatcher:
        strings, ints, float_texts = frozenset(self.strings), frozenset(self.ints), None
        if self.float_texts:
            float_texts = frozenset(self.float_texts)
        bools, null, any_value = frozenset(self.bools), self.null, self.exists_true
        predicates, when_absent = tuple(self.predicates), self.exists_false

        def value_matches(value: Any) -> bool:
            kind = type(value)
            if kind is str:
                if value in strings:
                    return True
            elif kind is bool:
                if value in bools:
                    return True
            elif kind is int:
                if value in ints:
                    return True
            elif value is None:
                if null:
                    return True
            elif float_texts is not None and getattr(value, "text", None) in float_texts:
                return True
            if any_value:
                return True
            for predicate in predicates:  # noqa: SIM110
                if predicate(value):
                    return True
            return False

        def leaf(node: Any) -> bool:
            kind = type(node)
            if kind is not list and kind is not dict and node is not ABSENT:
                return value_matches(node)  # the common case: one scalar
            values = _leaf_values(node)
            if not values:
                return when_absent
            return any(value_matches(value) for value in values)

        return leaf


# --------------------------------------------------------------------------- operators


def _exists(argument: Any, path: str) -> bool:
    if not isinstance(argument, bool):
        raise FilterPatternError(f"exists must be true or false, got {_show(argument)}", path)
    return argument


def _equals_ignore_case(argument: Any, path: str) -> Predicate:
    wanted = _require_string(argument, path, "equals-ignore-case").casefold()
    return lambda value: type(value) is str and value.casefold() == wanted


def _prefix(argument: Any, path: str) -> Predicate:
    text, ignore_case = _affix_argument(argument, path, "prefix")
    if ignore_case:
        return lambda value: type(value) is str and value.casefold().startswith(text)
    return lambda value: type(value) is str and value.startswith(text)


def _suffix(argument: Any, path: str) -> Predicate:
    text, ignore_case = _affix_argument(argument, path, "suffix")
    if ignore_case:
        return lambda value: type(value) is str and value.casefold().endswith(text)
    return lambda value: type(value) is str and value.endswith(text)


def _affix_argument(argument: Any, path: str, name: str) -> tuple[str, bool]:
    """``"us-"`` or ``{"equals-ignore-case": "us-"}`` (EventBridge; Pipes support it too)."""
    if isinstance(argument, str):
        return argument, False
    if isinstance(argument, dict) and list(argument) == ["equals-ignore-case"]:
        inner = _join(path, "equals-ignore-case")
        return _require_string(argument["equals-ignore-case"], inner, name).casefold(), True
    raise FilterPatternError(
        f'{name} needs a string or {{"equals-ignore-case": string}}, got {_show(argument)}', path
    )


def _anything_but(argument: Any, path: str) -> Predicate:
    if isinstance(argument, dict):
        raise FilterPatternError(_anything_but_object_reason(argument), path)
    excluded = argument if isinstance(argument, list) else [argument]
    if not excluded:
        raise FilterPatternError("anything-but needs at least one value", path)
    same_kind: Callable[[Any], bool] = _is_string if isinstance(excluded[0], str) else _is_number
    for i, item in enumerate(excluded):
        if not same_kind(item):
            where = _index(path, i) if isinstance(argument, list) else path
            raise FilterPatternError(
                "anything-but takes a string, a number, or a list of only strings or only "
                f"numbers; got {_show(item)}",
                where,
            )
    values = frozenset(excluded)
    # A value of the other type (or true/false/null) is never among the excluded ones.
    return lambda value: not same_kind(value) or value not in values


def _anything_but_object_reason(argument: dict[str, Any]) -> str:
    names = [name for name in argument if name in _UNSUPPORTED_ANYTHING_BUT]
    if names:
        return (
            f"anything-but with {names[0]!r} works on EventBridge event buses only; "
            "Lambda event filtering supports anything-but with a value or a list of values"
        )
    return f"anything-but takes a string, a number, or a list of them, got {_show(argument)}"


def _numeric(argument: Any, path: str) -> Predicate:
    if not isinstance(argument, list) or len(argument) not in (2, 4):
        raise FilterPatternError(
            'numeric needs ["<op>", number] or [">"|">=", low, "<"|"<=", high], '
            f"got {_show(argument)}",
            path,
        )
    for i in range(0, len(argument), 2):
        _numeric_term(argument, i, path)
    if len(argument) == 4:
        _numeric_range(argument, path)
    pairs = tuple((_NUMERIC_OPS[argument[i]], argument[i + 1]) for i in range(0, len(argument), 2))
    return lambda value: _is_number(value) and all(test(value, bound) for test, bound in pairs)


def _numeric_term(argument: list[Any], i: int, path: str) -> None:
    op, bound = argument[i], argument[i + 1]
    if not isinstance(op, str) or op not in _NUMERIC_OPS:
        raise FilterPatternError(
            f"numeric operator must be one of =, <, <=, >, >=; got {_show(op)}", _index(path, i)
        )
    if not _is_number(bound):
        raise FilterPatternError(
            f"numeric bound must be a JSON number, got {_show(bound)}", _index(path, i + 1)
        )


def _numeric_range(argument: list[Any], path: str) -> None:
    if argument[0] not in _LOWER_OPS:
        raise FilterPatternError(
            f"numeric range must start with a lower bound ('>' or '>='), got {_show(argument[0])}",
            _index(path, 0),
        )
    if argument[2] not in _UPPER_OPS:
        raise FilterPatternError(
            f"numeric range must end with an upper bound ('<' or '<='), got {_show(argument[2])}",
            _index(path, 2),
        )
    if not argument[1] < argument[3]:
        raise FilterPatternError(
            f"numeric range lower bound {_show(argument[1])} must be less than "
            f"upper bound {_show(argument[3])}",
            _index(path, 3),
        )


_OPERATORS: Final[dict[str, Callable[[Any, str], Predicate]]] = {
    "equals-ignore-case": _equals_ignore_case,
    "prefix": _prefix,
    "suffix": _suffix,
    "anything-but": _anything_but,
    "numeric": _numeric,
}


def _unknown_operator_reason(name: str) -> str:
    if name in _UNSUPPORTED_OPERATORS:
        return (
            f"operator {name!r} works on EventBridge event buses only; "
            "Lambda event filtering does not support it"
        )
    known = [*_OPERATORS, "exists"]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(known))}"
    return f"unknown operator {_name(name)}{hint}"


# --------------------------------------------------------------------------- matching


def _object_matcher(
    checks: tuple[tuple[str, NodeMatcher], ...], alternatives: tuple[NodeMatcher, ...]
) -> NodeMatcher:
    """Fields are ANDed; over an array of objects one element must match them all."""

    def fields_match(node: dict[str, Any]) -> bool:
        for key, check in checks:
            if not check(node.get(key, ABSENT)):
                return False
        for alternative in alternatives:  # noqa: SIM110
            if not alternative(node):
                return False
        return True

    def match(node: Any) -> bool:
        if type(node) is dict:
            return fields_match(node)
        if type(node) is list:
            candidates = _objects_in(node)
            if candidates:
                return any(fields_match(candidate) for candidate in candidates)
        return fields_match(_NO_FIELDS)  # no object here: every field is absent

    return match


def _all_of(parts: tuple[NodeMatcher, ...]) -> NodeMatcher:
    if len(parts) == 1:
        return parts[0]
    return lambda node: all(part(node) for part in parts)


def _leaf_values(node: Any) -> Sequence[Any]:
    """The scalars at a leaf; arrays are flattened, objects are not leaves (exists rule)."""
    kind = type(node)
    if kind is dict or node is ABSENT:
        return ()
    if kind is not list:
        return (node,)
    values: list[Any] = []
    pending = [node]
    while pending:
        for item in pending.pop():
            if type(item) is list:
                pending.append(item)
            elif type(item) is not dict:
                values.append(item)
    return values


def _objects_in(node: list[Any]) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    pending = [node]
    while pending:
        for item in pending.pop():
            if type(item) is dict:
                objects.append(item)
            elif type(item) is list:
                pending.append(item)
    return objects


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- helpers


def _parse(pattern: Any) -> Any:
    if not isinstance(pattern, str):
        raise FilterPatternError(f"pattern must be a JSON string, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise FilterPatternError(
            f"pattern is {len(pattern)} characters long; Lambda allows at most {MAX_PATTERN_LENGTH}"
        )
    try:
        return _loads_exact(pattern)
    except json.JSONDecodeError as exc:
        raise FilterPatternError(
            f"pattern must be valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except _NonFiniteNumber as exc:
        raise FilterPatternError(f"pattern must be valid JSON: {exc}") from None
    except RecursionError:
        raise FilterPatternError("pattern nests too deeply to evaluate") from None


def _check_depth(pattern: Any) -> None:
    """Reject deep nesting before the recursive compiler (and matcher) meets it."""
    pending: list[tuple[Any, str, int]] = [(pattern, "", 1)]
    while pending:
        node, path, depth = pending.pop()
        if depth > MAX_NESTING_DEPTH:
            raise FilterPatternError(
                f"pattern nests deeper than {MAX_NESTING_DEPTH} levels, "
                "which this implementation does not evaluate",
                path,
            )
        if isinstance(node, dict):
            pending.extend((sub, _join(path, key), depth + 1) for key, sub in node.items())
        elif isinstance(node, list):
            pending.extend((sub, _index(path, i), depth + 1) for i, sub in enumerate(node))


def _require_object(pattern: Any, path: str, what: str) -> dict[str, Any]:
    if not isinstance(pattern, dict):
        raise FilterPatternError(f"{what} must be a JSON object, got {_json_type(pattern)}", path)
    if not pattern:
        raise FilterPatternError(f"{what} must have at least one field", path)
    return pattern


def _require_string(argument: Any, path: str, name: str) -> str:
    if not isinstance(argument, str):
        raise FilterPatternError(f"{name} needs a string, got {_show(argument)}", path)
    return argument


def _leaf_reason(sub: Any) -> str:
    return (
        "leaf values must be arrays of rules (or objects to go deeper), "
        f"got {_json_type(sub)} {_show(sub)}"
    )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _name(key: str, limit: int = 40) -> str:
    """A field or operator name, quoted like the docs quote them."""
    return repr(key if len(key) <= limit else key[: limit - 1] + "…")


def _show(value: Any, limit: int = 40) -> str:
    """A short JSON rendering for error messages."""
    if isinstance(value, _JsonFloat):
        text = value.text
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
