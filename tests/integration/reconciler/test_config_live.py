"""``config check --live`` against the HTTPS emulator with the real SDK clients: storage accounts (missing, in
the wrong region, Premium, fine), provider registration, the identity's role assignments (the signed-in
principal from its token, or ``--principal-id``), management groups that resolve or not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from remediator.adapters.credentials import EMULATOR_PRINCIPAL
from remediator.cli.errors import ExitCode
from tests.fixtures.emulator import OTHER_SUB, TEST_SUB
from tests.integration.reconciler.conftest import (
    ESTATE,
    ROOT_DIR,
    SA_PREFIX,
    STORAGE_EASTUS,
    STORAGE_MISSING,
    STORAGE_WESTEU_WRONG,
)

pytestmark = pytest.mark.integration

CUSTOM_WRITER = "5d2f1a43-7e0c-4c1b-9f3e-2a6b8c9d0e11"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
EXTENSIONS = "85cb6faf-e071-4c9b-8136-154b5a04f717"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
STORAGE_PREMIUM = SA_PREFIX + "stpremium"
APP_PRINCIPAL = "4b9e2c7a-1d3f-4e5a-8b6c-0d7e9f1a2b3c"
ROLE_DEFINITIONS = f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/roleDefinitions"


def assignment(scope: str, role: str, principal: str, name: str) -> dict[str, Any]:
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "scope": scope,
            "roleDefinitionId": f"{ROLE_DEFINITIONS}/{role}",
            "principalId": principal,
            "principalType": "ServicePrincipal",
        },
    }


def live_estate() -> dict[str, Any]:
    estate = json.loads(json.dumps(ESTATE))
    estate["storageAccounts"].append(
        {"id": STORAGE_PREMIUM, "location": "eastus", "kind": "BlockBlobStorage", "sku": "Premium_LRS"}
    )
    estate["roleDefinitions"] = [CUSTOM_WRITER]
    estate["managementGroups"] = {"mg-platform": [TEST_SUB]}
    principal = EMULATOR_PRINCIPAL
    estate["roleAssignments"] = [
        assignment(f"/subscriptions/{TEST_SUB}", READER, principal, "00000000-0000-0000-0000-0000000000a1"),
        assignment(
            f"/subscriptions/{TEST_SUB}", EXTENSIONS, principal, "00000000-0000-0000-0000-0000000000a2"
        ),
        assignment(STORAGE_EASTUS, CUSTOM_WRITER, principal, "00000000-0000-0000-0000-0000000000a3"),
        assignment(STORAGE_EASTUS, RBAC_ADMIN, principal, "00000000-0000-0000-0000-0000000000a4"),
    ]
    return estate


def live(world: Any, config: dict[str, Any], tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "live.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, **world.env}
    env.pop("REMEDIATOR_CONFIG_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "remediator", "config", "check", str(path), "--live", *extra],
        capture_output=True,
        text=True,
        cwd=ROOT_DIR,
        env=env,
        timeout=120,
    )


def by_field_and_check(
    result: subprocess.CompletedProcess[str],
) -> dict[tuple[str, str, str], dict[str, str]]:
    rows = json.loads(result.stdout)
    return {(row["check"], row["field"], row["target"]): row for row in rows}


def test_a_config_that_matches_azure_passes(world: Any, tmp_path: Path) -> None:
    world.emulator.reset(live_estate())
    config = {"scope": {"subscriptions": [TEST_SUB]}, "storage": {"eastus": STORAGE_EASTUS}}
    result = live(world, config, tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {row["status"] for row in rows} == {"ok"}, rows
    assert {row["check"] for row in rows} == {"storage-account", "provider", "role"}
    roles = [row["target"] for row in rows if row["check"] == "role"]
    assert any("Kubernetes Extension Contributor" in t for t in roles)
    assert any("Container Writer" in t and t.startswith(STORAGE_EASTUS) for t in roles)
    # read-only: nothing was written
    assert [
        c for c in world.calls() if c["method"] != "GET" and c["path"].startswith("/subscriptions/")
    ] == []


def test_every_mismatch_is_reported_naming_the_field(world: Any, tmp_path: Path) -> None:
    world.emulator.reset(live_estate())
    config = {
        "scope": {
            "subscriptions": [TEST_SUB, OTHER_SUB],
            "managementGroups": ["mg-platform", "mg-typo"],
        },
        "storage": {
            "eastus": STORAGE_EASTUS,
            "westeurope": STORAGE_WESTEU_WRONG,  # exists, but in eastus
            "centralus": STORAGE_MISSING,  # does not exist
            "eastus2": STORAGE_PREMIUM,  # Premium block blob, and in eastus
        },
    }
    result = live(world, config, tmp_path, "-o", "json")
    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    rows = by_field_and_check(result)
    status = {key: row["status"] for key, row in rows.items()}
    assert status[("storage-account", "storage.eastus", STORAGE_EASTUS)] == "ok"
    assert (
        "it is in eastus, configured for westeurope"
        in rows[("storage-account", "storage.westeurope", STORAGE_WESTEU_WRONG)]["detail"]
    )
    assert rows[("storage-account", "storage.centralus", STORAGE_MISSING)]["detail"] == "does not exist"
    premium = rows[("storage-account", "storage.eastus2", STORAGE_PREMIUM)]
    assert "kind is BlockBlobStorage" in premium["detail"] and "Premium" in premium["detail"]
    unregistered = rows[
        (
            "provider",
            "scope.subscriptions[1]",
            f"/subscriptions/{OTHER_SUB}/providers/Microsoft.KubernetesConfiguration",
        )
    ]
    assert unregistered["status"] == "failed" and "az provider register" in unregistered["detail"]
    assert (
        status[
            (
                "management-group",
                "scope.managementGroups[0]",
                "/providers/Microsoft.Management/managementGroups/mg-platform",
            )
        ]
        == "ok"
    )
    assert (
        status[
            (
                "management-group",
                "scope.managementGroups[1]",
                "/providers/Microsoft.Management/managementGroups/mg-typo",
            )
        ]
        == "failed"
    )
    # roles: none in the other subscription; none on the wrong-region account
    assert status[("role", "scope.subscriptions[1]", f"/subscriptions/{OTHER_SUB} (Reader)")] == "failed"
    assert status[("role", "scope.subscriptions[0]", f"/subscriptions/{TEST_SUB} (Reader)")] == "ok"
    # each failure is also one line on stderr naming the file and the field
    errors = result.stderr.strip().splitlines()
    failed = [row for row in rows.values() if row["status"] == "failed"]
    assert len(errors) == len(failed) and all(line.startswith("error: ") for line in errors)
    assert any(": storage.centralus: " in line and "does not exist" in line for line in errors)
    assert "Traceback" not in result.stderr


def test_another_principal_and_a_table(world: Any, tmp_path: Path) -> None:
    world.emulator.reset(live_estate())
    config = {"scope": {"subscriptions": [TEST_SUB]}, "storage": {"eastus": STORAGE_EASTUS}}
    result = live(
        world, config, tmp_path, "--principal-id", APP_PRINCIPAL, "--query", "[?check=='role']", "-o", "table"
    )
    assert result.returncode == ExitCode.BAD_INPUT  # the app principal holds nothing here
    header, rule, *lines = result.stdout.splitlines()
    assert header.split() == ["Check", "Field", "Target", "Status", "Detail"]  # --query: no command layout
    assert lines and all(" failed " in f" {line} " for line in lines)
    assert APP_PRINCIPAL in result.stdout


def test_a_bad_principal_id_is_bad_input(world: Any, tmp_path: Path) -> None:
    config = {"scope": {"subscriptions": [TEST_SUB]}, "storage": {"eastus": STORAGE_EASTUS}}
    result = live(world, config, tmp_path, "--principal-id", "not-a-guid")
    assert result.returncode == ExitCode.BAD_INPUT
    assert result.stderr.strip() == "error: --principal-id: must be an object id (a GUID)"
