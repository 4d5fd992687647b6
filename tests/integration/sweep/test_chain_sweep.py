"""The sweep and the report over the whole visible chain (issue 17 F3, issue 14 items 1-2), through the real
Resource Graph path (raw pages from ``AzureClients.resource_graph_pipeline()``) against the emulator, the real
``AuthorizationManagementClient`` for grants, and the journal in Azurite.

- A cluster whose extension is Succeeded but whose identity lacks Storage Blob Data Contributor is found by
  the sweep and is not counted protected (it fails on the code before the chain sweep: the inventory kept only
  clusters whose extension was not Succeeded, and the report counted protected on the extension alone).
- A grant above the account (resource group, subscription) satisfies the link, as ``RoleAssigned`` does.
- Backup instances are joined to their cluster by id from ``recoveryservicesresources``.
- Decisions the sweep makes for clusters it does not enqueue are journaled once per change, not per sweep.
- A satisfied cluster is re-verified once in the period, in its slot.
- The sweep names every cluster; the report names every cluster with its state and next action.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from azure.data.tables import TableClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

from emulator.model.ids import deterministic_uuid
from remediator.adapters.clients import AzureClients
from remediator.adapters.graph import ResourceGraphInventory
from remediator.adapters.journal import Journal
from remediator.core.config import RemediatorConfig, parse_config
from remediator.core.coverage import REVERIFY_PERIOD_S
from remediator.core.inventory_query import plan_fleet_inventory
from remediator.core.report_document import ConfigIdentity, from_json, to_json
from remediator.service.report import build_report
from remediator.service.sweep import Sweeper
from tests.integration.sweep.test_inventory import SBDC, extension_principal, grant

pytestmark = pytest.mark.integration

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUB = "5b1c6a1e-3f55-4c22-9a0e-1d2f3a4b5c6d"
STORAGE_SUB = "6c2d7b2f-4a66-4d33-8b1f-2e3a4b5c6d7e"
RG = "rg-aks"
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
STORAGE_RG = f"/subscriptions/{STORAGE_SUB}/resourceGroups/rg-backup"
STORAGE = f"{STORAGE_RG}/providers/Microsoft.Storage/storageAccounts/stbackupeus"
IDENTITY = ConfigIdentity(source="test-config.json", sha256="ab" * 32, mode="install")


def cid(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{CLUSTER_TYPE}/{name}"


GRANTED, UNGRANTED, ABOVE = cid("aks-granted"), cid("aks-ungranted"), cid("aks-granted-rg")
FRESH, STOPPED, NO_MSI, UNTAGGED = cid("aks-fresh"), cid("aks-stopped"), cid("aks-sp"), cid("aks-untagged")


def estate() -> dict[str, Any]:
    tagged = {"Backup": "yes"}
    extensions = [
        {"clusterId": c, "name": "azure-aks-backup", "extensionType": "microsoft.dataprotection.kubernetes"}
        for c in (GRANTED, UNGRANTED, ABOVE)
    ]
    return {
        "tenantId": TENANT,
        "subscriptions": [
            {"subscriptionId": SUB, "displayName": "Payments Production", "resourceGroups": [{"name": RG}]},
            {
                "subscriptionId": STORAGE_SUB,
                "displayName": "Backup Storage",
                "resourceGroups": [{"name": "rg-backup"}],
            },
        ],
        "clusters": [
            {"id": GRANTED, "location": "eastus", "tags": tagged},
            {"id": UNGRANTED, "location": "eastus", "tags": tagged},
            {"id": ABOVE, "location": "eastus", "tags": tagged},
            {"id": FRESH, "location": "eastus", "tags": tagged},
            {"id": STOPPED, "location": "eastus", "tags": tagged, "powerState": "Stopped"},
            {"id": NO_MSI, "location": "eastus", "tags": tagged, "identity": "None"},
            {"id": UNTAGGED, "location": "eastus", "tags": {}},
        ],
        "storageAccounts": [{"id": STORAGE, "location": "eastus"}],
        "extensions": extensions,
        "roleAssignments": [
            grant(STORAGE, extension_principal(GRANTED, "azure-aks-backup")),
            grant("/".join(STORAGE.split("/")[:5]), extension_principal(ABOVE, "azure-aks-backup")),
            # the right principal with another role, and the right role for another principal: neither counts
            grant(
                STORAGE,
                extension_principal(UNGRANTED, "azure-aks-backup"),
                role="acdd72a7-3385-48ef-bd42-f606fba81ae7",
            ),
            grant(STORAGE, deterministic_uuid("someone-else")),
        ],
    }


def config(**overrides: Any) -> RemediatorConfig:
    data: dict[str, Any] = {
        "scope": {"subscriptions": [SUB]},
        "storage": {"eastus": STORAGE},
        "selection": {"include": [{"tag": "backup", "values": ["yes"]}]},
    }
    data.update(overrides)
    return parse_config(data, source="test")


class Queue:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def enqueue_work(
        self,
        cluster_id: Any,
        *,
        attempt: int,
        source: str,
        reason: str,
        correlation_id: str,
        delay_s: float,
        timeout_s: float | None = None,
    ) -> None:  # noqa: E501
        self.items.append((cluster_id.canonical, reason))


@pytest.fixture
def world(emulator: Any) -> Iterator[Any]:
    emulator.reset(estate())
    clients = AzureClients(
        emulator.credential("fleet"), arm_endpoint=emulator.base_url, ca_bundle=str(emulator.ca_bundle)
    )
    yield clients
    clients.close()


def inventory(clients: AzureClients) -> ResourceGraphInventory:
    return ResourceGraphInventory(clients.resource_graph_pipeline(), page_size=5)


def sweep(clients: AzureClients, queue: Queue, **kwargs: Any) -> Any:
    return Sweeper(
        config=kwargs.pop("config", None) or config(), inventory=inventory(clients), work=queue, **kwargs
    )


def test_an_extension_without_its_grant_is_found_by_the_sweep_and_not_counted_protected(
    emulator: Any, world: AzureClients
) -> None:
    queue = Queue()
    summary = sweep(world, queue).run(dry_run=False)

    assert dict(queue.items) == {
        UNGRANTED: "sweep:storage-access-granted-missing",
        FRESH: "sweep:extension-installed-missing",
    }
    assert summary.satisfied == 2  # aks-granted (account scope) and aks-granted-rg (resource-group scope)
    assert summary.blocked == 1 and summary.deferred == 1
    assert summary.by_need == {"extension-installed:missing": 1, "storage-access-granted:missing": 1}

    document = build_report(config(), inventory=inventory(world), identity=IDENTITY)
    states = {c.id: c.state for c in document.clusters}
    assert states[UNGRANTED] == "notStarted" and states[GRANTED] == states[ABOVE] == "protected"
    assert document.totals.extension_ready == 3 and document.totals.protected == 2

    # the grant arrives (under any name, through the real SDK): the link is satisfied
    principal = extension_principal(UNGRANTED, "azure-aks-backup")
    auth = AuthorizationManagementClient(emulator.credential(), STORAGE_SUB, **emulator.client_kwargs())
    auth.role_assignments.create(
        STORAGE,
        deterministic_uuid("a person's grant"),
        RoleAssignmentCreateParameters(
            role_definition_id=f"/subscriptions/{STORAGE_SUB}/providers/Microsoft.Authorization/roleDefinitions/{SBDC}",
            principal_id=principal,
        ),
    )
    queue = Queue()
    sweep(world, queue).run(dry_run=False)
    assert dict(queue.items) == {FRESH: "sweep:extension-installed-missing"}
    document = build_report(config(), inventory=inventory(world), identity=IDENTITY)
    assert {c.id: c.state for c in document.clusters}[UNGRANTED] == "protected"
    assert document.totals.protected == 3


def test_the_report_names_every_cluster_with_state_rule_blockers_and_next_action(
    emulator: Any, world: AzureClients
) -> None:
    document = build_report(config(), inventory=inventory(world), identity=IDENTITY)
    assert from_json(to_json(document)) == document  # the validator holds the arithmetic
    rows = {c.id: c for c in document.clusters}
    assert set(rows) == {GRANTED, UNGRANTED, ABOVE, FRESH, STOPPED, NO_MSI, UNTAGGED}
    sp = rows[NO_MSI]
    assert sp.state == "blocked" and sp.subscription_name == "Payments Production"
    assert [b.code for b in sp.blockers] == ["no-managed-identity"] and "managed identity" in sp.blockers[
        0
    ].remedy
    assert sp.next_action.startswith("a person must act")
    assert rows[STOPPED].state == "waiting" and "az aks start" in rows[STOPPED].next_action
    assert rows[UNTAGGED].state == "notSelected" and rows[UNTAGGED].reason == "not-included"
    rule = rows[GRANTED].matched_rule
    assert rule is not None and (rule.kind, rule.tag, rule.value) == ("include", "backup", "yes")
    assert rows[FRESH].state == "notStarted" and "extension-installed" in rows[FRESH].next_action
    assert [g.label for g in document.groups.by_subscription] == ["Payments Production"]
    assert [g.key for g in document.groups.by_rule] == ["backup=yes"]
    [headroom] = document.role_assignment_headroom
    assert headroom.subscription_id == STORAGE_SUB and headroom.subscription_name == "Backup Storage"
    # needed: aks-ungranted, aks-fresh and aks-stopped (it will need its grant once running); not aks-sp
    assert (headroom.existing, headroom.needed, headroom.limit, headroom.headroom) == (4, 3, 4000, 3996)
    assert not headroom.overflow


def test_the_sweep_names_every_cluster_it_looked_at(emulator: Any, world: AzureClients) -> None:
    summary = sweep(world, Queue(), prefilter_tags=False).run(dry_run=True, list_clusters=True)
    listed = {c["id"]: c for c in summary.to_json(clusters=True)["clusters"]}
    assert set(listed) == {GRANTED, UNGRANTED, ABOVE, FRESH, STOPPED, NO_MSI, UNTAGGED}
    assert listed[UNGRANTED]["decision"] == "would-enqueue"
    assert listed[UNGRANTED]["workReason"] == "sweep:storage-access-granted-missing"
    assert listed[NO_MSI]["decision"] == "blocked" and listed[NO_MSI]["blockers"][0]["remedy"]
    assert listed[STOPPED]["decision"] == "deferred"
    assert listed[UNTAGGED]["decision"] == "not-selected" and listed[UNTAGGED]["reason"] == "not-included"
    assert listed[GRANTED]["decision"] == "nothing-to-do" and listed[GRANTED]["state"] == "protected"
    for row in listed.values():
        assert row["subscriptionName"] == "Payments Production"
        assert row["resourceGroup"] == RG and row["region"] == "eastus" and row["nextAction"]
    assert "clusters" not in summary.to_json()  # the journaled summary never carries the list


def test_backup_instances_are_joined_to_their_cluster_by_id(emulator: Any) -> None:
    data = estate()
    vault = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.DataProtection/backupVaults/bv-eus"
    data["resources"] = [
        {
            "id": f"{vault}/backupInstances/{name}",
            "name": name,
            "type": "Microsoft.DataProtection/backupVaults/backupInstances",
            "properties": {
                "dataSourceInfo": {
                    "resourceID": cluster.lower(),
                    "datasourceType": "Microsoft.ContainerService/managedClusters",
                },
                "currentProtectionState": state,
                **(
                    {"protectionErrorDetails": {"code": "UserErrorSnapshotResourceGroupHasLocks"}}
                    if state == "ProtectionError"
                    else {}
                ),
            },
        }
        for name, cluster, state in (
            ("bi-granted", GRANTED, "ProtectionConfigured"),
            ("bi-ungranted", UNGRANTED, "ProtectionError"),
        )
    ]
    emulator.reset(data)
    clients = AzureClients(
        emulator.credential("bi"), arm_endpoint=emulator.base_url, ca_bundle=str(emulator.ca_bundle)
    )
    plan = plan_fleet_inventory(config(), prefilter_tags=False, backup_instances=True)
    rows = {r.cluster_id.lower(): r for r in inventory(clients).iter_rows(plan)}  # ARM says "resourcegroups"
    clients.close()
    assert [(b.protection_state, b.protected) for b in rows[GRANTED.lower()].backup_instances] == [
        ("ProtectionConfigured", True)
    ]
    [errored] = rows[UNGRANTED.lower()].backup_instances
    assert errored.error_code == "UserErrorSnapshotResourceGroupHasLocks" and not errored.protected
    assert rows[FRESH.lower()].backup_instances == () and rows[FRESH.lower()].backup_instances_known


@pytest.fixture
def journal(azurite: Any) -> Journal:
    table = TableClient.from_connection_string(azurite.connection_string, azurite.unique_name("journal"))
    return Journal(table)


def history_outcomes(journal: Journal, cluster: str) -> list[str]:
    return [r.outcome.kind.value for r in journal.history(cluster)]


def test_decisions_are_journaled_once_per_change_not_once_per_sweep(
    emulator: Any, world: AzureClients, journal: Journal
) -> None:
    now = [1_000_000.0]
    first = sweep(world, Queue(), decisions=journal, wall_clock=lambda: now[0]).run(dry_run=False)
    # blocked, deferred and satisfied clusters (the untagged one is left out by the tag prefilter)
    assert first.decisions_journaled == 4
    assert history_outcomes(journal, NO_MSI) == ["gave_up"]
    assert history_outcomes(journal, STOPPED) == ["wait"]
    assert "cluster-stopped" in journal.history(STOPPED)[0].outcome.why
    assert journal.history(UNGRANTED) == []  # enqueued: its reconcile journals it
    assert journal.latest(NO_MSI) is None  # a sweep decision never replaces a reconcile's latest row

    now[0] += 60
    second = sweep(world, Queue(), decisions=journal, wall_clock=lambda: now[0]).run(dry_run=False)
    assert second.decisions_journaled == 0 and second.decision_journal_failures == 0
    assert history_outcomes(journal, NO_MSI) == ["gave_up"]

    emulator.admin.request("PATCH", "/clusters", {"id": STOPPED, "powerState": "Running"})
    now[0] += 60
    queue = Queue()
    third = sweep(world, queue, decisions=journal, wall_clock=lambda: now[0]).run(dry_run=False)
    assert STOPPED in dict(queue.items)  # running again: enqueued, journaled by its reconcile
    assert third.decisions_journaled == 0 and history_outcomes(journal, STOPPED) == ["wait"]
    emulator.admin.request("PATCH", "/clusters", {"id": STOPPED, "powerState": "Stopped"})
    now[0] += 60
    fourth = sweep(world, Queue(), decisions=journal, wall_clock=lambda: now[0]).run(dry_run=False)
    assert fourth.decisions_journaled == 1 and history_outcomes(journal, STOPPED) == ["wait", "wait"]


def test_a_satisfied_cluster_is_reverified_once_per_period(
    emulator: Any, world: AzureClients, journal: Journal
) -> None:
    start, period = 5_000_000.0, 4 * 3600.0
    queue = Queue()
    sweep(world, queue, decisions=journal, wall_clock=lambda: start, reverify_period_s=period).run(
        dry_run=False
    )
    reverified: list[str] = []
    for hour in range(1, 9):
        queue = Queue()
        at = start + hour * 3600
        sweep(world, queue, decisions=journal, wall_clock=lambda t=at: t, reverify_period_s=period).run(
            dry_run=False
        )
        reverified += [c for c, reason in queue.items if reason == "sweep:reverify"]
    # two periods of hourly sweeps: each of the two satisfied clusters exactly twice
    assert sorted(reverified) == sorted([GRANTED, GRANTED, ABOVE, ABOVE])
    # no journal (the CLI without storage): nothing is re-verified
    queue = Queue()
    sweep(world, queue, wall_clock=lambda: start + 10 * REVERIFY_PERIOD_S).run(dry_run=False)
    assert [c for c, reason in queue.items if reason == "sweep:reverify"] == []


def test_the_report_shows_who_gave_up_and_why_from_the_journal(
    emulator: Any, world: AzureClients, journal: Journal
) -> None:
    from remediator.core.outcomes import Outcome, ReconcileReport

    journal.record(
        ReconcileReport(
            cluster_id=FRESH,
            decision=None,
            outcome=Outcome.gave_up("403 AuthorizationFailed on extensions/write"),
        )
    )
    journal.record(ReconcileReport(cluster_id=GRANTED, decision=None, outcome=Outcome.gave_up("old give-up")))
    document = build_report(config(), inventory=inventory(world), identity=IDENTITY, outcomes=journal)
    rows = {c.id: c for c in document.clusters}
    assert (
        rows[FRESH].state == "gaveUp" and rows[FRESH].cause == "403 AuthorizationFailed on extensions/write"
    )
    assert rows[GRANTED].state == "protected"  # its chain is whole now, whatever an old give-up said
    assert {c.id for c in document.needs_a_human} == {NO_MSI, FRESH}
    assert json.loads(to_json(document))["totals"]["states"]["gaveUp"] == 1
