"""One error type for bad user input (and its plural, for inputs with several mistakes).

Every entry point (CLI, HTTP, event handler) turns a ``UserInputError`` into exit code 2 or an HTTP 4xx with
the offending field named, and never into a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any


class UserInputError(ValueError):
    """Input from a user (config, cluster file, event, HTTP body, resource id) is malformed.

    :param message: what is wrong, in one line.
    :keyword field: the offending field, as a dotted path (``selection.include[0].values``), if known.
    :keyword source: where the input came from (a file path, ``"request body"``, ``"event"``), if known.
    """

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.source = source

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.field) if part)
        return f"{where}: {self.message}" if where else self.message

    def to_json(self) -> dict[str, str | None]:
        """The error as an HTTP 400 body."""
        return {"error": "invalid-input", "field": self.field, "source": self.source, "message": self.message}


class UserInputErrors(UserInputError):
    """Several independent mistakes in one input (a config file), reported together so that a person fixes
    them in one pass instead of one run per mistake.

    ``message``, ``field`` and ``source`` are the first error's (with a count of the others in ``message``),
    so code that shows one line still works; ``errors`` holds every one, and ``str()`` is one line per
    error.

    :param errors: at least two errors, in the order they appear in the input.
    """

    def __init__(self, errors: Sequence[UserInputError]) -> None:
        if len(errors) < 2:
            raise ValueError("UserInputErrors needs at least two errors; raise the one error itself")
        first = errors[0]
        more = len(errors) - 1
        super().__init__(
            f"{first.message} (and {more} more error{'s' if more > 1 else ''})",
            field=first.field,
            source=first.source,
        )
        self.errors: tuple[UserInputError, ...] = tuple(errors)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)

    def lines(self) -> list[str]:
        """One line per error (``source: field: message``)."""
        return [str(error) for error in self.errors]

    def to_json(self) -> dict[str, Any]:
        """The first error as an HTTP 400 body, plus ``errors``: every error in the same shape."""
        body: dict[str, Any] = dict(super().to_json())
        body["errors"] = [error.to_json() for error in self.errors]
        return body


_PLAIN_MESSAGES: Mapping[str, str] = {
    "missing": "required: add it",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "dict_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "set_type": "must be a list",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
}
"""Plain words for pydantic error types whose own message names Python types ("valid tuple", "instance of
Scope") or internals."""


def plain_validation_message(error: Mapping[str, Any]) -> str:
    """A pydantic error (one item of ``ValidationError.errors()``) in words a person editing a config file or
    an environment understands: no "Value error, ", no Python type names, no pydantic URLs."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[kind]
    if kind in {"too_short", "too_long"}:
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        return f"must have {word} {bound} entr{'y' if bound == 1 else 'ies'}"
    if kind in {"string_too_short", "string_too_long"}:
        bound = ctx.get("min_length") if kind == "string_too_short" else ctx.get("max_length")
        word = "at least" if kind == "string_too_short" else "at most"
        return f"must be {word} {bound} character{'' if bound == 1 else 's'}"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')}"
    bounds = {
        "greater_than": ("greater than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        bound = ctx.get(key)
        shown = f"{bound:g}" if isinstance(bound, float) else str(bound)
        return f"must be {words} {shown}"
    message = str(error.get("msg", ""))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return re.sub(r"^Input should be\b", "must be", message)
