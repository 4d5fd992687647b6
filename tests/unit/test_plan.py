"""The plan as a chain of requirements: every link and branch, table-driven, without a network.

Ported from the former ``test_planning.py`` (the single-step state machine): every behaviour it pinned is
checked here against the chain, plus what the chain adds (independent writes together, done only when every
link is satisfied, role assignments satisfied by what Azure has).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.core.blockers import Blocker
from remediator.core.catalog import STORAGE_BLOB_DATA_CONTRIBUTOR
from remediator.core.decision import Decision, Reason
from remediator.core.ids import parse_cluster_id, parse_resource_id, parse_storage_account_id
from remediator.core.naming import backup_container_name, remediation_task_name
from remediator.core.outcomes import OutcomeKind, WriteKind
from remediator.core.plan import INSTALL, POLICY_TASK, chain_for
from remediator.core.plan.links import BACKUP_CONTAINER, EXTENSION_INSTALLED, STORAGE_ACCESS_GRANTED
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
    RoleAssignmentsRead,
    RoleAssignmentView,
    StorageAccountRead,
    StorageView,
    TaskView,
)
from remediator.core.plan.planner import plan, settled_writes
from remediator.core.plan.policy_task import (
    MAX_TASK_GENERATIONS,
    covering_assignment,
    latest_remediation_task,
)
from remediator.core.plan.preflight_check import REQUIRED_PROVIDERS
from remediator.core.plan.requirement import Blocked, Mode, PlanContext, PlanningOptions, Superseded
from remediator.core.plan.writes import (
    CONTAINER_CLAIM,
    INSTALL_CLAIM,
    AssignRole,
    CreateContainer,
    InstallExtension,
)
from remediator.core.preflight import PolicyAssignment, PolicyData, PolicyDefinition
from remediator.core.snapshot import ClusterSnapshot

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
CLUSTER = f"{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
CLUSTER_ID = parse_cluster_id(CLUSTER)
SA = f"{SUB}/resourceGroups/b/providers/Microsoft.Storage/storageAccounts/sabackup"
SA_ID = parse_storage_account_id(SA)
ASSIGNMENT = parse_resource_id(f"{SUB}/providers/Microsoft.Authorization/policyAssignments/p3")
CONTAINER = backup_container_name("aks", CLUSTER)
SNAPSHOT = ClusterSnapshot.from_arm({"id": CLUSTER, "location": "westeurope"})
STORAGE_OK = StorageView(SA_ID, "West Europe", "https://sa.blob.core.windows.net/")
P3_RULE = {"if": {"field": "type", "equals": "x"}, "then": {"effect": "[parameters('effect')]"}}
P3_DEFINITION = PolicyDefinition(
    "/providers/Microsoft.Authorization/policyDefinitions/p3",
    "Indexed",
    {"effect": {"type": "String", "defaultValue": "DeployIfNotExists"}},
    P3_RULE,
)


def p3_assignment(**parameters: str) -> AssignmentView:
    body = {
        "id": str(ASSIGNMENT),
        "properties": {
            "policyDefinitionId": P3_DEFINITION.id,
            "parameters": {k: {"value": v} for k, v in parameters.items()},
        },
    }
    return AssignmentView(PolicyAssignment.from_arm(body), P3_DEFINITION)


DINE_ASSIGNMENT = p3_assignment()


def decision(*, selected: bool = True, blockers: tuple[Blocker, ...] = (), storage: bool = True) -> Decision:
    return Decision(
        cluster_id=CLUSTER_ID,
        selected=selected,
        reason=Reason.SELECTED if selected else Reason.EXCLUDED_BY_TAG,
        rule=None,
        storage_account_id=SA_ID if storage else None,
        blockers=blockers,
    )


def observed(
    *,
    storage: StorageView | None = STORAGE_OK,
    extension: ExtensionView | None = None,
    container: bool = False,
    grants: tuple[RoleAssignmentView, ...] = (),
    prior: int = 0,
    task: TaskView | None = None,
    assignment: AssignmentView = DINE_ASSIGNMENT,
) -> Observed:
    """Every read the chains can ask for, answered (extra answers are never consulted)."""
    found = Observed(SNAPSHOT)
    found.record(StorageAccountRead(SA_ID), storage)
    found.record(ExtensionRead(CLUSTER_ID), extension)
    found.record(ContainerRead(SA_ID, CONTAINER), container)
    if extension is not None and extension.principal_id:
        found.record(RoleAssignmentsRead(SA_ID, extension.principal_id), grants)
    found.record(ReinstallCountRead(CLUSTER_ID), prior)
    found.record(RemediationTaskRead(CLUSTER_ID, ASSIGNMENT), task)
    record_clear_preflight(found)
    found.record(AssignmentRead(ASSIGNMENT), assignment)
    return found


def record_clear_preflight(found: Observed) -> None:
    """Preflight's reads answered with nothing in the way: no policy assignment, providers registered."""
    sub = SNAPSHOT.subscription_id.lower()
    found.record(PolicyDataRead(sub), PolicyView(PolicyData()))
    found.record(
        ProvidersRead(sub, REQUIRED_PROVIDERS),
        ProvidersView({"Microsoft.KubernetesConfiguration": "Registered"}),
    )
    found.record(  # protect mode's preflight also needs Microsoft.DataProtection
        ProvidersRead(sub, (*REQUIRED_PROVIDERS, "Microsoft.DataProtection")),
        ProvidersView(
            {"Microsoft.KubernetesConfiguration": "Registered", "Microsoft.DataProtection": "Registered"}
        ),
    )


