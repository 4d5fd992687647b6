"""``-o/--output`` and ``--query`` for every command that prints data, the way the Azure CLI does them.

Platform engineers already script ``az`` with ``--query`` and ``-o tsv``; this module gives the remediator's
commands the same options with the same meaning, so the same habits work:

* ``--query JMESPATH`` is applied to the command's JSON result *before* formatting (knack ``query.py``: the
  ``EVENT_INVOKER_FILTER_RESULT`` handler runs ``query.search(result)``), with the ``jmespath`` package az
  uses. A query that does not compile is bad input (exit 2), as in az (argparse ``type=``).
* ``-o json`` (default): the result as indented JSON, non-ASCII kept. Deviation from az: keys keep the
  command's documented order instead of being sorted (knack ``format_json`` sorts them), because the
  product's JSON shapes (a decision, a reconcile report) have a documented key order.
* ``-o jsonc``: JSON with colours on a terminal; plain JSON when stdout is not a terminal (azure-cli-core
  ``AzOutputProducer.get_formatter``).
* ``-o yaml``: ``yaml.safe_dump(result, default_flow_style=False, allow_unicode=True)`` (knack
  ``format_yaml``; keys sorted, as PyYAML does).
* ``-o table``: knack ``_TableOutput``: a list becomes one row per item, a single object one row; only scalar
  values become columns (``None``, lists and objects are left out); the keys ``id``, ``type`` and ``etag``
  are skipped; headers are the keys with the first letter capitalised; without ``--query`` the keys are
  sorted unless the command has its own table layout (az's ``table_transformer``), and with ``--query`` they
  keep the query's order and the command's layout is not used. A scalar becomes a ``Result`` column, a list
  item that is itself a list becomes ``Column1..n``. Layout: tabulate's ``simple`` format (headers, a dashed
  rule, two spaces between columns; numbers right-aligned). A result with no scalar field at all cannot be
  a table: "Table output unavailable. Use the --query option ..." (exit 2).
* ``-o tsv``: knack ``_TsvOutput``: one line per list item (a single object is one line), values
  tab-separated with no header; an object's values in key order (sorted without ``--query``, the query's
  order with it); a nested list is written as its length, a nested object as an empty field, ``None`` as
  ``None``; a bare boolean as ``true``/``false``, a boolean inside an object as ``True``/``False``.
* ``-o none``: nothing on stdout (errors still go to stderr). A ``null`` result (e.g. a query that matches
  nothing) prints nothing in any format, as in az.

Sources: microsoft/knack ``knack/output.py`` (``format_json``, ``format_yaml``, ``format_table``,
``_TableOutput``, ``_TsvOutput``) and ``knack/query.py``; Azure/azure-cli
``src/azure-cli-core/azure/cli/core/_output.py``; "Output formats for Azure CLI commands"
(https://learn.microsoft.com/cli/azure/format-output-azure-cli).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Protocol

import jmespath
import yaml
from jmespath.exceptions import JMESPathError

from remediator.core.errors import UserInputError

logger = logging.getLogger(__name__)

OUTPUT_FORMATS: tuple[str, ...] = ("json", "jsonc", "table", "tsv", "yaml", "none")
"""The values of ``-o/--output``, as in az (minus ``yamlc`` and ``cmd``)."""

TABLE_SKIP_KEYS = frozenset({"id", "type", "etag"})
"""Keys az's automatic table leaves out (knack ``_TableOutput.SKIP_KEYS``)."""

TABLE_UNAVAILABLE = (
    "Table output unavailable. Use the --query option to specify an appropriate query."
    " Use --debug for more info."
)
"""az's message when a result has no scalar field to show (knack ``format_table``)."""

TableView = Callable[[Any], Any]
"""A command's table layout (az's ``table_transformer``): the JSON result -> a list of flat objects whose keys
are the column headers, in order. Used for ``-o table`` when no ``--query`` is given."""


class Query(Protocol):
    """A compiled JMESPath expression."""

    def search(self, value: Any, options: Any = None) -> Any: ...


def compile_query(text: str) -> Query:
    """``--query``'s argparse type: a compiled JMESPath expression, or a usage error (exit 2)."""
    try:
        compiled: Query = jmespath.compile(text)
    except (JMESPathError, KeyError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"invalid JMESPath query {text!r}: {exc}") from exc
    return compiled


def add_output_arguments(parser: argparse.ArgumentParser, *, default: str = "json") -> None:
    """Add ``-o/--output`` and ``--query`` to a command that prints data."""
    group = parser.add_argument_group("output arguments (as in az)")
    group.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default=default,
        type=str.lower,
        help=f"output format (default: {default})",
    )
    group.add_argument(
        "--query",
        metavar="JMESPATH",
        type=compile_query,
        help="JMESPath query applied to the JSON result before formatting (see https://jmespath.org)",
    )


