"""ARM resource ids: parsed once, compared case-insensitively by Azure's rule, rejected loudly when malformed.

ARM hands out the same id in many casings (``resourceGroups`` vs ``resourcegroups``,
``Microsoft.ContainerService`` vs ``microsoft.containerservice``; Event Grid and Policy Insights lower-case
whole ids). Comparing raw strings would treat one cluster as two, so every id that enters the product goes
through :func:`parse_resource_id` (or one of the typed parsers) and is compared by :attr:`ResourceId.key`. A
malformed id raises :class:`InvalidResourceIdError` naming what is wrong, never a ``KeyError`` three layers
later.

"Case-insensitively" means ARM's .NET ``OrdinalIgnoreCase`` (:mod:`remediator.core.text`), never Python's
``str.lower()``: resource-group names may hold non-ASCII letters, and ``lower()`` folds U+212A KELVIN SIGN
into ASCII ``k``, which would put ``rg-a\u212as-prod`` in scope for a config naming ``rg-aks-prod``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from remediator.core.errors import UserInputError
from remediator.core.text import equal_ignoring_case, ignore_case_key

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)+$")
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$")
_STORAGE_ACCOUNT_NAME = re.compile(r"^[a-zA-Z0-9]{3,24}$")
_MANAGEMENT_GROUP_NAME = re.compile(r"^[-\w.()]{1,90}$")

MANAGED_CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
STORAGE_ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
MANAGEMENT_GROUP_TYPE = "Microsoft.Management/managementGroups"
BACKUP_VAULT_TYPE = "Microsoft.DataProtection/backupVaults"
BACKUP_POLICY_TYPE = "Microsoft.DataProtection/backupVaults/backupPolicies"
_BACKUP_VAULT_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9]{0,48}[A-Za-z0-9]$")
"""Backup vault names: 2-50 letters, digits and hyphens, alphanumeric at both ends (the Azure portal's rule
for Backup vaults; the REST spec leaves the name unconstrained)."""


class InvalidResourceIdError(UserInputError):
    """A string that should be an ARM resource id is not one (or not the expected kind)."""


@dataclass(frozen=True, eq=False)
class ResourceId:
    """A parsed ARM id. Equality and hashing use :attr:`key`, so casing never matters.

    ``provider``, ``type`` and ``name`` describe the *last* resource in the id: for
    ``.../providers/Microsoft.Storage/storageAccounts/sa/blobServices/default`` they are
    ``Microsoft.Storage``, ``storageAccounts/blobServices`` and ``default``. They are ``None`` for
    subscription and resource-group ids.
    """

    canonical: str
    """The id with ARM's keyword casing (``subscriptions``, ``resourceGroups``, ``providers``); names as
    given."""
    subscription_id: str | None
    """The subscription GUID, lower-cased; ``None`` for tenant-level ids (management groups, built-in
    policies)."""
    resource_group: str | None
    """The resource group name as written in the id; ``None`` above resource-group level."""
    provider: str | None
    """Namespace of the last resource, e.g. ``Microsoft.ContainerService``."""
    type: str | None
    """Type of the last resource below its namespace, e.g. ``managedClusters``."""
    name: str | None
    """Name of the last resource."""

    @property
    def key(self) -> str:
        """The canonical string under Azure's case rule (:func:`remediator.core.text.ignore_case_key`): the
        one value to compare, hash, sort or store ids by. Lower-case for ASCII ids, as it always was."""
        return ignore_case_key(self.canonical)

    @property
    def full_type(self) -> str | None:
        """``provider/type`` (``Microsoft.ContainerService/managedClusters``), or ``None``."""
        if self.provider is None or self.type is None:
            return None
        return f"{self.provider}/{self.type}"

    def is_type(self, full_type: str) -> bool:
        """Whether this id's :attr:`full_type` equals ``full_type``, case-insensitively."""
        return self.full_type is not None and equal_ignoring_case(self.full_type, full_type)

    @property
    def resource_group_id(self) -> str | None:
        """Canonical id of the containing resource group, or ``None``."""
        if self.subscription_id is None or self.resource_group is None:
            return None
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    @property
    def subscription_scope(self) -> str | None:
        """Canonical id of the containing subscription (``/subscriptions/<guid>``), or ``None``."""
        return None if self.subscription_id is None else f"/subscriptions/{self.subscription_id}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResourceId):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.canonical


