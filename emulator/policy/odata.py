"""OData `$filter` for policy-state queries, parsed into a predicate over policy-state records.

The product filters compliance by resource, state, assignment and definition; the emulator must apply those
filters the way Policy Insights does (case-insensitive string comparison) and reject what it cannot apply
rather than return unfiltered rows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<lpar>\()|(?P<rpar>\))|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<word>[A-Za-z_][\w/]*))"
)


class ODataFilterError(ValueError):
    """A `$filter` the emulator cannot apply (syntax or an unsupported operator/function)."""


def parse_filter(text: str | None, *, fields: set[str] | None = None) -> Predicate:
    """Compile `text` into a predicate; `fields` (if given) are the filterable property names."""
    if text is None or not text.strip():
        return lambda _record: True
    tokens = _tokenize(text)
    parser = _Parser(tokens, text, {f.lower(): f for f in fields} if fields else None)
    predicate = parser.expr()
    if parser.pos != len(tokens):
        raise ODataFilterError(f"unexpected '{tokens[parser.pos][1]}' in $filter '{text}'")
    return predicate


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise ODataFilterError(f"invalid character in $filter near '{text[pos : pos + 20]}'")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _normalize(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str, fields: dict[str, str] | None) -> None:
        self.tokens = tokens
        self.pos = 0
        self.text = text
        self.fields = fields

    def peek_word(self) -> str | None:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "word":
            return self.tokens[self.pos][1].lower()
        return None

    def take(self, kind: str) -> str:
        if self.pos >= len(self.tokens) or self.tokens[self.pos][0] != kind:
            found = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "end of filter"
            raise ODataFilterError(f"expected {kind} but found '{found}' in $filter '{self.text}'")
        value = self.tokens[self.pos][1]
        self.pos += 1
        return value

    def expr(self) -> Predicate:
        left = self.conjunction()
        while self.peek_word() == "or":
            self.pos += 1
            right = self.conjunction()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def conjunction(self) -> Predicate:
        left = self.unary()
        while self.peek_word() == "and":
            self.pos += 1
            right = self.unary()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def unary(self) -> Predicate:
        if self.peek_word() == "not":
            self.pos += 1
            inner = self.unary()
            return lambda r: not inner(r)
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "lpar":
            self.pos += 1
            inner = self.expr()
            self.take("rpar")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        name = self.take("word")
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "lpar":
            raise ODataFilterError(f"$filter function '{name}()' is not supported by the emulator")
        field = name
        if self.fields is not None:
            if name.lower() not in self.fields:
                raise ODataFilterError(f"$filter property '{name}' is not a policy state property")
            field = self.fields[name.lower()]
        op = (self.peek_word() or "").lower()
        if op not in ("eq", "ne"):
            found = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "end of filter"
            raise ODataFilterError(f"$filter operator '{found}' is not supported (eq, ne)")
        self.pos += 1
        value = self.literal()
        wanted = _normalize(value)

        def test(record: Mapping[str, Any]) -> bool:
            return _normalize(record.get(field)) == wanted

        if op == "eq":
            return test
        return lambda r: not test(r)

    def literal(self) -> Any:
        if self.pos >= len(self.tokens):
            raise ODataFilterError(f"$filter '{self.text}' ends after an operator")
        kind, text = self.tokens[self.pos]
        self.pos += 1
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "word" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "word" and text.lower() == "null":
            return None
        raise ODataFilterError(f"expected a literal but found '{text}' in $filter '{self.text}'")
