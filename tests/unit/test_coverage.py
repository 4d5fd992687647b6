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
    LatestOutcome,
    LinkState,
    RoleGrant,
    VerdictKind,
    VisibleChain,
    assess,
    decision_key,
    matched_rule,
    reverification_due,
    sweep_verdict,
    visible_links,
)
from remediator.core.decision import decide
from remediator.core.snapshot import ClusterSnapshot

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


def test_protect_mode_needs_a_protecting_backup_instance() -> None:
    chain = VisibleChain(mode="protect", grant_role=SBDC, backup_instance=True, reverify=True)
    whole = facts(grants=(grant_at(STORAGE),))
    assert sweep_verdict(TAGGED, whole, chain).reason == "sweep:backup-instance-protected-missing"
    errored = facts(
        grants=(grant_at(STORAGE),), backup_instances=(BackupInstanceFacts("bi", "ProtectionError", "X"),)
    )
    verdict = sweep_verdict(TAGGED, errored, chain)
    assert verdict.need is not None and verdict.need.state is LinkState.FAILED and "(X)" in verdict.need.why
    configuring = facts(
        grants=(grant_at(STORAGE),), backup_instances=(BackupInstanceFacts("bi", "ConfiguringProtection"),)
    )
    assert assess(TAGGED, configuring, chain).state == "installing"
    protected = facts(
        grants=(grant_at(STORAGE),), backup_instances=(BackupInstanceFacts("bi", "ProtectionConfigured"),)
    )
    assert sweep_verdict(TAGGED, protected, chain).kind is VerdictKind.SATISFIED
    assert assess(TAGGED, protected, chain).state == "protected"


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
