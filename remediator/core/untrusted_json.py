"""JSON from outside the process (HTTP bodies, events, queue and poison messages), parsed within limits.

``json.loads`` trusts its input: a body of ``[[[[...]]]]`` 100 000 levels deep raises ``RecursionError`` (not
a ``ValueError``), which no handler expects, so it ends as a traceback, and a poison message that does it is
moved to ``-poison-poison``. A 100 MB body is read whole. ``NaN``, lone UTF-16 surrogates and duplicate keys
parse without complaint and fail later, far from the input (a lone surrogate cannot be written to Table
Storage or logged as UTF-8; with duplicate keys, two parsers can read two different events out of the same
bytes).

:func:`parse_untrusted_json` checks, in this order, without recursion and in time linear in the input:

1. size: at most ``max_bytes`` UTF-8 bytes (:class:`JsonTooLargeError`; HTTP answers 413);
2. encoding: bytes must be UTF-8 (:class:`InvalidJsonError`);
3. depth: one pass over the text that skips string literals and counts ``[``/``{`` nesting, stopping at the
   first bracket deeper than ``max_depth`` (:class:`JsonTooDeepError`; HTTP answers 400). Only then does
   ``json.loads`` run, on a document whose depth is known to be small;
4. syntax and values: strict JSON (no ``NaN``/``Infinity``, no number that overflows a float, no integer
   longer than Python's digit limit, no lone surrogate escapes, and by default no duplicate keys)
   (:class:`InvalidJsonError`).

Every error is a :class:`remediator.core.errors.UserInputError` whose message names the limit it broke.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

from remediator.core.errors import UserInputError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1024 * 1024
"""1 MiB: Event Grid's largest event (1 MB) fits; an HTTP body or queue message (64 KiB) is far smaller."""
DEFAULT_MAX_DEPTH = 32
"""Nesting of arrays and objects (``{}`` is depth 1). The deepest document the product reads, an Event Grid
event, is about 6 levels deep."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
"""A JSON string literal (the "unrolled loop" form: linear, no backtracking between alternatives)."""
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


class UntrustedJsonError(UserInputError):
    """Untrusted JSON broke a limit or is not JSON. ``limit`` names which: ``max_bytes``, ``max_depth``,
    ``syntax``."""

    limit: str = "syntax"

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field, source=source)


class JsonTooLargeError(UntrustedJsonError):
    """More bytes than ``max_bytes`` (HTTP 413)."""

    limit = "max_bytes"


class JsonTooDeepError(UntrustedJsonError):
    """Arrays/objects nested deeper than ``max_depth`` (HTTP 400)."""

    limit = "max_depth"


class InvalidJsonError(UntrustedJsonError):
    """Not UTF-8, not JSON, or JSON the product refuses (NaN, lone surrogates, duplicate keys) (HTTP 400)."""

    limit = "syntax"


def nesting_depth(text: str, *, stop_above: int | None = None) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, string literals skipped; linear time, no recursion.

    Brackets are counted, not matched: for malformed text the figure is an upper bound of what a parser would
    reach before failing, which is what a guard needs.

    :keyword stop_above: return as soon as the depth exceeds this (the value returned is then ``stop_above +
        1``), so a 10^6-deep document costs no more than a shallow one up to the limit.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        else:
            depth -= 1
    return deepest


def value_depth(value: Any, *, stop_above: int | None = None) -> int:
    """The deepest nesting of lists and dicts in an already decoded value (``{}`` is depth 1, a scalar 0);
    iterative, so a value built by someone else's parser (the Functions worker decodes Event Grid payloads
    itself) is measured without recursion.

    :keyword stop_above: return as soon as the depth exceeds this (the value returned is then
        ``stop_above + 1``).
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if stop_above is not None and deepest > stop_above:
                return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def check_value_depth(
    value: Any, *, max_depth: int = DEFAULT_MAX_DEPTH, source: str | None = None, field: str | None = None
) -> None:
    """Reject an already decoded value nested deeper than ``max_depth``.

    :raises JsonTooDeepError: naming the limit.
    """
    if value_depth(value, stop_above=max_depth) > max_depth:
        raise JsonTooDeepError(
            f"arrays/objects nested more than {max_depth} levels deep (max_depth)", source=source, field=field
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]!r} does not fit a 64-bit float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:80]!r}")
        result[key] = value
    return result


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string (key or value) in a parsed document holds a UTF-16 surrogate code point. Iterative:
    the document's depth is already bounded, but a stack costs nothing."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_untrusted_json(
    data: bytes | bytearray | memoryview | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    allow_duplicate_keys: bool = False,
    source: str | None = None,
) -> Any:
    """Decode JSON from outside the process within a size and a nesting limit.

    :param data: the raw body: UTF-8 bytes, or text already decoded.
    :keyword max_bytes: the largest accepted body, in UTF-8 bytes.
    :keyword max_depth: the deepest accepted nesting of arrays and objects.
    :keyword allow_duplicate_keys: keep the last value of a repeated key (``json.loads``' behaviour) instead
        of rejecting the document.
    :keyword source: where the JSON came from (``"request body"``, ``"event"``, ``"work item"``), for the
        error.
    :returns: the decoded value (dict, list, str, int, float, bool or None).
    :raises JsonTooLargeError: more than ``max_bytes``.
    :raises JsonTooDeepError: nested deeper than ``max_depth``.
    :raises InvalidJsonError: not UTF-8, not JSON, or refused values.
    """
    if isinstance(data, str):
        # every code point is at least one UTF-8 byte: a long text is refused before it is encoded
        size = len(data) if len(data) > max_bytes else len(data.encode("utf-8", "surrogatepass"))
        text = data
    else:
        raw = bytes(data)
        size = len(raw)
        if size <= max_bytes:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidJsonError(
                    f"not UTF-8 (invalid byte at offset {exc.start})", source=source
                ) from exc
    if size > max_bytes:
        raise JsonTooLargeError(
            f"at least {size} bytes, more than the limit of {max_bytes} bytes (max_bytes)", source=source
        )
    depth = nesting_depth(text, stop_above=max_depth)
    if depth > max_depth:
        raise JsonTooDeepError(
            f"arrays/objects nested more than {max_depth} levels deep (max_depth)", source=source
        )
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=None if allow_duplicate_keys else _unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise InvalidJsonError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", source=source
        ) from exc
    except (ValueError, RecursionError) as exc:  # parse hooks, int digit limit; RecursionError: cannot happen
        raise InvalidJsonError(f"invalid JSON: {str(exc)[:200]}", source=source) from exc
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise InvalidJsonError(
            "a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff)", source=source
        )
    return value
