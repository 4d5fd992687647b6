"""Renderers of the coverage report document (``json``, ``table``, ``csv``, ``html``): pure functions of it.

Every renderer takes a validated :class:`~remediator.core.report_document.ReportDocument` and returns text;
none reads a file, the clock or the network, so the CLI, the HTTP API and the tests get the same bytes for
the same document. :func:`render` picks one by name; :data:`MEDIA_TYPES` and :data:`FILE_SUFFIXES` tell an
HTTP handler or a CLI what to call the result.

- ``json``: the document itself (:func:`remediator.core.report_document.to_json`).
- ``table``: plain text for a terminal, aligned like ``az -o table``; control characters are neutralised.
- ``csv``: one row per cluster, columns :data:`CSV_COLUMNS` in that order, RFC 4180 quoting and CRLF, cells a
  spreadsheet would run as a formula prefixed with ``'``.
- ``html``: one self-contained page (inline CSS, JS and SVG; a Content-Security-Policy that forbids every
  fetch) with coverage charts, the clusters that need a human first, and the full sortable list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Literal, get_args

from remediator.core.errors import UserInputError
from remediator.core.report_document import ReportDocument, to_json
from remediator.core.report_render.html import render_html
from remediator.core.report_render.text import CSV_COLUMNS, render_csv, render_table

ReportFormat = Literal["json", "table", "csv", "html"]
FORMATS: Final[tuple[ReportFormat, ...]] = get_args(ReportFormat)

MEDIA_TYPES: Final[Mapping[ReportFormat, str]] = {
    "json": "application/json",
    "table": "text/plain; charset=utf-8",
    "csv": "text/csv; charset=utf-8; header=present",
    "html": "text/html; charset=utf-8",
}
"""The ``Content-Type`` of each format (``text/csv`` parameters from RFC 4180 section 3)."""

FILE_SUFFIXES: Final[Mapping[ReportFormat, str]] = {
    "json": ".json",
    "table": ".txt",
    "csv": ".csv",
    "html": ".html",
}

_RENDERERS: Final[Mapping[ReportFormat, Callable[[ReportDocument], str]]] = {
    "json": to_json,
    "table": render_table,
    "csv": render_csv,
    "html": render_html,
}


def parse_format(name: str, *, field: str = "format") -> ReportFormat:
    """``name`` as a :data:`ReportFormat` (any case); else a :class:`UserInputError` naming ``field``."""
    lowered = name.strip().lower()
    for known in FORMATS:
        if lowered == known:
            return known
    raise UserInputError(f"unknown report format {name!r}: use one of {', '.join(FORMATS)}", field=field)


def render(document: ReportDocument, fmt: ReportFormat | str) -> str:
    """The document in the named format (see the module docstring)."""
    return _RENDERERS[parse_format(fmt)](document)


__all__ = [
    "CSV_COLUMNS",
    "FILE_SUFFIXES",
    "FORMATS",
    "MEDIA_TYPES",
    "ReportFormat",
    "parse_format",
    "render",
    "render_csv",
    "render_html",
    "render_table",
]
