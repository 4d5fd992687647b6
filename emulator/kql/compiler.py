"""Compile a Resource Graph KQL query into Python closures over rows (plain dicts).

Resource Graph queries are the product's inventory; a fake that matched query strings with regexes would
hide bugs, so the text is parsed with a real grammar (grammar.lark), type-checked against the table
schemas, and compiled once into closures. Anything outside the subset raises `KqlError` naming the
construct instead of returning guessed rows.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from emulator.kql.errors import KqlError, KqlSyntaxError, UnsupportedKqlError
from emulator.kql.tables import BOOL, DYNAMIC, LONG, STRING, TABLE_SCHEMAS

logger = logging.getLogger(__name__)

Row = dict[str, Any]
Schema = tuple[tuple[str, str], ...]
RowFn = Callable[[Row], Any]
TableSource = Callable[[str], Iterable[Row]]
"""Given a lower-cased table name, the rows of that table (already scoped by the caller)."""

_PARSER = Lark(
    (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8"),
    parser="lalr",
    lexer="contextual",
    propagate_positions=True,
)

_KNOWN_UNSUPPORTED_OPERATORS = (
    "mv-expand",
    "mv-apply",
    "project-away",
    "project-keep",
    "project-rename",
    "project-reorder",
    "union",
    "top",
    "top-nested",
    "sample",
    "lookup",
    "make-series",
    "serialize",
    "range",
    "evaluate",
    "as",
    "getschema",
    "render",
    "invoke",
    "let",
)


@dataclass(frozen=True)
class Expr:
    """A compiled scalar expression: KQL type, row function, and the column name KQL would derive."""

    type: str
    fn: RowFn
    auto_name: str | None = None
    constant: bool = False


@dataclass(frozen=True)
class CompiledQuery:
    """A query compiled once; `run(tables)` evaluates it against fresh rows."""

    text: str
    schema: Schema
    _run: Callable[[TableSource], Iterator[Row]]

    @property
    def columns(self) -> list[str]:
        return [name for name, _ in self.schema]

    def run(self, tables: TableSource) -> Iterator[Row]:
        """Evaluate against `tables`; rows carry exactly `self.columns`."""
        return self._run(tables)


def compile_query(text: str) -> CompiledQuery:
    """Parse and compile `text`; raises `KqlError` (syntax or unsupported construct)."""
    return _compile_cached(text)


@functools.lru_cache(maxsize=256)
def _compile_cached(text: str) -> CompiledQuery:
    tree = _parse(text)
    schema, run = _Compiler(text).query(tree.children[0])
    return CompiledQuery(text=text, schema=schema, _run=run)


def _parse(text: str) -> Tree[Token]:
    if not text or not text.strip():
        raise KqlSyntaxError("the query is empty")
    try:
        return _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from exc


def _syntax_error(text: str, exc: UnexpectedInput) -> KqlError:
    pos = getattr(exc, "pos_in_stream", None)
    if pos is None and isinstance(exc, UnexpectedToken) and exc.token is not None:
        pos = getattr(exc.token, "start_pos", None)
    if isinstance(exc, UnexpectedEOF) or pos is None:
        return KqlSyntaxError("the query ends unexpectedly (an operator or expression is incomplete)")
    line, col = exc.line, exc.column
    before = text[:pos]
    after = text[pos:]
    # A tabular operator outside the subset: the failing word directly follows a pipe.
    if re.search(r"\|\s*$", before):
        word = re.match(r"[A-Za-z_][\w-]*", after)
        if word:
            name = word.group(0)
            return UnsupportedKqlError(
                f"unsupported tabular operator '{name}' at line {line}, column {col}; the emulator supports "
                "where, extend, project, join, parse, summarize, order by/sort by, take/limit, count, "
                "distinct",
                construct=name,
            )
    # `mv-expand` etc. lex as NAME '-' ...: report the whole word.
    word_before = re.search(r"\|\s*([A-Za-z_][\w-]*)$", before + (re.match(r"[\w-]*", after) or [""])[0])
    if word_before and word_before.group(1).lower() in _KNOWN_UNSUPPORTED_OPERATORS:
        name = word_before.group(1)
        return UnsupportedKqlError(f"unsupported tabular operator '{name}'", construct=name)
    snippet = after[:20].split("\n")[0]
    if isinstance(exc, UnexpectedCharacters):
        return KqlSyntaxError(f"unexpected character at line {line}, column {col} near '{snippet}'")
    token = getattr(exc, "token", None)
    expected = sorted(getattr(exc, "expected", []) or [])
    hint = f"; expected one of {', '.join(expected[:8])}" if expected else ""
    return KqlSyntaxError(f"unexpected '{token}' at line {line}, column {col} near '{snippet}'{hint}")


# ----------------------------------------------------------------------------------------------------
# value helpers (KQL semantics)


def _to_string(value: Any) -> str:
    """KQL tostring(): null -> '', dynamic objects -> compact JSON, bools -> 'true'/'false'."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _is_empty(value: Any) -> bool:
    return value is None or value == ""


