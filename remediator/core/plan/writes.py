"""The writes a requirement can ask for, as pure values: what to write, where, under which claim, and from
whose write bucket.

One frozen dataclass per :class:`~remediator.core.outcomes.WriteKind`. Each states the pure facts of its
kind once: the typed :attr:`Write.target` id, the durable :attr:`Write.claim` name that makes it
exactly-once across Function instances, the :attr:`Write.bucket_subscription` whose ARM write bucket it
draws from, the body inputs, and a one-line :attr:`Write.detail` for the report. Doing the write (re-check,
apply) needs I/O and lives in ``service/reconcile/writes.py``, one ``WriteSpec`` per kind; a unit test fails
when a kind lacks either half (``tests/unit/test_write_registry.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from remediator.core.catalog import ROLE_NAMES, role_definition_id
from remediator.core.extension_body import backup_extension_body
from remediator.core.ids import ResourceId, parse_resource_id
from remediator.core.naming import remediation_task_name, role_assignment_name
from remediator.core.outcomes import WriteKind
from remediator.core.protection import (
    BackupScope,
    VaultPreset,
    backup_instance_body,
    policy_body,
    resource_group_body,
    vault_body,
)

INSTALL_CLAIM = "install"
"""The claim of a first install's extension PUT (the container PUT beside it takes its own). It is kept
(settled) for a while after a successful write, so a reconcile whose read predates the PUT cannot take it and
install a second time (this is why a first install needs no re-read after claiming; see
``adapters/claims.py``)."""

CONTAINER_CLAIM = "container"
"""The claim of the backup container's PUT. Not the install claim: the two PUTs go out together and either
can fail alone, and a failed container PUT must not release the claim of an extension PUT that was sent
(issue 17's chaos run: a reconcile whose reads predated that PUT then installed a second time)."""


def _child(parent: ResourceId, suffix: str) -> ResourceId:
    """``parent`` + ``/<suffix>`` as a parsed id (the suffix is built from validated names)."""
    return parse_resource_id(f"{parent.canonical}/{suffix}")


@dataclass(frozen=True, kw_only=True)
class Write(ABC):
    """One write a requirement asks for. ``link`` is the requirement's key (named in actions and reports)."""

    kind: ClassVar[WriteKind]
    link: str

    @property
    @abstractmethod
    def target(self) -> ResourceId:
        """The ARM id the write addresses."""

    @property
    @abstractmethod
    def claim(self) -> str:
        """The durable claim name (``[a-z0-9-]``) taken before the write, per cluster."""

    @property
    @abstractmethod
    def bucket_subscription(self) -> str:
        """The subscription whose ARM write bucket the write draws from (the pacer takes one token there)."""

    @property
    @abstractmethod
    def detail(self) -> str:
        """One line for the report (what is written)."""

    @property
    def claim_scope(self) -> ResourceId | None:
        """The resource whose claims partition holds :attr:`claim`: ``None`` (the default) for the cluster's
        own; a shared resource (a region's backup vault) names itself, so the clusters of a region cannot
        each create it."""
        return None

    @property
    def keep_claim(self) -> bool:
        """Whether the claim is kept (until it expires) after the write was sent. ``True`` for writes that are
        not safe to repeat and whose re-check cannot see the first one yet (a first install, a numbered
        re-install, validation or repair). ``False`` for an idempotent PUT under a deterministic name whose
        spec re-checks after claiming: holding the claim would only delay re-creating it when someone deletes
        it (a repair) by the claim's lifetime."""
        return True


@dataclass(frozen=True, kw_only=True)
class CreateContainer(Write):
    """The blob container the extension writes backups to (before or with the extension PUT: the DINE
    template creates it in a nested deployment that depends on the extension, so neither waits for the
    other)."""

    kind: ClassVar[WriteKind] = WriteKind.CREATE_CONTAINER
    account: ResourceId
    name: str

    @property
    def target(self) -> ResourceId:
        return _child(self.account, f"blobServices/default/containers/{self.name}")

    @property
    def claim(self) -> str:
        return CONTAINER_CLAIM

    @property
    def bucket_subscription(self) -> str:
        return str(self.account.subscription_id)

    @property
    def detail(self) -> str:
        return self.name


@dataclass(frozen=True, kw_only=True)
class InstallExtension(Write):
    """The backup extension PUT (a long-running operation; the reconcile does not wait for it)."""

    kind: ClassVar[WriteKind] = WriteKind.CREATE_EXTENSION
    cluster: ResourceId
    name: str
    account: ResourceId
    container: str
    blob_endpoint: str
    tenant_id: str
    release_train: str
    auto_upgrade_minor_version: bool
    extra_settings: tuple[tuple[str, str], ...] = ()

    @property
    def target(self) -> ResourceId:
        return _child(self.cluster, f"providers/Microsoft.KubernetesConfiguration/extensions/{self.name}")

    @property
    def claim(self) -> str:
        return INSTALL_CLAIM

    @property
    def bucket_subscription(self) -> str:
        return str(self.cluster.subscription_id)

    @property
    def detail(self) -> str:
        return self.name

    def body(self) -> dict[str, Any]:
        """The PUT body: exactly the DINE template's (``core.extension_body``)."""
        return backup_extension_body(
            storage_account=self.account,
            container=self.container,
            tenant_id=self.tenant_id,
            blob_endpoint=self.blob_endpoint,
            release_train=self.release_train,
            auto_upgrade_minor_version=self.auto_upgrade_minor_version,
            extra_settings=dict(self.extra_settings),
        )


@dataclass(frozen=True, kw_only=True)
class ReinstallExtension(InstallExtension):
    """The same PUT over a Failed extension; ``attempt`` (1, 2, ...) names its claim, so two reconciles
    cannot both make re-install number ``attempt``."""

    kind: ClassVar[WriteKind] = WriteKind.REINSTALL_EXTENSION
    attempt: int

    @property
    def claim(self) -> str:
        return f"reinstall-{self.attempt}"


@dataclass(frozen=True, kw_only=True)
class AssignRole(Write):
    """One role assignment, parameterised by (principal, role, scope): the storage grant of install mode, and
    the vault and cluster identities' roles of protect mode. Its name is deterministic (uuid5 of scope,
    principal and role), so a repeat PUT is idempotent; an equal assignment under another name answers 409
    ``RoleAssignmentExists``, which counts as present."""

    kind: ClassVar[WriteKind] = WriteKind.ASSIGN_ROLE
    scope: ResourceId
    principal_id: str
    role_guid: str
    principal_type: str = "ServicePrincipal"

    @property
    def role_definition_id(self) -> str:
        """The role definition id in the scope's subscription, as the DINE writes it."""
        return role_definition_id(str(self.scope.subscription_id), self.role_guid)

    @property
    def name(self) -> str:
        return role_assignment_name(self.scope.canonical, self.principal_id, self.role_definition_id)

    @property
    def target(self) -> ResourceId:
        return _child(self.scope, f"providers/Microsoft.Authorization/roleAssignments/{self.name}")

    @property
    def claim(self) -> str:
        return f"role-{self.name}"

    @property
    def keep_claim(self) -> bool:
        return False  # deterministic name, re-checked after claiming (service/reconcile/writes.py)

    @property
    def bucket_subscription(self) -> str:
        return str(self.scope.subscription_id)

    @property
    def detail(self) -> str:
        return f"{ROLE_NAMES.get(self.role_guid, self.role_guid)} for {self.principal_id}"


@dataclass(frozen=True, kw_only=True)
class CreateRemediationTask(Write):
    """An Azure Policy remediation task at the cluster's scope (policy-task mode), one per generation."""

    kind: ClassVar[WriteKind] = WriteKind.CREATE_REMEDIATION_TASK
    cluster: ResourceId
    assignment: ResourceId
    generation: int

    @property
    def name(self) -> str:
        return remediation_task_name(
            self.cluster.canonical, self.assignment.canonical, generation=self.generation
        )

    @property
    def target(self) -> ResourceId:
        return _child(self.cluster, f"providers/Microsoft.PolicyInsights/remediations/{self.name}")

    @property
    def claim(self) -> str:
        return f"remediation-task-g{self.generation}"

    @property
    def bucket_subscription(self) -> str:
        return str(self.cluster.subscription_id)

    @property
    def detail(self) -> str:
        return self.assignment.canonical


# --------------------------------------------------------------------------------------------- protect mode

VAULT_CLAIM = "backup-vault"
"""The claim of a vault create, in the vault's own partition (one create per region, whichever cluster)."""


@dataclass(frozen=True, kw_only=True)
class CreateBackupVault(Write):
    """A region's backup vault PUT from the preset (long-running; the next reconcile reads its state).
    ``redundancy`` is tried in order: a region refusing one answers
    ``RedundancyConfigurationNotAvailableInRegion`` and the next is sent (the CLI's GRS -> ZRS -> LRS)."""

    kind: ClassVar[WriteKind] = WriteKind.CREATE_BACKUP_VAULT
    vault: ResourceId
    location: str
    preset: VaultPreset

    @property
    def target(self) -> ResourceId:
        return self.vault

    @property
    def claim(self) -> str:
        return VAULT_CLAIM

    @property
    def claim_scope(self) -> ResourceId | None:
        return self.vault

    @property
    def bucket_subscription(self) -> str:
        return str(self.vault.subscription_id)

    @property
    def detail(self) -> str:
        return f"{self.vault.name} in {self.location} ({' -> '.join(self.preset.redundancy)})"

    def body(self, redundancy: str) -> dict[str, Any]:
        return vault_body(self.location, redundancy, self.preset)


@dataclass(frozen=True, kw_only=True)
class CreateBackupPolicy(Write):
    """A backup policy PUT from a CLI strategy preset (synchronous)."""

    kind: ClassVar[WriteKind] = WriteKind.CREATE_BACKUP_POLICY
    policy: ResourceId
    strategy: str

    @property
    def vault(self) -> ResourceId:
        return parse_resource_id(self.policy.canonical.rsplit("/backupPolicies/", 1)[0])

    @property
    def target(self) -> ResourceId:
        return self.policy

    @property
    def claim(self) -> str:
        return f"backup-policy-{str(self.policy.name).lower()}"

    @property
    def claim_scope(self) -> ResourceId | None:
        return self.vault

    @property
    def keep_claim(self) -> bool:
        return False  # idempotent PUT under a deterministic name, re-checked after claiming

    @property
    def bucket_subscription(self) -> str:
        return str(self.policy.subscription_id)

    @property
    def detail(self) -> str:
        return f"{self.policy.name} ({self.strategy})"

    def body(self) -> dict[str, Any]:
        return policy_body(self.strategy)


@dataclass(frozen=True, kw_only=True)
class CreateResourceGroup(Write):
    """The snapshot resource group PUT (synchronous), in the cluster's subscription and region."""

    kind: ClassVar[WriteKind] = WriteKind.CREATE_RESOURCE_GROUP
    group: ResourceId
    location: str

    @property
    def target(self) -> ResourceId:
        return self.group

    @property
    def claim(self) -> str:
        return "resource-group"

    @property
    def claim_scope(self) -> ResourceId | None:
        return self.group

    @property
    def keep_claim(self) -> bool:
        return False  # idempotent PUT under a deterministic name, re-checked after claiming

    @property
    def bucket_subscription(self) -> str:
        return str(self.group.subscription_id)

    @property
    def detail(self) -> str:
        return f"{self.group.resource_group} in {self.location}"

    def body(self) -> dict[str, Any]:
        return resource_group_body(self.location)


@dataclass(frozen=True, kw_only=True)
class BindTrustedAccess(Write):
    """The trusted-access role binding PUT on the cluster for the vault (``roles`` includes
    ``Microsoft.DataProtection/backupVaults/backup-operator``); AKS answers ``Updating`` and settles on its
    own."""

    kind: ClassVar[WriteKind] = WriteKind.BIND_TRUSTED_ACCESS
    cluster: ResourceId
    name: str
    vault: ResourceId
    roles: tuple[str, ...]

    @property
    def target(self) -> ResourceId:
        return _child(self.cluster, f"trustedAccessRoleBindings/{self.name}")

    @property
    def claim(self) -> str:
        return "trusted-access"

    @property
    def keep_claim(self) -> bool:
        return False  # idempotent PUT under a deterministic name, re-checked after claiming

    @property
    def bucket_subscription(self) -> str:
        return str(self.cluster.subscription_id)

    @property
    def detail(self) -> str:
        return f"{self.name} for {self.vault.name}"

    def body(self) -> dict[str, Any]:
        return {"properties": {"sourceResourceId": self.vault.canonical, "roles": list(self.roles)}}


@dataclass(frozen=True, kw_only=True)
class _InstanceWrite(Write):
    """A write whose body is the cluster's backup instance (validate, create)."""

    cluster: ResourceId
    cluster_name: str
    location: str
    vault: ResourceId
    policy: ResourceId
    snapshot_group: ResourceId
    scope: BackupScope

    def body(self) -> dict[str, Any]:
        return backup_instance_body(
            cluster_id=self.cluster,
            cluster_name=self.cluster_name,
            location=self.location,
            policy=self.policy,
            snapshot_group=self.snapshot_group,
            scope=self.scope,
        )


@dataclass(frozen=True, kw_only=True)
class ValidateForBackup(_InstanceWrite):
    """The validateForBackup POST of the instance body (long-running; the action's detail is the operation
    id the next reconcile reads). ``attempt`` (1, 2, ...) counts validations since the last change and names
    the claim, so two reconciles cannot both send validation number ``attempt``."""

    kind: ClassVar[WriteKind] = WriteKind.VALIDATE_FOR_BACKUP
    attempt: int
    episode: int = 0
    """Milliseconds of the last change the validation follows (0: none): with ``attempt`` it names the claim,
    so the n-th validation after one change and the n-th after the next are different claims."""

    @property
    def target(self) -> ResourceId:
        return self.vault  # POST {vault}/validateForBackup

    @property
    def claim(self) -> str:
        return f"validate-{self.episode:x}-{self.attempt}"

    @property
    def bucket_subscription(self) -> str:
        return str(self.vault.subscription_id)

    @property
    def detail(self) -> str:
        return f"validation {self.attempt} in {self.vault.name}"


@dataclass(frozen=True, kw_only=True)
class CreateBackupInstance(_InstanceWrite):
    """The backup instance PUT (long-running; protection is configured after it)."""

    kind: ClassVar[WriteKind] = WriteKind.CREATE_BACKUP_INSTANCE
    name: str
    repair: int = 0
    """0 for the first PUT; n for the n-th repair by re-PUT (an instance created with a wrong body)."""
    episode: int = 0
    """For a repair: milliseconds of when protection was last seen configured (names the claim with
    ``repair``)."""

    @property
    def target(self) -> ResourceId:
        return _child(self.vault, f"backupInstances/{self.name}")

    @property
    def claim(self) -> str:
        return "backup-instance" if not self.repair else f"repair-{self.episode:x}-{self.repair}"

    @property
    def keep_claim(self) -> bool:
        return bool(self.repair)  # the first PUT: deterministic name, re-checked after claiming

    @property
    def bucket_subscription(self) -> str:
        return str(self.vault.subscription_id)

    @property
    def detail(self) -> str:
        return f"{self.name} in {self.vault.name}"


@dataclass(frozen=True, kw_only=True)
class SyncBackupInstance(Write):
    """The repair of an instance in ProtectionError: ``POST .../sync`` re-runs its protection configuration.
    ``repair`` (1, 2, ...) counts repairs in this error episode and names the claim."""

    kind: ClassVar[WriteKind] = WriteKind.SYNC_BACKUP_INSTANCE
    cluster: ResourceId
    vault: ResourceId
    name: str
    repair: int
    code: str = ""
    episode: int = 0
    """Milliseconds of when protection was last seen configured: with ``repair`` it names the claim."""

    @property
    def target(self) -> ResourceId:
        return _child(self.vault, f"backupInstances/{self.name}")

    @property
    def claim(self) -> str:
        return f"repair-{self.episode:x}-{self.repair}"

    @property
    def bucket_subscription(self) -> str:
        return str(self.vault.subscription_id)

    @property
    def detail(self) -> str:
        return f"{self.name}: repair {self.repair} of {self.code or 'the error'}"


WRITE_TYPES: dict[WriteKind, type[Write]] = {
    write.kind: write
    for write in (
        CreateContainer,
        InstallExtension,
        ReinstallExtension,
        AssignRole,
        CreateRemediationTask,
        CreateBackupVault,
        CreateBackupPolicy,
        CreateResourceGroup,
        BindTrustedAccess,
        ValidateForBackup,
        CreateBackupInstance,
        SyncBackupInstance,
    )
}
"""The write type of each kind (the registry test checks every :class:`WriteKind` has one)."""
