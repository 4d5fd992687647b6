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

INSTALL_CLAIM = "install"
"""The claim of a first install (the container and the extension PUT, which go out together). It is kept
(settled) for a while after a successful write, so a reconcile whose read predates the PUT cannot take it and
install a second time (this is why a first install needs no re-read after claiming; see
``adapters/claims.py``)."""


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
        return INSTALL_CLAIM

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


WRITE_TYPES: dict[WriteKind, type[Write]] = {
    write.kind: write
    for write in (CreateContainer, InstallExtension, ReinstallExtension, AssignRole, CreateRemediationTask)
}
"""The write type of each kind (the registry test checks every :class:`WriteKind` has one)."""