INSTALL_OPTIONS = PlanningOptions(tenant_id="t")
POLICY = PlanningOptions(mode=Mode.POLICY_TASK, policy_assignment_ids=(ASSIGNMENT,))


def step(found=None, *, options=INSTALL_OPTIONS, **decided):
    ctx = PlanContext(SNAPSHOT, decision(**decided), options)
    return plan(chain_for(options.mode), ctx, found if found is not None else observed())


def kinds(result) -> list[WriteKind]:
    return [w.kind for w in result.writes]


def grant(principal: str = "p", *, scope: str = SA, role: str = STORAGE_BLOB_DATA_CONTRIBUTOR):
    return RoleAssignmentView(parse_resource_id(scope), principal, role)


SUCCEEDED = ExtensionView("custom-name", "Succeeded", "principal-1")

# --------------------------------------------------------------------------------------------- gate


def test_unselected_is_skipped_without_writes():
    result = step(selected=False)
    assert result.outcome.kind is OutcomeKind.SKIPPED and result.outcome.why == "excluded-by-tag"
    assert result.writes == ()


@pytest.mark.parametrize(
    ("blockers", "kind", "named"),
    [
        ((Blocker.CLUSTER_NOT_SUCCEEDED,), OutcomeKind.WAIT, "cluster-not-succeeded"),
        ((Blocker.CLUSTER_STOPPED,), OutcomeKind.WAIT, "cluster-stopped"),
        ((Blocker.NO_MANAGED_IDENTITY,), OutcomeKind.GAVE_UP, "service-principal"),
        ((Blocker.DISK_CSI_DRIVER_DISABLED,), OutcomeKind.GAVE_UP, "disk-csi-driver-disabled"),
        ((Blocker.SNAPSHOT_CONTROLLER_DISABLED,), OutcomeKind.GAVE_UP, "snapshot-controller-disabled"),
        ((Blocker.NO_LINUX_AMD64_POOL,), OutcomeKind.GAVE_UP, "Linux amd64"),
        ((Blocker.CLUSTER_STOPPED, Blocker.NO_MANAGED_IDENTITY), OutcomeKind.GAVE_UP, "no-managed-identity"),
    ],
)
def test_blockers(blockers, kind, named):
    result = step(blockers=blockers)
    assert result.outcome.kind is kind and named in result.outcome.why and result.writes == ()


# --------------------------------------------------------------------------------------------- install


def test_fresh_cluster_gets_the_container_and_the_extension_together_and_waits():
    result = step()
    assert kinds(result) == [WriteKind.CREATE_CONTAINER, WriteKind.CREATE_EXTENSION]
    assert [w.link for w in result.writes] == [BACKUP_CONTAINER, EXTENSION_INSTALLED]
    assert result.outcome.kind is OutcomeKind.WAIT and "install started" in result.outcome.why
    # the grant waits for the extension (it needs its identity): deferred, not written
    assert {link.key: link.state for link in result.links}[STORAGE_ACCESS_GRANTED] == "deferred"


