"""Wiring for the reconciler integration tests: the real product runtime, pointed at the HTTPS emulator
and Azurite.

``world`` builds a :class:`remediator.service.runtime.Runtime` from environment settings exactly as the
Functions app and CLI do (emulator credential, ``REMEDIATOR_ARM_ENDPOINT`` = the emulator, its CA bundle,
``AzureWebJobsStorage`` = Azurite), with a config written to a file and small SDK retry backoffs. Assertions
read the emulator's state and call log through its admin API.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from remediator.adapters.clients import ClientOptions
from remediator.core.pacing import WritePacer
from remediator.core.settings import Settings
from remediator.core.text import ignore_case_key
from remediator.service.runtime import Runtime
from tests.fixtures.emulator import BACKUP_RG, TEST_ESTATE, TEST_SUB, TEST_TENANT

SA_PREFIX = (
    f"/subscriptions/{TEST_SUB}/resourceGroups/{BACKUP_RG}/providers/Microsoft.Storage/storageAccounts/"
)
STORAGE_EASTUS = SA_PREFIX + "stbackupeastus"
STORAGE_WESTEU_WRONG = SA_PREFIX + "stwesteu"
"""Configured for westeurope but actually located in eastus (the 'storage in another region' blocker)."""
STORAGE_MISSING = SA_PREFIX + "stnone"


def cluster_id(name: str, *, sub: str = TEST_SUB, rg: str = "rg1") -> str:
    return (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/"
        + name
    )


LONG_NAME = "Prod_Cluster_" + "X" * 48 + "_9"
assert len(LONG_NAME) == 63

CLUSTERS: list[dict[str, Any]] = [
    {"id": cluster_id("aks-ok"), "location": "eastus", "tags": {"Backup": "Yes"}},
    {"id": cluster_id("aks-ok-2"), "location": "eastus", "tags": {"backup": "YES"}},
    {"id": cluster_id("Prod_AKS_Upper"), "location": "eastus", "tags": {"backup": "yes"}},
    {"id": cluster_id(LONG_NAME), "location": "eastus", "tags": {"backup": "yes"}},
    {"id": cluster_id("aks-untagged"), "location": "eastus"},
    {
        "id": cluster_id("aks-excluded"),
        "location": "eastus",
        "tags": {"backup": "yes", "backup-opt-out": "true"},
    },
    {
        "id": cluster_id("aks-stopped-b"),
        "location": "eastus",
        "tags": {"backup": "yes"},
        "powerState": "Stopped",
    },
    {
        "id": cluster_id("aks-updating"),
        "location": "eastus",
        "tags": {"backup": "yes"},
        "provisioningState": "Updating",
        "readyInS": None,
    },
    {"id": cluster_id("aks-sp-b"), "location": "eastus", "tags": {"backup": "yes"}, "identity": "None"},
    {"id": cluster_id("aks-nocsi"), "location": "eastus", "tags": {"backup": "yes"}, "diskCSIDriver": False},
    {
        "id": cluster_id("aks-nosnap"),
        "location": "eastus",
        "tags": {"backup": "yes"},
        "snapshotController": False,
    },
    {
        "id": cluster_id("aks-win"),
        "location": "eastus",
        "tags": {"backup": "yes"},
        "pools": [{"osType": "Windows", "vmSize": "Standard_D4s_v5", "count": 2}],
    },
    {
        "id": cluster_id("aks-arm"),
        "location": "eastus",
        "tags": {"backup": "yes"},
        "pools": [{"osType": "Linux", "osSKU": "Ubuntu", "vmSize": "Standard_D4ps_v5", "count": 2}],
    },
    {"id": cluster_id("aks-weu"), "location": "westeurope", "tags": {"backup": "yes"}},
    {"id": cluster_id("aks-cus"), "location": "centralus", "tags": {"backup": "yes"}},
]

ESTATE: dict[str, Any] = {
    **TEST_ESTATE,
    "clusters": [*TEST_ESTATE["clusters"], *CLUSTERS],
    "storageAccounts": [
        {"id": STORAGE_EASTUS, "location": "eastus"},
        {"id": STORAGE_WESTEU_WRONG, "location": "eastus"},
    ],
}

CONFIG: dict[str, Any] = {
    "scope": {"subscriptions": [TEST_SUB]},
    "storage": {"eastus": STORAGE_EASTUS, "westeurope": STORAGE_WESTEU_WRONG, "centralus": STORAGE_MISSING},
    "selection": {"include": [{"tag": "backup", "values": ["yes"]}], "exclude": [{"tag": "backup-opt-out"}]},
    "extension": {"configurationSettings": {"resources.limits.memory": "2Gi"}},
    "remediation": {"mode": "install", "maxReinstalls": 2},
}

FAST = ClientOptions(retry_total=3, retry_backoff_factor=0.01, retry_backoff_max=0.05, read_timeout=10)
"""Tiny SDK backoffs so fault-injection tests converge in well under a second per call."""

WRITE_METHODS = {"PUT", "PATCH", "POST", "DELETE"}


@dataclass
class World:
    emulator: Any
    env: dict[str, str]
    config_path: Path
    runtime: Runtime

    def calls(self) -> list[dict[str, Any]]:
        return list(self.emulator.admin.calls())

    def writes(self) -> list[dict[str, Any]]:
        return [c for c in self.calls() if c["method"].upper() in WRITE_METHODS]

    def state(self, collection: str) -> list[dict[str, Any]]:
        data = self.emulator.admin.state(collections=[collection])
        items = data[collection]
        return list(items.values()) if isinstance(items, dict) else list(items)

    def with_config(self, *, pacer: WritePacer | None = None, **changes: Any) -> Runtime:
        """A new runtime (same emulator and Azurite tables) for a changed config (and ``pacer``, if given)."""
        config = json.loads(json.dumps(CONFIG))
        for key, value in changes.items():
            config[key] = {**config.get(key, {}), **value}
        path = self.config_path.with_name(
            f"config-{len(changes)}-{abs(hash(json.dumps(config))) % 10**8}.json"
        )
        path.write_text(json.dumps(config), encoding="utf-8")
        env = {k: v for k, v in self.env.items() if k != "REMEDIATOR_CONFIG_JSON"}
        settings = Settings.from_env({**env, "REMEDIATOR_CONFIG_FILE": str(path)})
        return Runtime(settings, client_options=FAST, pacer=pacer)

    def with_pacer(self, pacer: WritePacer) -> Runtime:
        """A new runtime (same emulator, Azurite and config) whose writes are paced by ``pacer``."""
        return Runtime(Settings.from_env(self.env), client_options=FAST, pacer=pacer)


@pytest.fixture
def world(emulator: Any, azurite_env: dict[str, str], tmp_path: Path) -> Iterator[World]:
    emulator.reset(ESTATE)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(CONFIG), encoding="utf-8")
    env = {
        **azurite_env,
        "REMEDIATOR_TENANT_ID": TEST_TENANT,
        "REMEDIATOR_ARM_ENDPOINT": emulator.base_url,
        "REMEDIATOR_CA_BUNDLE": str(emulator.ca_bundle),
        "REMEDIATOR_CREDENTIAL": "emulator",
        "REMEDIATOR_CONFIG_FILE": str(config_path),
    }
    runtime = Runtime.from_env(env, client_options=FAST)
    emulator.admin.clear_calls()
    yield World(emulator=emulator, env=env, config_path=config_path, runtime=runtime)
    runtime.close()


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """Poll ``predicate`` until it returns a truthy value (or fail after ``timeout_s``)."""
    import time

    def wait(predicate: Callable[[], Any], *, timeout_s: float = 10.0, interval_s: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout_s} s")
            time.sleep(interval_s)

    return wait


def arm_writes(world: World, *, path_contains: str = "") -> list[dict[str, Any]]:
    """Write calls (PUT/PATCH/POST/DELETE) against ARM resources (not the admin API or the event topic);
    paths compared under Azure's case rule (``str.lower()`` would fold U+212A KELVIN SIGN into ``k``)."""
    needle = ignore_case_key(path_contains)
    return [
        c
        for c in world.calls()
        if c["method"].upper() in WRITE_METHODS
        and c["path"].lower().startswith("/subscriptions/")
        and needle in ignore_case_key(c["path"])
    ]


def extensions_of(world: World, cid: str) -> list[dict[str, Any]]:
    """The cluster's extensions in the emulator's state (ids compared under Azure's case rule)."""
    prefix = ignore_case_key(cid + "/providers/Microsoft.KubernetesConfiguration/extensions/")
    return [e for e in world.state("extensions") if ignore_case_key(e["id"]).startswith(prefix)]


def extension_state(world: World, cid: str) -> str | None:
    found = extensions_of(world, cid)
    return found[0]["properties"]["provisioningState"] if found else None


ROOT_DIR = Path(__file__).resolve().parents[3]
"""The repository root (cwd of CLI subprocesses)."""
