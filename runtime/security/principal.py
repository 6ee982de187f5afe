"""The Kafka principal a client certificate signs in as: the broker's
``ssl.principal.mapping.rules`` applied to the certificate's subject.

Without rules Kafka's principal is the whole distinguished name (``User:CN=alice,O=x``);
most clusters map it to the CN (``User:alice``), and an ACL granted to the wrong form
never matches. The doctor reads the rules from the broker when it may, and prints the
principal the broker will see.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["LOCAL_PRINCIPAL_RULES", "certificate_principal", "parse_rules"]

LOCAL_PRINCIPAL_RULES = "RULE:^CN=([a-zA-Z0-9._-]+).*$/$1/,DEFAULT"
"""The rules of ``kafka-esm local-kafka``'s broker: a certificate's CN is its user name."""

_RULE = re.compile(
    r"\s*(?:(?P<default>DEFAULT)|RULE:(?P<pattern>(?:\\/|[^/])*)/"
    r"(?P<replacement>(?:\\/|[^/])*)/(?P<case>[LU]?))\s*(?:,|$)"
)
_JAVA_GROUP = re.compile(r"\$(\d+)")

Rule = Callable[[str], str | None]


def parse_rules(rules: str) -> list[Rule] | None:
    """Kafka's rule list (``RULE:pattern/replacement/[LU]`` and ``DEFAULT``, comma
    separated), or None when it cannot be read (the caller falls back to the DN)."""
    parsed: list[Rule] = []
    position = 0
    text = rules.strip()
    while position < len(text):
        match = _RULE.match(text, position)
        if match is None or match.end() == position:
            return None
        parsed.append(_rule(match))
        position = match.end()
    return parsed or None


def certificate_principal(subject_dn: str, rules: str | None = None) -> str:
    """``User:<name>``: the first rule that matches ``subject_dn`` (RFC 4514 form), as
    Kafka's SslPrincipalMapper applies them; the DN itself without usable rules."""
    for rule in parse_rules(rules or "DEFAULT") or []:
        name = rule(subject_dn)
        if name is not None:
            return f"User:{name}"
    return f"User:{subject_dn}"


def _rule(match: re.Match[str]) -> Rule:
    if match["default"]:
        return lambda dn: dn
    try:
        pattern = re.compile(match["pattern"].replace("\\/", "/"))
    except re.error:
        return lambda dn: None
    replacement = _JAVA_GROUP.sub(r"\\g<\1>", match["replacement"].replace("\\/", "/"))
    case = match["case"]

    def apply(dn: str) -> str | None:
        if pattern.fullmatch(dn) is None:  # Java's Matcher.matches(): the whole DN
            return None
        name = pattern.sub(replacement, dn)
        return name.lower() if case == "L" else name.upper() if case == "U" else name

    return apply
