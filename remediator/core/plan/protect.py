"""Protect mode's chain: the cluster is backed up (its backup instance is ProtectionConfigured), not just
installed.

::

    protection-not-elsewhere            (another vault's backup instance: leave it alone, write nothing)
    storage-usable ─┬ backup-container, extension-installed, storage-access-granted   (install mode's links)
    backup-vault-ready ─┬ backup-policy-ready
                        ├ vault-reader-on-cluster, vault-blob-reader-on-storage
                        └ trusted-access-bound
    snapshot-resource-group-ready ─┬ vault-reader-on-snapshot-rg, vault-disk-snapshot-contributor,
                                   ├ vault-disk-data-operator (vault-tier policies),
                                   └ cluster-contributor-on-snapshot-rg
    every link above ── backup-validated ── backup-instance-exists ── protection-configured

The order and the set are Microsoft's orchestrator's (``az dataprotection enable-backup trigger``,
Azure/azure-cli-extensions@src/dataprotection/azext_dataprotection/manual/aks/aks_helper.py; digested in
``shared/reference/protection_facts.md`` §1.3/§1.4), with three differences that are the point of the product:

- **No fixed sleeps.** The CLI sleeps 120 s "for permission propagation". Here nothing ARM can show tells when
  a role or a trusted-access binding reaches Azure Backup, so ``backup-validated`` asks Azure Backup itself
  (validateForBackup, a long-running operation followed across reconciles through the journal) and, while it
  answers a propagation code, validates again with bounded backoff until a budget runs out; every other
  long-running operation (vault create, binding Updating, protection being configured) is a ``wait`` with a
  poll interval that grows after a few polls, and a per-link budget after which the reconcile gives up naming
  the link and the cause (journaled like every outcome).
- **Repair, don't abort.** Each link re-checks its prerequisite every reconcile, so a deleted binding or role
  is re-created by its own link; a backup instance in ProtectionError has its code mapped
  (``core/protection_errors.py``) to a repair (re-validate, then re-sync, a bounded number of times) or to a
  named human blocker.
- **Never duplicate.** A backup instance of the cluster in another vault stops the chain before any write.

Independent links are written together (the planner emits every unsatisfied link whose dependencies are
satisfied), so a fresh cluster gets its container, extension, vault and snapshot resource group in one round.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from remediator.core.catalog import (
    CONTRIBUTOR,
    DATA_OPERATOR_FOR_MANAGED_DISKS,
    DISK_SNAPSHOT_CONTRIBUTOR,
    READER,
    STORAGE_BLOB_DATA_READER,
    TRUSTED_ACCESS_BACKUP_ROLE,
)
from remediator.core.config import normalize_region
from remediator.core.ids import ResourceId, parse_resource_id
from remediator.core.outcomes import ActionStatus, ReconcileReport, WriteKind
from remediator.core.plan.install import (
    STORAGE_ACCESS,
    BackupContainer,
    ExtensionInstalled,
    StorageUsable,
)
from remediator.core.plan.links import (
    BACKUP_INSTANCE_EXISTS,
    BACKUP_POLICY_READY,
    BACKUP_VALIDATED,
    BACKUP_VAULT_READY,
    CLUSTER_CONTRIBUTOR_ON_SNAPSHOT_GROUP,
    EXTENSION_INSTALLED,
    PROTECTION_CONFIGURED,
    PROTECTION_NOT_ELSEWHERE,
    SNAPSHOT_GROUP_READY,
    STORAGE_ACCESS_GRANTED,
    STORAGE_USABLE,
    TRUSTED_ACCESS_BOUND,
    VAULT_BLOB_READER,
    VAULT_DATA_OPERATOR,
    VAULT_READER_ON_CLUSTER,
    VAULT_READER_ON_SNAPSHOT_GROUP,
    VAULT_SNAPSHOT_CONTRIBUTOR,
)
from remediator.core.plan.observed import (
    BackupInstancesRead,
    BackupInstanceView,
    BackupPolicyRead,
    BackupVaultRead,
    JournaledValidation,
    LinkEpisode,
    LocksRead,
    Observed,
    ProtectionHistory,
    ProtectionHistoryRead,
    Read,
    ResourceGroupRead,
    TrustedAccessBindingsRead,
    ValidationRead,
    ValidationView,
)
from remediator.core.plan.requirement import (
    Blocked,
    Chain,
    Missing,
    NotNeeded,
    PlanContext,
    Requirement,
    Satisfied,
    Superseded,
    Verdict,
    Waiting,
)
from remediator.core.plan.roles import RoleAssigned
from remediator.core.plan.writes import (
    BindTrustedAccess,
    CreateBackupInstance,
    CreateBackupPolicy,
    CreateBackupVault,
    CreateResourceGroup,
    SyncBackupInstance,
    ValidateForBackup,
)
from remediator.core.protection import (
    TRUSTED_ACCESS_LIMIT,
    ClusterTargets,
    backup_instance_name,
    targets_for,
    trusted_access_binding_name,
)
from remediator.core.protection_errors import PROPAGATION_REPAIRS, Repair, action_for

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------- timing
# Poll intervals are a little above what each operation takes in Azure (sources: emulator/README.md Part 3,
# "Knobs": realistic column), so a wait rarely ends before the operation; every poll interval doubles after
# POLLS_BEFORE_BACKOFF polls of the same link, up to POLL_CAP_S; a link waiting longer than its budget gives
# up.

VAULT_POLL_S = 2.0
"""A vault PUT's operation: ~1 s (recorded vault operationStatus 09:27:20.97 -> 09:27:22)."""
TRUSTED_ACCESS_POLL_S = 5.0
"""A binding's Updating -> Succeeded: ~0.5 s in the aks-preview recording; AKS says updates "can take up to
5 minutes" (its add-on manager cycle)."""
VALIDATION_FIRST_POLL_S = 12.5
"""validateForBackup runs ~12 s (REST walkthrough 13:03:54 -> 13:04:06): its result is read once then."""
VALIDATION_POLL_S = 4.0
"""...and every few seconds after that while it still runs."""
CONFIGURE_FIRST_POLL_S = 30.0
CONFIGURE_POLL_S = 15.0
"""ConfiguringProtection -> ProtectionConfigured: nothing documents its length (Terraform's poller looks once
a minute): a first look after 30 s, then four a minute."""
PROPAGATION_RETRY_S = (12.0, 12.0, 24.0)
"""How long after a failed validation started the next one is sent, by the number of failed ones (then the
last value): role assignments take "a few minutes" to reach Azure Backup (support matrix), bindings up to 5.
The first two equal one validation's run, so the next is sent as soon as a failure is read."""
DEPENDENT_WAIT_S = 2.0
"""After writes accepted at once (roles, the policy, the resource group) whose dependants are deferred: look
again almost at once, the next links can go."""
REPAIR_RETRY_S = (0.0, 30.0, 60.0, 120.0)
"""How long after the last change (a re-created role or binding, the previous re-sync) the next re-sync of an
instance in ProtectionError is sent, by the number of repairs so far (then the last value): the first at
once, then giving propagation time (configuring itself takes about a minute)."""
POLLS_BEFORE_BACKOFF = 4
POLL_CAP_S = 120.0

