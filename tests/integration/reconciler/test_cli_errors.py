"""Every expected failure of the command line, as a user meets it: one line on stderr, the documented exit
code, no traceback. The CLI runs as a subprocess with the real SDK clients against the HTTPS emulator; the
failures are real ones (a credential that cannot sign in, a token the emulator rejects, a closed port, fault
rules that answer 429/403 the way ARM does, ids that do not exist or are outside the scope).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from remediator.cli.errors import ExitCode
from remediator.core.ids import parse_cluster_id
from remediator.core.refusals import cluster_not_found_message, out_of_scope_message
from tests.fixtures.emulator import OTHER_SUB
from tests.integration.reconciler.conftest import ROOT_DIR, arm_writes, cluster_id

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")


def run_cli(world: Any, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    merged = {**os.environ, **world.env, **(env or {})}
    merged.pop("REMEDIATOR_CONFIG_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "remediator", *args],
        capture_output=True,
        text=True,
        cwd=ROOT_DIR,
        env=merged,
        timeout=120,
    )


def reconcile(world: Any, cluster: str, *extra: str, env: dict[str, str] | None = None) -> Any:
    return run_cli(
        world, "reconcile", "--config", str(world.config_path), "--cluster", cluster, *extra, env=env
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: ExitCode, *needles: str) -> str:
    """Exit code, exactly one line on stderr, nothing on stdout, no traceback; returns the line."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


@pytest.fixture(autouse=True)
def _no_faults_left(world: Any) -> Any:
    yield
    world.emulator.admin.clear_faults()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_usable_credential_is_auth_failed(world: Any) -> None:
    """A laptop that is not signed in: DefaultAzureCredential (restricted to the Azure CLI credential, with
    no az on PATH) cannot get a token."""
    env = {
        "REMEDIATOR_CREDENTIAL": "managed-identity",
        "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential",
        "PATH": "/nonexistent",
    }
    line = assert_one_line(reconcile(world, AKS_OK, "--dry-run", env=env), ExitCode.AUTH_FAILED)
    assert "authentication failed: DefaultAzureCredential failed to retrieve a token" in line
    assert "AzureCliCredential: Azure CLI not found on path" in line
    assert "az login" in line
    assert world.calls() == []  # nothing reached ARM


def test_rejected_token_is_auth_failed(world: Any) -> None:
    world.emulator.admin.add_fault(
        path="/subscriptions/*",
        status=401,
        code="InvalidAuthenticationToken",
        message="The access token is invalid.",
    )
    assert_one_line(
        reconcile(world, AKS_OK, "--dry-run"),
        ExitCode.AUTH_FAILED,
        "authentication failed: ARM rejected the token",
        "InvalidAuthenticationToken",
    )


def test_unreachable_arm_is_unreachable(world: Any) -> None:
    port = closed_port()
    env = {"REMEDIATOR_ARM_ENDPOINT": f"https://127.0.0.1:{port}"}
    assert_one_line(
        reconcile(world, AKS_OK, "--dry-run", env=env),
        ExitCode.UNREACHABLE,
        f"cannot reach 127.0.0.1:{port}: connection refused",
    )


def test_throttled_read_is_throttled(world: Any) -> None:
    world.emulator.admin.add_fault(
        method="GET",
        path="*/managedClusters/aks-ok",
        status=429,
        code="SubscriptionRequestsThrottled",
        message="Number of 'read' requests for subscription exceeded. Please try again after 60 seconds.",
        retryAfterS=60,
    )
    assert_one_line(
        reconcile(world, AKS_OK, "--dry-run"), ExitCode.THROTTLED, "throttled by ARM: retry after 60 s"
    )


def test_forbidden_read_names_the_action(world: Any) -> None:
    world.emulator.admin.add_fault(
        method="GET",
        path="*/managedClusters/aks-ok",
        status=403,
        code="AuthorizationFailed",
        message=(
            "The client 'x' with object id 'x' does not have authorization to perform action"
            " 'Microsoft.ContainerService/managedClusters/read' over scope 'x' or the scope is invalid."
        ),
    )
    assert_one_line(
        reconcile(world, AKS_OK, "--dry-run"),
        ExitCode.FORBIDDEN,
        "forbidden: the signed-in identity lacks Microsoft.ContainerService/managedClusters/read",
    )