def test_the_container_and_the_extension_do_not_depend_on_each_other():
    requirements = {r.key: r for r in INSTALL.requirements}
    assert BACKUP_CONTAINER not in requirements[EXTENSION_INSTALLED].depends_on
    assert EXTENSION_INSTALLED not in requirements[BACKUP_CONTAINER].depends_on
    assert EXTENSION_INSTALLED in requirements[STORAGE_ACCESS_GRANTED].depends_on


def test_existing_container_is_not_created_again():
    assert kinds(step(observed(container=True))) == [WriteKind.CREATE_EXTENSION]


@pytest.mark.parametrize(
    ("storage", "why"),
    [
        (None, "storage-account-missing"),
        (StorageView(SA_ID, "eastus", "https://sa.blob.core.windows.net/"), "storage-account-wrong-region"),
        (StorageView(SA_ID, "westeurope", ""), "storage-account-no-blob-endpoint"),
    ],
)
def test_storage_problems_give_up(storage, why):
    result = step(observed(storage=storage))
    assert result.outcome.kind is OutcomeKind.GAVE_UP and why in result.outcome.why and result.writes == ()


def test_no_storage_configured_gives_up():
    assert step(storage=False).outcome.kind is OutcomeKind.GAVE_UP


@pytest.mark.parametrize("state", ["Creating", "Updating", "Deleting"])
def test_extension_in_progress_waits(state):
    result = step(observed(extension=ExtensionView("any-name", state, "p")))
    assert result.outcome.kind is OutcomeKind.WAIT and result.writes == () and state in result.outcome.why


def test_succeeded_extension_gets_the_grant_then_done():
    result = step(observed(extension=SUCCEEDED))
    assert kinds(result) == [WriteKind.ASSIGN_ROLE]
    (write,) = result.writes
    assert isinstance(write, AssignRole) and write.principal_id == "principal-1" and write.scope == SA_ID
    assert write.link == STORAGE_ACCESS_GRANTED
    assert result.outcome.kind is OutcomeKind.DONE and "granted" in result.outcome.why
    again = step(observed(extension=SUCCEEDED, grants=(grant("principal-1"),)))
    assert again.writes == () and again.outcome.kind is OutcomeKind.DONE
    assert {link.state for link in again.links} <= {"satisfied", "not-needed"}


@pytest.mark.parametrize(
    ("existing", "satisfied"),
    [
        (grant("principal-1"), True),  # same scope, any name (the DINE's, a person's)
        (grant("principal-1", scope=f"{SUB}/resourceGroups/b"), True),  # the resource group above it
        (grant("principal-1", scope=SUB), True),  # the subscription above it
        (grant("PRINCIPAL-1"), True),  # principal ids compared case-insensitively
        (grant("principal-2"), False),  # another principal
        (grant("principal-1", role="acdd72a7-3385-48ef-bd42-f606fba81ae7"), False),  # another role
        (grant("principal-1", scope=f"{SUB}/resourceGroups/b2"), False),  # a sibling group, not a parent
        (grant("principal-1", scope=SA + "/blobServices/default"), False),  # below the scope: not enough
    ],
)
def test_the_grant_is_satisfied_by_what_azure_has_not_by_our_name(existing, satisfied):
    result = step(observed(extension=SUCCEEDED, grants=(existing,)))
    assert (result.writes == ()) is satisfied
    assert result.outcome.kind is OutcomeKind.DONE


def test_grant_can_be_disabled():
    options = replace(INSTALL_OPTIONS, grant_storage_access=False)
    result = step(observed(extension=SUCCEEDED), options=options)
    assert result.writes == () and result.outcome.kind is OutcomeKind.DONE
    assert "disabled by config" in result.outcome.why


def test_succeeded_without_identity_waits():
    result = step(observed(extension=ExtensionView("e", "Succeeded", None)))
    assert result.outcome.kind is OutcomeKind.WAIT and result.writes == ()