BUDGETS_S: dict[str, float] = {
    BACKUP_VAULT_READY: 15 * 60.0,
    TRUSTED_ACCESS_BOUND: 15 * 60.0,
    BACKUP_VALIDATED: 30 * 60.0,
    PROTECTION_CONFIGURED: 45 * 60.0,
}
"""Per-link budgets: how long a link may keep waiting before the reconcile gives up and names it. Validation
covers role propagation ("up to 10 minutes", RBAC troubleshooting doc) and a binding taking effect (up to 5
minutes) with margin; configuring protection gets Terraform's 30-minute create timeout plus margin."""

HISTORY_LIMIT = 60
"""Journal reports read for budgets and repairs (newest first); a budget's run is never longer than this."""

# --------------------------------------------------------------------------------------------- history

_UNSATISFIED_STATES = frozenset({"waiting", "missing"})
_ENDS_EPISODE = frozenset({"satisfied", "not-needed", "superseded", "blocked"})


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _operation_id(detail: str) -> str | None:
    """The operation id a validation action's detail carries (``operation <id>``)."""
    head, _, rest = detail.partition(" ")
    return rest.split()[0] if head == "operation" and rest.split() else None


def protection_history(
    reports: Sequence[ReconcileReport], *, now: float, journaled: bool = True
) -> ProtectionHistory:
    """What the journal says about a cluster's protection (reports newest first).

    - the newest validation sent (its operation id is the action's detail) and how many were sent since the
      last other write (a validation older than a write checked an older state);
    - repairs (actions of ``protection-configured`` that were sent) since the link was last satisfied;
    - per link, the current run of reports in which it was waiting or missing (budgets): a satisfied,
      superseded or blocked (given up) report ends the run, so a new attempt after a give-up gets a new
      budget.
    """
    validation: JournaledValidation | None = None
    last_change_at: float | None = None
    validations_since_change = 0
    repairs = 0
    repairs_open = True
    configured_at: float | None = None
    runs: dict[str, list[float]] = {}
    closed: set[str] = set()
    for report in reports:
        started = _epoch(report.started_at)
        if started is None:
            continue
        for action in report.actions:
            if action.status is not ActionStatus.DONE:
                continue
            if action.kind is WriteKind.VALIDATE_FOR_BACKUP:
                if last_change_at is None:
                    validations_since_change += 1
                operation = _operation_id(action.detail)
                if validation is None and operation is not None:
                    try:
                        vault = parse_resource_id(action.target)
                    except ValueError:
                        continue
                    validation = JournaledValidation(operation, vault, started)
            elif last_change_at is None:
                last_change_at = started
            if repairs_open and action.link == PROTECTION_CONFIGURED:
                repairs += 1
        for link in report.links:
            key, state = link.get("link", ""), link.get("state", "")
            if key == PROTECTION_CONFIGURED and state == "satisfied":
                repairs_open = False
                if configured_at is None:
                    configured_at = started
            if key in closed:
                continue
            if state in _ENDS_EPISODE:
                closed.add(key)
            elif state in _UNSATISFIED_STATES:
                runs.setdefault(key, []).append(started)
    episodes = {key: LinkEpisode(since=min(times), reports=len(times)) for key, times in runs.items()}
    return ProtectionHistory(
        journaled=journaled,
        now=now,
        validation=validation,
        last_change_at=last_change_at,
        validations_since_change=validations_since_change,
        repairs=repairs,
        configured_at=configured_at,
        episodes=episodes,
    )


