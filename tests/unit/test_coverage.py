"""The pure core of the sweep's selection rule and the report's states (remediator.core.coverage)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.core.config import load_config, parse_config
from remediator.core.coverage import (
    BackupInstanceFacts,
    ChainFacts,
    GrantIndex,
    LatestOutcome,
    LinkState,
    RoleGrant,
    VaultFacts,
    VerdictKind,
    VisibleChain,
    assess,
    cluster_row,
    decision_key,
    matched_rule,
    reverification_due,
    sweep_verdict,
    visible_links,
)
from remediator.core.decision import decide
from remediator.core.plan.protect import PROTECT as PROTECT_CHAIN_LINKS
from remediator.core.snapshot import ClusterSnapshot
from remediator.core.text import ignore_case_key

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ROOT / "examples" / "clusters"
SBDC = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
PRINCIPAL = "7d9c0a44-1e4f-4c59-9d11-0f5b9c1a2b3c"


def snapshot(name: str, **changes: Any) -> ClusterSnapshot:
    body = json.loads((CLUSTERS / f"{name}.json").read_text())
    body.update(changes)
    return ClusterSnapshot.from_arm(body)


CONFIG = load_config(ROOT / "examples" / "policy3-include-tag.yaml")
CHAIN = VisibleChain.of(CONFIG)
TAGGED = decide(snapshot("tagged"), CONFIG)
STORAGE = str(TAGGED.storage_account_id)


def facts(state: str | None = "Succeeded", *, grants: tuple[RoleGrant, ...] = (), **more: Any) -> ChainFacts:
    return ChainFacts(
        extension_name=None if state is None else "azure-aks-backup",
        extension_state=state,
        extension_principal_id=None if state is None else PRINCIPAL,
        grants=grants,
        **more,
    )


def grant_at(scope: str, *, principal: str = PRINCIPAL, role: str = SBDC) -> RoleGrant:
    return RoleGrant(principal_id=principal, role_guid=role, scope=scope)


def test_install_mode_sees_the_extension_and_its_grant() -> None:
    assert CHAIN.grant_role == SBDC and not CHAIN.backup_instance and CHAIN.reverify
    checks = visible_links(TAGGED, facts(), CHAIN)
    assert [(c.link, c.state) for c in checks] == [
        ("extension-installed", LinkState.SATISFIED),
        ("storage-access-granted", LinkState.MISSING),
    ]


@pytest.mark.parametrize(
    "scope",
    [
        STORAGE,
        STORAGE.upper(),  # Azure compares ids case-insensitively
        "/".join(STORAGE.split("/")[:5]),  # the resource group
        "/".join(STORAGE.split("/")[:3]),  # the subscription
    ],
)
def test_a_grant_at_the_account_or_above_satisfies_the_link(scope: str) -> None:
    [_, grant] = visible_links(TAGGED, facts(grants=(grant_at(scope),)), CHAIN)
    assert grant.satisfied


@pytest.mark.parametrize(
    "other",
    [
        grant_at(STORAGE, principal="00000000-0000-0000-0000-000000000001"),  # another principal
        grant_at(STORAGE, role="acdd72a7-3385-48ef-bd42-f606fba81ae7"),  # another role (Reader)
        grant_at(STORAGE + "x"),  # a sibling account whose name starts the same
        grant_at(STORAGE + "/blobServices/default/containers/c"),  # below the account: not enough
    ],
)
def test_other_assignments_do_not_satisfy_the_link(other: RoleGrant) -> None:
    [_, grant] = visible_links(TAGGED, facts(grants=(other,)), CHAIN)
    assert grant.state is LinkState.MISSING


def test_the_grant_waits_for_the_extension() -> None:
    [extension, grant] = visible_links(TAGGED, facts("Creating"), CHAIN)
    assert extension.state is LinkState.IN_PROGRESS and grant.state is LinkState.DEFERRED
    [extension, grant] = visible_links(TAGGED, facts(None), CHAIN)
    assert extension.state is LinkState.MISSING and grant.state is LinkState.DEFERRED
    [extension, _] = visible_links(TAGGED, facts("Failed"), CHAIN)
    assert extension.state is LinkState.FAILED


def test_regression_f3_an_extension_without_its_grant_needs_work_and_is_not_protected() -> None:
    verdict = sweep_verdict(TAGGED, facts(), CHAIN)
    assert verdict.kind is VerdictKind.ENQUEUE
    assert verdict.reason == "sweep:storage-access-granted-missing"
    assert assess(TAGGED, facts(), CHAIN).state == "notStarted"
    whole = facts(grants=(grant_at(STORAGE),))
    assert sweep_verdict(TAGGED, whole, CHAIN).kind is VerdictKind.SATISFIED
    assert assess(TAGGED, whole, CHAIN).state == "protected"


def test_policy_task_mode_has_no_grant_link_and_no_reverification() -> None:
    config = parse_config(
        {
            **json.loads(CONFIG.model_dump_json(by_alias=True, exclude_none=True)),
            "remediation": {
                "mode": "policy-task",
                "policyAssignmentIds": [
                    "/subscriptions/00000000-0000-0000-0000-000000000001/providers/"
                    "Microsoft.Authorization/policyAssignments/p3"
                ],
            },
        }
    )
    chain = VisibleChain.of(config)
    assert chain.grant_role is None and not chain.reverify
    assert sweep_verdict(TAGGED, facts(), chain, reverify_due=True).kind is VerdictKind.SATISFIED


# --- protect mode: the whole visible chain ------------------------------------------------------------------

PROTECT = load_config(ROOT / "examples" / "protect.yaml")
PROTECT_CHAIN = VisibleChain.of(PROTECT)
P_SNAPSHOT = snapshot("tagged")
P_TAGGED = decide(P_SNAPSHOT, PROTECT)
P_CLUSTER = P_TAGGED.cluster_id.canonical
P_STORAGE = str(P_TAGGED.storage_account_id)
P_SUB = f"/subscriptions/{P_TAGGED.cluster_id.subscription_id}"
P_STORAGE_GROUP = "/".join(P_STORAGE.split("/")[:5])
VAULT = f"{P_STORAGE_GROUP}/providers/Microsoft.DataProtection/backupVaults/AKSAzureBackup-eastus"
OTHER_VAULT = f"{P_SUB}/resourceGroups/rg-elsewhere/providers/Microsoft.DataProtection/backupVaults/bv-other"
SNAPSHOT_GROUP = f"{P_SUB}/resourceGroups/AKSAzureBackup_eastus"
VAULT_PRINCIPAL = "11111111-2222-4333-8444-555555555555"
CLUSTER_PRINCIPAL = str(P_SNAPSHOT.identity_principal_id)
READER, DSC, SBDR, CONTRIBUTOR = (
    "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "7efff54f-a5b4-42b5-a1c5-5411624893ce",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
)
WHOLE_GRANTS = {
    "storage-access-granted": grant_at(P_STORAGE),
    "vault-reader-on-cluster": grant_at(P_CLUSTER, principal=VAULT_PRINCIPAL, role=READER),
    "vault-reader-on-snapshot-rg": grant_at(SNAPSHOT_GROUP, principal=VAULT_PRINCIPAL, role=READER),
    "vault-disk-snapshot-contributor": grant_at(SNAPSHOT_GROUP, principal=VAULT_PRINCIPAL, role=DSC),
    "vault-blob-reader-on-storage": grant_at(P_STORAGE, principal=VAULT_PRINCIPAL, role=SBDR),
    "cluster-contributor-on-snapshot-rg": grant_at(
        SNAPSHOT_GROUP, principal=CLUSTER_PRINCIPAL, role=CONTRIBUTOR
    ),
}


READY_VAULT = VaultFacts(VAULT, VAULT_PRINCIPAL, "Succeeded", "eastus")


def instance(state: str, *, vault: str = VAULT, code: str = "") -> BackupInstanceFacts:
    return BackupInstanceFacts(f"{vault}/backupInstances/aks-payments-eus-01-0a1b2c3d", state, code)


def protect_facts(
    *,
    without: tuple[str, ...] = (),
    instances: tuple[BackupInstanceFacts, ...] = (),
    vault: VaultFacts | None = READY_VAULT,
    extension: str | None = "Succeeded",
) -> ChainFacts:
    return facts(
        extension,
        grants=tuple(g for link, g in WHOLE_GRANTS.items() if link not in without),
        backup_instances=instances,
        backup_instances_known=True,
        cluster_principal_id=CLUSTER_PRINCIPAL,
        cluster_location=P_SNAPSHOT.location,
        vaults={} if vault is None else {ignore_case_key(VAULT): vault},
    )


PROTECTED = protect_facts(instances=(instance("ProtectionConfigured"),))


def test_protect_mode_sees_the_whole_chain_under_the_chains_own_link_names() -> None:
    checks = visible_links(P_TAGGED, PROTECTED, PROTECT_CHAIN)
    assert all(c.satisfied for c in checks), [(c.link, c.state, c.why) for c in checks]
    chain_order = [r.key for r in PROTECT_CHAIN_LINKS.requirements]
    seen = [c.link for c in checks]
    assert seen == [k for k in chain_order if k in seen]  # the chain's names, in the chain's order
    assert set(seen) == {
        "protection-not-elsewhere",
        "extension-installed",
        "storage-access-granted",
        "backup-vault-ready",
        "vault-reader-on-cluster",
        "vault-reader-on-snapshot-rg",
        "vault-disk-snapshot-contributor",
        "vault-blob-reader-on-storage",
        "cluster-contributor-on-snapshot-rg",
        "backup-instance-exists",
        "protection-configured",
    }
    assert sweep_verdict(P_TAGGED, PROTECTED, PROTECT_CHAIN).kind is VerdictKind.SATISFIED
    assert assess(P_TAGGED, PROTECTED, PROTECT_CHAIN).state == "protected"


def test_the_visible_role_links_are_the_chains_roles() -> None:
    """Each role link the sweep checks has the role the chain's RoleAssigned link assigns (one home for the
    role of a link: if the chain changes a role, this fails until coverage follows)."""
    from remediator.core.plan.roles import RoleAssigned

    chain_roles = {
        r.key: r.role_guid for r in PROTECT_CHAIN_LINKS.requirements if isinstance(r, RoleAssigned)
    }
    for link, grant in WHOLE_GRANTS.items():
        assert chain_roles[link] == grant.role_guid, link


@pytest.mark.parametrize("link", sorted(WHOLE_GRANTS))
def test_a_protected_cluster_missing_any_role_is_enqueued_naming_the_link(link: str) -> None:
    broken = protect_facts(without=(link,), instances=(instance("ProtectionConfigured"),))
    verdict = sweep_verdict(P_TAGGED, broken, PROTECT_CHAIN)
    assert verdict.kind is VerdictKind.ENQUEUE and verdict.reason == f"sweep:{link}-missing"
    assert assess(P_TAGGED, broken, PROTECT_CHAIN).state != "protected"


def test_a_role_above_its_scope_satisfies_it() -> None:
    above = protect_facts(without=("vault-reader-on-cluster",), instances=(instance("ProtectionConfigured"),))
    above = ChainFacts(
        **{
            **above.__dict__,
            "grants": GrantIndex(
                [
                    *WHOLE_GRANTS.values(),
                    grant_at(P_SUB.upper(), principal=VAULT_PRINCIPAL.upper(), role=READER),
                ]
            ),
        }
    )
    assert sweep_verdict(P_TAGGED, above, PROTECT_CHAIN).kind is VerdictKind.SATISFIED


def test_extension_and_grant_but_no_backup_instance_needs_work_and_is_not_protected() -> None:
    none = protect_facts()
    verdict = sweep_verdict(P_TAGGED, none, PROTECT_CHAIN)
    assert verdict.kind is VerdictKind.ENQUEUE and verdict.reason == "sweep:backup-instance-exists-missing"
    assessment = assess(P_TAGGED, none, PROTECT_CHAIN)
    assert assessment.state == "notStarted" and "backup-instance-exists" in assessment.next_action


def test_the_vault_comes_first_and_its_roles_wait_for_its_identity() -> None:
    missing = protect_facts(vault=None)
    states = {c.link: c.state for c in visible_links(P_TAGGED, missing, PROTECT_CHAIN)}
    assert states["backup-vault-ready"] is LinkState.MISSING
    assert states["vault-reader-on-cluster"] is LinkState.DEFERRED
    assert sweep_verdict(P_TAGGED, missing, PROTECT_CHAIN).reason == "sweep:backup-vault-ready-missing"
    creating = protect_facts(vault=VaultFacts(VAULT, None, "Provisioning"))
    states = {c.link: c.state for c in visible_links(P_TAGGED, creating, PROTECT_CHAIN)}
    assert states["backup-vault-ready"] is LinkState.IN_PROGRESS


@pytest.mark.parametrize("state", ["ProtectionError", "ConfiguringProtectionFailed"])
def test_an_instance_in_error_is_enqueued_at_once(state: str) -> None:
    errored = protect_facts(instances=(instance(state, code="UserErrorMissingBackupVaultPermissions"),))
    verdict = sweep_verdict(P_TAGGED, errored, PROTECT_CHAIN)
    assert verdict.kind is VerdictKind.ENQUEUE and verdict.reason == "sweep:protection-configured-failed"
    assert verdict.need is not None and "UserErrorMissingBackupVaultPermissions" in verdict.need.why


def test_an_instance_being_configured_is_installing() -> None:
    configuring = protect_facts(instances=(instance("ConfiguringProtection"),))
    assert sweep_verdict(P_TAGGED, configuring, PROTECT_CHAIN).kind is VerdictKind.ENQUEUE
    assert assess(P_TAGGED, configuring, PROTECT_CHAIN).state == "installing"


def test_protection_stopped_on_purpose_is_left_to_a_person() -> None:
    stopped = protect_facts(instances=(instance("ProtectionStopped"),))
    verdict = sweep_verdict(P_TAGGED, stopped, PROTECT_CHAIN)
    assert verdict.kind is VerdictKind.BLOCKED and verdict.need is not None
    assessment = assess(P_TAGGED, stopped, PROTECT_CHAIN)
    assert assessment.state == "blocked" and "stopped on purpose" in assessment.next_action


def test_a_cluster_protected_by_another_vault_is_left_alone_and_reported() -> None:
    other = protect_facts(instances=(instance("ProtectionConfigured", vault=OTHER_VAULT),))
    verdict = sweep_verdict(P_TAGGED, other, PROTECT_CHAIN)
    assert verdict.kind is VerdictKind.ELSEWHERE  # never enqueued, not even re-verified
    assert sweep_verdict(P_TAGGED, other, PROTECT_CHAIN, reverify_due=True).kind is VerdictKind.ELSEWHERE
    assessment = assess(P_TAGGED, other, PROTECT_CHAIN)
    assert assessment.state == "protected" and "protected elsewhere" in assessment.next_action
    assert assessment.elsewhere is not None and "bv-other" in assessment.elsewhere.id
    row = cluster_row(
        P_TAGGED,
        name="aks",
        resource_group="rg",
        region="eastus",
        tags={},
        selection=PROTECT.selection,
        facts=other,
        assessment=assessment,
    )
    assert row.protected_by == assessment.elsewhere.id and row.protection_state == "ProtectionConfigured"
    unhealthy = protect_facts(instances=(instance("ProtectionError", vault=OTHER_VAULT, code="X"),))
    assessment = assess(P_TAGGED, unhealthy, PROTECT_CHAIN)
    assert assessment.state == "blocked" and "its owner must repair it" in assessment.next_action
    assert sweep_verdict(P_TAGGED, unhealthy, PROTECT_CHAIN).kind is VerdictKind.ELSEWHERE


def test_the_vault_tier_adds_data_operator_where_the_config_says_so() -> None:
    config = parse_config(
        {
            **json.loads(PROTECT.model_dump_json(by_alias=True, exclude_none=True)),
            "protection": {"dataOperatorForManagedDisks": "always"},
        }
    )
    chain = VisibleChain.of(config)
    checks = {c.link: c for c in visible_links(P_TAGGED, PROTECTED, chain)}
    assert checks["vault-disk-data-operator"].state is LinkState.MISSING
    assert "vault-disk-data-operator" not in {
        c.link for c in visible_links(P_TAGGED, PROTECTED, PROTECT_CHAIN)
    }


def test_grant_index_holds_at_the_scope_or_above_under_azures_case_rule() -> None:
    index = GrantIndex([grant_at(P_SUB.upper() + "/resourceGroups/RG", role=READER)])
    assert index.holds(PRINCIPAL.upper(), READER, f"{P_SUB}/resourcegroups/rg/providers/X.Y/z/name")
    assert index.holds(PRINCIPAL, READER.upper(), f"{P_SUB}/resourceGroups/rg")
    assert not index.holds(PRINCIPAL, READER, f"{P_SUB}/resourceGroups/rg2")  # a sibling, not below
    assert not index.holds(PRINCIPAL, READER, P_SUB)  # above the assignment: not covered
    assert not index.holds(VAULT_PRINCIPAL, READER, f"{P_SUB}/resourceGroups/rg")
    assert len(GrantIndex([grant_at(P_STORAGE), grant_at(P_STORAGE.upper())])) == 1


def test_blocked_and_stopped_clusters_are_never_enqueued_whatever_their_links() -> None:
    blocked = decide(snapshot("service-principal"), CONFIG)
    stopped = decide(snapshot("stopped"), CONFIG)
    assert sweep_verdict(blocked, facts(None), CHAIN).kind is VerdictKind.BLOCKED
    assert sweep_verdict(stopped, facts(None), CHAIN).kind is VerdictKind.DEFERRED
    assert assess(blocked, facts(None), CHAIN).state == "blocked"
    assert assess(stopped, facts(None), CHAIN).state == "waiting"
    # a stopped cluster whose chain is whole is protected (its backups exist; it just is not running)
    assert assess(stopped, facts(grants=(grant_at(STORAGE),)), CHAIN).state == "protected"


def test_states_from_the_journal() -> None:
    gave_up = LatestOutcome("gave_up", "403 AuthorizationFailed\\non extensions/write")
    assessment = assess(TAGGED, facts(None), CHAIN, latest=gave_up)
    assert (
        assessment.state == "gaveUp" and assessment.cause == "403 AuthorizationFailed\\non extensions/write"
    )
    assert assess(TAGGED, facts("Creating"), CHAIN).state == "installing"
    assert assess(TAGGED, facts(None), CHAIN, latest=LatestOutcome("done", "x")).state == "installing"
    waiting = assess(TAGGED, facts(None), CHAIN, latest=LatestOutcome("wait", "throttled; retry in 30 s"))
    assert waiting.state == "waiting" and "throttled" in waiting.next_action
    assert assess(TAGGED, facts(None), CHAIN).state == "notStarted"
    # a whole chain wins over an old give-up
    assert assess(TAGGED, facts(grants=(grant_at(STORAGE),)), CHAIN, latest=gave_up).state == "protected"


def test_not_selected_clusters_say_why() -> None:
    untagged = decide(snapshot("untagged"), CONFIG)
    assessment = assess(untagged, facts(None), CHAIN)
    assert assessment.state == "notSelected" and "no include rule" in assessment.next_action
    assert sweep_verdict(untagged, facts(None), CHAIN).kind is VerdictKind.NOT_SELECTED


def test_the_decision_key_changes_with_what_a_person_would_want_journaled() -> None:
    stopped = decide(snapshot("stopped"), CONFIG)
    deferred = decision_key(stopped, sweep_verdict(stopped, facts(None), CHAIN))
    assert deferred == decision_key(stopped, sweep_verdict(stopped, facts(None), CHAIN))  # stable
    missing = sweep_verdict(TAGGED, facts(None), CHAIN)
    ungranted = sweep_verdict(TAGGED, facts(), CHAIN)
    whole = sweep_verdict(TAGGED, facts(grants=(grant_at(STORAGE),)), CHAIN)
    reverify = sweep_verdict(TAGGED, facts(grants=(grant_at(STORAGE),)), CHAIN, reverify_due=True)
    keys = {decision_key(TAGGED, v) for v in (missing, ungranted, whole)}
    assert len(keys) == 3 and deferred not in keys
    assert decision_key(TAGGED, reverify) == decision_key(TAGGED, whole)  # a re-verification is no change


def test_the_matched_rule_is_the_tag_and_value_not_an_index() -> None:
    config = parse_config(
        {
            "scope": {"subscriptions": ["00000000-0000-0000-0000-000000000001"]},
            "storage": {"eastus": STORAGE},
            "selection": {
                "include": [{"tag": "env", "values": ["prod*", "staging"]}, {"tag": "Backup"}],
                "exclude": [{"tag": "Backup", "values": ["no"]}],
            },
        }
    )
    selection = config.selection
    hit = matched_rule({"ENV": "production"}, selection, "include[0]")
    assert hit is not None and (hit.kind, hit.tag, hit.value) == ("include", "env", "prod*")
    hit = matched_rule({"backup": "whatever"}, selection, "include[1]")
    assert hit is not None and (hit.kind, hit.tag, hit.value) == ("include", "Backup", "*")
    hit = matched_rule({"backup": "NO"}, selection, "exclude[0]")
    assert hit is not None and (hit.kind, hit.tag, hit.value) == ("exclude", "Backup", "no")
    assert matched_rule({}, selection, None) is None


KEYS = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(KEYS, min_size=1, max_size=20, unique=True),
    gaps=st.lists(st.floats(min_value=60, max_value=7200), min_size=1, max_size=80),
    start=st.floats(min_value=1e9, max_value=2e9),
)
def test_windows_that_tile_time_reverify_each_cluster_once_per_period(
    keys: list[str], gaps: list[float], start: float
) -> None:
    """However irregular the sweeps, a cluster is due exactly once in every full period of consecutive
    windows, and never twice in one period."""
    period = 4 * 3600.0
    times = [start]
    for gap in gaps:
        times.append(times[-1] + gap)
    for key in keys:
        due = [
            end
            for begin, end in zip(times, times[1:], strict=False)
            if reverification_due(key, window=(begin, end), period_s=period)
        ]
        for earlier, later in zip(due, due[1:], strict=False):
            assert later - earlier > period - 7200.0 - 1e-6  # at most one slot per period (windows <= 2 h)
        full_periods = int((times[-1] - times[0]) // period)
        assert len(due) >= full_periods


def test_slots_spread_over_the_period() -> None:
    period = 24 * 3600.0
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2400)]
    per_hour = [
        sum(reverification_due(k, window=(h * 3600.0, (h + 1) * 3600.0), period_s=period) for k in keys)
        for h in range(24)
    ]
    assert sum(per_hour) == len(keys)
    assert max(per_hour) < 2 * len(keys) / 24  # about 100 an hour, never a burst