def test_failed_extension_is_reinstalled_a_bounded_number_of_times():
    ext = ExtensionView("azure-aks-backup", "Failed", "p", error="helm timed out")
    options = replace(INSTALL_OPTIONS, max_reinstalls=2)
    for prior in (0, 1):
        result = step(observed(extension=ext, container=True, prior=prior), options=options)
        assert kinds(result) == [WriteKind.REINSTALL_EXTENSION]
        (write,) = result.writes
        assert write.detail == "azure-aks-backup" and write.claim == f"reinstall-{prior + 1}"
    final = step(observed(extension=ext, prior=2), options=options)
    assert final.outcome.kind is OutcomeKind.GAVE_UP and "helm timed out" in final.outcome.why
    assert final.writes == ()


def test_a_failed_extension_without_its_container_gets_both():
    result = step(observed(extension=ExtensionView("e", "Failed", "p")))
    assert kinds(result) == [WriteKind.CREATE_CONTAINER, WriteKind.REINSTALL_EXTENSION]


def test_an_installed_extension_needs_no_container_of_ours():
    result = step(observed(extension=SUCCEEDED, container=False, grants=(grant("principal-1"),)))
    assert result.writes == () and result.outcome.kind is OutcomeKind.DONE


def test_audit_plans_like_install():
    audit = step(options=replace(INSTALL_OPTIONS, mode=Mode.AUDIT))
    assert kinds(audit) == kinds(step())


def test_a_failed_read_the_chain_needs_is_the_plan_s_error_and_one_it_does_not_need_is_ignored():
    boom = RuntimeError("403 containers/read")
    needed = observed()
    del needed.answers[ContainerRead(SA_ID, CONTAINER)]
    needed.record_failure(ContainerRead(SA_ID, CONTAINER), boom)
    # the container link cannot veto: its failed read withholds its own write, not the extension's
    assert step(needed).error is boom and kinds(step(needed)) == [WriteKind.CREATE_EXTENSION]
    # a link that can veto (the extension's) withholds every write when its read fails
    unreadable = observed()
    del unreadable.answers[ExtensionRead(CLUSTER_ID)]
    unreadable.record_failure(ExtensionRead(CLUSTER_ID), boom)
    assert step(unreadable).error is boom and step(unreadable).writes == ()
    not_needed = observed(extension=SUCCEEDED, grants=(grant("principal-1"),))
    del not_needed.answers[ContainerRead(SA_ID, CONTAINER)]
    not_needed.record_failure(ContainerRead(SA_ID, CONTAINER), boom)
    result = step(not_needed)
    assert result.error is None and result.outcome.kind is OutcomeKind.DONE


def test_reads_come_in_dependency_rounds():
    ctx = PlanContext(SNAPSHOT, decision(), INSTALL_OPTIONS)
    found = Observed(SNAPSHOT)
    first = set(INSTALL.reads(ctx, found))
    assert first == {StorageAccountRead(SA_ID), ExtensionRead(CLUSTER_ID), ContainerRead(SA_ID, CONTAINER)}
    answers = {StorageAccountRead(SA_ID): STORAGE_OK, ExtensionRead(CLUSTER_ID): SUCCEEDED}
    for read in first:
        found.record(read, answers.get(read, False))
    assert INSTALL.reads(ctx, found) == [RoleAssignmentsRead(SA_ID, "principal-1")]  # needs the identity


def test_the_claims_taken_ahead_are_the_claims_of_a_fresh_install():
    assert set(INSTALL.claims_ahead(CLUSTER_ID, INSTALL_OPTIONS)) == {
        w.claim for w in step().writes if w.claim is not None
    }
    assert set(INSTALL.claims_ahead(CLUSTER_ID, INSTALL_OPTIONS)) == {INSTALL_CLAIM, CONTAINER_CLAIM}
    assert POLICY_TASK.claims_ahead(CLUSTER_ID, POLICY) == ()


def test_the_write_tokens_taken_ahead_are_the_buckets_of_a_fresh_install():
    # every configured storage account in one subscription: both writes' buckets are known from the id
    options = replace(INSTALL_OPTIONS, storage_subscription=str(SA_ID.subscription_id))
    demand: dict[str, float] = {}
    for write in step(options=options).writes:
        demand[write.bucket_subscription] = demand.get(write.bucket_subscription, 0.0) + 1.0
    assert INSTALL.buckets_ahead(CLUSTER_ID, options) == demand
    # accounts in several subscriptions: only the extension's bucket is known before the cluster's region
    assert INSTALL.buckets_ahead(CLUSTER_ID, INSTALL_OPTIONS) == {str(CLUSTER_ID.subscription_id): 1.0}
    assert POLICY_TASK.buckets_ahead(CLUSTER_ID, POLICY) == {}