_TERM_CHAR = re.compile(r"[A-Za-z0-9]")


def _has_term(haystack: str, needle: str, *, case_sensitive: bool) -> bool:
    """KQL `has`: the needle occurs as whole term(s), bounded by non-alphanumeric characters."""
    if needle == "":
        return True
    flags = 0 if case_sensitive else re.IGNORECASE
    return (
        re.search(r"(?<![A-Za-z0-9])" + re.escape(needle) + r"(?![A-Za-z0-9])", haystack, flags) is not None
    )


def _string_pair(left: Any, right: Any) -> tuple[str, str]:
    return _to_string(left), _to_string(right)


def _eq(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    if isinstance(left, str) or isinstance(right, str):
        if isinstance(left, dict | list) or isinstance(right, dict | list):
            return False
        return _to_string(left) == _to_string(right)
    return bool(left == right)


def _ordered(op: str) -> Callable[[Any, Any], bool]:
    import operator

    compare = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}[op]

    def fn(left: Any, right: Any) -> bool:
        if left is None or right is None:
            return False
        if isinstance(left, bool) or isinstance(right, bool):
            return False
        if isinstance(left, int | float) and isinstance(right, int | float):
            return bool(compare(left, right))
        if isinstance(left, str) and isinstance(right, str):
            return bool(compare(left, right))
        return False

    return fn


def _string_op(op: str) -> Callable[[Any, Any], bool]:
    negate = op.startswith("!")
    base = op.lstrip("!")
    cs = base.endswith("_cs")
    base = base.removesuffix("_cs")

    def norm(a: Any, b: Any) -> tuple[str, str]:
        left, right = _string_pair(a, b)
        return (left, right) if cs else (left.lower(), right.lower())

    if base == "has":

        def test(a: Any, b: Any) -> bool:
            return _has_term(_to_string(a), _to_string(b), case_sensitive=cs)
    elif base == "contains":

        def test(a: Any, b: Any) -> bool:
            left, right = norm(a, b)
            return right in left
    elif base == "startswith":

        def test(a: Any, b: Any) -> bool:
            left, right = norm(a, b)
            return left.startswith(right)
    elif base == "endswith":

        def test(a: Any, b: Any) -> bool:
            left, right = norm(a, b)
            return left.endswith(right)
    else:  # pragma: no cover - grammar prevents it
        raise UnsupportedKqlError(f"unsupported operator '{op}'", construct=op)
    if negate:
        return lambda a, b: not test(a, b)
    return test


def _comparison(op: str) -> Callable[[Any, Any], bool]:
    if op == "==":
        return _eq
    if op == "!=":
        return lambda a, b: a is not None and b is not None and not _eq(a, b)
    if op == "=~":
        return lambda a, b: a is not None and b is not None and _to_string(a).lower() == _to_string(b).lower()
    if op == "!~":
        return lambda a, b: a is not None and b is not None and _to_string(a).lower() != _to_string(b).lower()
    if op in ("<", ">", "<=", ">="):
        return _ordered(op)
    return _string_op(op)