def _budgeted(
    key: str, verdict: Verdict, history: ProtectionHistory | None, *, backoff: bool = True
) -> Verdict:
    """A ``Waiting`` verdict with its poll interval backed off after a few polls (unless ``backoff`` is off:
    a poll of one short operation among several in the link's run), or ``Blocked`` (the give-up, naming the
    link and the cause) once the link has waited longer than its budget."""
    if not isinstance(verdict, Waiting) or history is None or not history.journaled:
        return verdict
    episode = history.episodes.get(key)
    if episode is None:
        return verdict
    budget = BUDGETS_S.get(key)
    waited = history.now - episode.since
    if budget is not None and waited > budget:
        minutes = f"{waited / 60:.0f} min (budget {budget / 60:.0f} min)"
        return Blocked(f"{key}: gave up after waiting {minutes}: {verdict.why}")
    if not backoff:
        return verdict
    extra = max(0, episode.reports - POLLS_BEFORE_BACKOFF)
    retry = min(verdict.retry_after_s * (2.0 ** min(extra, 10)), max(POLL_CAP_S, verdict.retry_after_s))
    return Waiting(retry, verdict.why)


# --------------------------------------------------------------------------------------------- helpers


def _targets(ctx: PlanContext) -> ClusterTargets | None:
    return targets_for(ctx.options.protection, ctx.cluster_id, ctx.cluster.location)


def _history(ctx: PlanContext, observed: Observed) -> ProtectionHistory:
    return observed.get(ProtectionHistoryRead(ctx.cluster_id))


def _instances(ctx: PlanContext, observed: Observed) -> tuple[BackupInstanceView, ...]:
    return observed.get(BackupInstancesRead(ctx.cluster_id))


def _ours(ctx: PlanContext, observed: Observed) -> BackupInstanceView | None:
    """The cluster's backup instance in the region's vault (under any name: the CLI's, a person's, ours)."""
    targets = _targets(ctx)
    if targets is None:
        return None
    for instance in _instances(ctx, observed):
        if instance.vault is not None and instance.vault == targets.vault:
            return instance
    return None


def _vault_principal(ctx: PlanContext, observed: Observed) -> str | None:
    targets = _targets(ctx)
    if targets is None:
        return None
    vault = observed.peek(BackupVaultRead(targets.vault))
    return vault.principal_id if vault is not None and vault.succeeded else None


def _cluster_principal(ctx: PlanContext, _observed: Observed) -> str | None:
    return ctx.cluster.identity_principal_id


def _snapshot_group(ctx: PlanContext, _observed: Observed) -> ResourceId | None:
    targets = _targets(ctx)
    return None if targets is None else targets.snapshot_group


def _reader_scope(ctx: PlanContext, _observed: Observed) -> ResourceId:
    """Where the vault's Reader for this cluster is created (``remediation.roleAssignmentScope``)."""
    choice = ctx.options.protection.role_scope
    cluster = ctx.cluster_id
    if choice == "resourceGroup" and cluster.resource_group_id is not None:
        return parse_resource_id(cluster.resource_group_id)
    if choice == "subscription" and cluster.subscription_scope is not None:
        return parse_resource_id(cluster.subscription_scope)
    return cluster


def _vault_tier(ctx: PlanContext, observed: Observed) -> bool:
    """Whether the vault identity needs Data Operator for Managed Disks (``protection
    .dataOperatorForManagedDisks``; ``auto``: the policy keeps backups in the vault tier)."""
    choice = ctx.options.protection.data_operator
    if choice != "auto":
        return choice == "always"
    targets = _targets(ctx)
    if targets is None:
        return False
    policy = observed.peek(BackupPolicyRead(targets.policy))
    if policy is not None:
        return policy.uses_vault_tier
    return targets.policy_strategy == "DisasterRecovery"


def _locks_text(ctx: PlanContext, observed: Observed, group: ResourceId) -> str:
    locks = observed.peek(LocksRead(group)) or ()
    if not locks:
        return f"remove the lock on resource group {group.resource_group}"
    named = ", ".join(f"{lock.id.rsplit('/', 1)[-1]} ({lock.level})" for lock in locks)
    return f"remove lock {named} on resource group {group.resource_group} (or above it): {locks[0].id}"


def _human_blocker(ctx: PlanContext, observed: Observed, code: str, message: str, *, after: str) -> Blocked:
    """The blocker of a human code: its remedy (for locks: which lock on which group), the error's message,
    and what happens once the person has acted (``after``)."""
    row = action_for(code)
    targets = _targets(ctx)
    remedy = row.remedy
    if _wants_locks(code) and targets is not None:
        remedy = _locks_text(ctx, observed, targets.snapshot_group)
    detail = f" ({message})" if message else ""
    return Blocked(f"{code}: {remedy}{detail}; {after}")


