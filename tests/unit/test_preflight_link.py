"""The preflight link at the head of every chain, and policy-task mode's refusals, without a network.

Blocking findings stop every write (the other links are deferred) and the outcome names the assignment and
the parameter; warnings are carried and do not block; a transient finding waits; stale cached policy data is
confirmed before it blocks; a Failed extension explained by a finding is not re-installed. Policy-task mode
refuses an assignment whose effect cannot remediate, and gives up (no next task) on a task that ended
Succeeded with zero deployments.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from remediator.core.blockers import FindingCode
from remediator.core.decision import Decision, Reason
from remediator.core.ids import parse_cluster_id, parse_resource_id, parse_storage_account_id
from remediator.core.naming import backup_container_name, remediation_task_name
from remediator.core.outcomes import OutcomeKind, WriteKind
from remediator.core.plan import chain_for
from remediator.core.plan.links import PREFLIGHT
from remediator.core.plan.observed import (
    AssignmentRead,
    AssignmentView,
    ContainerRead,
    ExtensionRead,
    ExtensionView,
    Observed,
    PolicyDataRead,
    PolicyView,
    ProvidersRead,
    ProvidersView,
    ReinstallCountRead,
    RemediationTaskRead,
    SafeguardsRead,
    SafeguardsView,
    StorageAccountRead,
    StorageView,
    TaskView,
)
from remediator.core.plan.planner import plan
from remediator.core.plan.policy_task import remediation_effect
from remediator.core.plan.preflight_check import CONFIRM_AGE_S, PREFLIGHT_LINK, REQUIRED_PROVIDERS
from remediator.core.plan.requirement import Mode, PlanContext, PlanningOptions
from remediator.core.preflight import (
    PolicyAssignment,
    PolicyData,
    PolicyDefinition,
    Safeguards,
    StorageAccount,
    blocked_by_policy,
)
from remediator.core.snapshot import ClusterSnapshot

SUB = "00000000-0000-0000-0000-000000000001"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
CLUSTER_ID = parse_cluster_id(CLUSTER)
SA = f"/subscriptions/{SUB}/resourceGroups/b/providers/Microsoft.Storage/storageAccounts/sabackup"
SA_ID = parse_storage_account_id(SA)
IMAGES = "/providers/Microsoft.Authorization/policyDefinitions/febd0533-8e55-448f-b837-bd0e06f16469"
AUTOMOUNT = "/providers/Microsoft.Authorization/policyDefinitions/423dd1ba-798e-40e4-9c4d-b6902674b423"
P3 = parse_resource_id(f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/p3")
DENIAL = (
    'Error creating: admission webhook "validation.gatekeeper.sh" denied the request: '
    "[azurepolicy-k8sazurev2containerallowedimag-e2f1d6a9d3f6b1e5a1e0] Container image "
    "mcr.microsoft.com/azurebackup/k8s/x has not been allowed."
)


def snapshot(*, addon: bool = True) -> ClusterSnapshot:
    return ClusterSnapshot.from_arm(
        {
            "id": CLUSTER,
            "location": "westeurope",
            "properties": {"addonProfiles": {"azurepolicy": {"enabled": addon}}},
        }
    )


def decision() -> Decision:
    return Decision(CLUSTER_ID, True, Reason.SELECTED, None, SA_ID, ())


def assignment(definition: str, name: str = "only-acr", **params: Any) -> PolicyAssignment:
    return PolicyAssignment.from_arm(
        {
            "id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/{name}",
            "properties": {
                "scope": f"/subscriptions/{SUB}",
                "policyDefinitionId": definition,
                "parameters": {k: {"value": v} for k, v in params.items()},
            },
        }
    )


ONLY_ACR = assignment(IMAGES, allowedContainerImagesRegex=r"^myacr\.azurecr\.io/.+$")


def observed(
    *,
    cluster: ClusterSnapshot | None = None,
    assignments: tuple[PolicyAssignment, ...] = (),
    age_s: float = 0.0,
    fresh: tuple[PolicyAssignment, ...] | None = None,
    providers: dict[str, str] | None = None,
    safeguards: Safeguards | None = None,
    storage: StorageAccount | None = None,
    extension: ExtensionView | None = None,
    reinstalls: int = 0,
    policy_error: str = "",
) -> Observed:
    found = Observed(cluster or snapshot())
    found.record(
        PolicyDataRead(SUB),
        PolicyView(None if policy_error else PolicyData(assignments=assignments), (), age_s, policy_error),
    )
    if fresh is not None:
        found.record(PolicyDataRead(SUB, fresh=True), PolicyView(PolicyData(assignments=fresh)))
    states = providers if providers is not None else {"Microsoft.KubernetesConfiguration": "Registered"}
    found.record(ProvidersRead(SUB, REQUIRED_PROVIDERS), ProvidersView(states))
    found.record(SafeguardsRead(CLUSTER_ID), SafeguardsView(safeguards))
    found.record(
        StorageAccountRead(SA_ID),
        StorageView(SA_ID, "westeurope", "https://sabackup.blob.core.windows.net/", storage),
    )
    found.record(ExtensionRead(CLUSTER_ID), extension)
    found.record(ContainerRead(SA_ID, backup_container_name("aks", CLUSTER)), False)
    found.record(ReinstallCountRead(CLUSTER_ID), reinstalls)
    return found


def step(found: Observed, *, options: PlanningOptions | None = None):
    ctx = PlanContext(found.cluster, decision(), options or PlanningOptions(tenant_id="t"))
    return plan(chain_for(ctx.options.mode), ctx, found)


def links(result) -> dict[str, str]:
    return {link.key: link.state for link in result.links}


# --------------------------------------------------------------------------------------------- blockers


def test_a_gatekeeper_deny_blocks_every_write_and_the_outcome_names_the_assignment_and_parameter():
    result = step(observed(assignments=(ONLY_ACR,)))
    assert result.outcome.kind is OutcomeKind.GAVE_UP and result.writes == ()
    assert "only-acr" in result.outcome.why and "allowedContainerImagesRegex" in result.outcome.why
    assert links(result) == {
        PREFLIGHT: "blocked",
        "storage-usable": "deferred",
        "backup-container": "deferred",
        "extension-installed": "deferred",
        "storage-access-granted": "deferred",
    }
    (finding,) = result.findings
    assert finding.code is FindingCode.GATEKEEPER_POLICY and finding.blocks
    assert blocked_by_policy(result.findings) == ("only-acr",)


@pytest.mark.parametrize("mode", [Mode.INSTALL, Mode.AUDIT, Mode.POLICY_TASK])
def test_preflight_heads_every_mode_s_chain_and_gates_it(mode):
    chain = chain_for(mode)
    assert chain.keys[0] == PREFLIGHT and chain.requirements[0] is PREFLIGHT_LINK
    options = PlanningOptions(mode=mode, policy_assignment_ids=(P3,), tenant_id="t")
    result = step(observed(assignments=(ONLY_ACR,)), options=options)
    assert result.outcome.kind is OutcomeKind.GAVE_UP and result.writes == ()
    assert all(state == "deferred" for key, state in links(result).items() if key != PREFLIGHT)


def test_an_audit_assignment_is_reported_and_the_install_goes_ahead():
    automount = assignment(AUTOMOUNT, "automount-audit")  # default effect Audit
    result = step(observed(assignments=(automount,)))
    assert [w.kind for w in result.writes] == [WriteKind.CREATE_CONTAINER, WriteKind.CREATE_EXTENSION]
    (warning,) = result.findings
    assert not warning.blocks and warning.evidence["assignmentName"] == "automount-audit"
    preflight_link = next(link for link in result.links if link.key == PREFLIGHT)
    assert preflight_link.state == "satisfied" and "1 warning(s)" in preflight_link.to_json()["why"]
    assert "automount-audit" in preflight_link.to_json()["why"]


def test_safeguards_at_warn_do_not_block_and_at_enforce_do():
    warn = step(observed(safeguards=Safeguards("Warn")))
    assert warn.writes and not any(f.blocks for f in warn.findings)
    enforce = step(observed(safeguards=Safeguards("Enforce", ("team-a",))))
    assert enforce.writes == () and enforce.outcome.kind is OutcomeKind.GAVE_UP
    assert "--excluded-ns team-a dataprotection-microsoft" in enforce.outcome.why


def test_storage_behind_a_firewall_blocks_naming_the_account():
    firewall = StorageAccount(SA, default_action="Deny", bypass=("None",))
    result = step(observed(storage=firewall))
    assert result.writes == () and result.outcome.kind is OutcomeKind.GAVE_UP
    assert "storage-firewall" in result.outcome.why and "sabackup" in result.outcome.why


def test_a_provider_still_registering_waits_and_an_unregistered_one_gives_up():
    registering = step(observed(providers={"Microsoft.KubernetesConfiguration": "Registering"}))
    assert registering.outcome.kind is OutcomeKind.WAIT and registering.writes == ()
    missing = step(observed(providers={}))
    assert missing.outcome.kind is OutcomeKind.GAVE_UP and missing.writes == ()
    assert "az provider register --namespace Microsoft.KubernetesConfiguration" in missing.outcome.why


def test_unreadable_policy_data_warns_and_does_not_block():
    result = step(observed(policy_error="AuthorizationFailed: no Reader"))
    assert result.writes and result.outcome.kind is OutcomeKind.WAIT
    (warning,) = result.findings
    assert warning.code is FindingCode.POLICY_NOT_EVALUATED and not warning.blocks


# --------------------------------------------------------------------------------------------- freshness


def test_stale_cached_data_that_blocks_asks_for_a_fresh_read_and_the_fresh_data_decides():
    ctx = PlanContext(snapshot(), decision(), PlanningOptions(tenant_id="t"))
    stale = observed(assignments=(ONLY_ACR,), age_s=CONFIRM_AGE_S + 1)
    assert PolicyDataRead(SUB, fresh=True) in list(PREFLIGHT_LINK.reads(ctx, stale))
    young = observed(assignments=(ONLY_ACR,), age_s=CONFIRM_AGE_S - 1)
    assert PolicyDataRead(SUB, fresh=True) not in list(PREFLIGHT_LINK.reads(ctx, young))
    clear = observed(assignments=(), age_s=CONFIRM_AGE_S + 1)
    assert PolicyDataRead(SUB, fresh=True) not in list(PREFLIGHT_LINK.reads(ctx, clear))
    # the operator fixed the assignment since it was cached: the fresh read wins and the install proceeds
    fixed = replace(
        ONLY_ACR, parameters={"allowedContainerImagesRegex": r"^mcr\.microsoft\.com/azurebackup/.*"}
    )
    result = step(observed(assignments=(ONLY_ACR,), age_s=CONFIRM_AGE_S + 1, fresh=(fixed,)))
    assert result.outcome.kind is OutcomeKind.WAIT and WriteKind.CREATE_EXTENSION in [
        w.kind for w in result.writes
    ]


# --------------------------------------------------------------------------------------------- attribution


def test_a_failed_extension_explained_by_a_finding_is_not_reinstalled():
    failed = ExtensionView("azure-aks-backup", "Failed", error=DENIAL)
    result = step(observed(assignments=(ONLY_ACR,), extension=failed))
    assert result.writes == () and result.outcome.kind is OutcomeKind.GAVE_UP
    assert result.outcome.why.startswith("extension azure-aks-backup is Failed, caused by: gatekeeper-policy")
    (finding,) = result.findings
    assert finding.evidence["explainsFailure"].startswith("Error creating: admission webhook")


def test_a_failure_proves_a_warning_right_and_it_blocks():
    # the snapshot says the add-on is off, so the Deny only warns; the admission denial proves it runs
    failed = ExtensionView("azure-aks-backup", "Failed", error=DENIAL)
    result = step(observed(cluster=snapshot(addon=False), assignments=(ONLY_ACR,), extension=failed))
    assert result.writes == () and result.outcome.kind is OutcomeKind.GAVE_UP
    assert "only-acr" in result.outcome.why


def test_a_failure_no_current_finding_explains_gets_the_bounded_reinstall():
    # the cause was fixed since: the denial text remains on the Failed extension, but nothing blocks now
    failed = ExtensionView("azure-aks-backup", "Failed", error=DENIAL)
    result = step(observed(extension=failed))
    assert [w.kind for w in result.writes] == [WriteKind.CREATE_CONTAINER, WriteKind.REINSTALL_EXTENSION]
    exhausted = step(observed(extension=failed, reinstalls=2))
    assert exhausted.writes == () and "likely cause: gatekeeper-policy" in exhausted.outcome.why


# --------------------------------------------------------------------------------------------- policy-task

P3_DEFINITION = PolicyDefinition(
    "/providers/Microsoft.Authorization/policyDefinitions/5ee38a6f-4cbb-4f5e-b3fc-1bd6b4b4d6f9",
    "Indexed",
    {"effect": {"type": "String", "defaultValue": "DeployIfNotExists"}},
    {"if": {"field": "type", "equals": "x"}, "then": {"effect": "[parameters('effect')]"}},
    "Install Azure Backup Extension in AKS clusters with a given tag",
)
POLICY = PlanningOptions(mode=Mode.POLICY_TASK, policy_assignment_ids=(P3,), tenant_id="t")


def p3(**params: Any) -> AssignmentView:
    body = {
        "id": P3.canonical,
        "name": "p3",
        "properties": {
            "policyDefinitionId": P3_DEFINITION.id,
            "parameters": {k: {"value": v} for k, v in params.items()},
        },
    }
    return AssignmentView(PolicyAssignment.from_arm(body), P3_DEFINITION)


def policy_task(view: AssignmentView, task: TaskView | None = None):
    found = observed()
    found.record(AssignmentRead(P3), view)
    found.record(RemediationTaskRead(CLUSTER_ID, P3), task)
    return step(found, options=POLICY)


def test_an_audit_effect_assignment_is_refused_before_any_task_naming_it():
    result = policy_task(p3(effect="AuditIfNotExists"))
    assert result.outcome.kind is OutcomeKind.GAVE_UP and result.writes == ()
    assert "assignment-not-remediable" in result.outcome.why and P3.canonical in result.outcome.why
    assert "AuditIfNotExists" in result.outcome.why


def test_a_deploy_if_not_exists_assignment_gets_its_task():
    result = policy_task(p3())
    assert [w.kind for w in result.writes] == [WriteKind.CREATE_REMEDIATION_TASK]


def test_a_succeeded_task_with_zero_deployments_is_one_give_up_not_a_next_task():
    name = remediation_task_name(CLUSTER, P3.canonical)
    nothing = TaskView(name, "Succeeded", generation=0, deployments=0)
    result = policy_task(p3(), nothing)
    assert result.outcome.kind is OutcomeKind.GAVE_UP and result.writes == ()
    assert "zero deployments" in result.outcome.why and name in result.outcome.why
    # the same again (next event or sweep): still no task
    assert policy_task(p3(), nothing).writes == ()
    # a task that did deploy, with the extension gone since: the next generation, as before
    deployed = replace(nothing, deployments=1)
    assert [w.kind for w in policy_task(p3(), deployed).writes] == [WriteKind.CREATE_REMEDIATION_TASK]


@pytest.mark.parametrize(
    ("view", "remediable", "named"),
    [
        (p3(), True, "DeployIfNotExists"),
        (p3(effect="Modify"), True, "Modify"),
        (p3(effect="AuditIfNotExists"), False, "AuditIfNotExists"),
        (p3(effect="Disabled"), False, "Disabled"),
        (AssignmentView(None), False, "does not exist"),
        (AssignmentView(p3().assignment, None, is_set=True), False, "initiative"),
        (AssignmentView(p3().assignment, None, error="403"), None, "could not be read"),
    ],
)
def test_remediation_effect(view, remediable, named):
    judged = remediation_effect(P3, view)
    assert judged.remediable is remediable and named in judged.why
    assert str(P3) in judged.why or (view.assignment is not None and view.assignment.id in judged.why)


def test_a_failed_extension_confirms_clear_cached_data_and_a_deny_assigned_since_is_found():
    ctx = PlanContext(snapshot(), decision(), PlanningOptions(tenant_id="t"))
    failed = ExtensionView("azure-aks-backup", "Failed", error=DENIAL)
    stale = observed(assignments=(), age_s=CONFIRM_AGE_S + 1, extension=failed)
    assert PolicyDataRead(SUB, fresh=True) in list(PREFLIGHT_LINK.reads(ctx, stale))
    result = step(observed(assignments=(), age_s=CONFIRM_AGE_S + 1, extension=failed, fresh=(ONLY_ACR,)))
    assert result.writes == () and result.outcome.kind is OutcomeKind.GAVE_UP
    assert "only-acr" in result.outcome.why


def test_protect_mode_needs_data_protection_registered_and_a_supported_region():
    # protect mode (issue 12) is not in Mode on this branch: a stand-in with its value
    from types import SimpleNamespace

    from remediator.core.plan.preflight_check import protecting, providers_for

    options = replace(PlanningOptions(tenant_id="t"), mode=SimpleNamespace(value="protect"))
    ctx = PlanContext(snapshot(), decision(), options)
    assert protecting(ctx) and providers_for(ctx) == (
        "Microsoft.KubernetesConfiguration",
        "Microsoft.DataProtection",
    )
    install = PlanContext(snapshot(), decision(), PlanningOptions(tenant_id="t"))
    assert not protecting(install) and providers_for(install) == REQUIRED_PROVIDERS
    found = observed()
    found.record(
        ProvidersRead(SUB, providers_for(ctx)),
        ProvidersView(
            {"Microsoft.KubernetesConfiguration": "Registered", "Microsoft.DataProtection": "NotRegistered"}
        ),
    )
    verdict = PREFLIGHT_LINK.evaluate(ctx, found)
    assert "az provider register --namespace Microsoft.DataProtection" in verdict.why
    qatar = ClusterSnapshot.from_arm({"id": CLUSTER, "location": "qatarcentral"})
    found = observed(cluster=qatar)
    found.record(
        ProvidersRead(SUB, providers_for(ctx)),
        ProvidersView(
            {"Microsoft.KubernetesConfiguration": "Registered", "Microsoft.DataProtection": "Registered"}
        ),
    )
    verdict = PREFLIGHT_LINK.evaluate(PlanContext(qatar, decision(), options), found)
    assert "region-not-supported" in verdict.why