def test_unknown_cluster_is_not_found_with_the_http_404_words(world: Any) -> None:
    """Was: a misspelled id said "done" ("cluster not found (deleted); nothing to do") and exited 0."""
    typo = cluster_id("aks-okk")
    line = assert_one_line(reconcile(world, typo), ExitCode.NOT_FOUND)
    assert line == f"error: {cluster_not_found_message(parse_cluster_id(typo))}"
    assert arm_writes(world) == []


def test_out_of_scope_cluster_is_refused_with_the_http_403_words_and_nothing_read(world: Any) -> None:
    outside = cluster_id("aks-other", sub=OTHER_SUB)
    line = assert_one_line(reconcile(world, outside), ExitCode.OUT_OF_SCOPE)
    assert line == f"error: {out_of_scope_message(parse_cluster_id(outside))}"
    assert world.calls() == []


def test_explain_cluster_id_refuses_like_reconcile(world: Any) -> None:
    outside = cluster_id("aks-other", sub=OTHER_SUB)
    explain = run_cli(world, "explain", "--config", str(world.config_path), "--cluster-id", outside)
    assert_one_line(explain, ExitCode.OUT_OF_SCOPE, "is outside the configured scope")
    missing = run_cli(
        world, "explain", "--config", str(world.config_path), "--cluster-id", cluster_id("nope")
    )
    assert_one_line(missing, ExitCode.NOT_FOUND, "does not exist")


def test_sweep_with_a_rejected_token_is_auth_failed(world: Any) -> None:
    world.emulator.admin.add_fault(
        path="/providers/Microsoft.ResourceGraph/*",
        status=401,
        code="InvalidAuthenticationToken",
        message="The access token is invalid.",
    )
    result = run_cli(world, "sweep", "--config", str(world.config_path), "--dry-run")
    assert_one_line(result, ExitCode.AUTH_FAILED, "authentication failed")


def test_debug_adds_the_traceback(world: Any) -> None:
    env = {"REMEDIATOR_ARM_ENDPOINT": f"https://127.0.0.1:{closed_port()}"}
    result = reconcile(world, AKS_OK, "--dry-run", "--debug", env=env)
    assert result.returncode == ExitCode.UNREACHABLE
    assert "Traceback" in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot reach 127.0.0.1:")


def test_dry_run_exits_0_and_says_what_it_would_do(world: Any) -> None:
    result = reconcile(world, AKS_OK, "--dry-run", "-o", "table")
    assert result.returncode == 0, result.stderr
    assert "dry run, nothing written: would create blob container" in result.stdout
    assert "create-extension planned" in result.stdout
    assert arm_writes(world) == []


def test_wait_drives_the_cluster_to_done(world: Any) -> None:
    result = reconcile(world, AKS_OK, "--wait", "--poll", "0.3", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"]["kind"] == "done"
    assert report["extensionState"] == "Succeeded"
    assert "waiting" in result.stderr  # progress lines on stderr, the report alone on stdout


def test_wait_stops_at_a_named_blocker(world: Any) -> None:
    result = reconcile(world, cluster_id("aks-win"), "--wait", "--poll", "0.3", "--timeout", "30")
    assert result.returncode == ExitCode.GAVE_UP, result.stderr
    assert "no-linux-amd64-pool" in json.loads(result.stdout)["outcome"]["why"]


def test_explain_cluster_id_shows_the_live_decision_and_plan(world: Any) -> None:
    result = run_cli(
        world, "explain", "--config", str(world.config_path), "--cluster-id", cluster_id("aks-ok-2")
    )
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["reason"] == "selected"
    assert decision["matchedRule"] == {"kind": "include", "tag": "backup", "value": "YES", "pattern": "yes"}
    assert decision["extensionState"] is None
    assert [a["kind"] for a in decision["wouldDo"]] == ["create-container", "create-extension"]
    assert arm_writes(world) == []