def _cause_gone(ctx: PlanContext, observed: Observed, code: str) -> bool:
    """Whether the product can see that a human code's cause was removed (a lock: the group has none now)."""
    targets = _targets(ctx)
    if not _wants_locks(code) or targets is None:
        return False
    locks = observed.peek(LocksRead(targets.snapshot_group))
    return locks is not None and not locks


def _wants_locks(code: str) -> bool:
    return code.lower() == "usererrorsnapshotresourcegrouphaslocks"


# --------------------------------------------------------------------------------------------- links


class ProtectionNotElsewhere(Requirement):
    """No backup instance protects the cluster in a vault other than the region's: if one does, the cluster
    is protected (Policy 2 counts it) and the product must not duplicate or disturb it (Azure allows one
    instance per datasource across vaults: ``UserErrorDppDatasourceAlreadyProtected``)."""

    key = PROTECTION_NOT_ELSEWHERE
    title = "no backup instance protects the cluster in another vault"

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        if _targets(ctx) is None:
            return ()
        return (BackupInstancesRead(ctx.cluster_id), ProtectionHistoryRead(ctx.cluster_id))

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        targets = _targets(ctx)
        if targets is None:
            return Blocked(f"no protection targets for region {ctx.cluster.location} (regionTargets)")
        for instance in _instances(ctx, observed):
            if instance.vault is None or instance.vault != targets.vault:
                where = instance.vault.canonical if instance.vault is not None else "an unknown vault"
                return Superseded(
                    f"protected elsewhere: backup instance {instance.name} in {where}"
                    f" ({instance.protection_state or 'unknown state'}); left alone, nothing written"
                    f" (the configured vault is {targets.vault.name})"
                )
        return Satisfied("no backup instance of the cluster in another vault")


class BackupVaultReady(Requirement):
    """The region's backup vault exists, in the cluster's region, Succeeded, with a system-assigned identity
    (the principal its roles are for); created from the preset when missing."""

    key = BACKUP_VAULT_READY
    title = "the region's backup vault exists in the cluster's region, with a system-assigned identity"

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        targets = _targets(ctx)
        return (
            () if targets is None else (BackupVaultRead(targets.vault), ProtectionHistoryRead(ctx.cluster_id))
        )

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        targets = _targets(ctx)
        if targets is None:
            return Blocked(f"no backup vault configured for region {ctx.cluster.location}")
        vault = observed.get(BackupVaultRead(targets.vault))
        name = targets.vault.name
        if vault is None:
            if targets.vault_preset is None:
                return Blocked(
                    f"backup-vault-missing: {targets.vault} does not exist; create it, or give"
                    " regionTargets.<region>.backupVault as a preset ({}) to let the product create it"
                )
            write = CreateBackupVault(
                link=self.key, vault=targets.vault, location=targets.region, preset=targets.vault_preset
            )
            return Missing(write, f"backup vault {name} create started", VAULT_POLL_S)
        if normalize_region(vault.location) != targets.region:
            return Blocked(
                f"backup-vault-wrong-region: {name} is in {vault.location}, the cluster in {targets.region};"
                " Azure Backup for AKS needs the vault in the cluster's region"
            )
        history = _history(ctx, observed)
        if vault.in_progress:
            waiting = Waiting(VAULT_POLL_S, f"backup vault {name} is {vault.provisioning_state}")
            return _budgeted(self.key, waiting, history)
        if not vault.succeeded:
            return Blocked(f"backup vault {name} is {vault.provisioning_state}; look at its activity log")
        if not vault.principal_id:
            return Blocked(
                f"backup-vault-no-identity: {name} has no system-assigned identity; enable it (the vault's"
                " roles are granted to it)"
            )
        return Satisfied(f"backup vault {name} Succeeded ({vault.redundancy or 'redundancy unknown'})")


class BackupPolicyReady(Requirement):
    """The backup policy exists in the vault and is for AKS; created from the preset when missing (AKS
    policies cannot be modified, so an existing one is reused by name, as the CLI does)."""

    key = BACKUP_POLICY_READY
    title = "the backup policy exists in the region's vault"
    depends_on = (BACKUP_VAULT_READY,)

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        targets = _targets(ctx)
        return () if targets is None else (BackupPolicyRead(targets.policy),)

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        targets = _targets(ctx)
        assert targets is not None  # backup-vault-ready is satisfied
        policy = observed.get(BackupPolicyRead(targets.policy))
        name = targets.policy.name
        if policy is None:
            if targets.policy_strategy is None:
                return Blocked(
                    f"backup-policy-missing: {targets.policy} does not exist; create it, or give a preset"
                    " ({strategy: Week}) to let the product create it"
                )
            write = CreateBackupPolicy(link=self.key, policy=targets.policy, strategy=targets.policy_strategy)
            return Missing(write, f"backup policy {name} ({targets.policy_strategy}) created")
        if policy.datasource_types and not any(
            t.lower() == "microsoft.containerservice/managedclusters" for t in policy.datasource_types
        ):
            return Blocked(f"backup-policy-not-aks: {name} is for {', '.join(policy.datasource_types)}")
        tier = "operational + vault tier" if policy.uses_vault_tier else "operational tier"
        return Satisfied(f"backup policy {name} ({tier})")


