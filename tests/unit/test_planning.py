"""The reconcile state machine: every branch, table-driven, without a network."""

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.core.naming import remediation_task_name
from remediator.core.outcomes import ActionKind, OutcomeKind
from remediator.core.planning import (
    MAX_TASK_GENERATIONS,
    ExtensionView,
    Mode,
    ObservedState,
    PlanningOptions,
    StorageView,
    TaskView,
    backoff_seconds,
    covering_assignment,
    latest_remediation_task,
    plan_next_step,
)

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
CLUSTER = f"{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
SA = f"{SUB}/resourceGroups/b/providers/Microsoft.Storage/storageAccounts/sa"
ASSIGNMENT = f"{SUB}/providers/Microsoft.Authorization/policyAssignments/p3"


@dataclass(frozen=True)
class D:
    selected: bool = True
    reason: str = "selected"
    blockers: tuple[str, ...] = field(default_factory=tuple)


def observed(**kw):
    base = dict(
        cluster_location="westeurope",
        storage_account_id=SA,
        storage=StorageView(SA, "West Europe", "https://sa.blob.core.windows.net/"),
        storage_read=True,
        container_exists=False,
    )
    base.update(kw)
    return ObservedState(**base)


def kinds(step):
    return [w.kind for w in step.writes]


INSTALL = PlanningOptions()


def test_unselected_is_skipped_without_writes():
    step = plan_next_step(observed(), D(selected=False, reason="excluded-by-tag"), INSTALL)
    assert step.outcome.kind is OutcomeKind.SKIPPED and step.outcome.why == "excluded-by-tag"
    assert step.writes == ()


@pytest.mark.parametrize(
    ("blockers", "kind", "named"),
    [
        (("cluster-not-succeeded",), OutcomeKind.WAIT, "cluster-not-succeeded"),
        (("cluster-stopped",), OutcomeKind.WAIT, "cluster-stopped"),
        (("no-managed-identity",), OutcomeKind.GAVE_UP, "service-principal"),
        (("disk-csi-driver-disabled",), OutcomeKind.GAVE_UP, "disk-csi-driver-disabled"),
        (("snapshot-controller-disabled",), OutcomeKind.GAVE_UP, "snapshot-controller-disabled"),
        (("no-linux-amd64-pool",), OutcomeKind.GAVE_UP, "Linux amd64"),
        (("cluster-stopped", "no-managed-identity"), OutcomeKind.GAVE_UP, "no-managed-identity"),
        (("something-new",), OutcomeKind.GAVE_UP, "something-new"),
    ],
)
def test_blockers(blockers, kind, named):
    step = plan_next_step(observed(), D(blockers=blockers), INSTALL)
    assert step.outcome.kind is kind and named in step.outcome.why and step.writes == ()


def test_fresh_cluster_creates_container_then_extension_and_waits():
    step = plan_next_step(observed(), D(), INSTALL)
    assert kinds(step) == [ActionKind.CREATE_CONTAINER, ActionKind.CREATE_EXTENSION]
    assert step.outcome.kind is OutcomeKind.WAIT


def test_existing_container_is_not_created_again():
    assert kinds(plan_next_step(observed(container_exists=True), D(), INSTALL)) == [
        ActionKind.CREATE_EXTENSION
    ]


@pytest.mark.parametrize(
    ("storage", "why"),
    [
        (None, "storage-account-missing"),
        (StorageView(SA, "eastus", "https://sa.blob.core.windows.net/"), "storage-account-wrong-region"),
        (StorageView(SA, "westeurope", ""), "storage-account-no-blob-endpoint"),
    ],
)
def test_storage_problems_give_up(storage, why):
    step = plan_next_step(observed(storage=storage), D(), INSTALL)
    assert step.outcome.kind is OutcomeKind.GAVE_UP and why in step.outcome.why and step.writes == ()


def test_no_storage_configured_gives_up():
    step = plan_next_step(observed(storage_account_id=None), D(), INSTALL)
    assert step.outcome.kind is OutcomeKind.GAVE_UP


@pytest.mark.parametrize("state", ["Creating", "Updating", "Deleting"])
def test_extension_in_progress_waits(state):
    step = plan_next_step(observed(extension=ExtensionView("any-name", state, "p")), D(), INSTALL)
    assert step.outcome.kind is OutcomeKind.WAIT and step.writes == ()