@pytest.mark.parametrize("mode", list(Mode))
def test_the_reads_ahead_are_first_round_reads_of_every_chain(mode):
    # a read started with the cluster GET must be one the first round asks for, or it would be made twice
    options = replace(INSTALL_OPTIONS, mode=mode, policy_assignment_ids=POLICY.policy_assignment_ids)
    chain = chain_for(options.chain_mode)
    ahead = chain.reads_ahead(CLUSTER_ID, options)
    assert ahead  # preflight heads every chain: its subscription's policy data and providers
    first = chain.reads(PlanContext(SNAPSHOT, decision(), options), Observed(SNAPSHOT))
    assert set(ahead) <= set(first)


def test_writes_state_their_pure_facts():
    (container, extension) = step().writes
    assert isinstance(container, CreateContainer) and isinstance(extension, InstallExtension)
    assert container.target.canonical == f"{SA}/blobServices/default/containers/{CONTAINER}"
    assert container.bucket_subscription == str(SA_ID.subscription_id)
    assert extension.target.canonical == (
        f"{CLUSTER}/providers/Microsoft.KubernetesConfiguration/extensions/azure-aks-backup"
    )
    assert extension.bucket_subscription == str(CLUSTER_ID.subscription_id)
    body = extension.body()["properties"]["configurationSettings"]
    assert body["configuration.backupStorageLocation.bucket"] == CONTAINER
    assert body["credentials.tenantId"] == "t"
    (role,) = step(observed(extension=SUCCEEDED)).writes
    assert (
        isinstance(role, AssignRole) and role.target.name == role.name and role.claim == f"role-{role.name}"
    )
    assert role.role_definition_id.endswith("/roleDefinitions/" + STORAGE_BLOB_DATA_CONTRIBUTOR)


# --------------------------------------------------------------------------------------------- policy task


def test_policy_task_created_when_absent():
    result = step(options=POLICY)
    assert kinds(result) == [WriteKind.CREATE_REMEDIATION_TASK] and result.outcome.kind is OutcomeKind.WAIT


@pytest.mark.parametrize("state", ["Accepted", "Evaluating", "Running", "Cancelling"])
def test_a_running_policy_task_is_waited_for_without_a_new_one(state):
    result = step(observed(task=TaskView("t", state)), options=POLICY)
    assert result.outcome.kind is OutcomeKind.WAIT and result.writes == ()


def test_unknown_policy_task_state_gives_up_without_writes():
    result = step(observed(task=TaskView("t", "Weird")), options=POLICY)
    assert result.outcome.kind is OutcomeKind.GAVE_UP and result.writes == ()


@pytest.mark.parametrize("state", ["Succeeded", "Complete"])
def test_succeeded_task_but_cluster_non_compliant_again_gets_the_next_generation(state):
    result = step(observed(task=TaskView("aks-backup-x", state, generation=0)), options=POLICY)
    assert result.outcome.kind is OutcomeKind.WAIT
    assert kinds(result) == [WriteKind.CREATE_REMEDIATION_TASK]
    (write,) = result.writes
    assert write.detail == ASSIGNMENT.canonical and write.generation == 1
    later = step(observed(task=TaskView("g3", state, generation=3, failed_before=2)), options=POLICY)
    assert kinds(later) == [WriteKind.CREATE_REMEDIATION_TASK] and later.writes[0].generation == 4


@pytest.mark.parametrize("state", ["Failed", "Canceled"])
def test_failed_tasks_are_retried_a_bounded_number_of_times_in_a_row(state):
    options = replace(POLICY, max_reinstalls=2)
    for failed_before in (0, 1):
        task = TaskView("t", state, generation=failed_before, failed_before=failed_before)
        result = step(observed(task=task), options=options)
        assert result.outcome.kind is OutcomeKind.WAIT, failed_before
        assert kinds(result) == [WriteKind.CREATE_REMEDIATION_TASK]
    final = step(observed(task=TaskView("t", state, generation=2, failed_before=2)), options=options)
    assert final.outcome.kind is OutcomeKind.GAVE_UP and final.writes == ()
    assert "3 task(s) in a row" in final.outcome.why
    first = step(observed(task=TaskView("t", state)), options=replace(POLICY, max_reinstalls=0))
    assert first.outcome.kind is OutcomeKind.GAVE_UP


