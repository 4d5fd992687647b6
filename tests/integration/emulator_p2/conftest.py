"""Estate and helpers shared by the Policy Insights / Resource Graph / Event Grid emulator tests."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.emulator import STORAGE_ID, TEST_ESTATE, TEST_SUB

P3_ASSIGNMENT = (
    f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/policyAssignments/backup-with-tag"
)
P1_ASSIGNMENT = f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/policyAssignments/backup-audit"


def policy_estate() -> dict[str, Any]:
    estate = copy.deepcopy(TEST_ESTATE)
    base = (
        f"/subscriptions/{TEST_SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters"
    )
    estate["clusters"] += [
        {"id": f"{base}/tagged-a", "location": "eastus", "tags": {"BACKUP": "yes"}},
        {"id": f"{base}/tagged-b", "location": "East US", "tags": {"backup": "Yes"}},
        {"id": f"{base}/Tagged_Bad", "location": "eastus", "tags": {"backup": "yes"}},
        {"id": f"{base}/tagged-west", "location": "westeurope", "tags": {"backup": "yes"}},
        {"id": f"{base}/untagged", "location": "eastus"},
    ]
    estate["policyAssignments"] = [
        {
            "name": "backup-with-tag",
            "scope": f"/subscriptions/{TEST_SUB}",
            "definition": "tag-include",
            "parameters": {
                "location": "eastus",
                "storageAccountId": STORAGE_ID,
                "inclusionTagName": "backup",
                "inclusionTagValues": ["yes"],
            },
        },
        {"name": "backup-audit", "scope": f"/subscriptions/{TEST_SUB}", "definition": "extension-audit"},
    ]
    return estate


def wait_for(predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        time.sleep(interval)


@pytest.fixture
def policy_emulator(emulator):
    emulator.reset(policy_estate())
    emulator.admin.request("PATCH", "/policy/settings", {"remediation": {"acceptS": 0.05, "pollS": 0.05}})
    return emulator


def arm(
    emulator: Any,
    method: str,
    path: str,
    body: Any = None,
    *,
    api_version: str = "2024-10-01",
    query: dict[str, Any] | None = None,
    principal: str = "test-principal",
) -> tuple[int, dict[str, str], Any]:
    """A plain HTTPS ARM call returning (status, headers, JSON body) without raising on 4xx/5xx."""
    import json
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    params = {"api-version": api_version, **(query or {})}
    url = f"{emulator.base_url}{urllib.parse.quote(path)}?{urllib.parse.urlencode(params)}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {principal}", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, dict(exc.headers), json.loads(raw) if raw else None