def test_succeeded_extension_gets_the_grant_then_done():
    ext = ExtensionView("custom-name", "Succeeded", "principal-1")
    step = plan_next_step(observed(extension=ext, grant_exists=False), D(), INSTALL)
    assert kinds(step) == [ActionKind.GRANT_STORAGE_ACCESS] and step.writes[0].detail == "principal-1"
    assert step.outcome.kind is OutcomeKind.DONE
    again = plan_next_step(observed(extension=ext, grant_exists=True), D(), INSTALL)
    assert again.writes == () and again.outcome.kind is OutcomeKind.DONE


def test_grant_can_be_disabled():
    ext = ExtensionView("e", "Succeeded", "p")
    step = plan_next_step(
        observed(extension=ext, grant_exists=False), D(), PlanningOptions(grant_storage_access=False)
    )
    assert step.writes == () and step.outcome.kind is OutcomeKind.DONE


def test_succeeded_without_identity_waits():
    step = plan_next_step(observed(extension=ExtensionView("e", "Succeeded", None)), D(), INSTALL)
    assert step.outcome.kind is OutcomeKind.WAIT and step.writes == ()


def test_failed_extension_is_reinstalled_a_bounded_number_of_times():
    ext = ExtensionView("azure-aks-backup", "Failed", "p", error="helm timed out")
    options = PlanningOptions(max_reinstalls=2)
    for prior in (0, 1):
        step = plan_next_step(
            observed(extension=ext, container_exists=True, prior_reinstalls=prior), D(), options
        )
        assert kinds(step) == [ActionKind.REINSTALL_EXTENSION] and step.writes[0].detail == "azure-aks-backup"
    final = plan_next_step(observed(extension=ext, prior_reinstalls=2), D(), options)
    assert final.outcome.kind is OutcomeKind.GAVE_UP and "helm timed out" in final.outcome.why
    assert final.writes == ()


def test_audit_plans_like_install():
    audit = plan_next_step(observed(), D(), PlanningOptions(mode=Mode.AUDIT))
    assert kinds(audit) == kinds(plan_next_step(observed(), D(), INSTALL))


POLICY = PlanningOptions(mode=Mode.POLICY_TASK, policy_assignment_ids=(ASSIGNMENT,))


def test_policy_task_created_when_absent():
    step = plan_next_step(observed(assignment_id=ASSIGNMENT), D(), POLICY)
    assert kinds(step) == [ActionKind.CREATE_REMEDIATION_TASK] and step.outcome.kind is OutcomeKind.WAIT


@pytest.mark.parametrize("state", ["Accepted", "Evaluating", "Running", "Cancelling"])
def test_a_running_policy_task_is_waited_for_without_a_new_one(state):
    step = plan_next_step(observed(assignment_id=ASSIGNMENT, task=TaskView("t", state)), D(), POLICY)
    assert step.outcome.kind is OutcomeKind.WAIT and step.writes == ()


def test_unknown_policy_task_state_gives_up_without_writes():
    step = plan_next_step(observed(assignment_id=ASSIGNMENT, task=TaskView("t", "Weird")), D(), POLICY)
    assert step.outcome.kind is OutcomeKind.GAVE_UP and step.writes == ()


@pytest.mark.parametrize("state", ["Succeeded", "Complete"])
def test_succeeded_task_but_cluster_non_compliant_again_gets_the_next_generation(state):
    # the extension is absent (removed after the earlier task deployed it): a new task, one generation on
    task = TaskView("aks-backup-x", state, generation=0)
    state_ = observed(assignment_id=ASSIGNMENT, task=task)
    step = plan_next_step(state_, D(), POLICY)
    assert step.outcome.kind is OutcomeKind.WAIT
    assert kinds(step) == [ActionKind.CREATE_REMEDIATION_TASK]
    assert step.writes[0].detail == ASSIGNMENT
    assert state_.next_task_generation == 1
    later = observed(assignment_id=ASSIGNMENT, task=TaskView("g3", state, generation=3, failed_before=2))
    assert kinds(plan_next_step(later, D(), POLICY)) == [ActionKind.CREATE_REMEDIATION_TASK]
    assert later.next_task_generation == 4