def test_task_generations_are_bounded():
    task = TaskView("t", "Succeeded", generation=MAX_TASK_GENERATIONS - 1)
    result = step(observed(task=task), options=POLICY)
    assert result.outcome.kind is OutcomeKind.GAVE_UP and result.writes == ()


class TaskStore:
    """Remediation tasks by name, as ARM would hold them (one cluster, one assignment)."""

    def __init__(self, states: dict[str, str] | None = None) -> None:
        self.tasks: dict[str, str] = dict(states or {})
        self.reads = 0

    def state_of(self, name: str) -> str | None:
        self.reads += 1
        return self.tasks.get(name)

    def name(self, generation: int) -> str:
        return remediation_task_name(CLUSTER, ASSIGNMENT.canonical, generation=generation)


def test_latest_task_walks_generations_and_counts_failures_in_a_row():
    store = TaskStore()
    assert latest_remediation_task(CLUSTER_ID, ASSIGNMENT, store.state_of) is None
    store.tasks = {store.name(0): "Running"}
    assert latest_remediation_task(CLUSTER_ID, ASSIGNMENT, store.state_of) == TaskView(
        store.name(0), "Running"
    )
    store.tasks = {
        store.name(0): "Failed",
        store.name(1): "Succeeded",
        store.name(2): "Failed",
        store.name(3): "Canceled",
        store.name(4): "Failed",
        store.name(6): "Succeeded",  # not reachable: generation 5 does not exist
    }
    store.reads = 0
    newest = latest_remediation_task(CLUSTER_ID, ASSIGNMENT, store.state_of)
    assert newest == TaskView(store.name(4), "Failed", generation=4, failed_before=2)
    assert store.reads == 6
    assert latest_remediation_task(CLUSTER_ID, ASSIGNMENT, store.state_of, limit=2) == TaskView(
        store.name(1), "Succeeded", generation=1, failed_before=1
    )


def reconcile_policy_task(store: TaskStore, *, extension: ExtensionView | None = None):
    """What the reconciler does in policy-task mode, with the store standing in for ARM."""
    task = latest_remediation_task(CLUSTER_ID, ASSIGNMENT, store.state_of)
    result = step(observed(task=task, extension=extension), options=POLICY)
    for write in result.writes:
        assert write.kind is WriteKind.CREATE_REMEDIATION_TASK
        assert write.name not in store.tasks, "a task name was reused"
        store.tasks[write.name] = "Accepted"
    return result


def test_policy_task_lifecycle_new_generation_after_success_and_no_pile_up():
    store = TaskStore()
    for _ in range(5):  # repeats find the running task
        reconcile_policy_task(store)
    assert list(store.tasks) == [store.name(0)]
    store.tasks[store.name(0)] = "Succeeded"
    done = reconcile_policy_task(store, extension=ExtensionView("azure-aks-backup", "Succeeded", "p"))
    assert done.outcome.kind is OutcomeKind.DONE and done.writes == ()
    # later the extension is gone and the cluster is NonCompliant again: a new task, not a dead end
    result = reconcile_policy_task(store)
    assert result.outcome.kind is OutcomeKind.WAIT and kinds(result) == [WriteKind.CREATE_REMEDIATION_TASK]
    for _ in range(5):
        reconcile_policy_task(store)
    assert list(store.tasks) == [store.name(0), store.name(1)]
    # a failing remediation is retried max_reinstalls (2) times in a row, then given up on
    for generation in (1, 2, 3):
        store.tasks[store.name(generation)] = "Failed"
        result = reconcile_policy_task(store)
    assert result.outcome.kind is OutcomeKind.GAVE_UP, result.outcome
    assert list(store.tasks) == [store.name(g) for g in range(4)]