class SnapshotGroupReady(Requirement):
    """The snapshot resource group exists (in the cluster's subscription when named); created in the
    cluster's region when the product names it."""

    key = SNAPSHOT_GROUP_READY
    title = "the snapshot resource group exists"

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        targets = _targets(ctx)
        return () if targets is None else (ResourceGroupRead(targets.snapshot_group),)

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        targets = _targets(ctx)
        if targets is None:
            return Blocked(f"no snapshot resource group configured for region {ctx.cluster.location}")
        group = observed.get(ResourceGroupRead(targets.snapshot_group))
        name = targets.snapshot_group.resource_group
        if group is None:
            if not targets.snapshot_group_created:
                return Blocked(f"snapshot-resource-group-missing: {targets.snapshot_group} does not exist")
            write = CreateResourceGroup(link=self.key, group=targets.snapshot_group, location=targets.region)
            return Missing(write, f"snapshot resource group {name} created")
        return Satisfied(f"snapshot resource group {name} exists")


class TrustedAccessBound(Requirement):
    """A trusted-access role binding on the cluster gives the vault ``backup-operator``: one with the vault as
    ``sourceResourceId`` is reused (the CLI's rule), a missing one is created under a deterministic name, and
    a cluster that already has AKS's maximum of 8 bindings is a named human blocker."""

    key = TRUSTED_ACCESS_BOUND
    title = "a trusted-access role binding gives the vault backup-operator on the cluster"
    depends_on = (BACKUP_VAULT_READY,)

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        if _targets(ctx) is None:
            return ()
        return (TrustedAccessBindingsRead(ctx.cluster_id), ProtectionHistoryRead(ctx.cluster_id))

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        targets = _targets(ctx)
        assert targets is not None  # backup-vault-ready is satisfied
        bindings = observed.get(TrustedAccessBindingsRead(ctx.cluster_id))
        vault = targets.vault
        role = TRUSTED_ACCESS_BACKUP_ROLE.lower()
        mine = [b for b in bindings if _same_id(b.source_resource_id, vault)]
        with_role = [b for b in mine if role in {r.lower() for r in b.roles}]
        history = _history(ctx, observed)
        if with_role:
            binding = with_role[0]
            if binding.state == "succeeded":
                return Satisfied(f"trusted-access binding {binding.name} for {vault.name} Succeeded")
            if binding.state in ("failed", "canceled", "cancelled"):
                write = BindTrustedAccess(
                    link=self.key, cluster=ctx.cluster_id, name=binding.name, vault=vault, roles=binding.roles
                )
                return Missing(
                    write,
                    f"trusted-access binding {binding.name} was {binding.provisioning_state}; re-bound",
                    TRUSTED_ACCESS_POLL_S,
                )
            waiting = Waiting(
                TRUSTED_ACCESS_POLL_S,
                f"trusted-access binding {binding.name} is {binding.provisioning_state}",
            )
            return _budgeted(self.key, waiting, history)
        if mine:  # the vault's binding lacks the backup role: add it to the same binding
            binding = mine[0]
            roles = (*binding.roles, TRUSTED_ACCESS_BACKUP_ROLE)
            write = BindTrustedAccess(
                link=self.key, cluster=ctx.cluster_id, name=binding.name, vault=vault, roles=roles
            )
            return Missing(
                write,
                f"backup-operator added to trusted-access binding {binding.name}",
                TRUSTED_ACCESS_POLL_S,
            )
        if len(bindings) >= TRUSTED_ACCESS_LIMIT:
            names = ", ".join(b.name for b in bindings)
            return Blocked(
                f"trusted-access-limit: the cluster already has {len(bindings)} trusted-access role bindings"
                f" (AKS allows {TRUSTED_ACCESS_LIMIT}): {names}; delete one that is no longer used so the"
                f" vault {vault.name} can be bound"
            )
        name = trusted_access_binding_name(vault)
        write = BindTrustedAccess(
            link=self.key, cluster=ctx.cluster_id, name=name, vault=vault, roles=(TRUSTED_ACCESS_BACKUP_ROLE,)
        )
        return Missing(
            write, f"trusted-access binding {name} for {vault.name} created", TRUSTED_ACCESS_POLL_S
        )


def _same_id(value: str, resource: ResourceId) -> bool:
    try:
        return parse_resource_id(value) == resource
    except ValueError:
        return False


_PREREQUISITES = (
    PROTECTION_NOT_ELSEWHERE,
    STORAGE_USABLE,
    EXTENSION_INSTALLED,
    STORAGE_ACCESS_GRANTED,
    BACKUP_VAULT_READY,
    BACKUP_POLICY_READY,
    SNAPSHOT_GROUP_READY,
    VAULT_READER_ON_CLUSTER,
    VAULT_READER_ON_SNAPSHOT_GROUP,
    VAULT_SNAPSHOT_CONTRIBUTOR,
    VAULT_DATA_OPERATOR,
    VAULT_BLOB_READER,
    CLUSTER_CONTRIBUTOR_ON_SNAPSHOT_GROUP,
    TRUSTED_ACCESS_BOUND,
)