@pytest.mark.parametrize("state", ["Failed", "Canceled"])
def test_failed_tasks_are_retried_a_bounded_number_of_times_in_a_row(state):
    options = PlanningOptions(mode=Mode.POLICY_TASK, policy_assignment_ids=(ASSIGNMENT,), max_reinstalls=2)
    for failed_before in (0, 1):
        task = TaskView("t", state, generation=failed_before, failed_before=failed_before)
        step = plan_next_step(observed(assignment_id=ASSIGNMENT, task=task), D(), options)
        assert step.outcome.kind is OutcomeKind.WAIT, failed_before
        assert kinds(step) == [ActionKind.CREATE_REMEDIATION_TASK]
    task = TaskView("t", state, generation=2, failed_before=2)
    final = plan_next_step(observed(assignment_id=ASSIGNMENT, task=task), D(), options)
    assert final.outcome.kind is OutcomeKind.GAVE_UP and final.writes == ()
    assert "3 task(s) in a row" in final.outcome.why
    no_retries = PlanningOptions(mode=Mode.POLICY_TASK, policy_assignment_ids=(ASSIGNMENT,), max_reinstalls=0)
    first = plan_next_step(observed(assignment_id=ASSIGNMENT, task=TaskView("t", state)), D(), no_retries)
    assert first.outcome.kind is OutcomeKind.GAVE_UP


def test_task_generations_are_bounded():
    task = TaskView("t", "Succeeded", generation=MAX_TASK_GENERATIONS - 1)
    step = plan_next_step(observed(assignment_id=ASSIGNMENT, task=task), D(), POLICY)
    assert step.outcome.kind is OutcomeKind.GAVE_UP and step.writes == ()


class TaskStore:
    """Remediation tasks by name, as ARM would hold them (one cluster, one assignment)."""

    def __init__(self, states: dict[str, str] | None = None) -> None:
        self.tasks: dict[str, str] = dict(states or {})
        self.reads = 0

    def state_of(self, name: str) -> str | None:
        self.reads += 1
        return self.tasks.get(name)

    def name(self, generation: int) -> str:
        return remediation_task_name(CLUSTER, ASSIGNMENT, generation=generation)


def test_latest_task_walks_generations_and_counts_failures_in_a_row():
    store = TaskStore()
    assert latest_remediation_task(CLUSTER, ASSIGNMENT, store.state_of) is None
    store.tasks = {store.name(0): "Running"}
    assert latest_remediation_task(CLUSTER, ASSIGNMENT, store.state_of) == TaskView(store.name(0), "Running")
    store.tasks = {
        store.name(0): "Failed",
        store.name(1): "Succeeded",
        store.name(2): "Failed",
        store.name(3): "Canceled",
        store.name(4): "Failed",
        store.name(6): "Succeeded",  # not reachable: generation 5 does not exist
    }
    store.reads = 0
    newest = latest_remediation_task(CLUSTER, ASSIGNMENT, store.state_of)
    assert newest == TaskView(store.name(4), "Failed", generation=4, failed_before=2)
    assert store.reads == 6
    assert latest_remediation_task(CLUSTER, ASSIGNMENT, store.state_of, limit=2) == TaskView(
        store.name(1), "Succeeded", generation=1, failed_before=1
    )


def reconcile_policy_task(store: TaskStore, *, extension: ExtensionView | None = None):
    """What the reconciler does in policy-task mode, with the store standing in for ARM."""
    task = latest_remediation_task(CLUSTER, ASSIGNMENT, store.state_of)
    state = observed(assignment_id=ASSIGNMENT, task=task, extension=extension)
    step = plan_next_step(state, D(), POLICY)
    for write in step.writes:
        assert write.kind is ActionKind.CREATE_REMEDIATION_TASK
        name = store.name(state.next_task_generation)
        assert name not in store.tasks, "a task name was reused"
        store.tasks[name] = "Accepted"
    return step


def test_policy_task_lifecycle_new_generation_after_success_and_no_pile_up():
    store = TaskStore()
    for _ in range(5):  # repeats find the running task
        reconcile_policy_task(store)
    assert list(store.tasks) == [store.name(0)]
    store.tasks[store.name(0)] = "Succeeded"
    done = reconcile_policy_task(store, extension=ExtensionView("azure-aks-backup", "Succeeded", "p"))
    assert done.outcome.kind is OutcomeKind.DONE and done.writes == ()
    # later the extension is gone and the cluster is NonCompliant again: a new task, not a dead end
    step = reconcile_policy_task(store)
    assert step.outcome.kind is OutcomeKind.WAIT and kinds(step) == [ActionKind.CREATE_REMEDIATION_TASK]
    for _ in range(5):
        reconcile_policy_task(store)
    assert list(store.tasks) == [store.name(0), store.name(1)]
    # a failing remediation is retried max_reinstalls (2) times in a row, then given up on
    for generation in (1, 2, 3):
        store.tasks[store.name(generation)] = "Failed"
        step = reconcile_policy_task(store)
    assert step.outcome.kind is OutcomeKind.GAVE_UP, step.outcome
    assert list(store.tasks) == [store.name(g) for g in range(4)]