def test_policy_task_mode_is_done_when_the_extension_succeeded_and_gives_up_on_failed():
    ok = step(observed(extension=ExtensionView("e", "Succeeded", "p")), options=POLICY)
    assert ok.outcome.kind is OutcomeKind.DONE and ok.writes == () and "Azure Policy" in ok.outcome.why
    failed = step(observed(extension=ExtensionView("e", "Failed")), options=POLICY)
    assert failed.outcome.kind is OutcomeKind.GAVE_UP


def test_policy_task_without_covering_assignment_gives_up():
    other = parse_resource_id(
        "/subscriptions/00000000-0000-0000-0000-000000000009/providers/Microsoft.Authorization/"
        "policyAssignments/a"
    )
    result = step(options=replace(POLICY, policy_assignment_ids=(other,)))
    assert result.outcome.kind is OutcomeKind.GAVE_UP


def test_covering_assignment():
    def assignment(scope: str):
        return parse_resource_id(f"{scope}/providers/Microsoft.Authorization/policyAssignments/a")

    rg_assignment = assignment(f"{SUB}/resourceGroups/RG")
    other_rg = assignment(f"{SUB}/resourceGroups/rg2")
    other_sub = assignment("/subscriptions/00000000-0000-0000-0000-000000000009")
    on_cluster = assignment(CLUSTER)
    assert covering_assignment(CLUSTER_ID, [other_sub, other_rg, rg_assignment]) == rg_assignment
    assert covering_assignment(CLUSTER_ID, [other_sub, ASSIGNMENT]) == ASSIGNMENT
    assert covering_assignment(CLUSTER_ID, [other_sub, other_rg]) is None
    assert covering_assignment(CLUSTER_ID, [on_cluster]) == on_cluster
    # resourceGroups/rg must not match resourceGroups/rg2
    rg2x = parse_cluster_id(CLUSTER.replace("/rg/", "/rg2x/"))
    assert covering_assignment(rg2x, [other_rg]) is None


# --------------------------------------------------------------------------------------------- properties

EXT_STATES = st.sampled_from(["Succeeded", "Failed", "Canceled", "Creating", "Updating", "Deleting", "Weird"])
OBSERVED = st.builds(
    observed,
    storage=st.one_of(
        st.none(),
        st.builds(
            StorageView, st.just(SA_ID), st.sampled_from(["westeurope", "eastus"]), st.just("https://b/")
        ),
    ),
    extension=st.one_of(
        st.none(), st.builds(ExtensionView, st.just("e"), EXT_STATES, st.sampled_from([None, "p"]))
    ),
    container=st.booleans(),
    grants=st.sampled_from([(), (grant("p"),)]),
    prior=st.integers(0, 5),
    task=st.one_of(
        st.none(), st.builds(TaskView, st.just("t"), st.sampled_from(["Accepted", "Succeeded", "Failed"]))
    ),
)
BLOCKERS = st.lists(
    st.sampled_from([Blocker.CLUSTER_STOPPED, Blocker.NO_MANAGED_IDENTITY, Blocker.CLUSTER_NOT_SUCCEEDED]),
    max_size=2,
)


@given(OBSERVED, st.booleans(), BLOCKERS, st.sampled_from(list(Mode)))
def test_only_selected_unblocked_clusters_ever_get_writes(found, selected, blockers, mode):
    result = step(found, options=replace(POLICY, mode=mode), selected=selected, blockers=tuple(blockers))
    if not selected or blockers:
        assert result.writes == ()
    if result.writes:
        assert result.outcome.kind in (OutcomeKind.WAIT, OutcomeKind.DONE)


@given(OBSERVED)
def test_done_only_when_every_link_is_satisfied_or_written_at_once(found):
    result = step(found)
    if result.outcome.kind is OutcomeKind.DONE:
        assert {link.state for link in result.links} <= {"satisfied", "not-needed", "missing"}
        assert all(isinstance(w, AssignRole | CreateContainer) for w in result.writes)  # accepted = satisfied


@given(OBSERVED, st.integers(0, 3))
def test_reinstalls_never_exceed_the_bound(found, bound):
    result = step(found, options=replace(INSTALL_OPTIONS, max_reinstalls=bound))
    if WriteKind.REINSTALL_EXTENSION in kinds(result):
        assert found.get(ReinstallCountRead(CLUSTER_ID)) < bound


