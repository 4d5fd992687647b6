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


# ------------------------------------------------------------------------------------------------------
# $apply (groupby / aggregate($count) / filter), $orderby, $select — the forms Policy Insights samples use.

Rows = list[dict[str, Any]]
Transform = Callable[[Rows], Rows]

_GROUPBY = re.compile(r"groupby\(\((?P<fields>[^()]*)\)(?:\s*,\s*aggregate\((?P<agg>[^()]*)\))?\)\s*$", re.I)
_AGG = re.compile(r"^\s*\$count\s+as\s+(?P<name>[A-Za-z_]\w*)\s*$", re.I)
_FILTER_STEP = re.compile(r"^filter\((?P<expr>.*)\)$", re.I | re.S)


def _canonical(name: str, fields: dict[str, str] | None) -> str:
    name = name.strip()
    if fields is None:
        return name
    if name.lower() not in fields:
        raise ODataFilterError(f"'{name}' is not a policy state property")
    return fields[name.lower()]


def _split_steps(text: str) -> list[str]:
    steps, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "/" and depth == 0:
            steps.append(text[start:i].strip())
            start = i + 1
    steps.append(text[start:].strip())
    return [s for s in steps if s]


def parse_apply(text: str | None, *, fields: set[str] | None = None) -> Transform:
    """`$apply` steps: `groupby((f, ...))`, `groupby((f, ...), aggregate($count as N))`, `filter(...)`."""
    if text is None or not text.strip():
        return lambda rows: rows
    lookup = {f.lower(): f for f in fields} if fields else None
    transforms: list[Transform] = []
    for step in _split_steps(text):
        filt = _FILTER_STEP.match(step)
        if filt:
            predicate = parse_filter(filt.group("expr"), fields=fields)
            transforms.append(lambda rows, p=predicate: [r for r in rows if p(r)])
            continue
        group = _GROUPBY.match(step)
        if not group:
            raise ODataFilterError(
                f"$apply step '{step}' is not supported (groupby, aggregate($count as X), filter)"
            )
        names = [_canonical(n, lookup) for n in group.group("fields").split(",") if n.strip()]
        agg_name = None
        if group.group("agg") is not None:
            agg = _AGG.match(group.group("agg"))
            if not agg:
                raise ODataFilterError(f"aggregate '{group.group('agg')}' is not supported ($count as Name)")
            agg_name = agg.group("name")
            if lookup is not None:
                lookup[agg_name.lower()] = agg_name

        def grouped(rows: Rows, names: list[str] = names, agg_name: str | None = agg_name) -> Rows:
            groups: dict[tuple[Any, ...], dict[str, Any]] = {}
            for row in rows:
                key = tuple(_normalize(row.get(n)) for n in names)
                entry = groups.get(key)
                if entry is None:
                    entry = {n: row.get(n) for n in names}
                    if agg_name:
                        entry[agg_name] = 0
                    groups[key] = entry
                if agg_name:
                    entry[agg_name] += 1
            return list(groups.values())

        transforms.append(grouped)

    def run(rows: Rows) -> Rows:
        for transform in transforms:
            rows = transform(rows)
        return rows

    run.output_fields = set(lookup.values()) if lookup else None  # type: ignore[attr-defined]
    return run


def parse_orderby(text: str | None, *, fields: set[str] | None = None) -> Transform:
    """`$orderby=field [asc|desc], ...` (stable, case-insensitive for strings, nulls first)."""
    if text is None or not text.strip():
        return lambda rows: rows
    lookup = {f.lower(): f for f in fields} if fields else None
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise ODataFilterError(f"$orderby term '{part.strip()}' is invalid")
        keys.append((_canonical(words[0], lookup), len(words) == 2 and words[1].lower() == "desc"))

    def run(rows: Rows) -> Rows:
        out = list(rows)
        for name, desc in reversed(keys):
            out.sort(key=lambda r, n=name: (r.get(n) is not None, _normalize(r.get(n))), reverse=desc)
        return out

    return run


def parse_select(
    text: str | None, *, fields: set[str] | None = None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if text is None or not text.strip():
        return lambda row: row
    lookup = {f.lower(): f for f in fields} if fields else None
    names = [_canonical(n, lookup) for n in text.split(",") if n.strip()]
    return lambda row: {n: row.get(n) for n in names}