def test_policy_task_mode_is_done_when_the_extension_succeeded_and_gives_up_on_failed():
    ok = plan_next_step(
        observed(extension=ExtensionView("e", "Succeeded", "p"), assignment_id=ASSIGNMENT), D(), POLICY
    )
    assert ok.outcome.kind is OutcomeKind.DONE and ok.writes == ()
    failed = plan_next_step(
        observed(extension=ExtensionView("e", "Failed"), assignment_id=ASSIGNMENT), D(), POLICY
    )
    assert failed.outcome.kind is OutcomeKind.GAVE_UP


def test_policy_task_without_covering_assignment_gives_up():
    step = plan_next_step(observed(assignment_id=None), D(), POLICY)
    assert step.outcome.kind is OutcomeKind.GAVE_UP


def test_covering_assignment():
    rg_assignment = f"{SUB}/resourceGroups/RG/providers/Microsoft.Authorization/policyAssignments/a"
    other_rg = f"{SUB}/resourceGroups/rg2/providers/Microsoft.Authorization/policyAssignments/a"
    other_sub = "/subscriptions/x/providers/Microsoft.Authorization/policyAssignments/a"
    assert covering_assignment(CLUSTER, [other_sub, other_rg, rg_assignment]) == rg_assignment
    assert covering_assignment(CLUSTER, [other_sub, ASSIGNMENT]) == ASSIGNMENT
    assert covering_assignment(CLUSTER, [other_sub, other_rg]) is None
    # resourceGroups/rg must not match resourceGroups/rg2
    assert covering_assignment(CLUSTER.replace("/rg/", "/rg2x/"), [other_rg]) is None


def test_backoff_grows_and_is_capped():
    assert backoff_seconds(0) == 5 and backoff_seconds(1) == 10 and backoff_seconds(20) == 600


EXT_STATES = st.sampled_from(["Succeeded", "Failed", "Canceled", "Creating", "Updating", "Deleting", "Weird"])
OBSERVED = st.builds(
    ObservedState,
    cluster_location=st.sampled_from(["westeurope", "eastus"]),
    storage_account_id=st.sampled_from([SA, None]),
    storage=st.one_of(
        st.none(),
        st.builds(StorageView, st.just(SA), st.sampled_from(["westeurope", "eastus"]), st.just("https://b/")),
    ),
    storage_read=st.booleans(),
    extension=st.one_of(
        st.none(), st.builds(ExtensionView, st.just("e"), EXT_STATES, st.sampled_from([None, "p"]))
    ),
    container_exists=st.sampled_from([None, True, False]),
    grant_exists=st.sampled_from([None, True, False]),
    task=st.one_of(
        st.none(), st.builds(TaskView, st.just("t"), st.sampled_from(["Accepted", "Succeeded", "Failed"]))
    ),
    prior_reinstalls=st.integers(0, 5),
    assignment_id=st.sampled_from([None, ASSIGNMENT]),
)
BLOCKERS = st.lists(
    st.sampled_from(["cluster-stopped", "no-managed-identity", "cluster-not-succeeded"]), max_size=2
)


@given(OBSERVED, st.booleans(), BLOCKERS, st.sampled_from(list(Mode)))
def test_only_selected_unblocked_clusters_ever_get_writes(observed_state, selected, blockers, mode):
    options = PlanningOptions(mode=mode, policy_assignment_ids=(ASSIGNMENT,))
    step = plan_next_step(observed_state, D(selected=selected, blockers=tuple(blockers)), options)
    if not selected or blockers:
        assert step.writes == ()
    if step.writes:
        assert step.outcome.kind in (OutcomeKind.WAIT, OutcomeKind.DONE)


@given(OBSERVED, st.integers(0, 3))
def test_reinstalls_never_exceed_the_bound(observed_state, bound):
    step = plan_next_step(observed_state, D(), PlanningOptions(max_reinstalls=bound))
    if ActionKind.REINSTALL_EXTENSION in kinds(step):
        assert observed_state.prior_reinstalls < bound


@given(OBSERVED)
def test_audit_plans_exactly_what_install_would_do(observed_state):
    audit = plan_next_step(observed_state, D(), PlanningOptions(mode=Mode.AUDIT))
    assert audit == plan_next_step(observed_state, D(), INSTALL)
