"""Protect mode end to end: the real product runtime (real SDK clients over HTTPS) against the emulator's
Azure Backup model (emulator/dataprotection, README Part 3), with the journal and claims in Azurite.

Time: the emulator runs its Azure Backup lifecycles at test speed (fractions of a second). The product's own
waits (poll intervals, the backoff between validations, budgets) are in Azure's seconds, so the runtime gets a
clock running :data:`SCALE` times faster than the wall clock, and :func:`drive` sleeps each ``wait`` outcome's
``retryAfterSeconds`` divided by the same factor, exactly as the queue would deliver the work item later. No
test sleeps a fixed time; the emulator's knobs decide when Azure is ready.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from remediator.adapters.clients import ClientOptions
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import OutcomeKind, ReconcileReport
from remediator.core.settings import Settings
from remediator.service.runtime import Runtime
from tests.fixtures.emulator import BACKUP_RG, STORAGE_ID, TEST_ESTATE, TEST_SUB, TEST_TENANT

SCALE = 50.0
"""The product's clock runs this many times faster than the wall clock in these tests."""

FAST = ClientOptions(retry_total=3, retry_backoff_factor=0.01, retry_backoff_max=0.05, read_timeout=10)

KNOBS: dict[str, Any] = {
    "vaultCreateS": 0.05,
    "backupInstanceProvisionS": 0.05,
    "backupInstanceConfigureS": 0.15,
    "validateS": 0.05,
    "trustedAccessUpdateS": 0.05,
    "trustedAccessEffectS": 0.0,
    "rolePropagationS": 0.0,
    "backupTickS": 0.0,
}
"""Emulator Azure Backup knobs for these tests (test speed; no backup ticks unless a test asks)."""


def cluster_id(name: str, *, sub: str = TEST_SUB, rg: str = "rg1") -> str:
    managed = "providers/Microsoft.ContainerService/managedClusters"
    return f"/subscriptions/{sub}/resourceGroups/{rg}/{managed}/{name}"


AKS = cluster_id("aks-p1")
AKS_2 = cluster_id("aks-p2")
AKS_UAI = cluster_id("aks-uai")
VAULT_ID = (
    f"/subscriptions/{TEST_SUB}/resourceGroups/{BACKUP_RG}/providers/Microsoft.DataProtection/backupVaults/"
    "AKSAzureBackup-eastus"
)
POLICY_ID = VAULT_ID + "/backupPolicies/AKSBackupPolicy-Week"
SNAPSHOT_RG_ID = f"/subscriptions/{TEST_SUB}/resourceGroups/AKSAzureBackup_eastus"
OTHER_VAULT_ID = (
    f"/subscriptions/{TEST_SUB}/resourceGroups/rg-other-vault/providers/Microsoft.DataProtection/backupVaults/"
    "someone-elses-vault"
)


def estate() -> dict[str, Any]:
    data = copy.deepcopy(TEST_ESTATE)
    data["subscriptions"][0]["resourceGroups"].append({"name": "rg-other-vault", "location": "eastus"})
    data["clusters"] = [
        *data["clusters"],
        {"id": AKS, "location": "eastus", "tags": {"backup": "yes"}},
        {"id": AKS_2, "location": "eastus", "tags": {"backup": "yes"}},
        {"id": AKS_UAI, "location": "eastus", "tags": {"backup": "yes"}, "identity": "UserAssigned"},
    ]
    data["policyAssignments"] = [
        {"name": "aks-backup-enabled", "scope": f"/subscriptions/{TEST_SUB}", "definition": "backup-audit"}
    ]
    data["dataProtection"] = {"settings": dict(KNOBS)}
    return data


CONFIG: dict[str, Any] = {
    "scope": {"subscriptions": [TEST_SUB]},
    "storage": {"eastus": STORAGE_ID},
    "selection": {"include": [{"tag": "backup", "values": ["yes"]}]},
    "remediation": {"mode": "protect"},
}

WRITE_METHODS = {"PUT", "PATCH", "POST", "DELETE"}


class ScaledClock:
    """Wall-clock time running ``scale`` times faster from the moment it is made."""

    def __init__(self, scale: float = SCALE) -> None:
        self.scale = scale
        self._real0 = time.time()
        self._mono0 = time.monotonic()

    def __call__(self) -> float:
        return self._real0 + (time.monotonic() - self._mono0) * self.scale