def _fail(value: object, why: str, *, field: str | None) -> InvalidResourceIdError:
    shown = value if isinstance(value, str) and len(value) <= 300 else f"{str(value)[:300]}..."
    return InvalidResourceIdError(f"invalid resource id {shown!r}: {why}", field=field)


def parse_resource_id(value: object, *, field: str | None = None) -> ResourceId:
    """Parse any ARM id: subscription, resource group, resource (nested or extension), or tenant-level
    provider id.

    :param value: the id. Leading ``/`` required; no empty segments; keywords in any casing.
    :keyword field: the config/event field the id came from, carried into the error.
    :raises InvalidResourceIdError: naming what is wrong.
    """
    if not isinstance(value, str):
        raise _fail(value, f"expected a string, got {type(value).__name__}", field=field)
    if not value.startswith("/"):
        raise _fail(value, "must start with '/'", field=field)
    segments = value[1:].split("/")
    if any(segment == "" for segment in segments):
        raise _fail(value, "empty path segment (double or trailing '/')", field=field)
    if any(segment != segment.strip() for segment in segments):
        raise _fail(value, "path segment with leading or trailing whitespace", field=field)

    out: list[str] = []
    subscription_id: str | None = None
    resource_group: str | None = None
    index = 0
    if ignore_case_key(segments[0]) == "subscriptions":
        if len(segments) < 2:
            raise _fail(value, "'subscriptions' must be followed by a subscription id", field=field)
        if not _GUID.match(segments[1]):
            raise _fail(value, f"subscription id {segments[1]!r} is not a GUID", field=field)
        subscription_id = segments[1].lower()
        out += ["subscriptions", subscription_id]
        index = 2
        if index < len(segments) and ignore_case_key(segments[index]) == "resourcegroups":
            if index + 1 >= len(segments):
                raise _fail(value, "'resourceGroups' must be followed by a resource group name", field=field)
            resource_group = segments[index + 1]
            if not _RESOURCE_GROUP.match(resource_group) or resource_group.endswith("."):
                raise _fail(value, f"resource group name {resource_group!r} is not valid", field=field)
            out += ["resourceGroups", resource_group]
            index += 2
    elif ignore_case_key(segments[0]) != "providers":
        raise _fail(value, "must start with '/subscriptions/' or '/providers/'", field=field)

    provider: str | None = None
    types: list[str] = []
    name: str | None = None
    while index < len(segments):
        if ignore_case_key(segments[index]) == "providers":
            if index + 3 >= len(segments):
                raise _fail(value, "'providers' must be followed by namespace/type/name", field=field)
            provider = segments[index + 1]
            if not _NAMESPACE.match(provider):
                raise _fail(value, f"provider namespace {provider!r} is not valid", field=field)
            out += ["providers", provider]
            types = []
            index += 2
        elif provider is None:
            raise _fail(value, f"unexpected segment {segments[index]!r} (expected 'providers')", field=field)
        if index + 1 >= len(segments):
            raise _fail(value, f"resource type {segments[index]!r} has no name", field=field)
        resource_type, name = segments[index], segments[index + 1]
        if not _TYPE.match(resource_type):
            raise _fail(value, f"resource type {resource_type!r} is not valid", field=field)
        types.append(resource_type)
        out += [resource_type, name]
        index += 2

    if subscription_id is None and provider is None:
        raise _fail(value, "is neither a subscription, a resource group nor a resource", field=field)
    return ResourceId(
        canonical="/" + "/".join(out),
        subscription_id=subscription_id,
        resource_group=resource_group,
        provider=provider,
        type="/".join(types) if types else None,
        name=name,
    )


def _expect(parsed: ResourceId, value: object, full_type: str, *, field: str | None) -> ResourceId:
    if not parsed.is_type(full_type) or parsed.key.count("/providers/") != 1:
        raise _fail(value, f"is not a {full_type} id", field=field)
    return parsed


def parse_cluster_id(value: object, *, field: str | None = None) -> ResourceId:
    """Parse an AKS managed cluster id (``/subscriptions/<guid>/resourceGroups/<rg>/providers/
    Microsoft.ContainerService/managedClusters/<name>``); the name must follow AKS naming rules."""
    parsed = _expect(parse_resource_id(value, field=field), value, MANAGED_CLUSTER_TYPE, field=field)
    if parsed.resource_group is None:
        raise _fail(value, "a managed cluster id needs a resource group", field=field)
    if parsed.name is None or not _CLUSTER_NAME.match(parsed.name):
        raise _fail(value, f"cluster name {parsed.name!r} is not a valid AKS cluster name", field=field)
    return parsed


