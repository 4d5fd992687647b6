"""One error type for bad user input.

Every entry point (CLI, HTTP, event handler) turns a ``UserInputError`` into exit code 2 or an HTTP 4xx with
the offending field named, and never into a traceback.
"""

from __future__ import annotations


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