class BackupValidated(Requirement):
    """Before the backup instance is created, Azure Backup itself says the cluster can be protected:
    validateForBackup of the instance body succeeded after the last change (it is the only view of what Azure
    Backup sees: roles and bindings reach it minutes after ARM shows them; Microsoft's CLI does the same,
    ``ValidateAndCreate``). A failure with a propagation code (a role or binding ARM shows but Azure Backup
    does not see yet) is validated again with backoff until the link's budget runs out; a human code is a
    named blocker. Not needed once the instance exists: validateForBackup refuses a datasource that already
    has one (``UserErrorDppDatasourceAlreadyProtected``), so repairs re-sync it instead
    (:class:`ProtectionConfigured`)."""

    key = BACKUP_VALIDATED
    title = "validateForBackup succeeds for the cluster's backup instance"
    depends_on = _PREREQUISITES

    def _fresh(self, ctx: PlanContext, observed: Observed) -> JournaledValidation | None:
        targets = _targets(ctx)
        history = observed.peek(ProtectionHistoryRead(ctx.cluster_id))
        if targets is None or history is None:
            return None
        fresh = history.fresh_validation
        return fresh if fresh is not None and fresh.vault == targets.vault else None

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        if _targets(ctx) is None:
            return ()
        reads: list[Read[Any]] = [BackupInstancesRead(ctx.cluster_id), ProtectionHistoryRead(ctx.cluster_id)]
        fresh = self._fresh(ctx, observed)
        if fresh is not None:
            read = ValidationRead(fresh.vault, fresh.operation_id)
            reads.append(read)
            found = observed.peek(read)
            targets = _targets(ctx)
            if found is not None and _wants_locks(found.error_code) and targets is not None:
                reads.append(LocksRead(targets.snapshot_group))
        return reads

    def _validate(
        self, ctx: PlanContext, targets: ClusterTargets, history: ProtectionHistory, why: str
    ) -> Missing:
        attempt = history.validations_since_change + 1
        write = ValidateForBackup(
            link=self.key,
            cluster=ctx.cluster_id,
            cluster_name=ctx.cluster.name,
            location=targets.region,
            vault=targets.vault,
            policy=targets.policy,
            snapshot_group=targets.snapshot_group,
            scope=ctx.options.protection.scope,
            attempt=attempt,
            episode=history.change_stamp,
        )
        return Missing(write, why, VALIDATION_FIRST_POLL_S)

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        targets = _targets(ctx)
        assert targets is not None
        ours = _ours(ctx, observed)
        if ours is not None:
            return NotNeeded(
                f"backup instance {ours.name} exists ({ours.protection_state or 'no state yet'})"
            )
        history = _history(ctx, observed)
        if not history.journaled:
            return Blocked(
                "protect mode follows validateForBackup and repairs across reconciles through the journal;"
                " configure the host storage (AzureWebJobsStorage)"
            )
        fresh = self._fresh(ctx, observed)
        if fresh is None:
            return self._validate(
                ctx, targets, history, "validateForBackup started before the backup instance PUT"
            )
        result: ValidationView | None = observed.get(ValidationRead(fresh.vault, fresh.operation_id))
        number = history.validations_since_change
        if result is None:
            return self._validate(
                ctx, targets, history, f"validation {number} is unknown to Azure; validating again"
            )
        if not result.done:
            waiting = Waiting(VALIDATION_POLL_S, f"validation {number} is {result.status}")
            # one validation runs ~12 s: its polls do not back off (the link's run spans every validation
            # since the last change; PROPAGATION_RETRY_S spaces the validations themselves)
            return _budgeted(self.key, waiting, history, backoff=False)
        if result.succeeded:
            return Satisfied(f"validateForBackup {number} succeeded")
        row = action_for(result.error_code)
        if row.repair is Repair.HUMAN and not _cause_gone(ctx, observed, result.error_code):
            after = "the next reconcile (event or sweep) validates again"
            return _human_blocker(ctx, observed, result.error_code, result.error_message, after=after)
        if row.repair is Repair.ELSEWHERE:
            return Superseded(f"protected elsewhere: {result.error_message or result.error_code}; left alone")
        cause = "propagation" if row.repair in PROPAGATION_REPAIRS else "a failed check"
        failed = f"validation {number} failed with {result.error_code or 'an error'} ({row.remedy})"
        episode = history.episodes.get(self.key)
        budget = BUDGETS_S[self.key]
        if episode is not None and history.now - episode.since > budget:
            return Blocked(
                f"{self.key}: gave up after {(history.now - episode.since) / 60:.0f} min: {failed}"
                f"{': ' + result.error_message if result.error_message else ''}"
            )
        backoff = PROPAGATION_RETRY_S[min(max(number - 1, 0), len(PROPAGATION_RETRY_S) - 1)]
        elapsed = history.now - fresh.started_at
        if elapsed >= backoff:
            return self._validate(ctx, targets, history, f"{failed}; waiting out {cause}: validating again")
        return Waiting(backoff - elapsed, f"{failed}; waiting out {cause} before validating again")


