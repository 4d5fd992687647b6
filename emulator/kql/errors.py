"""Errors for the Resource Graph KQL subset.

Resource Graph answers a query it cannot run with 400 and an `InvalidQuery` detail; the emulator must do
the same (and never return rows it is unsure of), so every failure here names the construct or the
position that failed.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class KqlError(Exception):
    """A query the emulator refuses; `code` goes into the ARM error details, `str(e)` is the message."""

    code = "InvalidQuery"

    def __init__(self, message: str, *, construct: str | None = None) -> None:
        super().__init__(message)
        self.construct = construct


class KqlSyntaxError(KqlError):
    """The text is not KQL the grammar understands (a typo or a construct outside the subset)."""

    code = "ParserFailure"


class UnsupportedKqlError(KqlError):
    """Valid KQL that the emulator does not model (an operator, function, table or join kind)."""

    code = "UnsupportedQueryConstruct"
