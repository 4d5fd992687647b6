"""Install mode's chain: the backup extension installed exactly as the built-in DINE would, and usable.

::

    storage-usable ──┬── backup-container          (container PUT)
                     ├── extension-installed        (extension PUT / re-install; long-running)
                     └── storage-access-granted ◄── extension-installed   (role assignment PUT)

The container and the extension do not depend on each other (the DINE template deploys the container in a
nested deployment that ``dependsOn`` the extension, ``shared/azure-examples/azure-policy/*DINE.json``), so a
fresh cluster gets both PUTs together. The grant needs the extension's identity, so it follows once the
extension has Succeeded. Audit mode plans this same chain and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from remediator.core.catalog import STORAGE_BLOB_DATA_CONTRIBUTOR
from remediator.core.config import normalize_region
from remediator.core.ids import ResourceId
from remediator.core.plan.links import (
    BACKUP_CONTAINER,
    EXTENSION_INSTALLED,
    STORAGE_ACCESS_GRANTED,
    STORAGE_USABLE,
)
from remediator.core.plan.observed import (
    IN_PROGRESS_EXTENSION_STATES,
    ContainerRead,
    ExtensionRead,
    ExtensionView,
    Observed,
    Read,
    ReinstallCountRead,
    StorageAccountRead,
)
from remediator.core.plan.requirement import (
    EXTENSION_POLL_SECONDS,
    Blocked,
    Chain,
    Missing,
    NotNeeded,
    PlanContext,
    PlanningOptions,
    Requirement,
    Satisfied,
    Verdict,
    Waiting,
)
from remediator.core.plan.roles import RoleAssigned
from remediator.core.plan.writes import (
    CONTAINER_CLAIM,
    INSTALL_CLAIM,
    CreateContainer,
    InstallExtension,
    ReinstallExtension,
)
from remediator.core.preflight import attribute_failure
from remediator.core.text import equal_ignoring_case


def _storage_read(ctx: PlanContext) -> StorageAccountRead | None:
    return None if ctx.storage_account is None else StorageAccountRead(ctx.storage_account)


def _extension(ctx: PlanContext, observed: Observed) -> ExtensionView | None:
    return observed.get(ExtensionRead(ctx.cluster_id))


class StorageUsable(Requirement):
    """The region's storage account exists, has a blob endpoint, and is in the cluster's region."""

    key = STORAGE_USABLE
    title = "the region's backup storage account exists, in the cluster's region"

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        read = _storage_read(ctx)
        return () if read is None else (read,)

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        read = _storage_read(ctx)
        if read is None:
            return Blocked("no storage account configured for the cluster's region")
        account = read.account
        storage = observed.get(read)
        if storage is None:
            return Blocked(f"storage-account-missing: {account} does not exist")
        if not storage.blob_endpoint:
            return Blocked(f"storage-account-no-blob-endpoint: {account} has no blob endpoint")
        if normalize_region(storage.location) != ctx.cluster.location:
            return Blocked(
                f"storage-account-wrong-region: {account} is in {storage.location}, the cluster in"
                f" {ctx.cluster.location}; the backup container must be in the cluster's region"
            )
        return Satisfied(f"storage account {account.name} is usable")


class BackupContainer(Requirement):
    """Our backup container exists whenever we install (the extension is absent or Failed), and whenever an
    installed extension is configured with it (issue 17: the container PUT can fail while the extension PUT
    sent with it succeeds; the next reconcile must create the container, not call the cluster done). An
    extension configured with another container came with its own; that one is not ours to check."""

    key = BACKUP_CONTAINER
    title = "the cluster's backup container exists in the storage account"
    depends_on = (STORAGE_USABLE,)
    vetoes = False  # satisfied, not needed or missing: the extension PUT need not wait for the container GET

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        # read together with the extension, before we know whether an install needs it: one extra read for a
        # compliant cluster, one round trip less for an install
        if ctx.storage_account is None:
            return ()
        return (ExtensionRead(ctx.cluster_id), ContainerRead(ctx.storage_account, ctx.container))

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        extension = _extension(ctx, observed)
        account = ctx.storage_account
        if extension is not None and not extension.failed and not _configured_with(extension, ctx):
            return NotNeeded(f"container: extension {extension.name} is installed with its own")
        assert account is not None  # storage-usable is satisfied
        if observed.get(ContainerRead(account, ctx.container)):
            return Satisfied(f"container {ctx.container} exists")
        return Missing(
            CreateContainer(link=self.key, account=account, name=ctx.container),
            f"container {ctx.container} created",
        )

    def claim_ahead(self, cluster: ResourceId, options: PlanningOptions) -> str | None:
        return CONTAINER_CLAIM

    def bucket_ahead(self, cluster: ResourceId, options: PlanningOptions) -> str | None:
        # CreateContainer's bucket is the storage account's subscription: known before the cluster's region
        # when every configured account lives in one subscription
        return options.storage_subscription


def _configured_with(extension: ExtensionView, ctx: PlanContext) -> bool:
    """Whether the extension is configured with this cluster's container in the region's storage account."""
    account = ctx.storage_account
    if extension.container is None or account is None:
        return False
    same_account = extension.storage_account is None or equal_ignoring_case(
        extension.storage_account, str(account.name)
    )
    return same_account and extension.container == ctx.container


class ExtensionInstalled(Requirement):
    """The backup extension (by type, under any name) is installed and Succeeded; a Failed one is
    re-installed a bounded number of times per failure episode."""

    key = EXTENSION_INSTALLED
    title = "the backup extension is installed and Succeeded"
    depends_on = (STORAGE_USABLE,)

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        read = ExtensionRead(ctx.cluster_id)
        found = observed.peek(read)
        if found is not None and found.failed:
            return (read, ReinstallCountRead(ctx.cluster_id))
        return (read,)

    def _install(self, ctx: PlanContext, observed: Observed, *, name: str, attempt: int) -> InstallExtension:
        account = ctx.storage_account
        assert account is not None  # storage-usable is satisfied
        storage = observed.get(StorageAccountRead(account))
        assert storage is not None
        options = ctx.options
        common: dict[str, Any] = {
            "link": self.key,
            "cluster": ctx.cluster_id,
            "name": name,
            "account": account,
            "container": ctx.container,
            "blob_endpoint": storage.blob_endpoint,
            "tenant_id": options.tenant_id,
            "release_train": options.release_train,
            "auto_upgrade_minor_version": options.auto_upgrade_minor_version,
            "extra_settings": options.extra_settings,
        }
        if attempt:
            return ReinstallExtension(attempt=attempt, **common)
        return InstallExtension(**common)

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        extension = _extension(ctx, observed)
        options = ctx.options
        if extension is None:
            write = self._install(ctx, observed, name=options.extension_name, attempt=0)
            return Missing(
                write, f"extension {options.extension_name} install started", EXTENSION_POLL_SECONDS
            )
        if extension.succeeded:
            return Satisfied(f"extension {extension.name} Succeeded")
        if extension.state in IN_PROGRESS_EXTENSION_STATES:
            return Waiting(
                EXTENSION_POLL_SECONDS, f"extension {extension.name} is {extension.provisioning_state}"
            )
        if extension.failed:
            prior = observed.get(ReinstallCountRead(ctx.cluster_id))
            if prior >= options.max_reinstalls:
                detail = f": {extension.error}" if extension.error else ""
                cause = attribute_failure(extension.error, ())
                likely = f"; likely cause: {cause.describe()}" if cause is not None else ""
                return Blocked(
                    f"extension {extension.name} is {extension.provisioning_state} after {prior}"
                    f" re-install(s) (limit {options.max_reinstalls}){detail}{likely}"
                )
            write = self._install(ctx, observed, name=extension.name, attempt=prior + 1)
            why = (
                f"extension {extension.name} was {extension.provisioning_state}; re-install"
                f" {prior + 1} of {options.max_reinstalls} started"
            )
            return Missing(write, why, EXTENSION_POLL_SECONDS)
        return Waiting(
            EXTENSION_POLL_SECONDS,
            f"extension {extension.name} is in unknown state {extension.provisioning_state}",
        )

    def claim_ahead(self, cluster: ResourceId, options: PlanningOptions) -> str | None:
        return INSTALL_CLAIM

    def bucket_ahead(self, cluster: ResourceId, options: PlanningOptions) -> str | None:
        return str(cluster.subscription_id)  # InstallExtension's bucket


def _extension_principal(ctx: PlanContext, observed: Observed) -> str | None:
    found = observed.peek(ExtensionRead(ctx.cluster_id))
    return found.principal_id if found is not None and found.succeeded else None


STORAGE_ACCESS = RoleAssigned(
    key=STORAGE_ACCESS_GRANTED,
    title="the extension identity has Storage Blob Data Contributor on the storage account",
    role_guid=STORAGE_BLOB_DATA_CONTRIBUTOR,
    scope=lambda ctx, _observed: ctx.storage_account,
    principal=_extension_principal,
    depends_on=(STORAGE_USABLE, EXTENSION_INSTALLED),
    enabled=lambda ctx: ctx.options.grant_storage_access,
    disabled_why="storage grant disabled by config",
    waiting_why="the extension has no aksAssignedIdentity yet",
    satisfied_why="its identity can write backups",
    retry_after_s=EXTENSION_POLL_SECONDS,
)

INSTALL = Chain(
    "install",
    (StorageUsable(), BackupContainer(), ExtensionInstalled(), STORAGE_ACCESS),
)
"""Install mode (and audit mode, planned only)."""