class BackupInstanceExists(Requirement):
    """The cluster has a backup instance in the region's vault (any name); created under a deterministic
    name (the CLI's ``<cluster>-<8 hex>``) once validation succeeded."""

    key = BACKUP_INSTANCE_EXISTS
    title = "the cluster's backup instance exists in the region's vault"
    depends_on = (BACKUP_VALIDATED,)

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        return () if _targets(ctx) is None else (BackupInstancesRead(ctx.cluster_id),)

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        targets = _targets(ctx)
        assert targets is not None
        ours = _ours(ctx, observed)
        if ours is not None:
            return Satisfied(f"backup instance {ours.name} in {targets.vault.name}")
        name = backup_instance_name(ctx.cluster.name, ctx.cluster_id)
        write = CreateBackupInstance(
            link=self.key,
            cluster=ctx.cluster_id,
            cluster_name=ctx.cluster.name,
            location=targets.region,
            vault=targets.vault,
            policy=targets.policy,
            snapshot_group=targets.snapshot_group,
            scope=ctx.options.protection.scope,
            name=name,
        )
        return Missing(
            write, f"backup instance {name} created; protection is being configured", CONFIGURE_FIRST_POLL_S
        )


_LEFT_ALONE_STATES = {
    "protectionstopped": "protection was stopped on purpose; resume it or delete the instance",
    "backupschedulessuspended": "backups were suspended on purpose; resume them",
    "retentionschedulessuspended": "retention was suspended on purpose; resume it",
}


class ProtectionConfigured(Requirement):
    """The backup instance is ProtectionConfigured (Policy 2 semantics, and backups run). While Azure Backup
    configures it, the link waits (budgeted); in ProtectionError / ConfiguringProtectionFailed the error
    code's repair is carried out (``core/protection_errors.py``) once the links before it are satisfied again
    (a removed role or binding is re-created by its own link first): the instance is re-synced (re-PUT for a
    wrong body) with backoff after the last change. Propagation codes are retried until the link's budget
    runs out, the others at most ``remediation.maxRepairs`` times per episode; human codes are named
    blockers."""

    key = PROTECTION_CONFIGURED
    title = "the backup instance is ProtectionConfigured"
    depends_on = (BACKUP_INSTANCE_EXISTS,)

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        targets = _targets(ctx)
        if targets is None:
            return ()
        reads: list[Read[Any]] = [BackupInstancesRead(ctx.cluster_id), ProtectionHistoryRead(ctx.cluster_id)]
        found = observed.peek(BackupInstancesRead(ctx.cluster_id))
        if found:
            for instance in found:
                if instance.vault == targets.vault and instance.failed and _wants_locks(instance.error_code):
                    reads.append(LocksRead(targets.snapshot_group))
        return reads

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        targets = _targets(ctx)
        assert targets is not None
        ours = _ours(ctx, observed)
        assert ours is not None  # backup-instance-exists is satisfied
        history = _history(ctx, observed)
        if ours.configured:
            return Satisfied(f"backup instance {ours.name} is ProtectionConfigured")
        if ours.configuring or ours.state in ("softdeleting", ""):
            waiting = Waiting(
                CONFIGURE_POLL_S, f"backup instance {ours.name} is {ours.protection_state or 'being created'}"
            )
            return _budgeted(self.key, waiting, history)
        if ours.state in _LEFT_ALONE_STATES:
            return Blocked(
                f"backup instance {ours.name} is {ours.protection_state}: {_LEFT_ALONE_STATES[ours.state]}"
            )
        code = ours.error_code
        row = action_for(code)
        if row.repair is Repair.HUMAN:
            if not _cause_gone(ctx, observed, code):
                after = (
                    "once the lock is gone the next reconcile re-syncs the instance"
                    if _wants_locks(code)
                    else "then re-sync the backup instance (or delete it: the product creates it again)"
                )
                return _human_blocker(ctx, observed, code, ours.error_message, after=after)
            return self._repair(ctx, targets, ours, history, code)
        if row.repair is Repair.ELSEWHERE:
            return Superseded(f"protected elsewhere: {ours.error_message or code}; left alone")
        return self._repair(ctx, targets, ours, history, code)

    def _repair(
        self,
        ctx: PlanContext,
        targets: ClusterTargets,
        ours: BackupInstanceView,
        history: ProtectionHistory,
        code: str,
    ) -> Verdict:
        """Re-sync (or re-PUT) the instance, with backoff after the last change; propagation codes are bounded
        by the link's budget, the others by ``remediation.maxRepairs``."""
        row = action_for(code)
        limit = ctx.options.protection.max_repairs
        repairs = history.repairs
        what = f"backup instance {ours.name} is {ours.protection_state} ({code or 'no code'}: {row.remedy})"
        waits_out_propagation = row.repair in PROPAGATION_REPAIRS or row.repair is Repair.REINSTALL
        if limit == 0:
            return Blocked(f"{self.key}: repairs are off (remediation.maxRepairs 0): {what}")
        if waits_out_propagation:
            episode = history.episodes.get(self.key)
            budget = BUDGETS_S[self.key]
            if history.journaled and episode is not None and history.now - episode.since > budget:
                waited = (history.now - episode.since) / 60
                return Blocked(f"{self.key}: gave up after {waited:.0f} min and {repairs} repair(s): {what}")
        elif repairs >= limit:
            return Blocked(f"{self.key}: gave up after {repairs} repair(s) (limit {limit}): {what}")
        backoff = REPAIR_RETRY_S[min(repairs, len(REPAIR_RETRY_S) - 1)]
        elapsed = history.now - (history.last_change_at or 0.0)
        repair = repairs + 1
        if elapsed < backoff:
            return Waiting(
                backoff - elapsed, f"{what}; repair {repair} once a change has had {backoff:.0f} s"
            )
        if row.repair is Repair.REPUT:
            write: CreateBackupInstance | SyncBackupInstance = CreateBackupInstance(
                link=self.key,
                cluster=ctx.cluster_id,
                cluster_name=ctx.cluster.name,
                location=targets.region,
                vault=targets.vault,
                policy=targets.policy,
                snapshot_group=targets.snapshot_group,
                scope=ctx.options.protection.scope,
                name=ours.name,
                repair=repair,
                episode=history.repair_stamp,
            )
            return Missing(
                write, f"{what}; repair {repair}: PUT again with the product's body", CONFIGURE_FIRST_POLL_S
            )
        write = SyncBackupInstance(
            link=self.key,
            cluster=ctx.cluster_id,
            vault=targets.vault,
            name=ours.name,
            repair=repair,
            code=code,
            episode=history.repair_stamp,
        )
        return Missing(write, f"{what}; repair {repair}: re-synced", CONFIGURE_FIRST_POLL_S)


