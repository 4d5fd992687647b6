"""The command line's error policy and its documentation: each expected failure maps to its exit code and one
line; every command's --help shows examples and the exit codes; docs/operations.md has the same table."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import CredentialUnavailableError

from remediator.adapters.arm import ArmError, Conflict, ProviderNotRegistered, call_arm
from remediator.adapters.graph import InventoryError
from remediator.adapters.management_groups import ManagementGroupLookupError
from remediator.cli import EXAMPLES as ROOT_EXAMPLES
from remediator.cli import SUBCOMMANDS, build_parser, main
from remediator.cli.common import PROG
from remediator.cli.errors import (
    EXIT_CODE_DOCS,
    CliFailure,
    ExitCode,
    classify,
    error_lines,
    exit_code_markdown,
    one_line,
)
from remediator.core.errors import UserInputError, UserInputErrors

ROOT = Path(__file__).resolve().parents[2]


def _raised(make: Any) -> BaseException:
    try:
        make()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def _arm(exc: BaseException, operation: str = "GET cluster") -> BaseException:
    """What an adapter raises: the ArmError mapped from (and chained to) the azure-core error."""

    def fail() -> None:
        raise exc

    return _raised(lambda: call_arm(operation, fail))


class _Response:
    def __init__(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.headers = headers or {}
        self.reason = "x"
        self._body = body

    def text(self) -> str:
        return self._body


def _http(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> HttpResponseError:
    body = '{"error": {"code": "%s", "message": "%s"}}' % (code, message)  # noqa: UP031
    return HttpResponseError(message=message, response=_Response(status, body, headers))


@pytest.mark.parametrize(
    ("exc", "code", "needle"),
    [
        (CredentialUnavailableError("no az login"), ExitCode.AUTH_FAILED,
         "authentication failed: no az login"),
        (
            ClientAuthenticationError(
                "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
                "Attempted credentials:\n\tAzureCliCredential: Please run 'az login' to set up an account\n"
                "To mitigate this issue, see https://aka.ms/x"
            ),
            ExitCode.AUTH_FAILED,
            "(AzureCliCredential: Please run 'az login' to set up an account)",
        ),
        (ServiceRequestError("HTTPSConnectionPool(host='management.azure.com', port=443): Max retries"
                             " (Caused by NameResolutionError: [Errno -2] Name or service not known)"),
         ExitCode.UNREACHABLE, "cannot reach management.azure.com:443: the host name does not resolve"),
        (ServiceResponseError("Read timed out. (read timeout=60)"), ExitCode.UNREACHABLE, "timed out"),
        (_http(429, "SubscriptionRequestsThrottled", "slow down", {"Retry-After": "17"}), ExitCode.THROTTLED,
         "throttled"),
        (_http(404, "ResourceNotFound", "gone"), ExitCode.NOT_FOUND, "not found"),
        (_http(403, "AuthorizationFailed", "perform action 'Microsoft.Storage/storageAccounts/read' over"),
         ExitCode.FORBIDDEN, "forbidden"),
        (_http(500, "InternalServerError", "boom"), ExitCode.AZURE_ERROR,
         "Azure answered HTTP 500: (InternalServerError) boom"),
        (UserInputError("bad", field="scope", source="c.yaml"), ExitCode.BAD_INPUT, "c.yaml: scope: bad"),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, "interrupted"),
        (RuntimeError("oops\nsecond line"), ExitCode.INTERNAL_ERROR,
         "internal error: RuntimeError: oops (a bug"),
    ],
)  # fmt: skip
def test_classify(exc: BaseException, code: ExitCode, needle: str) -> None:
    failure = classify(exc)
    assert failure.code is code
    assert needle in failure.message
    assert "\n" not in failure.message


@pytest.mark.parametrize(
    ("cause", "code", "needle"),
    [
        (ClientAuthenticationError("token refused"), ExitCode.AUTH_FAILED, "authentication failed"),
        (_http(401, "InvalidAuthenticationToken", "The access token is invalid."), ExitCode.AUTH_FAILED,
         "ARM rejected the token"),
        (ServiceRequestError("host='127.0.0.1', port=9 ... [Errno 111] Connection refused"),
         ExitCode.UNREACHABLE, "cannot reach 127.0.0.1:9: connection refused"),
        (_http(429, "TooManyRequests", "slow", {"Retry-After": "42"}), ExitCode.THROTTLED,
         "throttled by ARM: retry after 42 s"),
        (_http(404, "ResourceNotFound", "no such cluster"), ExitCode.NOT_FOUND, "not found: GET cluster"),
        (_http(403, "AuthorizationFailed", "does not have authorization to perform action"
               " 'Microsoft.ContainerService/managedClusters/read' over scope"), ExitCode.FORBIDDEN,
         "lacks Microsoft.ContainerService/managedClusters/read"),
        (_http(409, "MissingSubscriptionRegistration", "The subscription is not registered to use namespace"
               " 'Microsoft.KubernetesConfiguration'."), ExitCode.AZURE_ERROR,
         "az provider register --namespace Microsoft.KubernetesConfiguration"),
        (_http(409, "Conflict", "busy"), ExitCode.AZURE_ERROR,
         "Azure refused the request: GET cluster HTTP 409"),
    ],
)  # fmt: skip
def test_classify_arm_errors_through_their_cause(cause: BaseException, code: ExitCode, needle: str) -> None:
    """The adapters raise ArmError chained from the azure-core error; the whole chain decides."""
    mapped = _arm(cause)
    assert isinstance(mapped, ArmError)
    failure = classify(mapped)
    assert failure.code is code, failure.message
    assert needle in failure.message


def test_classify_looks_through_wrappers() -> None:
    """A management-group lookup (Transient) that failed because Resource Graph throttled is 'throttled', and
    an inventory error caused by a refused token is 'authentication', not a generic Azure error."""
    throttled = _raised(lambda: _wrap(ManagementGroupLookupError("cannot tell"), _http(429, "x", "slow")))
    assert classify(throttled).code is ExitCode.THROTTLED
    refused = _raised(lambda: _wrap(InventoryError("query failed"), ClientAuthenticationError("expired")))
    assert classify(refused).code is ExitCode.AUTH_FAILED
    assert classify(Conflict("busy", status=409)).code is ExitCode.AZURE_ERROR
    assert classify(ProviderNotRegistered("x", namespace="Microsoft.Storage")).code is ExitCode.AZURE_ERROR
    assert classify(CliFailure(ExitCode.NOT_FOUND, "gone")).message == "gone"


def _wrap(outer: BaseException, cause: BaseException) -> None:
    raise outer from cause


def test_several_config_errors_are_several_lines() -> None:
    errors = UserInputErrors([UserInputError("a", field="x", source="c"), UserInputError("b", field="y")])
    code, lines = error_lines(errors)
    assert code is ExitCode.BAD_INPUT
    assert lines == ["error: c: x: a", "error: y: b"]


def test_one_line() -> None:
    assert one_line("\n  first   line \n second") == "first line"
    assert len(one_line("x" * 1000, limit=50)) == 50


def test_an_unexpected_exception_in_a_command_is_one_line_and_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from remediator.cli import config_check

    def broken(path: str) -> Any:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(config_check, "load_config", broken)
    assert main(["config", "check", "x.yaml"]) == ExitCode.INTERNAL_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: internal error: ZeroDivisionError: division by zero")
    assert main(["config", "check", "x.yaml", "--debug"]) == ExitCode.INTERNAL_ERROR
    assert "Traceback" in capsys.readouterr().err


def test_every_exit_code_is_documented() -> None:
    assert set(EXIT_CODE_DOCS) == set(ExitCode)
    assert len({code.value for code in ExitCode}) == len(ExitCode)


def test_operations_doc_has_the_exit_code_table() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert exit_code_markdown() in doc, (
        "copy remediator.cli.errors.exit_code_markdown() into docs/operations.md"
    )


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _subparsers(sub)
                if nested:
                    found.update({f"{name} {k}": v for k, v in nested.items()})
                else:
                    found[name] = sub
    return found


COMMANDS = sorted(_subparsers(build_parser()))


def test_the_commands() -> None:
    assert COMMANDS == ["config check", "config schema", "explain", "reconcile", "sweep"]
    assert all(callable(getattr(module, "register", None)) for module in SUBCOMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_examples_exit_codes_and_output_options(command: str) -> None:
    text = _subparsers(build_parser())[command].format_help()
    assert "examples:" in text and f"  {PROG} {command}" in text
    assert "exit codes:" in text
    for code in ExitCode:
        assert f"{code.value:>3}  {EXIT_CODE_DOCS[code]}" in text
    assert "-o {json,jsonc,table,tsv,yaml,none}, --output" in text and "--query JMESPATH" in text
    assert "--debug" in text


def _example_commands() -> list[str]:
    """Every example command line in every --help, without what the shell does around it (a pipe into it, a
    redirection of its output)."""
    lines: list[str] = [command for _, command in ROOT_EXAMPLES]
    for sub in _subparsers(build_parser()).values():
        lines += [line.strip() for line in (sub.epilog or "").splitlines() if PROG in line]
    commands = []
    for line in lines:
        command = line.split(" | ", 1)[1] if line.startswith("az ") else line
        commands.append(command.split(" > ", 1)[0].strip())
    return commands


@pytest.mark.parametrize("example", _example_commands())
def test_every_help_example_parses(example: str) -> None:
    argv = shlex.split(example)
    assert argv[0] == PROG
    build_parser().parse_args(argv[1:])  # options, required arguments and --query all valid
