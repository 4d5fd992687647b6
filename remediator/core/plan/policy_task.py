"""Policy-task mode's chain: Azure Policy's own DeployIfNotExists installs the extension, on our cue.

One link, ``extension-installed``, whose write is a remediation task at the cluster's scope. A remediation
task runs once; when the newest task has ended and the cluster still lacks the extension (non-compliant again,
or the task failed) the next task gets the next generation in its name (``naming.remediation_task_name``), so
repeats find the running task instead of piling up new ones, and a cluster is never stuck behind an old,
ended task. Failed/Canceled tasks in a row are retried at most ``max_reinstalls`` times.

Real Azure accepts a remediation task for an assignment whose effect cannot remediate (Audit,
AuditIfNotExists, ...): 201, then ``Succeeded`` with zero deployments (recorded in
``shared/recordings/azure-cli__policyinsights__test_policy_insights_remediation.json``). So before the first
task the link reads the assignment and its definition (the definition once per process) and refuses an
assignment whose effective effect is not DeployIfNotExists or Modify, naming it (:func:`remediation_effect`;
``config check --live`` and ``/api/health`` use the same function). And a task that ended ``Succeeded`` with
zero deployments while the cluster still lacks the extension means the assignment does not see the cluster as
non-compliant (its effect, or its parameters: tags, location): that is a give-up naming the task and the
assignment, never a next task generation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from remediator.core.ids import ResourceId, parse_resource_id
from remediator.core.naming import remediation_task_name
from remediator.core.plan.links import EXTENSION_INSTALLED
from remediator.core.plan.observed import (
    FAILED_TASK_STATES,
    RUNNING_TASK_STATES,
    SUCCEEDED_TASK_STATES,
    AssignmentRead,
    AssignmentView,
    ExtensionRead,
    Observed,
    Read,
    RemediationTaskRead,
    TaskView,
)
from remediator.core.plan.requirement import (
    EXTENSION_POLL_SECONDS,
    TASK_POLL_SECONDS,
    Blocked,
    Chain,
    Missing,
    PlanContext,
    Requirement,
    Satisfied,
    Verdict,
    Waiting,
)
from remediator.core.plan.roles import is_within
from remediator.core.plan.writes import CreateRemediationTask
from remediator.core.policy_rule import effective_parameters, rule_effect
from remediator.core.text import ignore_case_key

MAX_TASK_GENERATIONS = 100
"""How many remediation-task generations :func:`latest_remediation_task` looks at before it stops (a safety
bound on reads; reaching it makes the link blocked)."""

_ASSIGNMENTS = "/providers/Microsoft.Authorization/policyAssignments/"


def assignment_scope(assignment: ResourceId) -> ResourceId:
    """The scope a policy assignment id is at (``<scope>/providers/Microsoft.Authorization/...``)."""
    canonical = assignment.canonical
    # ignore_case_key maps code point to code point, so the index holds in ``canonical`` (str.lower() does
    # not: U+0130 becomes two code points)
    cut = ignore_case_key(canonical).rfind(ignore_case_key(_ASSIGNMENTS))
    return parse_resource_id(canonical[:cut]) if cut > 0 else assignment


def covering_assignment(cluster: ResourceId, assignments: Sequence[ResourceId]) -> ResourceId | None:
    """The first policy assignment whose scope contains the cluster (its subscription, resource group or the
    cluster itself). Policy 3/4 cannot be assigned at management-group scope (aks_backup_facts.md §4.1)."""
    for assignment in assignments:
        if not assignment.is_type("Microsoft.Authorization/policyAssignments"):
            continue
        scope = assignment_scope(assignment)
        if scope.subscription_id is not None and is_within(cluster, scope):
            return assignment
    return None


REMEDIATING_EFFECTS = frozenset({"deployifnotexists", "modify"})
"""Effects a remediation task can act on (Azure Policy docs, "Remediate non-compliant resources")."""


@dataclass(frozen=True)
class RemediationEffect:
    """Whether a remediation task for an assignment can deploy anything.

    :param remediable: ``True`` (DeployIfNotExists or Modify), ``False`` (any other effect, an initiative, a
        missing assignment), ``None`` (cannot tell: the definition could not be read).
    :param effect: the effective effect, as written (``None`` when unknown).
    :param why: one line naming the assignment, for refusals and explain.
    """

    remediable: bool | None
    effect: str | None
    why: str


def remediation_effect(assignment_id: ResourceId | str, view: AssignmentView) -> RemediationEffect:
    """Judge an assignment for policy-task mode from the assignment and its definition (pure)."""
    name = str(assignment_id)
    assignment = view.assignment
    if assignment is None:
        return RemediationEffect(False, None, f"policy assignment {name} does not exist")
    label = assignment.label
    if view.is_set:
        return RemediationEffect(
            False,
            None,
            f"policy assignment {label} assigns an initiative; policy-task mode needs an assignment of the"
            " DeployIfNotExists backup policy itself (a remediation task of an initiative needs a member"
            " reference the remediator does not send)",
        )
    definition = view.definition
    if definition is None:
        why = f"the definition of policy assignment {label} could not be read"
        return RemediationEffect(None, None, why + (f": {view.error}" if view.error else ""))
    values, _missing = effective_parameters(definition.parameters, assignment.parameters)
    effect = rule_effect(definition.rule, values)
    if effect is not None and effect.lower() in REMEDIATING_EFFECTS:
        return RemediationEffect(True, effect, f"policy assignment {label} has effect {effect}")
    return RemediationEffect(
        False,
        effect,
        f"policy assignment {label} has effect {effect or 'unknown'}, which a remediation task cannot act on"
        " (Azure accepts the task and ends it Succeeded with zero deployments): assign the backup policy with"
        " effect DeployIfNotExists, or use remediation.mode install",
    )


def latest_remediation_task(
    cluster: ResourceId,
    assignment: ResourceId,
    provisioning_state_of: Callable[[str], str | None],
    *,
    limit: int = MAX_TASK_GENERATIONS,
) -> TaskView | None:
    """The newest remediation task of a cluster and assignment, walking generations 0, 1, 2, ... by name.

    A generation exists only after the one before it ended, so the walk stops at the first name that does not
    exist. Along the way it counts the Failed/Canceled tasks in a row before the newest one.

    :param provisioning_state_of: reads one task by name: its provisioningState, or ``None`` if it does not
        exist (the reader passes a ``PolicyGateway`` GET).
    """
    newest: TaskView | None = None
    failed_run = 0
    for generation in range(limit):
        name = remediation_task_name(cluster.canonical, assignment.canonical, generation=generation)
        state = provisioning_state_of(name)
        if state is None:
            break
        if newest is not None:
            failed_run = failed_run + 1 if newest.provisioning_state.lower() in FAILED_TASK_STATES else 0
        newest = TaskView(name, state, generation=generation, failed_before=failed_run)
    return newest


class ExtensionDeployedByPolicy(Requirement):
    """The backup extension is installed and Succeeded, deployed by the DINE through a remediation task."""

    key = EXTENSION_INSTALLED
    title = "the backup extension is installed (by Azure Policy) and Succeeded"

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        read = ExtensionRead(ctx.cluster_id)
        assignment = covering_assignment(ctx.cluster_id, ctx.options.policy_assignment_ids)
        if observed.knows(read) and observed.peek(read) is None and assignment is not None:
            return (read, AssignmentRead(assignment), RemediationTaskRead(ctx.cluster_id, assignment))
        return (read,)

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        ext = observed.get(ExtensionRead(ctx.cluster_id))
        if ext is not None:
            if ext.succeeded:
                return Satisfied(f"extension {ext.name} Succeeded (deployed through Azure Policy)")
            if ext.failed:
                return Blocked(
                    f"extension {ext.name} is {ext.provisioning_state}; the DINE policy counts it as present"
                    " and will not redeploy it (use mode install, or delete the extension)"
                )
            return Waiting(EXTENSION_POLL_SECONDS, f"extension {ext.name} is {ext.provisioning_state}")
        assignment = covering_assignment(ctx.cluster_id, ctx.options.policy_assignment_ids)
        if assignment is None:
            return Blocked(
                "no configured policy assignment covers the cluster's subscription or resource group"
            )
        judged = remediation_effect(assignment, observed.get(AssignmentRead(assignment)))
        if judged.remediable is False:
            return Blocked(f"assignment-not-remediable: {judged.why}")
        task = observed.get(RemediationTaskRead(ctx.cluster_id, assignment))
        next_generation = 0 if task is None else task.generation + 1
        create = CreateRemediationTask(
            link=self.key, cluster=ctx.cluster_id, assignment=assignment, generation=next_generation
        )
        if task is None:
            return Missing(create, "remediation task created", TASK_POLL_SECONDS)
        state = task.provisioning_state.lower()
        if state in RUNNING_TASK_STATES:
            return Waiting(TASK_POLL_SECONDS, f"remediation task {task.name} is {task.provisioning_state}")
        if not task.ended:
            return Blocked(f"remediation task {task.name} ended {task.provisioning_state}")
        if state in SUCCEEDED_TASK_STATES and task.deployments == 0:
            return Blocked(
                f"remediation-task-found-nothing: remediation task {task.name} ended"
                f" {task.provisioning_state} with zero deployments, yet the cluster has no backup extension:"
                f" policy assignment {assignment.canonical} does not see the cluster as non-compliant (its"
                " effect, or parameters such as the inclusion tag or location, leave it out); no new task is"
                " created. Fix the assignment, then delete that remediation task (az policy remediation"
                f" delete --name {task.name} --resource {ctx.cluster_id.canonical}) so the next event or"
                " sweep creates one"
            )
        if task.generation + 1 >= MAX_TASK_GENERATIONS:
            return Blocked(
                f"remediation task {task.name} ended {task.provisioning_state} and is generation"
                f" {task.generation}; no further tasks are created (limit {MAX_TASK_GENERATIONS})"
            )
        if state in FAILED_TASK_STATES:
            failed = task.failed_before + 1
            if failed > ctx.options.max_reinstalls:
                return Blocked(
                    f"remediation task {task.name} ended {task.provisioning_state}; {failed} task(s) in a row"
                    f" ended Failed/Canceled (limit {ctx.options.max_reinstalls} retries)"
                )
            why = (
                f"remediation task {task.name} ended {task.provisioning_state}; task generation"
                f" {next_generation} created (retry {failed} of {ctx.options.max_reinstalls})"
            )
            return Missing(create, why, TASK_POLL_SECONDS)
        why = (
            f"remediation task {task.name} {task.provisioning_state}, yet the cluster has no backup extension"
            f" (non-compliant again); task generation {next_generation} created"
        )
        return Missing(create, why, TASK_POLL_SECONDS)


POLICY_TASK = Chain("policy-task", (ExtensionDeployedByPolicy(),))
"""Policy-task mode."""