# --------------------------------------------------------------------------------------------- roles

_VAULT_DEPS = (BACKUP_VAULT_READY,)
_GROUP_DEPS = (BACKUP_VAULT_READY, SNAPSHOT_GROUP_READY)

VAULT_READER_CLUSTER = RoleAssigned(
    key=VAULT_READER_ON_CLUSTER,
    title="the vault identity has Reader on the cluster (it lists the cluster's extensions)",
    role_guid=READER,
    scope=_reader_scope,
    principal=_vault_principal,
    depends_on=_VAULT_DEPS,
    waiting_why="the vault has no identity yet",
    read_at_subscription=True,
)
VAULT_READER_GROUP = RoleAssigned(
    key=VAULT_READER_ON_SNAPSHOT_GROUP,
    title="the vault identity has Reader on the snapshot resource group",
    role_guid=READER,
    scope=_snapshot_group,
    principal=_vault_principal,
    depends_on=_GROUP_DEPS,
    waiting_why="the vault has no identity yet",
    read_at_subscription=True,
)
VAULT_SNAPSHOTS = RoleAssigned(
    key=VAULT_SNAPSHOT_CONTRIBUTOR,
    title="the vault identity has Disk Snapshot Contributor on the snapshot resource group",
    role_guid=DISK_SNAPSHOT_CONTRIBUTOR,
    scope=_snapshot_group,
    principal=_vault_principal,
    depends_on=_GROUP_DEPS,
    waiting_why="the vault has no identity yet",
    read_at_subscription=True,
)
VAULT_DISK_DATA = RoleAssigned(
    key=VAULT_DATA_OPERATOR,
    title="the vault identity has Data Operator for Managed Disks on the snapshot resource group"
    " (vault tier)",
    role_guid=DATA_OPERATOR_FOR_MANAGED_DISKS,
    scope=_snapshot_group,
    principal=_vault_principal,
    depends_on=(*_GROUP_DEPS, BACKUP_POLICY_READY),
    needed=_vault_tier,
    disabled_why="not needed: the policy keeps backups in the operational tier only",
    waiting_why="the vault has no identity yet",
    read_at_subscription=True,
)
VAULT_BLOB_READ = RoleAssigned(
    key=VAULT_BLOB_READER,
    title="the vault identity has Storage Blob Data Reader on the storage account",
    role_guid=STORAGE_BLOB_DATA_READER,
    scope=lambda ctx, _observed: ctx.storage_account,
    principal=_vault_principal,
    depends_on=(STORAGE_USABLE, BACKUP_VAULT_READY),
    waiting_why="the vault has no identity yet",
    read_at_subscription=True,
)
CLUSTER_CONTRIBUTOR = RoleAssigned(
    key=CLUSTER_CONTRIBUTOR_ON_SNAPSHOT_GROUP,
    title="the cluster identity has Contributor on the snapshot resource group",
    role_guid=CONTRIBUTOR,
    scope=_snapshot_group,
    principal=_cluster_principal,
    depends_on=(SNAPSHOT_GROUP_READY,),
    waiting_why="the cluster body carries no identity principal",
    read_at_subscription=True,
)

PROTECT = Chain(
    "protect",
    (
        ProtectionNotElsewhere(),
        StorageUsable(),
        BackupContainer(),
        ExtensionInstalled(),
        STORAGE_ACCESS,
        BackupVaultReady(),
        BackupPolicyReady(),
        SnapshotGroupReady(),
        VAULT_READER_CLUSTER,
        VAULT_READER_GROUP,
        VAULT_SNAPSHOTS,
        VAULT_DISK_DATA,
        VAULT_BLOB_READ,
        CLUSTER_CONTRIBUTOR,
        TrustedAccessBound(),
        BackupValidated(),
        BackupInstanceExists(),
        ProtectionConfigured(),
    ),
    deferred_wait_s=DEPENDENT_WAIT_S,
)
"""Protect mode (and audit mode with ``auditPlans: protect``, planned only)."""

__all__ = ["BUDGETS_S", "HISTORY_LIMIT", "PROTECT", "protection_history"]