def render(
    result: Any,
    *,
    output: str = "json",
    query: Query | None = None,
    table: TableView | None = None,
    color: bool = False,
) -> str:
    """The text to print for ``result`` (empty for ``none``).

    :param result: the command's JSON-compatible result.
    :keyword output: one of :data:`OUTPUT_FORMATS`.
    :keyword query: a compiled ``--query``, applied first.
    :keyword table: the command's table layout, used for ``table`` when there is no query.
    :keyword color: colour ``jsonc`` (only when stdout is a terminal).
    :raises UserInputError: ``table`` for a result without a scalar field (az's "Table output unavailable").
    """
    query_active = query is not None
    if query is not None:
        result = query.search(result, jmespath.Options(dict_cls=dict))
    if output == "none" or result is None:
        return (
            ""  # az prints nothing for a null result, in every format (knack only prints a non-None result)
        )
    if output in ("json", "jsonc"):
        text = json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n"
        return _colour_json(text) if output == "jsonc" and color else text
    if output == "yaml":
        plain = json.loads(json.dumps(result, default=str))
        return str(yaml.safe_dump(plain, default_flow_style=False, allow_unicode=True))
    if output == "tsv":
        return format_tsv(result, sort_keys=not query_active)
    if output == "table":
        transformed = result if (query_active or table is None) else table(result)
        return format_table(transformed, sort_keys=not query_active and table is None)
    raise ValueError(f"unknown output format {output!r}")


def emit(
    result: Any,
    args: argparse.Namespace,
    *,
    table: TableView | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Print ``result`` as ``args.output`` says, after ``args.query``; the one printer every command uses."""
    out = stream if stream is not None else sys.stdout
    output = getattr(args, "output", "json") or "json"
    text = render(
        result,
        output=output,
        query=getattr(args, "query", None),
        table=table,
        color=output == "jsonc" and _is_terminal(out),
    )
    if text:
        out.write(text)
        out.flush()


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


def _colour_json(text: str) -> str:
    from io import StringIO

    from rich.console import Console

    buffer = StringIO()
    Console(file=buffer, force_terminal=True, color_system="standard", width=10_000).print_json(
        text, indent=2, ensure_ascii=False
    )
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------- table


def _table_row(item: Any, *, sort_keys: bool) -> dict[str, Any]:
    """knack ``_TableOutput._auto_table_item``."""
    row: dict[str, Any] = {}
    if isinstance(item, Mapping):
        keys = sorted(item) if sort_keys else list(item)
        for key in keys:
            if key in TABLE_SKIP_KEYS:
                continue
            value = item[key]
            if value is not None and not isinstance(value, list | dict | set | tuple):
                row[_capitalize_first(str(key))] = value
    elif isinstance(item, list | tuple):
        for column, value in enumerate(item):
            row[f"Column{column + 1}"] = value
    else:
        row["Result"] = item
    return row


def _capitalize_first(key: str) -> str:
    return key[0].upper() + key[1:] if key else key


def _cell(value: Any) -> str:
    return str(value)


def format_table(result: Any, *, sort_keys: bool = True) -> str:
    """``result`` as az's automatic table (see the module docstring)."""
    items = result if isinstance(result, list) else [result]
    rows = [_table_row(item, sort_keys=sort_keys) for item in items]
    if not rows:
        return ""
    headers: list[str] = []
    for row in rows:
        headers.extend(key for key in row if key not in headers)
    if not headers:
        raise UserInputError(TABLE_UNAVAILABLE, field="--output")
    numeric = {
        header: all(
            isinstance(row.get(header), int | float) and not isinstance(row.get(header), bool)
            for row in rows
            if header in row
        )
        for header in headers
    }
    cells = [[_cell(row[header]) if header in row else "" for header in headers] for row in rows]
    widths = [max(len(header), *(len(line[i]) for line in cells)) for i, header in enumerate(headers)]

    def line(values: Sequence[str], *, align: bool) -> str:
        parts = [
            value.rjust(width) if align and numeric[header] else value.ljust(width)
            for value, width, header in zip(values, widths, headers, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers, align=True), "  ".join("-" * width for width in widths)]
    out.extend(line(values, align=True) for values in cells)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------- tsv


def _tsv_value(value: Any) -> str:
    """knack ``_TsvOutput._dump_obj``."""
    if isinstance(value, list | tuple):
        return str(len(value))
    if isinstance(value, Mapping):
        return ""
    return value if isinstance(value, str) else str(value)


def _tsv_line(item: Any, *, sort_keys: bool) -> str:
    """knack ``_TsvOutput._dump_row``."""
    if isinstance(item, Mapping):
        values = [item[key] for key in sorted(item)] if sort_keys else list(item.values())
        return "\t".join(_tsv_value(value) for value in values)
    if isinstance(item, list | tuple):
        return "\t".join(_tsv_value(value) for value in item)
    if isinstance(item, bool):
        return str(item).lower()
    return _tsv_value(item)


def format_tsv(result: Any, *, sort_keys: bool = True) -> str:
    """``result`` as az's tab-separated values (see the module docstring)."""
    items = result if isinstance(result, list) else [result]
    return "".join(_tsv_line(item, sort_keys=sort_keys) + "\n" for item in items)


__all__ = [
    "OUTPUT_FORMATS",
    "TABLE_SKIP_KEYS",
    "TABLE_UNAVAILABLE",
    "Query",
    "TableView",
    "add_output_arguments",
    "compile_query",
    "emit",
    "format_table",
    "format_tsv",
    "render",
]
