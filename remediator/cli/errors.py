"""The command line's exit codes and its one error policy: every expected failure is one line and a code.

A platform engineer runs these commands from a terminal or a pipeline. A 60-line azure-core traceback for an
expired ``az login`` tells neither what happened nor what to do, and a script cannot tell "ARM throttled me"
from "this cluster does not exist". So every failure the product can expect (bad input, authentication, an
unreachable endpoint, throttling, a missing resource, a cluster outside the scope, a missing permission) is
classified here into an :class:`ExitCode` and one line on stderr. Anything else is a bug: one line saying so,
and ``--debug`` shows the traceback.

Classification walks the exception and its causes (``raise ... from``): the adapters chain every ARM error
from the azure-core exception that caused it, so an ``ArmError`` raised after a failed token request still
says "authentication".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from enum import IntEnum
from types import MappingProxyType

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from remediator.adapters.arm import ArmError, Forbidden, NotFound, ProviderNotRegistered, Throttled
from remediator.adapters.graph import InventoryError
from remediator.core.errors import UserInputError, UserInputErrors

logger = logging.getLogger(__name__)


class ExitCode(IntEnum):
    """Every exit code the command line uses; :data:`EXIT_CODE_DOCS` says what each means."""

    OK = 0
    INCOMPLETE = 1
    BAD_INPUT = 2
    WAIT = 3
    GAVE_UP = 4
    AUTH_FAILED = 5
    UNREACHABLE = 6
    THROTTLED = 7
    NOT_FOUND = 8
    OUT_OF_SCOPE = 9
    FORBIDDEN = 10
    AZURE_ERROR = 11
    INTERNAL_ERROR = 70
    INTERRUPTED = 130


EXIT_CODE_DOCS: Mapping[ExitCode, str] = MappingProxyType(
    {
        ExitCode.OK: "done: the command did what it was asked (a dry run: it planned)",
        ExitCode.INCOMPLETE: (
            "the command ran, but part of its work failed (sweep: some work items could not be enqueued)"
        ),
        ExitCode.BAD_INPUT: (
            "bad input: a config, cluster file, resource id or option is invalid (the field is named),"
            " or a usage error"
        ),
        ExitCode.WAIT: (
            "reconcile: progress needs time (an install is running, the cluster is stopped or updating);"
            " run it again later, or use --wait"
        ),
        ExitCode.GAVE_UP: (
            "reconcile: a human must act (a blocker, a missing permission, too many failed installs)"
        ),
        ExitCode.AUTH_FAILED: (
            "authentication failed: no usable credential (not signed in) or ARM rejected the token (HTTP 401)"
        ),
        ExitCode.UNREACHABLE: (
            "an endpoint (ARM, Resource Graph, storage) could not be reached: connection refused, DNS, TLS"
            " or timeout"
        ),
        ExitCode.THROTTLED: (
            "ARM throttled the caller (HTTP 429) beyond what the SDK retries; the message says when to retry"
        ),
        ExitCode.NOT_FOUND: "not found: the named cluster (or another resource) does not exist",
        ExitCode.OUT_OF_SCOPE: (
            "the cluster is outside the config's scope: nothing was read from it or written to it"
        ),
        ExitCode.FORBIDDEN: (
            "forbidden: ARM refused the signed-in identity (HTTP 403); it lacks a role, the action is named"
        ),
        ExitCode.AZURE_ERROR: (
            "Azure answered with another error (a 5xx after retries, a conflict, an unregistered provider)"
        ),
        ExitCode.INTERNAL_ERROR: (
            "a bug in the remediator (EX_SOFTWARE); run again with --debug and report the traceback"
        ),
        ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
    }
)
"""What each exit code means: the ``--help`` epilogs and docs/operations.md show this table."""


def exit_code_table() -> str:
    """The exit codes as help text (one line each), for the ``--help`` epilogs."""
    return "\n".join(f"  {code.value:>3}  {EXIT_CODE_DOCS[code]}" for code in ExitCode)


def exit_code_markdown() -> str:
    """The exit codes as a Markdown table (docs/operations.md holds a copy; a test keeps it current)."""
    rows = ["| Code | Meaning |", "|---|---|"]
    rows += [f"| {code.value} | {EXIT_CODE_DOCS[code]} |" for code in ExitCode]
    return "\n".join(rows)


class CliFailure(Exception):
    """An expected failure the command line reports as one line and an exit code.

    :param code: the exit code.
    :param message: one line saying what happened and, where possible, what to do.
    """

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its causes (explicit first, else implicit context), without cycles."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def one_line(text: str, *, limit: int = 400) -> str:
    """``text`` on one line: the first non-empty line, whitespace collapsed, at most ``limit`` characters."""
    first = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    first = " ".join(first.split())
    return first if len(first) <= limit else first[: limit - 1] + "…"


_HOST = re.compile(r"host='([^']+)',\s*port=(\d+)")
_REASONS: tuple[tuple[str, str], ...] = (
    ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted (REMEDIATOR_CA_BUNDLE?)"),
    ("Connection refused", "connection refused"),
    ("Name or service not known", "the host name does not resolve"),
    ("nodename nor servname", "the host name does not resolve"),
    ("Temporary failure in name resolution", "the host name does not resolve"),
    ("timed out", "the connection timed out"),
    ("Network is unreachable", "the network is unreachable"),
    ("Connection reset", "the connection was reset"),
    ("Connection aborted", "the connection was dropped"),
    ("RemoteDisconnected", "the connection was dropped"),
)


def _unreachable_message(exc: BaseException) -> str:
    text = str(exc)
    host = _HOST.search(text)
    where = f"{host.group(1)}:{host.group(2)}" if host else "the endpoint"
    reason = next((words for marker, words in _REASONS if marker in text), one_line(text, limit=200))
    hint = "check REMEDIATOR_ARM_ENDPOINT, the storage settings and the network"
    return f"cannot reach {where}: {reason} ({hint})"


def _auth_message(exc: ClientAuthenticationError) -> str:
    status = getattr(exc, "status_code", None)
    if status == 401:
        code = ""
        error = getattr(exc, "error", None)
        if error is not None:
            code = str(getattr(error, "code", "") or "")
        detail = one_line(getattr(exc, "message", None) or str(exc), limit=200)
        return (
            f"authentication failed: ARM rejected the token (HTTP 401{' ' + code if code else ''}: {detail});"
            " sign in again (az login) and check REMEDIATOR_TENANT_ID"
        )
    text = str(getattr(exc, "message", None) or exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    attempts = [
        line
        for line in lines[1:]
        if ":" in line and not line.startswith(("Attempted credentials", "To mitigate"))
    ]
    detail = one_line(lines[0] if lines else type(exc).__name__, limit=200)
    if attempts:  # DefaultAzureCredential: one line per credential it tried
        detail += " (" + one_line("; ".join(attempts), limit=300) + ")"
    return (
        f"authentication failed: {detail}; sign in with `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID"
        " and AZURE_CLIENT_SECRET), --debug shows each credential's full answer"
    )


def _arm_message(error: ArmError) -> str:
    return one_line(str(error))


def _status(link: BaseException) -> int | None:
    if isinstance(link, ArmError):
        return link.status
    if isinstance(link, HttpResponseError) and link.status_code is not None:
        return int(link.status_code)
    return None


def _http_message(link: BaseException) -> str:
    if isinstance(link, ArmError):
        return _arm_message(link)
    return one_line(getattr(link, "message", None) or str(link))


def classify(exc: BaseException) -> CliFailure:
    """The exit code and one-line message for an exception (see :class:`ExitCode`).

    The whole cause chain is searched, most telling failure first: authentication, then an unreachable
    endpoint, throttling, a missing resource, a refused permission, an unregistered provider, any other Azure
    error; anything else is an internal error.
    """
    if isinstance(exc, CliFailure):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return CliFailure(ExitCode.INTERRUPTED, "interrupted")
    if isinstance(exc, UserInputError):
        return CliFailure(ExitCode.BAD_INPUT, str(exc))
    chain = list(_chain(exc))

    def first(test: type[BaseException] | tuple[type[BaseException], ...]) -> BaseException | None:
        return next((link for link in chain if isinstance(link, test)), None)

    def with_status(status: int) -> BaseException | None:
        return next((link for link in chain if _status(link) == status), None)

    auth = first(ClientAuthenticationError)
    if isinstance(auth, ClientAuthenticationError):
        return CliFailure(ExitCode.AUTH_FAILED, _auth_message(auth))
    rejected = with_status(401)
    if rejected is not None:
        return CliFailure(
            ExitCode.AUTH_FAILED,
            f"authentication failed: ARM rejected the token ({_http_message(rejected)}); sign in again"
            " (az login) and check REMEDIATOR_TENANT_ID",
        )
    unreachable = first((ServiceRequestError, ServiceResponseError))
    if unreachable is not None:
        return CliFailure(ExitCode.UNREACHABLE, _unreachable_message(unreachable))
    throttled = first(Throttled)
    if isinstance(throttled, Throttled):
        return CliFailure(
            ExitCode.THROTTLED,
            f"throttled by ARM: retry after {throttled.retry_after_s:g} s ({_arm_message(throttled)})",
        )
    too_many = with_status(429)
    if too_many is not None:
        return CliFailure(ExitCode.THROTTLED, f"throttled (HTTP 429): {_http_message(too_many)}")
    missing = first(NotFound) or with_status(404)
    if missing is not None:
        return CliFailure(ExitCode.NOT_FOUND, f"not found: {_http_message(missing)}")
    forbidden = first(Forbidden)
    if isinstance(forbidden, Forbidden):
        action = forbidden.action or "a permission ARM did not name"
        return CliFailure(
            ExitCode.FORBIDDEN,
            f"forbidden: the signed-in identity lacks {action} ({_arm_message(forbidden)})",
        )
    refused = with_status(403)
    if refused is not None:
        return CliFailure(ExitCode.FORBIDDEN, f"forbidden (HTTP 403): {_http_message(refused)}")
    unregistered = first(ProviderNotRegistered)
    if isinstance(unregistered, ProviderNotRegistered):
        namespace = unregistered.namespace
        return CliFailure(
            ExitCode.AZURE_ERROR,
            f"the subscription has not registered {namespace} (az provider register --namespace {namespace}):"
            f" {_arm_message(unregistered)}",
        )
    azure = first((ArmError, AzureError, InventoryError))
    if azure is not None:
        status = _status(azure)
        if status is not None and not isinstance(azure, ArmError):
            return CliFailure(ExitCode.AZURE_ERROR, f"Azure answered HTTP {status}: {_http_message(azure)}")
        return CliFailure(ExitCode.AZURE_ERROR, f"Azure refused the request: {_http_message(azure)}")
    return CliFailure(
        ExitCode.INTERNAL_ERROR,
        f"internal error: {type(exc).__name__}: {one_line(str(exc))} (a bug; run again with --debug for the"
        " traceback and report it)",
    )


def error_lines(exc: BaseException) -> tuple[ExitCode, list[str]]:
    """The exit code and the lines to print on stderr (one per error; a config can have several)."""
    if isinstance(exc, UserInputErrors):
        return ExitCode.BAD_INPUT, [f"error: {line}" for line in exc.lines()]
    failure = classify(exc)
    return failure.code, [f"error: {one_line(failure.message, limit=1000)}"]


__all__ = [
    "EXIT_CODE_DOCS",
    "CliFailure",
    "ExitCode",
    "classify",
    "error_lines",
    "exit_code_markdown",
    "exit_code_table",
    "one_line",
]
