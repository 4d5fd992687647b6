"""Replay the recorded DataProtection and trusted-access traffic (shared/recordings) against the emulator.

For every interaction of the two dataprotection cassettes and the trusted-access part of the aks-preview
cassette: same method and URL (async URLs taken from the emulator's own earlier answers, as the recording's
``replay.url_from`` says), then compare the status, the headers that matter (Azure-AsyncOperation, Location,
Retry-After: present exactly when recorded; DataProtection's quota header present when recorded) and the
body's shape (keys and JSON types, recursively). ``ALLOWED_DEVIATIONS`` documents any difference kept on
purpose (emulator/README.md Part 3); it starts empty. A focused check until the generic replay suite ("emu",
issue 13) folds these files in.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from emulator.resources.common import deterministic_uuid
from emulator.server import Emulator
from tests.conftest import SHARED
from tests.integration.emulator.helpers import raw_https

RECORDINGS = SHARED / "recordings"
FILES = (
    "azure-cli-extensions__dataprotection__test_dataprotection_update_msi_permissions_aks.json",
    "azure-cli-extensions__dataprotection__test_dataprotection_backup_and_restore_aks.json",
    "azure-cli-extensions__aks-preview__test_aks_trustedaccess_rolebinding.json",
)
SUB = "00000000-0000-0000-0000-000000000000"
ASYNC_HEADERS = ("azure-asyncoperation", "location", "retry-after")
QUOTA_HEADER = "x-ms-ratelimit-remaining-subscription-resource-requests"
ALLOWED_DEVIATIONS: dict[str, str] = {}
"""interaction id → reason (documented in emulator/README.md Part 3, "Replay")."""

RG = f"/subscriptions/{SUB}/resourceGroups"
DPP_RG = "clitest-dpp-rg"
AKS_RG = "oss-clitest-rg"
CLUSTER = f"{RG}/{AKS_RG}/providers/Microsoft.ContainerService/managedClusters/clitest-cluster1-donotdelete"
VAULT = f"{RG}/{DPP_RG}/providers/Microsoft.DataProtection/backupVaults/clitest-bkp-vault-aks-donotdelete"
STORAGE = f"{RG}/{DPP_RG}/providers/Microsoft.Storage/storageAccounts/clitestbkpsa"
EXTENSION = f"{CLUSTER}/providers/Microsoft.KubernetesConfiguration/extensions/azure-aks-backup"
VAULT_PRINCIPAL = "2d910429-1391-4d14-a2bf-f057f19aa830"
CLUSTER_PRINCIPAL = "5b1c6a60-0a5e-4d5f-9a5b-7c1d2e3f4a5b"
TA_CLUSTER = f"{RG}/clitest000001/providers/Microsoft.ContainerService/managedClusters/cliakstest000001"


def recorded_estate() -> dict[str, Any]:
    """The resources the recorded requests touch, with every prerequisite of the recorded
    validateForBackup in place (the recording's validation ended with OperationJobExtendedInfo)."""
    prefix = "configuration.backupStorageLocation."
    snapshot_rg = f"{RG}/{DPP_RG}"  # the recorded request's dataStoreParametersList resourceGroupId
    return {
        "subscriptions": [
            {
                "subscriptionId": SUB,
                "resourceGroups": [
                    {"name": "clitest-dpp-updatemsipermissions-000001", "location": "eastus2euap"},
                    {"name": DPP_RG, "location": "eastus2euap"},
                    {"name": AKS_RG, "location": "eastus2euap"},
                    {"name": "clitest000001", "location": "westus2"},
                ],
            }
        ],
        "clusters": [
            {
                "id": CLUSTER,
                "location": "eastus2euap",
                "identity": {"type": "SystemAssigned", "principalId": CLUSTER_PRINCIPAL},
            },
            {"id": TA_CLUSTER, "location": "westus2"},
        ],
        "storageAccounts": [{"id": STORAGE, "location": "eastus2euap"}],
        "containers": [{"storageAccountId": STORAGE, "name": "clitest-cluster1"}],
        "extensions": [
            {
                "clusterId": CLUSTER,
                "name": "azure-aks-backup",
                "extensionType": "microsoft.dataprotection.kubernetes",
                "configurationSettings": {
                    prefix + "bucket": "clitest-cluster1",
                    prefix + "config.storageAccount": "clitestbkpsa",
                    prefix + "config.resourceGroup": DPP_RG,
                    prefix + "config.subscriptionId": SUB,
                },
            }
        ],
        "dataProtection": {
            # the recorded validation was still "Inprogress" at its first poll: keep it running long enough
            "settings": {"validateS": 1.0},
            "vaults": [{"id": VAULT, "location": "eastus2euap", "principalId": VAULT_PRINCIPAL}],
            "policies": [{"vaultId": VAULT, "name": "akspolicy", "strategy": "Week"}],
            "roleAssignments": [
                {"scope": CLUSTER, "principalId": VAULT_PRINCIPAL, "role": "Reader"},
                {"scope": snapshot_rg, "principalId": VAULT_PRINCIPAL, "role": "Reader"},
                {"scope": snapshot_rg, "principalId": VAULT_PRINCIPAL, "role": "Disk Snapshot Contributor"},
                {"scope": STORAGE, "principalId": VAULT_PRINCIPAL, "role": "Storage Blob Data Reader"},
                {"scope": snapshot_rg, "principalId": CLUSTER_PRINCIPAL, "role": "Contributor"},
                {
                    "scope": STORAGE,
                    "principalId": deterministic_uuid("extension-identity", EXTENSION),
                    "role": "Storage Blob Data Contributor",
                },
            ],
        },
        "trustedAccessRoleBindings": [
            {"clusterId": CLUSTER, "name": "tarb-vault", "sourceResourceId": VAULT},
        ],
    }


def shape_differences(recorded: Any, ours: Any, path: str = "") -> list[str]:
    """Keys and JSON types, recursively; a recorded null matches anything; lists compare their first
    items (both empty or both non-empty)."""
    if recorded is None:
        return []
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    rk, ok = kinds.get(type(recorded)), kinds.get(type(ours))
    if rk != ok:
        return [f"{path or '/'}: recorded {rk}, ours {ok}"]
    if isinstance(recorded, dict):
        out = [f"{path}/{k}: missing" for k in recorded if k not in ours]
        out += [f"{path}/{k}: extra" for k in ours if k not in recorded]
        for key in recorded:
            if key in ours:
                out += shape_differences(recorded[key], ours[key], f"{path}/{key}")
        return out
    if isinstance(recorded, list):
        if bool(recorded) != bool(ours):
            return [f"{path}: recorded {len(recorded)} items, ours {len(ours)}"]
        return shape_differences(recorded[0], ours[0], f"{path}/0") if recorded else []
    return []


def header_differences(recorded: dict[str, str], ours: dict[str, str]) -> list[str]:
    rec = {k.lower() for k in recorded}
    out = []
    for name in ASYNC_HEADERS:
        got = name in ours or (name == "retry-after" and "retry-after-ms" in ours)
        if (name in rec) != got:
            out.append(f"header {name}: recorded {'present' if name in rec else 'absent'}, ours {got}")
    if QUOTA_HEADER in rec and QUOTA_HEADER not in ours:
        out.append(f"header {QUOTA_HEADER} missing")
    return out


def _path(url: str, base_url: str) -> str:
    for prefix in ("https://management.azure.com", base_url):
        if url.startswith(prefix):
            return url[len(prefix) :]
    return url


def _wait_done(emu: Emulator, status_url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = raw_https(emu.base_url, emu.ca_bundle, "GET", _path(status_url, emu.base_url))[2]
        if body and str(body.get("status", "")).lower() not in ("inprogress", "running", "accepted"):
            return
        time.sleep(0.05)
    raise AssertionError(f"operation {status_url} did not finish")


def replay(
    emu: Emulator, cassette: dict[str, Any], *, only: str | None = None
) -> list[tuple[str, list[str]]]:
    answers: dict[str, dict[str, str]] = {}
    results = []
    for item in cassette["interactions"]:
        if only and only not in item["url"]:
            continue
        hints = item.get("replay") or {}
        time.sleep(float(hints.get("sleep_before_s", 0)))
        path = item["url"]
        source = hints.get("url_from")
        if source:
            path = _path(answers[source["interaction"]][source["header"]], emu.base_url)
            terminal = str((item.get("body") or {}).get("status", "")).lower() in ("succeeded", "failed")
            if source["header"] == "location" or terminal:
                _wait_done(emu, answers[source["interaction"]]["azure-asyncoperation"])
        status, headers, body = raw_https(
            emu.base_url, emu.ca_bundle, item["method"], path, item["request_body"]
        )
        answers[item["id"]] = headers
        diffs = []
        if status != item["status"]:
            diffs.append(f"status: recorded {item['status']}, ours {status}: {json.dumps(body)[:300]}")
        diffs += header_differences(item["headers"], headers)
        if item["body"] is None and body is not None:
            diffs.append("body: recorded none, ours has one")
        else:
            diffs += shape_differences(item["body"], body)
        if (
            item["body"]
            and "status" in item["body"]
            and body
            and body.get("status") != item["body"]["status"]
        ):
            diffs.append(f"status value: recorded {item['body']['status']}, ours {body.get('status')}")
        results.append((item["id"], diffs))
    return results


@pytest.mark.parametrize("name", FILES)
def test_recorded_interactions_replay(emulator: Emulator, name: str) -> None:
    cassette = json.loads((Path(RECORDINGS) / name).read_text(encoding="utf-8"))
    emulator.reset(recorded_estate())
    only = "trustedAccessRoleBindings" if "trustedaccess" in name else None
    results = replay(emulator, cassette, only=only)
    assert results, "nothing replayed"
    failures = {i: d for i, d in results if d and i not in ALLOWED_DEVIATIONS}
    print(f"{name}: {len(results)} interactions replayed, {len(ALLOWED_DEVIATIONS)} allowed deviations")
    assert not failures, json.dumps(failures, indent=1)


def test_the_comparison_catches_differences() -> None:
    assert shape_differences({"a": 1, "b": {"c": "x"}}, {"a": 1, "b": {"c": "y"}}) == []
    assert shape_differences({"a": 1}, {"a": "1"}) == ["/a: recorded number, ours string"]
    assert shape_differences({"a": 1}, {}) == ["/a: missing"]
    assert shape_differences({}, {"tags": {}}) == ["/tags: extra"]
    assert shape_differences({"v": [{"x": 1}]}, {"v": []}) == ["/v: recorded 1 items, ours 0"]
    assert shape_differences({"n": None}, {"n": {"anything": 1}}) == []
    assert header_differences({"Azure-AsyncOperation": "u"}, {}) == [
        "header azure-asyncoperation: recorded present, ours False"
    ]
    assert header_differences({}, {"retry-after-ms": "50"}) == [
        "header retry-after: recorded absent, ours True"
    ]
    assert header_differences({QUOTA_HEADER: "1"}, {}) == [f"header {QUOTA_HEADER} missing"]