def parse_storage_account_id(value: object, *, field: str | None = None) -> ResourceId:
    """Parse a storage account id (``.../Microsoft.Storage/storageAccounts/<3-24 letters or digits>``)."""
    parsed = _expect(parse_resource_id(value, field=field), value, STORAGE_ACCOUNT_TYPE, field=field)
    if parsed.resource_group is None:
        raise _fail(value, "a storage account id needs a resource group", field=field)
    if parsed.name is None or not _STORAGE_ACCOUNT_NAME.match(parsed.name):
        raise _fail(value, f"storage account name {parsed.name!r} is not 3-24 letters/digits", field=field)
    return parsed


def parse_subscription_id(value: object, *, field: str | None = None) -> ResourceId:
    """Parse ``/subscriptions/<guid>`` or a bare subscription GUID."""
    if isinstance(value, str) and _GUID.match(value):
        value = f"/subscriptions/{value}"
    if isinstance(value, str) and not value.startswith("/"):
        raise _fail(value, "is not a subscription id ('/subscriptions/<guid>' or a bare GUID)", field=field)
    parsed = parse_resource_id(value, field=field)
    if parsed.subscription_id is None or parsed.resource_group is not None or parsed.provider is not None:
        raise _fail(value, "is not a subscription id ('/subscriptions/<guid>' or a bare GUID)", field=field)
    return parsed


def parse_resource_group_id(value: object, *, field: str | None = None) -> ResourceId:
    """Parse ``/subscriptions/<guid>/resourceGroups/<name>`` (the full id; a bare name is ambiguous)."""
    parsed = parse_resource_id(value, field=field)
    if parsed.resource_group is None or parsed.provider is not None:
        raise _fail(
            value, "is not a resource group id ('/subscriptions/<guid>/resourceGroups/<name>')", field=field
        )
    return parsed


def parse_management_group_id(value: object, *, field: str | None = None) -> ResourceId:
    """Parse ``/providers/Microsoft.Management/managementGroups/<name>`` or a bare management group name."""
    if isinstance(value, str) and _MANAGEMENT_GROUP_NAME.match(value):
        value = f"/providers/{MANAGEMENT_GROUP_TYPE.split('/')[0]}/managementGroups/{value}"
    elif isinstance(value, str) and not value.startswith("/"):
        raise _fail(
            value, f"is neither a {MANAGEMENT_GROUP_TYPE} id nor a valid management group name", field=field
        )
    parsed = parse_resource_id(value, field=field)
    if parsed.subscription_id is not None:
        raise _fail(value, f"is not a {MANAGEMENT_GROUP_TYPE} id", field=field)
    _expect(parsed, value, MANAGEMENT_GROUP_TYPE, field=field)
    if parsed.name is None or not _MANAGEMENT_GROUP_NAME.match(parsed.name):
        raise _fail(value, f"management group name {parsed.name!r} is not valid", field=field)
    return parsed


def parse_backup_vault_id(value: object, *, field: str | None = None) -> ResourceId:
    """Parse a backup vault id (``.../providers/Microsoft.DataProtection/backupVaults/<name>``)."""
    parsed = _expect(parse_resource_id(value, field=field), value, BACKUP_VAULT_TYPE, field=field)
    if parsed.resource_group is None:
        raise _fail(value, "a backup vault id needs a resource group", field=field)
    if parsed.name is None or not _BACKUP_VAULT_NAME.match(parsed.name):
        raise _fail(
            value, f"backup vault name {parsed.name!r} is not 2-50 letters, digits and hyphens", field=field
        )
    return parsed


def parse_backup_policy_id(value: object, *, field: str | None = None) -> ResourceId:
    """Parse a backup policy id (``<backup vault id>/backupPolicies/<name>``)."""
    parsed = _expect(parse_resource_id(value, field=field), value, BACKUP_POLICY_TYPE, field=field)
    if parsed.resource_group is None or not parsed.name:
        raise _fail(value, "a backup policy id needs a resource group and a name", field=field)
    return parsed


def parent_of(resource: ResourceId) -> ResourceId:
    """The id one level up (a policy's vault, a container's storage account): the id without its last
    ``type/name`` pair. Raises ``InvalidResourceIdError`` for a top-level resource of a provider."""
    head, _, _ = resource.canonical.rpartition("/")
    head, _, _ = head.rpartition("/")
    return parse_resource_id(head)
