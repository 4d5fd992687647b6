"""Protect mode's pure parts, without a network: the config, the bodies and names, the error -> action table,
the journal history, every branch of the chain's links (budgets, backoff, repairs, blockers, leave-alone),
placement rules and the role-assignment demand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from remediator.core.catalog import (
    CONTRIBUTOR,
    DATA_OPERATOR_FOR_MANAGED_DISKS,
    DISK_SNAPSHOT_CONTRIBUTOR,
    READER,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
    TRUSTED_ACCESS_BACKUP_ROLE,
)
from remediator.core.config import parse_config
from remediator.core.decision import decide
from remediator.core.errors import UserInputError
from remediator.core.ids import parse_cluster_id, parse_resource_group_id, parse_resource_id
from remediator.core.outcomes import Action, ActionStatus, Outcome, OutcomeKind, ReconcileReport, WriteKind
from remediator.core.placement import placement_problems
from remediator.core.plan import PROTECT, chain_for
from remediator.core.plan.observed import (
    BackupInstancesRead,
    BackupInstanceView,
    BackupPolicyRead,
    BackupPolicyView,
    BackupVaultRead,
    ExtensionRead,
    ExtensionView,
    JournaledValidation,
    LinkEpisode,
    LocksRead,
    LockView,
    Observed,
    ProtectionHistory,
    ProtectionHistoryRead,
    ReinstallCountRead,
    ResourceGroupRead,
    ResourceGroupView,
    RoleAssignmentsRead,
    RoleAssignmentView,
    StorageAccountRead,
    StorageView,
    TrustedAccessBindingsRead,
    TrustedAccessBindingView,
    ValidationRead,
    ValidationView,
    VaultView,
)
from remediator.core.plan.planner import plan
from remediator.core.plan.preflight_check import PREFLIGHT_LINK
from remediator.core.plan.protect import BUDGETS_S, PROPAGATION_RETRY_S, protection_history
from remediator.core.plan.requirement import LINK_STATES, Mode, PlanContext, PlanningOptions
from remediator.core.plan.writes import (
    BindTrustedAccess,
    CreateBackupInstance,
    SyncBackupInstance,
    ValidateForBackup,
)
from remediator.core.protection import (
    BackupScope,
    VaultPreset,
    backup_instance_body,
    backup_instance_name,
    policy_body,
    policy_uses_vault_tier,
    trusted_access_binding_name,
    vault_body,
)
from remediator.core.protection_errors import ERROR_ACTIONS, Repair, action_for
from remediator.core.role_demand import DemandCluster, role_assignment_demand
from remediator.core.snapshot import ClusterSnapshot

SUB = "00000000-0000-0000-0000-000000000001"
OTHER_SUB = "00000000-0000-0000-0000-000000000002"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
CLUSTER_ID = parse_cluster_id(CLUSTER)
SA = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.Storage/storageAccounts/sabackup"
SA_ID = parse_resource_id(SA)
VAULT = (
    f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/"
    "AKSAzureBackup-eastus"
)
VAULT_ID = parse_resource_id(VAULT)
POLICY_ID = parse_resource_id(VAULT + "/backupPolicies/AKSBackupPolicy-Week")
GROUP_ID = parse_resource_group_id(f"/subscriptions/{SUB}/resourceGroups/AKSAzureBackup_eastus")
NOW = 1_800_000_000.0
VP, CP, EP = "vault-principal", "cluster-principal", "extension-principal"

BASE: dict[str, Any] = {
    "scope": {"subscriptions": [SUB]},
    "storage": {"eastus": SA},
    "remediation": {"mode": "protect"},
}
CONFIG = parse_config(BASE)
SNAPSHOT = ClusterSnapshot.from_arm(
    {
        "id": CLUSTER,
        "location": "eastus",
        "identity": {"type": "SystemAssigned", "principalId": CP},
        "properties": {
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "agentPoolProfiles": [{"name": "np", "osType": "Linux", "vmSize": "Standard_D4s_v5", "count": 1}],
        },
    }
)
DECISION = decide(SNAPSHOT, CONFIG)


def _options(config=CONFIG) -> PlanningOptions:
    return PlanningOptions.from_config(config, tenant_id="t")


def _grant(principal: str, role: str, scope) -> RoleAssignmentView:
    return RoleAssignmentView(scope, principal, role)


VAULT_OK = VaultView(VAULT_ID, "eastus", "Succeeded", VP, "GeoRedundant")
POLICY_OK = BackupPolicyView(POLICY_ID, False, ("Microsoft.ContainerService/managedClusters",))
GROUP_OK = ResourceGroupView(GROUP_ID, "eastus")


def world(
    *,
    instances: tuple[BackupInstanceView, ...] = (),
    history: ProtectionHistory | None = None,
    vault: VaultView | None = VAULT_OK,
    policy: BackupPolicyView | None = POLICY_OK,
    group: ResourceGroupView | None = GROUP_OK,
    bindings: tuple[TrustedAccessBindingView, ...] = (
        TrustedAccessBindingView("tarb-x", VAULT, (TRUSTED_ACCESS_BACKUP_ROLE,), "Succeeded"),
    ),
    missing_roles: tuple[str, ...] = (),
    validation: ValidationView | None = None,
    locks: tuple[LockView, ...] = (),
) -> Observed:
    """Every read protect mode asks for, answered as a fully configured cluster unless told otherwise."""
    found = Observed(SNAPSHOT)
    found.record(StorageAccountRead(SA_ID), StorageView(SA_ID, "eastus", "https://sa.blob.core.windows.net/"))
    found.record(ExtensionRead(CLUSTER_ID), ExtensionView("azure-aks-backup", "Succeeded", EP))
    found.record(ReinstallCountRead(CLUSTER_ID), 0)
    found.record(BackupInstancesRead(CLUSTER_ID), instances)
    history = history or ProtectionHistory(journaled=True, now=NOW)
    found.record(ProtectionHistoryRead(CLUSTER_ID), history)
    found.record(BackupVaultRead(VAULT_ID), vault)
    found.record(BackupPolicyRead(POLICY_ID), policy)
    found.record(ResourceGroupRead(GROUP_ID), group)
    found.record(TrustedAccessBindingsRead(CLUSTER_ID), bindings)
    found.record(LocksRead(GROUP_ID), locks)
    roles = {
        "storage-access-granted": (EP, STORAGE_BLOB_DATA_CONTRIBUTOR, SA_ID),
        "vault-reader-on-cluster": (VP, READER, CLUSTER_ID),
        "vault-reader-on-snapshot-rg": (VP, READER, GROUP_ID),
        "vault-disk-snapshot-contributor": (VP, DISK_SNAPSHOT_CONTRIBUTOR, GROUP_ID),
        "vault-disk-data-operator": (VP, DATA_OPERATOR_FOR_MANAGED_DISKS, GROUP_ID),
        "vault-blob-reader-on-storage": (VP, STORAGE_BLOB_DATA_READER, SA_ID),
        "cluster-contributor-on-snapshot-rg": (CP, CONTRIBUTOR, GROUP_ID),
    }
    by_read: dict[RoleAssignmentsRead, list[RoleAssignmentView]] = {}
    subscription = parse_resource_id(f"/subscriptions/{SUB}")
    for key, (principal, role, scope) in roles.items():
        # the vault's and the cluster's assignments are read once per subscription (principalId filter)
        read = RoleAssignmentsRead(scope if principal == EP else subscription, principal)
        by_read.setdefault(read, [])
        if key not in missing_roles:
            by_read[read].append(_grant(principal, role, scope))
    for read, views in by_read.items():
        found.record(read, tuple(views))
    if history.validation is not None:
        found.record(ValidationRead(history.validation.vault, history.validation.operation_id), validation)
    return found


def step(found: Observed, *, options: PlanningOptions | None = None):
    ctx = PlanContext(SNAPSHOT, DECISION, options or _options())
    return plan(PROTECT, ctx, found)


def states(result) -> dict[str, str]:
    return {link.key: link.state for link in result.links}


def ours(state: str = "ProtectionConfigured", code: str = "", name: str = "aks-bi") -> BackupInstanceView:
    return BackupInstanceView(name, VAULT_ID, state, "Succeeded", code, f"{code} message" if code else "")


# --------------------------------------------------------------------------------------------- config


def test_protect_defaults_are_the_clis_names_next_to_the_storage_account():
    targets = CONFIG.targets_for("East US")
    assert targets is not None
    assert targets.vault_id("eastus") == VAULT_ID
    assert targets.policy_id("eastus") == POLICY_ID
    assert targets.snapshot_group_name("eastus") == "AKSAzureBackup_eastus"
    chain = chain_for(Mode.PROTECT)  # headed by preflight, keeping protect mode's short deferred wait
    assert chain.requirements == (PREFLIGHT_LINK, *PROTECT.requirements)
    assert chain.deferred_wait_s == PROTECT.deferred_wait_s < 30
    assert _options().chain_mode is Mode.PROTECT
    audit = parse_config({**BASE, "remediation": {"mode": "audit", "auditPlans": "protect"}})
    assert _options(audit).chain_mode is Mode.PROTECT


@pytest.mark.parametrize(
    ("targets", "field", "text"),
    [
        ({"backupVault": "/subscriptions/x"}, "regionTargets.eastus.backupVault", "not a GUID"),
        ({"backupVault": {"redundancy": []}}, "regionTargets.eastus.backupVault.redundancy", "empty list"),
        (
            {"backupVault": {"redundancy": ["LocallyRedundant", "LocallyRedundant"]}},
            "regionTargets.eastus.backupVault.redundancy",
            "twice",
        ),
        ({"backupPolicy": {"strategy": "Year"}}, "regionTargets.eastus.backupPolicy.strategy", "Week"),
        (
            {"backupVault": VAULT, "backupPolicy": VAULT.replace("eastus", "other") + "/backupPolicies/p"},
            "regionTargets.eastus.backupPolicy",
            "must be in the region's backup vault",
        ),
        (
            {"snapshotResourceGroup": {"name": "bad/name"}},
            "regionTargets.eastus.snapshotResourceGroup.name",
            "",
        ),
    ],
)
def test_protect_targets_name_the_field(targets, field, text):
    with pytest.raises(UserInputError) as raised:
        parse_config(
            {**BASE, "storage": None, "regionTargets": {"eastus": {"storageAccount": SA, **targets}}} | {}
        )
    assert raised.value.field == field and text in raised.value.message


def test_namespaces_both_included_and_excluded_are_refused():
    with pytest.raises(UserInputError) as raised:
        parse_config({**BASE, "protection": {"includedNamespaces": ["a"], "excludedNamespaces": ["a"]}})
    assert raised.value.field == "protection.excludedNamespaces"


def _placement(**changes: Any):
    data = {**BASE, **changes}
    return placement_problems(parse_config({k: v for k, v in data.items() if v is not None}))


def test_placement_refuses_a_snapshot_group_id_other_subscriptions_could_need():
    group = f"/subscriptions/{SUB}/resourceGroups/snap"
    targets = {"eastus": {"storageAccount": SA, "snapshotResourceGroup": group}}
    assert _placement(storage=None, regionTargets=targets) == []
    problems = _placement(storage=None, regionTargets=targets, scope={"subscriptions": [SUB, OTHER_SUB]})
    errors = [p for p in problems if p.severity == "error"]
    assert [p.field for p in errors] == ["regionTargets.eastus.snapshotResourceGroup"]
    assert OTHER_SUB in errors[0].message and "{name:" in errors[0].message
    warnings = [p for p in problems if p.severity == "warning"]  # the storage account, likewise
    assert [p.field for p in warnings] == ["regionTargets.eastus.storageAccount"]
    mg = _placement(storage=None, regionTargets=targets, scope={"managementGroups": ["mg-prod"]})
    assert "management group mg-prod" in [p for p in mg if p.severity == "error"][0].message


def test_placement_refuses_the_vault_tier_where_the_region_has_none_and_regions_without_backup():
    sa = SA.replace("sabackup", "sapol")
    targets = {"polandcentral": {"storageAccount": sa, "backupPolicy": {"strategy": "DisasterRecovery"}}}
    problems = _placement(storage=None, regionTargets=targets)
    assert [p.field for p in problems] == ["regionTargets.polandcentral.backupPolicy.strategy"]
    assert "DppUserErrorVaultTierPolicyNotSupported" in problems[0].message
    assert _placement(storage=None, regionTargets={**targets, "polandcentral": {"storageAccount": sa}}) == []
    nowhere = _placement(storage={"qatarcentral": sa})
    assert [p.field for p in nowhere] == ["storage.qatarcentral"]
    assert (
        placement_problems(
            parse_config({**BASE, "remediation": {"mode": "install"}, "storage": {"qatarcentral": sa}})
        )
        == []
    )


# --------------------------------------------------------------------------------------------- bodies, names


def test_vault_body_enables_cross_region_restore_only_with_geo_redundancy():
    preset = VaultPreset(("GeoRedundant", "LocallyRedundant"), True, 14)
    geo = vault_body("East US", "GeoRedundant", preset)
    assert geo["identity"] == {"type": "SystemAssigned"} and geo["location"] == "eastus"
    assert geo["properties"]["featureSettings"]["crossRegionRestoreSettings"] == {"state": "Enabled"}
    assert geo["properties"]["securitySettings"]["softDeleteSettings"] == {
        "state": "On",
        "retentionDurationInDays": 14.0,
    }
    local = vault_body("eastus", "LocallyRedundant", preset)
    assert "crossRegionRestoreSettings" not in local["properties"]["featureSettings"]
    assert local["properties"]["storageSettings"] == [
        {"datastoreType": "VaultStore", "type": "LocallyRedundant"}
    ]


@pytest.mark.parametrize(
    ("strategy", "days", "vault"),
    [("Week", "P7D", False), ("Month", "P30D", False), ("DisasterRecovery", "P7D", True)],
)
def test_policy_presets_are_the_clis(strategy, days, vault):
    body = policy_body(strategy)["properties"]
    assert body["datasourceTypes"] == ["Microsoft.ContainerService/managedClusters"]
    rules = {r["name"]: r for r in body["policyRules"]}
    assert rules["Default"]["lifecycles"][0]["deleteAfter"]["duration"] == days
    assert rules["BackupDaily"]["trigger"]["schedule"]["repeatingTimeIntervals"] == [
        "R/2024-01-01T00:00:00+00:00/P1D"
    ]
    assert ("Vault" in rules) is vault and policy_uses_vault_tier(body) is vault
    with pytest.raises(ValueError):
        policy_body("Year")


def test_the_backup_instance_body_has_the_datasource_set_and_the_scope():
    scope = BackupScope(included_namespaces=("app",), excluded_namespaces=("tmp",), label_selectors=("a=b",))
    body = backup_instance_body(
        cluster_id=CLUSTER_ID,
        cluster_name="aks",
        location="East US",
        policy=POLICY_ID,
        snapshot_group=GROUP_ID,
        scope=scope,
    )["properties"]
    assert body["dataSourceSetInfo"]["objectType"] == "DatasourceSet"
    assert body["dataSourceInfo"]["resourceID"] == body["dataSourceSetInfo"]["resourceID"] == CLUSTER
    assert body["friendlyName"] == "aks\\fullbackup"
    params = body["policyInfo"]["policyParameters"]["backupDatasourceParametersList"][0]
    assert params["includedNamespaces"] == ["app"] and params["excludedNamespaces"] == ["tmp"]
    assert params["labelSelectors"] == ["a=b"] and params["includedVolumeTypes"] == ["AzureDisk"]
    assert params["snapshotVolumes"] is True and params["includeClusterScopeResources"] is True
    store = body["policyInfo"]["policyParameters"]["dataStoreParametersList"][0]
    assert store["resourceGroupId"] == GROUP_ID.canonical and store["dataStoreType"] == "OperationalStore"


def test_names_are_deterministic_and_valid():
    name = trusted_access_binding_name(VAULT_ID)
    assert name == trusted_access_binding_name(
        parse_resource_id(VAULT.upper().replace("SUBSCRIPTIONS", "subscriptions"))
    )
    assert len(name) <= 24 and name.startswith("tarb-") and all(c.isalnum() or c == "-" for c in name)
    bi = backup_instance_name("aks", CLUSTER_ID)
    assert bi == backup_instance_name("aks", parse_cluster_id(CLUSTER.lower())) and bi.startswith("aks-")


# --------------------------------------------------------------------------------------------- error table


def test_every_code_has_a_repair_a_remedy_and_a_source():
    assert len(ERROR_ACTIONS) >= 15
    for row in ERROR_ACTIONS.values():
        assert isinstance(row.repair, Repair) and row.remedy and row.source[:2] in ("D:", "E:", "A:")
        assert action_for(row.code.upper()) is row
    unknown = action_for("SomethingNew")
    assert unknown.repair is Repair.RESYNC and unknown.code == "SomethingNew"
    assert action_for("UserErrorSnapshotResourceGroupHasLocks").repair is Repair.HUMAN
    assert action_for("UserErrorDppDatasourceAlreadyProtected").repair is Repair.ELSEWHERE


# --------------------------------------------------------------------------------------------- history


def _report(at: float, *, actions=(), links=()) -> ReconcileReport:
    iso = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    return ReconcileReport(
        CLUSTER, None, Outcome.wait(1, "x"), actions=tuple(actions), started_at=iso, links=tuple(links)
    )


def _action(kind: WriteKind, *, detail: str = "", link: str = "", target: str = VAULT) -> Action:
    return Action(kind, target, ActionStatus.DONE, detail, link)


def test_protection_history_reads_validations_changes_repairs_and_episodes():
    reports = [  # newest first
        _report(
            NOW - 10,
            actions=[_action(WriteKind.VALIDATE_FOR_BACKUP, detail="operation op-2")],
            links=[{"link": "backup-validated", "state": "missing"}],
        ),
        _report(
            NOW - 40,
            actions=[_action(WriteKind.VALIDATE_FOR_BACKUP, detail="operation op-1")],
            links=[{"link": "backup-validated", "state": "waiting"}],
        ),
        _report(NOW - 60, actions=[_action(WriteKind.ASSIGN_ROLE, link="vault-reader-on-cluster")]),
        _report(
            NOW - 90,
            actions=[_action(WriteKind.SYNC_BACKUP_INSTANCE, link="protection-configured")],
            links=[{"link": "backup-validated", "state": "satisfied"}],
        ),
        _report(NOW - 100, links=[{"link": "protection-configured", "state": "satisfied"}]),
        _report(NOW - 200, actions=[_action(WriteKind.SYNC_BACKUP_INSTANCE, link="protection-configured")]),
    ]
    history = protection_history(reports, now=NOW)
    assert history.validation == JournaledValidation("op-2", VAULT_ID, NOW - 10)
    assert history.last_change_at == NOW - 60 and history.validations_since_change == 2
    assert history.fresh_validation is not None
    assert history.repairs == 1 and history.configured_at == NOW - 100
    assert history.episodes["backup-validated"] == LinkEpisode(since=NOW - 40, reports=2)
    change = _report(NOW - 5, actions=[_action(WriteKind.ASSIGN_ROLE, link="vault-reader-on-cluster")])
    stale = protection_history([change, *reports], now=NOW)  # a change after the newest validation
    assert stale.fresh_validation is None


# --------------------------------------------------------------------------------------------- the chain


def test_a_converged_cluster_is_done_with_nothing_to_write():
    result = step(world(instances=(ours(),)))
    assert result.outcome.kind is OutcomeKind.DONE and result.writes == ()
    assert states(result)["backup-validated"] == "not-needed"
    assert states(result)["vault-disk-data-operator"] == "not-needed"


def test_another_vaults_instance_stops_the_chain_without_writes():
    theirs = replace(ours(), vault=parse_resource_id(VAULT.replace("AKSAzureBackup-eastus", "theirs")))
    result = step(world(instances=(theirs,), vault=None, group=None, bindings=()))
    assert result.outcome.kind is OutcomeKind.DONE and result.writes == ()
    assert (
        "protected elsewhere" in result.outcome.why
        and states(result)["protection-not-elsewhere"] == "superseded"
    )


def test_every_reported_link_state_is_a_documented_one_with_a_next_step():
    theirs = replace(ours(), vault=parse_resource_id(VAULT.replace("AKSAzureBackup-eastus", "theirs")))
    seen: set[str] = set()
    for found in (
        world(instances=(ours(),)),
        world(instances=(theirs,), vault=None, group=None, bindings=()),
        world(bindings=(), vault=None),
        world(instances=(ours("ProtectionError", "UserErrorMissingMSIPermissionsOnSnapshotResourceGroup"),)),
    ):
        for link in step(found).links:
            data = link.to_json()
            assert data["state"] in LINK_STATES and data["next"], data
            seen.add(data["state"])
    assert {"satisfied", "not-needed", "missing", "deferred", "superseded"} <= seen


def test_missing_prerequisites_are_written_together_and_validation_waits():
    result = step(
        world(bindings=(), missing_roles=("vault-reader-on-cluster", "cluster-contributor-on-snapshot-rg"))
    )
    assert sorted(w.kind for w in result.writes) == [
        WriteKind.ASSIGN_ROLE,
        WriteKind.ASSIGN_ROLE,
        WriteKind.BIND_TRUSTED_ACCESS,
    ]
    assert states(result)["backup-validated"] == "deferred"
    assert result.outcome.kind is OutcomeKind.WAIT


def test_no_instance_and_no_validation_validates_then_creates():
    first = step(world())
    (write,) = first.writes
    assert isinstance(write, ValidateForBackup) and write.attempt == 1
    validation = JournaledValidation("op-1", VAULT_ID, NOW - 5)
    history = ProtectionHistory(journaled=True, now=NOW, validation=validation, validations_since_change=1)
    running = step(world(history=history, validation=ValidationView("op-1", "Inprogress")))
    assert running.writes == () and running.outcome.kind is OutcomeKind.WAIT
    done = step(world(history=history, validation=ValidationView("op-1", "Succeeded")))
    (create,) = done.writes
    assert isinstance(create, CreateBackupInstance) and create.name == backup_instance_name("aks", CLUSTER_ID)


def test_a_propagation_failure_is_validated_again_after_backoff_then_given_up():
    failed = ValidationView(
        "op-1", "Failed", "UserErrorTrustedAccessGatewayReturnedForbidden", "binding missing"
    )
    early = ProtectionHistory(
        journaled=True,
        now=NOW,
        validation=JournaledValidation("op-1", VAULT_ID, NOW - 3),
        validations_since_change=1,
    )
    waiting = step(world(history=early, validation=failed))
    assert waiting.writes == () and waiting.outcome.retry_after_s == pytest.approx(PROPAGATION_RETRY_S[0] - 3)
    assert "waiting out propagation" in waiting.outcome.why
    later = replace(early, validation=JournaledValidation("op-1", VAULT_ID, NOW - 30))
    (again,) = step(world(history=later, validation=failed)).writes
    assert isinstance(again, ValidateForBackup) and again.attempt == 2
    episode = {"backup-validated": LinkEpisode(since=NOW - BUDGETS_S["backup-validated"] - 1, reports=40)}
    spent = replace(later, episodes=episode)
    gave_up = step(world(history=spent, validation=failed))
    assert gave_up.outcome.kind is OutcomeKind.GAVE_UP and gave_up.outcome.why.startswith(
        "backup-validated: gave up"
    )


def test_a_human_code_at_validation_is_a_blocker():
    failed = ValidationView("op-1", "Failed", "UserErrorPVSnapshotDisallowedByPolicy", "policy says no")
    history = ProtectionHistory(
        journaled=True,
        now=NOW,
        validation=JournaledValidation("op-1", VAULT_ID, NOW - 30),
        validations_since_change=1,
    )
    result = step(world(history=history, validation=failed))
    assert result.outcome.kind is OutcomeKind.GAVE_UP and result.outcome.why.startswith(
        "UserErrorPVSnapshotDisallowedByPolicy:"
    )


def test_without_a_journal_protect_mode_says_so():
    result = step(world(history=ProtectionHistory(journaled=False)))
    assert result.outcome.kind is OutcomeKind.GAVE_UP and "journal" in result.outcome.why


@pytest.mark.parametrize(
    "code",
    ["UserErrorMissingRequiredPermissions", "SomethingNew", "UserErrorKubernetesBackupExtensionHasErrors"],
)
def test_an_instance_in_error_is_re_synced_with_backoff(code):
    result = step(world(instances=(ours("ProtectionError", code),)))
    (sync,) = result.writes
    assert isinstance(sync, SyncBackupInstance) and sync.repair == 1 and sync.code == code
    history = ProtectionHistory(journaled=True, now=NOW, last_change_at=NOW - 5, repairs=1)
    backing_off = step(world(instances=(ours("ProtectionError", code),), history=history))
    assert backing_off.writes == () and backing_off.outcome.retry_after_s == pytest.approx(25.0)


def test_a_wrong_body_is_put_again():
    (write,) = step(
        world(instances=(ours("ProtectionError", "ScenarioPluginInvalidWorkflowDataRequest"),))
    ).writes
    assert isinstance(write, CreateBackupInstance) and write.repair == 1 and write.name == "aks-bi"


def test_repairs_stop_at_the_limit_for_non_propagation_codes_and_at_the_budget_for_the_others():
    history = ProtectionHistory(journaled=True, now=NOW, last_change_at=NOW - 999, repairs=3)
    limited = step(world(instances=(ours("ProtectionError", "SomethingNew"),), history=history))
    assert (
        limited.outcome.kind is OutcomeKind.GAVE_UP
        and "gave up after 3 repair(s) (limit 3)" in limited.outcome.why
    )
    patient = step(
        world(instances=(ours("ProtectionError", "UserErrorMissingRequiredPermissions"),), history=history)
    )
    assert isinstance(patient.writes[0], SyncBackupInstance)
    spent = replace(
        history,
        episodes={"protection-configured": LinkEpisode(NOW - BUDGETS_S["protection-configured"] - 1, 50)},
    )
    budget = step(
        world(instances=(ours("ProtectionError", "UserErrorMissingRequiredPermissions"),), history=spent)
    )
    assert (
        budget.outcome.kind is OutcomeKind.GAVE_UP
        and "protection-configured: gave up after" in budget.outcome.why
    )


def test_a_lock_names_itself_and_is_repaired_once_gone():
    lock = LockView(f"{GROUP_ID.canonical}/providers/Microsoft.Authorization/locks/keep", "CanNotDelete")
    locked = step(
        world(instances=(ours("ProtectionError", "UserErrorSnapshotResourceGroupHasLocks"),), locks=(lock,))
    )
    assert (
        locked.outcome.kind is OutcomeKind.GAVE_UP and "remove lock keep (CanNotDelete)" in locked.outcome.why
    )
    gone = step(world(instances=(ours("ProtectionError", "UserErrorSnapshotResourceGroupHasLocks"),)))
    assert isinstance(gone.writes[0], SyncBackupInstance)


def test_trusted_access_reuse_limit_and_missing_role():
    foreign = tuple(
        TrustedAccessBindingView(f"b{i}", f"/subscriptions/{SUB}/x{i}", ("r",), "Succeeded") for i in range(8)
    )
    full = step(world(bindings=foreign))
    assert full.outcome.kind is OutcomeKind.GAVE_UP and full.outcome.why.startswith("trusted-access-limit:")
    lacking = step(world(bindings=(TrustedAccessBindingView("mine", VAULT, ("other/role",), "Succeeded"),)))
    (bind,) = lacking.writes
    assert (
        isinstance(bind, BindTrustedAccess)
        and bind.name == "mine"
        and TRUSTED_ACCESS_BACKUP_ROLE in bind.roles
    )
    updating = step(
        world(bindings=(TrustedAccessBindingView("mine", VAULT, (TRUSTED_ACCESS_BACKUP_ROLE,), "Updating"),))
    )
    assert updating.writes == () and states(updating)["trusted-access-bound"] == "waiting"


def test_a_waiting_link_backs_off_then_gives_up_after_its_budget():
    vault = VaultView(VAULT_ID, "eastus", "Provisioning", VP)
    fresh = step(world(vault=vault))
    assert fresh.outcome.retry_after_s == 2.0
    polled = ProtectionHistory(
        journaled=True, now=NOW, episodes={"backup-vault-ready": LinkEpisode(NOW - 60, 7)}
    )
    assert step(world(vault=vault, history=polled)).outcome.retry_after_s == 16.0
    spent = replace(
        polled, episodes={"backup-vault-ready": LinkEpisode(NOW - BUDGETS_S["backup-vault-ready"] - 1, 99)}
    )
    gave_up = step(world(vault=vault, history=spent))
    assert gave_up.outcome.kind is OutcomeKind.GAVE_UP and gave_up.outcome.why.startswith(
        "backup-vault-ready: gave up"
    )


def test_a_given_vault_in_another_region_is_a_blocker():
    result = step(world(vault=VaultView(VAULT_ID, "westeurope", "Succeeded", VP)))
    assert result.outcome.kind is OutcomeKind.GAVE_UP and result.outcome.why.startswith(
        "backup-vault-wrong-region"
    )


def test_the_vault_tier_adds_data_operator_for_managed_disks():
    vault_tier = BackupPolicyView(POLICY_ID, True, ("Microsoft.ContainerService/managedClusters",))
    result = step(world(policy=vault_tier, instances=(ours(),), missing_roles=("vault-disk-data-operator",)))
    (grant,) = result.writes
    assert grant.link == "vault-disk-data-operator"


# --------------------------------------------------------------------------------------------- demand


def _inventory(n: int, *, rg_count: int = 1, sub: str = SUB) -> list[DemandCluster]:
    return [
        DemandCluster(
            parse_cluster_id(
                f"/subscriptions/{sub}/resourceGroups/rg{i % rg_count}/providers/"
                f"Microsoft.ContainerService/managedClusters/c{i}"
            ),
            "eastus",
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("scope", "expected"), [("perCluster", 33), ("resourceGroup", 25), ("subscription", 24)]
)
def test_demand_per_subscription_follows_the_reader_scope(scope, expected):
    config = parse_config({**BASE, "remediation": {"mode": "protect", "roleAssignmentScope": scope}})
    demand = role_assignment_demand(config, _inventory(10, rg_count=2))
    # per cluster: the extension's Storage Blob Data Contributor and the cluster's Contributor (20); the
    # vault's Reader per cluster (10), per resource group (2) or per subscription (1); shared by all: the
    # vault's Reader and Disk Snapshot Contributor on the snapshot group and Storage Blob Data Reader (3)
    (row,) = demand.by_subscription.values()
    assert demand.clusters == 10 and row.planned == expected and row.status == "ok"


def test_demand_warns_and_overflows_and_counts_install_mode_too():
    config = parse_config(BASE)
    demand = role_assignment_demand(config, _inventory(2), existing={SUB: 3995})
    (row,) = demand.overflowing
    assert row.projected == 4004 and row.headroom == -4
    assert role_assignment_demand(config, _inventory(2), existing={SUB: 3600}).warned
    install = parse_config({**BASE, "remediation": {"mode": "install"}})
    (only,) = role_assignment_demand(install, _inventory(5)).by_subscription.values()
    assert only.planned == 5
    shared = [replace(c, principal_id="uami") for c in _inventory(4)]
    (row,) = role_assignment_demand(config, shared).by_subscription.values()
    assert row.planned == 4 + 4 + 1 + 2 + 1  # 4 extension grants, 4 Readers, ONE shared Contributor, 2 + 1