def _decode_string(token: str) -> str:
    if token.startswith("@"):
        return token[2:-1]
    body = token[1:-1]
    out: list[str] = []
    i = 0
    escapes = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in escapes:
                raise KqlSyntaxError(f"unsupported escape sequence '\\{nxt}' in string literal {token}")
            out.append(escapes[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, _to_string(value))


def _null_of(kql_type: str) -> Any:
    return "" if kql_type == STRING else None


# ----------------------------------------------------------------------------------------------------
# compiler


class _Compiler:
    def __init__(self, text: str) -> None:
        self.text = text

    # ---- tabular ----

    def query(self, node: Tree[Token]) -> tuple[Schema, Callable[[TableSource], Iterator[Row]]]:
        table_token = node.children[0]
        table = str(table_token).lower()
        if table not in TABLE_SCHEMAS:
            raise UnsupportedKqlError(
                f"table '{table_token}' is not modelled by the emulator (supported: resources, "
                "kubernetesconfigurationresources, policyresources)",
                construct=str(table_token),
            )
        schema: Schema = TABLE_SCHEMAS[table]
        string_cols = [name for name, kind in schema if kind == STRING]

        def source(tables: TableSource) -> Iterator[Row]:
            if getattr(tables, "normalized_rows", False):
                # The source promises rows with exactly the schema's columns and no null strings.
                for row in tables(table):
                    yield dict(row)
                return
            for row in tables(table):
                out = {name: row.get(name) for name, _ in TABLE_SCHEMAS[table]}
                for col in string_cols:
                    if out[col] is None:
                        out[col] = ""
                yield out

        stages: list[Callable[[Iterator[Row], TableSource], Iterator[Row]]] = []
        for op in node.children[1:]:
            schema, stage = self.operator(op, schema)
            stages.append(stage)

        def run(tables: TableSource) -> Iterator[Row]:
            rows: Iterator[Row] = source(tables)
            for stage in stages:
                rows = stage(rows, tables)
            return rows

        return schema, run

    def operator(
        self, op: Tree[Token], schema: Schema
    ) -> tuple[Schema, Callable[[Iterator[Row], TableSource], Iterator[Row]]]:
        handler = getattr(self, f"op_{op.data}", None)
        if handler is None:  # pragma: no cover - grammar and handlers are kept in step
            raise UnsupportedKqlError(f"unsupported tabular operator '{op.data}'", construct=str(op.data))
        result: tuple[Schema, Callable[[Iterator[Row], TableSource], Iterator[Row]]] = handler(op, schema)
        return result

    def op_where_op(self, op: Tree[Token], schema: Schema):  # type: ignore[no-untyped-def]
        predicate = self.expr(op.children[0], schema)
        fn = predicate.fn

        def stage(rows: Iterator[Row], _tables: TableSource) -> Iterator[Row]:
            return (row for row in rows if fn(row) is True)

        return schema, stage

    def _assignments(self, nodes: list[Any], schema: Schema) -> list[tuple[str, Expr]]:
        out: list[tuple[str, Expr]] = []
        unnamed = 0
        for node in nodes:
            if node.data == "named":
                name = str(node.children[0])
                expr = self.expr(node.children[1], schema)
            else:
                expr = self.expr(node.children[0], schema)
                if expr.auto_name is None:
                    unnamed += 1
                    name = f"Column{unnamed}"
                else:
                    name = expr.auto_name
            out.append((name, expr))
        return out

    def op_extend_op(self, op: Tree[Token], schema: Schema):  # type: ignore[no-untyped-def]
        assigns = self._assignments(list(op.children), schema)
        new_schema = list(schema)
        names = [n for n, _ in new_schema]
        for name, expr in assigns:
            if name in names:
                new_schema[names.index(name)] = (name, expr.type)
            else:
                new_schema.append((name, expr.type))
                names.append(name)
        fns = [(name, expr.fn) for name, expr in assigns]

        def stage(rows: Iterator[Row], _tables: TableSource) -> Iterator[Row]:
            for row in rows:
                out = dict(row)
                for name, fn in fns:
                    out[name] = fn(row)
                yield out

        return tuple(new_schema), stage

    def op_project_op(self, op: Tree[Token], schema: Schema):  # type: ignore[no-untyped-def]
        assigns = self._assignments(list(op.children), schema)
        seen: set[str] = set()
        for name, _ in assigns:
            if name in seen:
                raise KqlError(f"project: column '{name}' is produced twice")
            seen.add(name)
        fns = [(name, expr.fn) for name, expr in assigns]

        def stage(rows: Iterator[Row], _tables: TableSource) -> Iterator[Row]:
            for row in rows:
                yield {name: fn(row) for name, fn in fns}

        return tuple((name, expr.type) for name, expr in assigns), stage

    def op_take_op(self, op: Tree[Token], schema: Schema):  # type: ignore[no-untyped-def]
        count = int(op.children[0])

        def stage(rows: Iterator[Row], _tables: TableSource) -> Iterator[Row]:
            return itertools.islice(rows, count)

        return schema, stage

    def op_count_op(self, op: Tree[Token], schema: Schema):  # type: ignore[no-untyped-def]
        def stage(rows: Iterator[Row], _tables: TableSource) -> Iterator[Row]:
            yield {"Count": sum(1 for _ in rows)}

        return (("Count", LONG),), stage

    def op_distinct_op(self, op: Tree[Token], schema: Schema):  # type: ignore[no-untyped-def]
        cols = [str(c) for c in op.children]
        for col in cols:
            self._column_type(col, schema)

        def stage(rows: Iterator[Row], _tables: TableSource) -> Iterator[Row]:
            seen: set[str] = set()
            for row in rows:
                out = {c: row[c] for c in cols}
                key = json.dumps([out[c] for c in cols], sort_keys=True, default=str)
                if key not in seen:
                    seen.add(key)
                    yield out

        return tuple((c, self._column_type(c, schema)) for c in cols), stage

    def op_order_op(self, op: Tree[Token], schema: Schema):  # type: ignore[no-untyped-def]
        keys: list[tuple[RowFn, bool, bool]] = []
        for key in op.children:
            expr = self.expr(key.children[0], schema)
            descending = True  # KQL's default sort order is descending
            nulls_first: bool | None = None
            for extra in key.children[1:]:
                if isinstance(extra, Token) and extra.type == "DIRECTION":
                    descending = str(extra) == "desc"
                elif isinstance(extra, Tree) and extra.data == "nulls":
                    nulls_first = str(extra.children[0]) == "first"
            if nulls_first is None:
                nulls_first = not descending  # asc: nulls first, desc: nulls last
            keys.append((expr.fn, descending, nulls_first))

        def stage(rows: Iterator[Row], _tables: TableSource) -> Iterator[Row]:
            data = list(rows)
            for fn, descending, nulls_first in reversed(keys):
                present = [r for r in data if not _is_null_for_sort(fn(r))]
                missing = [r for r in data if _is_null_for_sort(fn(r))]
                present.sort(key=lambda r, f=fn: _sort_key(f(r)), reverse=descending)
                data = missing + present if nulls_first else present + missing
            return iter(data)

        return schema, stage

    def op_parse_op(self, op: Tree[Token], schema: Schema):  # type: ignore[no-untyped-def]
        source = self.expr(op.children[0], schema)
        elems = op.children[1:]
        pattern = ""
        columns: list[tuple[str, str]] = []
        for idx, elem in enumerate(elems):
            last = idx == len(elems) - 1
            if elem.data == "parse_lit":
                pattern += re.escape(_decode_string(str(elem.children[0])))
            elif elem.data == "parse_star":
                pattern += ".*?" if not last else ".*"
            else:
                name = str(elem.children[0])
                col_type = str(elem.children[1]).lower() if len(elem.children) > 1 else "string"
                if col_type not in ("string", "long", "int"):
                    raise UnsupportedKqlError(
                        f"parse: column type '{col_type}' is not supported (string, long, int)",
                        construct=f"parse {name}:{col_type}",
                    )
                kql_type = STRING if col_type == "string" else LONG
                columns.append((name, kql_type))
                pattern += "(.*)" if last else "(.*?)"
        regex = re.compile(pattern, re.DOTALL)
        new_schema = list(schema)
        names = [n for n, _ in new_schema]
        for name, kql_type in columns:
            if name in names:
                new_schema[names.index(name)] = (name, kql_type)
            else:
                new_schema.append((name, kql_type))
                names.append(name)
        src_fn = source.fn

        def convert(value: str, kql_type: str) -> Any:
            if kql_type == STRING:
                return value
            try:
                return int(value)
            except ValueError:
                return None

        def stage(rows: Iterator[Row], _tables: TableSource) -> Iterator[Row]:
            for row in rows:
                out = dict(row)
                match = regex.match(_to_string(src_fn(row)))
                for i, (name, kql_type) in enumerate(columns):
                    out[name] = convert(match.group(i + 1), kql_type) if match else _null_of(kql_type)
                yield out

        return tuple(new_schema), stage

    def _summarize(self, aggs: list[Any], bys: list[Any], schema: Schema):  # type: ignore[no-untyped-def]
        by_assigns = self._assignments(bys, schema)
        agg_specs: list[tuple[str, str, RowFn | None]] = []
        for node in aggs:
            name = str(node.children[0]) if node.data == "named" else None
            call = node.children[1] if node.data == "named" else node.children[0]
            if not (isinstance(call, Tree) and call.data == "call"):
                raise UnsupportedKqlError("summarize: only count() and countif() aggregations are supported")
            fname = str(call.children[0]).lower()
            args = [a for a in call.children[1:] if a is not None]
            if fname == "count" and not args:
                agg_specs.append((name or "count_", "count", None))
            elif fname == "countif" and len(args) == 1:
                agg_specs.append((name or "countif_", "countif", self.expr(args[0], schema).fn))
            else:
                raise UnsupportedKqlError(
                    f"summarize: aggregation '{call.children[0]}' is not supported (count(), countif())",
                    construct=str(call.children[0]),
                )
        by_fns = [(name, expr.fn) for name, expr in by_assigns]

        def stage(rows: Iterator[Row], _tables: TableSource) -> Iterator[Row]:
            groups: dict[str, tuple[list[Any], list[int]]] = {}
            for row in rows:
                values = [fn(row) for _, fn in by_fns]
                key = json.dumps(values, sort_keys=True, default=str)
                entry = groups.get(key)
                if entry is None:
                    entry = (values, [0] * len(agg_specs))
                    groups[key] = entry
                for i, (_, kind, pred) in enumerate(agg_specs):
                    if kind == "count" or (pred is not None and pred(row) is True):
                        entry[1][i] += 1
            if not by_fns and not groups:
                groups["[]"] = ([], [0] * len(agg_specs))
            for values, counts in groups.values():
                out = {name: value for (name, _), value in zip(by_fns, values, strict=True)}
                for (name, _, _), count in zip(agg_specs, counts, strict=True):
                    out[name] = count
                yield out

        new_schema = tuple((name, expr.type) for name, expr in by_assigns) + tuple(
            (name, LONG) for name, _, _ in agg_specs
        )
        return new_schema, stage

    def op_summarize_op(self, op: Tree[Token], schema: Schema):  # type: ignore[no-untyped-def]
        aggs: list[Any] = []
        bys: list[Any] = []
        for child in op.children:
            if child.data == "agg_list":
                aggs = list(child.children)
            else:
                bys = list(child.children)
        return self._summarize(aggs, bys, schema)

    def op_join_op(self, op: Tree[Token], schema: Schema):  # type: ignore[no-untyped-def]
        params = [c for c in op.children if isinstance(c, Tree) and c.data == "join_param"]
        sub = next(c for c in op.children if isinstance(c, Tree) and c.data == "query")
        keys = [
            c for c in op.children if isinstance(c, Tree) and c.data in ("join_key_same", "join_key_pair")
        ]
        kind = "innerunique"
        for param in params:
            pname, pvalue = str(param.children[0]), str(param.children[1])
            if pname.lower() != "kind":
                raise UnsupportedKqlError(f"join parameter '{pname}' is not supported", construct=pname)
            kind = pvalue.lower()
        if kind not in ("leftouter", "inner", "innerunique"):
            raise UnsupportedKqlError(
                f"join kind={kind} is not supported (leftouter, inner, innerunique)",
                construct=f"join kind={kind}",
            )
        right_schema, right_run = self.query(sub)
        left_keys: list[str] = []
        right_keys: list[str] = []
        for key in keys:
            if key.data == "join_key_same":
                left_keys.append(str(key.children[0]))
                right_keys.append(str(key.children[0]))
            else:
                left_keys.append(str(key.children[1]))
                right_keys.append(str(key.children[3]))
        for name in left_keys:
            self._column_type(name, schema, where="join (left side)")
        for name in right_keys:
            self._column_type(name, right_schema, where="join (right side)")
        left_names = [n for n, _ in schema]
        used = set(left_names)
        renamed: list[tuple[str, str, str]] = []  # (right name, output name, type)
        for name, kql_type in right_schema:
            out_name = name
            suffix = 1
            while out_name in used:
                out_name = f"{name}{suffix}"
                suffix += 1
            used.add(out_name)
            renamed.append((name, out_name, kql_type))
        nulls = {out: _null_of(kql_type) for _, out, kql_type in renamed}

        def key_of(row: Row, names: list[str]) -> Any:
            if len(names) == 1:
                value = row.get(names[0])
                if value is None or isinstance(value, str | int | float):
                    return value  # hashable scalars are their own key (None = no match)
                return json.dumps([value], sort_keys=True, default=str)
            values = [row.get(n) for n in names]
            if any(v is None for v in values):
                return None
            return json.dumps(values, sort_keys=True, default=str)

        def stage(rows: Iterator[Row], tables: TableSource) -> Iterator[Row]:
            index: dict[Any, list[Row]] = {}
            for right in right_run(tables):
                k = key_of(right, right_keys)
                if k is not None:
                    index.setdefault(k, []).append({out: right[name] for name, out, _ in renamed})
            seen_left: set[Any] = set()
            for row in rows:
                k = key_of(row, left_keys)
                if kind == "innerunique":
                    if k is None or k in seen_left:
                        continue
                    seen_left.add(k)
                matches = index.get(k, []) if k is not None else []
                if matches:
                    for right in matches:
                        out = dict(row)
                        out.update(right)
                        yield out
                elif kind == "leftouter":
                    out = dict(row)
                    out.update(nulls)
                    yield out

        return tuple(schema) + tuple((out, kql_type) for _, out, kql_type in renamed), stage

    # ---- scalar ----

    def _column_type(self, name: str, schema: Schema, *, where: str = "") -> str:
        for col, kql_type in schema:
            if col == name:
                return kql_type
        context = f" in {where}" if where else ""
        raise KqlError(
            f"failed to resolve column '{name}'{context}; "
            f"available columns: {', '.join(c for c, _ in schema)}",
            construct=name,
        )

    def expr(self, node: Any, schema: Schema) -> Expr:
        if isinstance(node, Token):  # pragma: no cover - all tokens are wrapped by rules
            raise KqlSyntaxError(f"unexpected token '{node}'")
        handler = getattr(self, f"x_{node.data}", None)
        if handler is None:  # pragma: no cover
            raise UnsupportedKqlError(f"unsupported expression '{node.data}'", construct=str(node.data))
        result: Expr = handler(node, schema)
        return result

    def x_string(self, node: Tree[Token], schema: Schema) -> Expr:
        value = _decode_string(str(node.children[0]))
        return Expr(STRING, lambda _row: value, None, constant=True)

    def x_integer(self, node: Tree[Token], schema: Schema) -> Expr:
        value = int(node.children[0])
        return Expr(LONG, lambda _row: value, None, constant=True)

    def x_column(self, node: Tree[Token], schema: Schema) -> Expr:
        name = str(node.children[0])
        if name in ("true", "false") and name not in (c for c, _ in schema):
            flag = name == "true"
            return Expr(BOOL, lambda _row: flag, None, constant=True)
        kql_type = self._column_type(name, schema)
        return Expr(kql_type, lambda row: row.get(name), name)

    def x_member(self, node: Tree[Token], schema: Schema) -> Expr:
        base = self.expr(node.children[0], schema)
        key = str(node.children[1])
        return self._access(base, key, f"{base.auto_name}_{key}" if base.auto_name else None)

    def x_index(self, node: Tree[Token], schema: Schema) -> Expr:
        base = self.expr(node.children[0], schema)
        index = self.expr(node.children[1], schema)
        if not index.constant:
            raise UnsupportedKqlError("only constant indexes are supported in x[...]", construct="[...]")
        key = index.fn({})
        name = f"{base.auto_name}_{key}" if base.auto_name and isinstance(key, str) else None
        return self._access(base, key, name)

    def _access(self, base: Expr, key: Any, name: str | None) -> Expr:
        if base.type != DYNAMIC:
            raise KqlError(f"'{key}' cannot be accessed on a value of type {base.type}; only dynamic values")
        fn = base.fn
        if isinstance(key, int):

            def get(row: Row) -> Any:
                value = fn(row)
                return value[key] if isinstance(value, list) and -len(value) <= key < len(value) else None
        else:

            def get(row: Row) -> Any:
                value = fn(row)
                return value.get(key) if isinstance(value, dict) else None

        return Expr(DYNAMIC, get, name)

    def x_and_(self, node: Tree[Token], schema: Schema) -> Expr:
        left = self.expr(node.children[0], schema).fn
        right = self.expr(node.children[1], schema).fn
        return Expr(BOOL, lambda row: left(row) is True and right(row) is True)

    def x_or_(self, node: Tree[Token], schema: Schema) -> Expr:
        left = self.expr(node.children[0], schema).fn
        right = self.expr(node.children[1], schema).fn
        return Expr(BOOL, lambda row: left(row) is True or right(row) is True)

    def x_compare(self, node: Tree[Token], schema: Schema) -> Expr:
        left = self.expr(node.children[0], schema).fn
        op = str(node.children[1])
        right = self.expr(node.children[2], schema).fn
        test = _comparison(op)
        return Expr(BOOL, lambda row: test(left(row), right(row)))

    def x_in_list(self, node: Tree[Token], schema: Schema) -> Expr:
        left = self.expr(node.children[0], schema).fn
        op = str(node.children[1])
        items = [self.expr(c, schema) for c in node.children[2:]]
        insensitive = op.endswith("~")
        negate = op.startswith("!")
        if all(item.constant for item in items):
            constants = {
                (_to_string(v).lower() if insensitive else _to_string(v))
                for v in (item.fn({}) for item in items)
            }

            def test(row: Row) -> bool:
                value = left(row)
                if value is None:
                    return False
                text = _to_string(value)
                found = (text.lower() if insensitive else text) in constants
                return not found if negate else found

            return Expr(BOOL, test)
        fns = [item.fn for item in items]

        def test_dynamic(row: Row) -> bool:
            value = left(row)
            if value is None:
                return False
            text = _to_string(value)
            text = text.lower() if insensitive else text
            found = any(
                (_to_string(f(row)).lower() if insensitive else _to_string(f(row))) == text for f in fns
            )
            return not found if negate else found

        return Expr(BOOL, test_dynamic)

    def x_call(self, node: Tree[Token], schema: Schema) -> Expr:
        fname_token = node.children[0]
        fname = str(fname_token)
        args = [self.expr(a, schema) for a in node.children[1:] if a is not None]
        lower = fname.lower()
        if fname != lower:
            raise UnsupportedKqlError(f"unknown function '{fname}' (KQL function names are lower-case)")

        def arity(n: int) -> None:
            if len(args) != n:
                raise KqlError(f"function {fname}() expects {n} argument(s), got {len(args)}")

        def single_name() -> str | None:
            return args[0].auto_name if len(args) == 1 else None

        if lower in ("tolower", "toupper"):
            arity(1)
            f = args[0].fn
            if lower == "tolower":
                return Expr(STRING, lambda row: _to_string(f(row)).lower(), single_name())
            return Expr(STRING, lambda row: _to_string(f(row)).upper(), single_name())
        if lower == "tostring":
            arity(1)
            f = args[0].fn
            return Expr(STRING, lambda row: _to_string(f(row)), single_name())
        if lower in ("toint", "tolong"):
            arity(1)
            f = args[0].fn

            def to_int(row: Row) -> int | None:
                value = f(row)
                if isinstance(value, bool) or value is None:
                    return None
                try:
                    return int(value)
                except (TypeError, ValueError):
                    return None

            return Expr(LONG, to_int, single_name())
        if lower in ("isempty", "isnotempty", "isnull", "isnotnull"):
            arity(1)
            f = args[0].fn
            if lower == "isempty":
                return Expr(BOOL, lambda row: _is_empty(f(row)))
            if lower == "isnotempty":
                return Expr(BOOL, lambda row: not _is_empty(f(row)))
            if lower == "isnull":
                return Expr(BOOL, lambda row: f(row) is None)
            return Expr(BOOL, lambda row: f(row) is not None)
        if lower == "not":
            arity(1)
            f = args[0].fn
            return Expr(BOOL, lambda row: f(row) is not True)
        if lower == "strcat":
            if not args:
                raise KqlError("strcat() needs at least one argument")
            fns = [a.fn for a in args]
            return Expr(STRING, lambda row: "".join(_to_string(g(row)) for g in fns))
        if lower == "iff" or lower == "iif":
            arity(3)
            cond, then, other = (a.fn for a in args)
            return Expr(args[1].type, lambda row: then(row) if cond(row) is True else other(row))
        if lower in ("count", "countif"):
            raise KqlError(f"{fname}() is an aggregation and is only valid in summarize")
        raise UnsupportedKqlError(
            f"unsupported function '{fname}()'; the emulator supports tolower, toupper, tostring, toint, "
            "tolong, "
            "isempty, isnotempty, isnull, isnotnull, not, strcat, iff",
            construct=f"{fname}()",
        )


def _is_null_for_sort(value: Any) -> bool:
    return value is None


def rows_of(query: CompiledQuery, tables: Mapping[str, Iterable[Row]]) -> list[Row]:
    """Convenience for tests: evaluate against in-memory tables keyed by lower-cased name."""
    return list(query.run(lambda name: tables.get(name, ())))