@dataclass
class ProtectWorld:
    emulator: Any
    env: dict[str, str]
    tmp: Path
    clock: ScaledClock
    runtime: Runtime
    runtimes: list[Runtime] = field(default_factory=list)

    def knobs(self, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.emulator.admin.request("PATCH", "/dataprotection", settings)
        return result

    def with_config(self, **changes: Any) -> Runtime:
        """A runtime (same emulator, Azurite tables and clock) for a changed config."""
        config = json.loads(json.dumps(CONFIG))
        for key, value in changes.items():
            if value is None:
                config.pop(key, None)
            elif isinstance(value, dict):
                config[key] = {**config.get(key, {}), **value}
            else:
                config[key] = value
        path = self.tmp / f"config-{len(self.runtimes)}.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        env = {**self.env, "REMEDIATOR_CONFIG_FILE": str(path)}
        runtime = Runtime(Settings.from_env(env), client_options=FAST, clock=self.clock)
        self.runtimes.append(runtime)
        return runtime

    def calls(self) -> list[dict[str, Any]]:
        return list(self.emulator.admin.calls())

    def arm_writes(self, *, path_contains: str = "") -> list[dict[str, Any]]:
        needle = path_contains.lower()
        return [
            c
            for c in self.calls()
            if c["method"].upper() in WRITE_METHODS
            and c["path"].lower().startswith("/subscriptions/")
            and needle in c["path"].lower()
        ]

    def resources(self, type_suffix: str) -> list[dict[str, Any]]:
        data = self.emulator.admin.state(collections=["resources"])["resources"]
        items = data.values() if isinstance(data, dict) else data
        return [r for r in items if str(r.get("type", "")).lower().endswith(type_suffix.lower())]

    def instances(self) -> list[dict[str, Any]]:
        return self.resources("backupvaults/backupinstances")

    def state_of(self, cid: str) -> str | None:
        for instance in self.instances():
            props = instance.get("properties") or {}
            if str((props.get("dataSourceInfo") or {}).get("resourceID", "")).lower() == cid.lower():
                return str(props.get("currentProtectionState"))
        return None

    def role_assignments(self) -> list[dict[str, Any]]:
        data = self.emulator.admin.state(collections=["role_assignments"])["role_assignments"]
        return list(data.values() if isinstance(data, dict) else data)


def drive(
    world: ProtectWorld,
    cid: str,
    *,
    runtime: Runtime | None = None,
    until: Callable[[ReconcileReport], bool] | None = None,
    rounds: int = 80,
    dry_run: bool = False,
) -> list[ReconcileReport]:
    """Reconcile ``cid`` like the queue would: after a ``wait`` outcome, again once its retryAfterSeconds have
    passed on the product's (scaled) clock; until a final outcome (or ``until`` holds)."""
    reconciler = (runtime or world.runtime).reconciler
    reports: list[ReconcileReport] = []
    for _ in range(rounds):
        report = reconciler.reconcile(parse_cluster_id(cid), dry_run=dry_run)
        reports.append(report)
        if until is not None and until(report):
            return reports
        if until is None and report.outcome.kind is not OutcomeKind.WAIT:
            return reports
        retry = report.outcome.retry_after_s or 0.0
        time.sleep(min(retry / world.clock.scale, 2.0))
    last = reports[-1]
    raise AssertionError(f"no final outcome after {rounds} reconciles: {last.outcome} {last.links}")


def link_state(report: ReconcileReport, key: str) -> str | None:
    return next((link["state"] for link in report.links if link["link"] == key), None)


@pytest.fixture
def world(emulator: Any, azurite_env: dict[str, str], tmp_path: Path) -> Iterator[ProtectWorld]:
    emulator.reset(estate())
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
    clock = ScaledClock()
    runtime = Runtime(Settings.from_env(env), client_options=FAST, clock=clock)
    emulator.admin.clear_calls()
    world = ProtectWorld(emulator=emulator, env=env, tmp=tmp_path, clock=clock, runtime=runtime)
    yield world
    runtime.close()
    for extra in world.runtimes:
        extra.close()