@given(OBSERVED)
def test_audit_plans_exactly_what_install_would_do(found):
    assert step(found, options=replace(INSTALL_OPTIONS, mode=Mode.AUDIT)) == step(found)


def test_the_storage_subscription_is_known_only_when_every_account_shares_it():
    from remediator.core.config import parse_config

    guid = SUB.rsplit("/", 1)[-1]

    def options(storage: dict[str, str]) -> PlanningOptions:
        config = parse_config({"scope": {"subscriptions": [guid]}, "storage": storage})
        return PlanningOptions.from_config(config, tenant_id="t")

    account = "/subscriptions/{}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{}"
    east, west = account.format(guid.upper(), "steast"), account.format(guid, "stwest")
    other = account.format("22222222-2222-2222-2222-222222222222", "stnorth")
    # the same subscription however it is spelled: the container's bucket is known before the region is
    assert options({"eastus": east, "westeurope": west}).storage_subscription in (guid, guid.upper())
    assert options({"eastus": east, "northeurope": other}).storage_subscription is None


# --------------------------------------------------------------------------------------------- settled early


def without(found: Observed, *reads) -> Observed:
    """``found`` with ``reads`` not answered yet (still outstanding)."""
    partial = Observed(found.cluster, dict(found.answers), dict(found.failures))
    for read in reads:
        partial.answers.pop(read, None)
    return partial


def settled(found: Observed, *, options=INSTALL_OPTIONS, **decided):
    ctx = PlanContext(SNAPSHOT, decision(**decided), options)
    return settled_writes(chain_for(options.mode), ctx, found)


def test_the_extension_put_is_settled_while_the_container_get_is_outstanding():
    (write,) = settled(without(observed(), ContainerRead(SA_ID, CONTAINER)))
    assert isinstance(write, InstallExtension) and write.link == EXTENSION_INSTALLED
    # the whole plan, once the container's answer is in, holds that same write (sent once, not twice)
    assert write in step().writes


def test_nothing_is_settled_while_a_link_that_can_veto_is_open():
    # the extension's own read outstanding: its link (which can block every write) is open
    assert settled(without(observed(), ExtensionRead(CLUSTER_ID))) == ()
    # preflight's policy data outstanding: preflight gates every link
    sub = SNAPSHOT.subscription_id.lower()
    assert settled(without(observed(), PolicyDataRead(sub), ContainerRead(SA_ID, CONTAINER))) == ()


def test_nothing_is_settled_when_the_known_verdicts_already_withhold_every_write():
    failed = without(observed(), ContainerRead(SA_ID, CONTAINER))
    failed.record_failure(StorageAccountRead(SA_ID), RuntimeError("storage GET failed"))
    failed.answers.pop(StorageAccountRead(SA_ID))
    assert settled(failed) == ()  # a failed read the chain needs: plan() writes nothing
    gone = without(observed(storage=None), ContainerRead(SA_ID, CONTAINER))
    assert step(observed(storage=None)).writes == () and settled(gone) == ()  # storage blocked
    assert settled(without(observed(), ContainerRead(SA_ID, CONTAINER)), selected=False) == ()


def test_every_settled_write_is_one_the_whole_plan_emits_for_any_container_answer():
    for container in (True, False):
        for extension in (None, SUCCEEDED, ExtensionView("azure-aks-backup", "Failed", "p", "boom")):
            found = observed(extension=extension, container=container)
            early = settled(without(found, ContainerRead(SA_ID, CONTAINER)))
            assert set(early) <= set(step(found).writes), (container, extension)


def test_a_link_waived_from_vetoing_never_blocks_nor_supersedes():
    waived = {r for m in Mode for r in chain_for(m).requirements if not r.vetoes}
    assert {r.key for r in waived} == {BACKUP_CONTAINER}
    ctx = PlanContext(SNAPSHOT, decision(), INSTALL_OPTIONS)
    extensions = (None, SUCCEEDED, ExtensionView("azure-aks-backup", "Failed", "p", "boom"))
    for requirement in waived:
        for container in (True, False):
            for extension in extensions:
                verdict = requirement.evaluate(ctx, observed(extension=extension, container=container))
                assert not isinstance(verdict, Blocked | Superseded), (requirement.key, verdict)
