"""The remediator config: the one place users say which clusters must carry the backup extension, and how.

Validated by pydantic on load, so every mistake is reported as a :class:`UserInputError` whose ``field`` is
the dotted path in the file (``selection.include[0].values``) and whose ``source`` is the file. The JSON
Schema in ``docs/config.schema.json`` is generated from these models (``python -m remediator config schema``).

JSON/YAML field names are camelCase; Python attributes are snake_case.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict
from pydantic_core import InitErrorDetails, PydanticCustomError

from remediator.core.catalog import (
    CLI_ONLY_SETTING_ALIASES,
    DEFAULT_EXTENSION_NAME,
    DEFAULT_RELEASE_TRAIN,
    DINE_SETTING_KEYS,
)
from remediator.core.errors import UserInputError, UserInputErrors, plain_validation_message
from remediator.core.ids import (
    ResourceId,
    parse_management_group_id,
    parse_resource_group_id,
    parse_resource_id,
    parse_storage_account_id,
    parse_subscription_id,
)
from remediator.core.regions import is_known_region, unknown_region_message
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

MAX_TAG_KEY_LENGTH = 512
MAX_TAG_VALUE_LENGTH = 256
FORBIDDEN_TAG_KEY_CHARACTERS = "<>%&\\?/"
"""Characters Azure rejects in tag names."""
TAG_KEY_PATTERN = r"^[^<>%&\\?/]+$"
"""The tag-name rule as a pattern (for the JSON Schema): not empty, none of the forbidden characters."""

_REGION = re.compile(r"^[a-z0-9]+$")


def normalize_region(name: str) -> str:
    """ARM's location form: lower-case, no spaces (``"East US 2"`` -> ``"eastus2"``).

    :raises UserInputError: if the result is not letters and digits.
    """
    normalized = "".join(name.split()).lower()
    if not _REGION.match(normalized):
        raise UserInputError(f"{name!r} is not an Azure region name (letters, digits and spaces only)")
    return normalized


def management_group_key(value: str) -> str:
    """A management group's name (from its id or bare name) as Azure compares it
    (:func:`remediator.core.text.ignore_case_key`)."""
    return ignore_case_key(str(parse_management_group_id(value).name))


def _parsed_by(parser: Callable[[object], ResourceId]) -> PlainValidator:
    """Validator for an id field: keep a ResourceId as is, parse anything else with ``parser``."""
    return PlainValidator(lambda value: value if isinstance(value, ResourceId) else parser(value))


def _policy_assignment_id(value: object) -> ResourceId:
    parsed = parse_resource_id(value)
    if not parsed.is_type("Microsoft.Authorization/policyAssignments"):
        raise UserInputError(f"{value!r} is not a Microsoft.Authorization/policyAssignments id")
    return parsed


def _id_schema(description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "description": description})


_AS_STRING = PlainSerializer(str, return_type=str)
SubscriptionRef = Annotated[
    ResourceId,
    _parsed_by(parse_subscription_id),
    _AS_STRING,
    _id_schema("Subscription id: '/subscriptions/<guid>' or a bare GUID."),
]
ResourceGroupRef = Annotated[
    ResourceId,
    _parsed_by(parse_resource_group_id),
    _AS_STRING,
    _id_schema("Full resource group id: '/subscriptions/<guid>/resourceGroups/<name>'."),
]
ManagementGroupRef = Annotated[
    ResourceId,
    _parsed_by(parse_management_group_id),
    _AS_STRING,
    _id_schema(
        "Management group: '/providers/Microsoft.Management/managementGroups/<name>' or the bare name."
    ),
]
StorageAccountRef = Annotated[
    ResourceId,
    _parsed_by(parse_storage_account_id),
    _AS_STRING,
    _id_schema(
        "Storage account id: '/subscriptions/<guid>/resourceGroups/<rg>/providers/"
        "Microsoft.Storage/storageAccounts/<name>'."
    ),
]
PolicyAssignmentRef = Annotated[
    ResourceId,
    _parsed_by(_policy_assignment_id),
    _AS_STRING,
    _id_schema("Policy assignment id: '<scope>/providers/Microsoft.Authorization/policyAssignments/<name>'."),
]
Region = Annotated[str, AfterValidator(normalize_region)]


def _check_tag_key(key: object) -> object:
    """Azure's tag-name rules with a message saying which (runs before the equivalent Field constraints)."""
    if not isinstance(key, str):
        return key  # the str validator reports it
    if not key:
        raise ValueError("tag name must not be empty")
    if len(key) > MAX_TAG_KEY_LENGTH:
        raise ValueError(f"tag name is {len(key)} characters; Azure allows at most {MAX_TAG_KEY_LENGTH}")
    bad = sorted({ch for ch in key if ch in FORBIDDEN_TAG_KEY_CHARACTERS})
    if bad:
        raise ValueError(
            f"tag name {key!r} contains {' '.join(bad)}; Azure forbids {FORBIDDEN_TAG_KEY_CHARACTERS}"
        )
    return key


def _check_tag_value(value: object) -> object:
    """Azure's tag-value length limit with a message (runs before the equivalent Field constraint)."""
    if isinstance(value, str) and len(value) > MAX_TAG_VALUE_LENGTH:
        raise ValueError(f"tag value is {len(value)} characters; Azure allows at most {MAX_TAG_VALUE_LENGTH}")
    return value


NULL_MESSAGE = "empty (null: a bare key in YAML, or every entry under it commented out)"
"""Start of the error for a key whose value is null."""


def _shown_default(default: object) -> str:
    return json.dumps(default) if isinstance(default, bool | int) else repr(default)


def _not_empty_list(message: str) -> Callable[[object], object]:
    """A before-validator: an explicit empty list is an error with ``message`` (its meaning if omitted)."""

    def check(value: object) -> object:
        if isinstance(value, list | tuple) and not value:
            raise ValueError(message)
        return value

    return check


def _without_null(schema: JsonDict) -> None:
    """JSON Schema of an optional field: the non-null branch only, and no ``default: null``.

    The Python attribute is ``None`` when the key is omitted, but null is never a valid value in the file
    (see :class:`_Model`), so the published schema must not allow it.
    """
    branches = schema.pop("anyOf", None)
    if isinstance(branches, list):
        (kept,) = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        if isinstance(kept, dict):
            schema.update(kept)
    if schema.get("default", 0) is None:
        del schema["default"]


TagName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_TAG_KEY_LENGTH, pattern=TAG_KEY_PATTERN),
    BeforeValidator(_check_tag_key),
]
"""A tag name: 1-512 characters, none of ``< > % & \\ ? /``."""
TagValue = Annotated[str, Field(max_length=MAX_TAG_VALUE_LENGTH), BeforeValidator(_check_tag_value)]
"""A tag value pattern: at most 256 characters."""


class _Model(BaseModel):
    """Base of every config model: camelCase aliases, unknown fields rejected, and no field accepts null.

    Null is never a value in this config. A bare ``include:`` (every entry commented out) would otherwise
    read as "omitted", and for ``include``, ``values`` and ``regions`` omitted means *everything*: one
    commented-out line must not widen the selection. So a null is an error naming the field, with what
    removing the key would mean (``_if_null``), whatever the field.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        alias_generator=to_camel,
        validate_by_name=False,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    _if_null: ClassVar[Mapping[str, str]] = {}
    """Field name -> what to do instead of null, for optional list/map fields (scalars get their default)."""

    @field_validator("*", mode="before")
    @classmethod
    def _reject_null(cls, value: object, info: ValidationInfo) -> object:
        if value is not None:
            return value
        name = info.field_name or ""
        field = cls.model_fields[name]
        if field.is_required():
            remedy = "it is required"
        elif name in cls._if_null:
            remedy = cls._if_null[name]
        elif field.default is None:
            remedy = "give it a value, or remove the key"
        else:
            remedy = f"give it a value, or remove the key to use the default {_shown_default(field.default)}"
        raise ValueError(f"{NULL_MESSAGE}; {remedy}")


class Scope(_Model):
    """Which clusters the remediator may look at. At least one of managementGroups, subscriptions and
    resourceGroups is required: an empty scope is an error, never "everything"."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [key], "properties": {key: {"minItems": 1}}}
                for key in ("managementGroups", "subscriptions", "resourceGroups")
            ]
        }
    )

    management_groups: tuple[ManagementGroupRef, ...] = ()
    """Management groups (ids or names); every subscription below them, at any depth, is in scope. A cluster
    id does not carry its management-group ancestry: the adapters resolve subscription -> management groups
    and pass that lookup to :meth:`contains`."""
    subscriptions: tuple[SubscriptionRef, ...] = ()
    """Subscriptions in scope (ids or bare GUIDs)."""
    exclude_subscriptions: tuple[SubscriptionRef, ...] = ()
    """Subscriptions never in scope, even when a management group above them, or one of their resource groups,
    is listed."""
    resource_groups: tuple[ResourceGroupRef, ...] = ()
    """Individual resource groups in scope (full ids)."""
    regions: (
        Annotated[
            tuple[Region, ...],
            Field(min_length=1),
            BeforeValidator(_not_empty_list("regions is an empty list; omit it to allow every region")),
        ]
        | None
    ) = Field(default=None, json_schema_extra=_without_null)
    """Optional allow-list of regions ("East US" or "eastus"). Omitted: every region. An empty list is an
    error."""

    _if_null: ClassVar[Mapping[str, str]] = {
        "management_groups": "list at least one management group, or remove the key",
        "subscriptions": "list at least one subscription, or remove the key",
        "exclude_subscriptions": (
            "list at least one subscription, or remove the key to exclude no subscription"
        ),
        "resource_groups": "list at least one resource group id, or remove the key",
        "regions": "list at least one region, or remove the key to allow every region",
    }

    _excluded_keys: frozenset[str] = PrivateAttr(default=frozenset())
    _subscription_keys: frozenset[str] = PrivateAttr(default=frozenset())
    _resource_group_keys: frozenset[str] = PrivateAttr(default=frozenset())
    _management_group_names: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="after")
    def _not_empty(self) -> Scope:
        if not (self.management_groups or self.subscriptions or self.resource_groups):
            raise ValueError(
                "empty: list at least one of managementGroups, subscriptions, resourceGroups"
                " (an empty scope never means 'everything')"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Key the listed ids once (``ResourceId.key``, Azure's case rule): :meth:`contains` runs per cluster
        (every sweep row).

        ``model_copy(update=...)`` skips this hook (the sets would describe the old lists): build a changed
        scope with ``Scope.model_validate`` instead, as ``service.http_api`` does.
        """
        self._excluded_keys = frozenset(ref.key for ref in self.exclude_subscriptions)
        self._subscription_keys = frozenset(ref.key for ref in self.subscriptions)
        self._resource_group_keys = frozenset(ref.key for ref in self.resource_groups)
        self._management_group_names = frozenset(
            ignore_case_key(str(ref.name)) for ref in self.management_groups
        )

    def contains_scope(
        self,
        scope_id: ResourceId,
        *,
        management_groups_of: Callable[[str], Iterable[str]] | None = None,
    ) -> bool:
        """Whether every cluster below a subscription or resource group would be in scope (no fake cluster
        id needed: the same rules as :meth:`contains`, which already reads only the subscription and resource
        group of the id it gets).

        :param scope_id: a subscription or resource group id.
        :raises ValueError: ``scope_id`` is neither; or as :meth:`contains`.
        """
        if scope_id.subscription_id is None or scope_id.provider is not None:
            raise ValueError(f"{scope_id} is not a subscription or resource group id")
        return self.contains(scope_id, management_groups_of=management_groups_of)

    def contains(
        self,
        cluster_id: ResourceId,
        *,
        management_groups_of: Callable[[str], Iterable[str]] | None = None,
    ) -> bool:
        """Whether the cluster id is in scope.

        Ids and names compare by Azure's rule (.NET ``OrdinalIgnoreCase``, :mod:`remediator.core.text`), never
        ``str.lower()``: a resource group ``rg-a\u212as-prod`` (KELVIN SIGN) is not ``rg-aks-prod``.

        :param cluster_id: a managed cluster id (or any id below a resource group).
        :keyword management_groups_of: subscription GUID -> the names or ids of every management group above
            it (its ancestry). Required when ``managementGroups`` is configured and the cluster is not already
            in scope through a listed subscription or resource group.
        :raises ValueError: if management groups are configured, they decide the answer, and no lookup was
            given.
        """
        subscription = cluster_id.subscription_scope
        if subscription is None:
            return False
        subscription_key = ignore_case_key(subscription)
        if subscription_key in self._excluded_keys:
            return False
        if subscription_key in self._subscription_keys:
            return True
        group = cluster_id.resource_group_id
        if group is not None and ignore_case_key(group) in self._resource_group_keys:
            return True
        if not self.management_groups:
            return False
        if management_groups_of is None:
            raise ValueError("scope.managementGroups is configured: pass management_groups_of to resolve it")
        ancestry = {
            management_group_key(group_ref)
            for group_ref in management_groups_of(str(cluster_id.subscription_id))
        }
        return not self._management_group_names.isdisjoint(ancestry)


class TagRule(_Model):
    """One include/exclude entry: a tag name and, optionally, the values that match."""

    tag: TagName
    """Tag name, compared case-insensitively. Taken literally (no wildcards)."""
    values: (
        Annotated[
            tuple[TagValue, ...],
            Field(min_length=1),
            BeforeValidator(
                _not_empty_list("values is an empty list; omit it to match any value of the tag")
            ),
        ]
        | None
    ) = Field(default=None, json_schema_extra=_without_null)
    """Values that match, case-insensitively; ``*`` matches any run of characters and is the only wildcard.
    Omitted: the tag is present with any value. An empty list is an error."""

    _if_null: ClassVar[Mapping[str, str]] = {
        "values": "list at least one value, or remove the key to match any value of the tag",
    }


class Selection(_Model):
    """Tag rules that pick clusters inside the scope. Exclude wins over include."""

    include: (
        Annotated[
            tuple[TagRule, ...],
            Field(min_length=1),
            BeforeValidator(
                _not_empty_list("include is an empty list; omit it to include every in-scope cluster")
            ),
        ]
        | None
    ) = Field(default=None, json_schema_extra=_without_null)
    """A cluster is included if any entry matches. Omitted: every in-scope cluster is included (Policy 4
    style). An empty list is an error."""
    exclude: tuple[TagRule, ...] = ()
    """A cluster matched by any entry is not selected, whatever include says."""

    _if_null: ClassVar[Mapping[str, str]] = {
        "include": "list at least one entry, or remove the key to include every in-scope cluster",
        "exclude": "list at least one entry, or remove the key to exclude nothing",
    }


class ExtensionConfig(_Model):
    """How the backup extension is installed; defaults match the built-in DeployIfNotExists policy."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9][-a-zA-Z0-9._]{0,252}$")] = DEFAULT_EXTENSION_NAME
    """Extension resource name."""
    release_train: Annotated[str, Field(pattern=r"^[A-Za-z]+$")] = DEFAULT_RELEASE_TRAIN
    """Release train of the extension."""
    auto_upgrade_minor_version: bool = True
    """Let the platform upgrade minor versions."""
    configuration_settings: dict[str, str] = Field(default_factory=dict)
    """Extra configurationSettings (e.g. ``resources.limits.memory``). Keys the policy sets itself (storage
    location, tenant) are rejected."""

    _if_null: ClassVar[Mapping[str, str]] = {
        "configuration_settings": "add at least one setting, or remove the key",
    }

    @field_validator("configuration_settings")
    @classmethod
    def _no_reserved_settings(cls, settings: dict[str, str]) -> dict[str, str]:
        reserved = {key.lower(): key for key in DINE_SETTING_KEYS}
        for key in settings:
            if key.lower() in reserved:
                raise ValueError(
                    f"{key!r} is set by the remediator from the storage target and tenant; remove it"
                )
            if key.lower() in CLI_ONLY_SETTING_ALIASES:
                real = CLI_ONLY_SETTING_ALIASES[key.lower()]
                hint = "remove it" if real.lower() in reserved else f"use {real!r}"
                raise ValueError(f"{key!r} is an az CLI alias that the REST API ignores; {hint}")
        return settings


class RemediationConfig(_Model):
    """What the remediator does for a selected cluster."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"mode": {"const": "policy-task"}}, "required": ["mode"]},
            "then": {
                "required": ["policyAssignmentIds"],
                "properties": {"policyAssignmentIds": {"minItems": 1}},
            },
        }
    )

    mode: Literal["install", "policy-task", "audit"] = "install"
    """``install``: install the extension directly. ``policy-task``: create an Azure Policy remediation task
    for the cluster. ``audit``: only report."""
    policy_assignment_ids: tuple[PolicyAssignmentRef, ...] = ()
    """Assignments of the built-in DeployIfNotExists policies to remediate (required for ``policy-task``)."""
    grant_storage_access: bool = True
    """Grant the extension identity Storage Blob Data Contributor on the storage account (install mode)."""
    grant_scope: Literal["account", "container"] = "account"
    """Where the extension identity's Storage Blob Data Contributor grant is scoped. ``account`` (default, as
    the built-in DeployIfNotExists policy does): the whole storage account, so every selected cluster can
    read every other cluster's backups. ``container`` (UNCONFIRMED by Microsoft, see docs/security.md): the
    cluster's own backup container only, plus Storage Blob Delegator on the account (user-delegation SAS keys,
    no data access). Test a backup and a restore on one cluster before using it widely."""
    max_reinstalls: int = Field(default=2, ge=0, le=10)
    """How many times the reconciler re-installs a backup extension whose provisioningState is Failed before
    it gives up and asks a human (0: never). Counted from the cluster's journal history."""

    _if_null: ClassVar[Mapping[str, str]] = {
        "policy_assignment_ids": "list at least one assignment id, or remove the key",
    }

    @model_validator(mode="after")
    def _policy_task_needs_assignment(self) -> RemediationConfig:
        if self.mode == "policy-task" and not self.policy_assignment_ids:
            raise ValueError("mode policy-task needs at least one entry in policyAssignmentIds")
        return self


class RegionTargets(_Model):
    """What the product uses for the clusters of one region: where their backups go. (Protect mode will add
    the region's backup vault, backup policy and snapshot resource group here.)"""

    storage_account: StorageAccountRef
    """The backup storage account (in the same region as the clusters): the extension writes backups to a
    container in it, and its identity is granted Storage Blob Data Contributor on it."""


def _unique_region_keys(what: str) -> Callable[[object], object]:
    """A before-validator for a region-keyed map: not empty, and no two keys naming the same region."""

    def check(value: object) -> object:
        if isinstance(value, Mapping) and not value:
            raise ValueError(f"empty: map at least one region to {what}")
        if isinstance(value, Mapping):
            seen: dict[str, str] = {}
            for region in value:
                if not isinstance(region, str):
                    continue
                normalized = "".join(region.split()).lower()
                if normalized in seen:
                    raise ValueError(f"regions {seen[normalized]!r} and {region!r} are the same region")
                seen[normalized] = region
        return value

    return check


def _region_errors(problems: list[tuple[tuple[int | str, ...], str]]) -> ValidationError:
    """Several region problems as one pydantic error per problem, each at its own place in the file."""
    return ValidationError.from_exception_data(
        "RemediatorConfig",
        [
            InitErrorDetails(
                type=PydanticCustomError("region", "{message}", {"message": message}), loc=loc, input=None
            )
            for loc, message in problems
        ],
    )


class RemediatorConfig(_Model):
    """The whole config file."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["regionTargets"], "not": {"required": ["storage"]}},
                {"required": ["storage"], "not": {"required": ["regionTargets"]}},
            ]
        }
    )

    schema_: str | None = Field(default=None, alias="$schema", json_schema_extra=_without_null)
    """Optional JSON Schema reference for editors; ignored."""
    extra_region_names: tuple[Region, ...] = ()
    """Region names newer than the list this release ships (``remediator/core/regions.py``). Every region in
    ``scope.regions`` and ``storage`` must be an Azure region name; list a region Azure opened since here."""
    scope: Scope
    """Where to look for clusters."""
    region_targets: (
        Annotated[
            dict[Region, RegionTargets],
            Field(min_length=1),
            BeforeValidator(_unique_region_keys("its targets ({storageAccount: <id>})")),
        ]
        | None
    ) = Field(default=None, json_schema_extra=_without_null)
    """Region -> what the clusters of that region use (``{storageAccount: <id>}``). A cluster in a region
    without an entry is not selected (reason ``no-storage-for-region``). Not to be confused with
    ``scope.regions``, the allow-list of regions in scope. Give this or its shorthand ``storage``, not
    both."""
    storage: (
        Annotated[
            dict[Region, StorageAccountRef],
            Field(min_length=1),
            BeforeValidator(_unique_region_keys("a storage account id")),
        ]
        | None
    ) = Field(default=None, json_schema_extra=_without_null)
    """Shorthand for ``regionTargets`` when a region needs only its storage account: region -> backup storage
    account id (``storage: {eastus: <id>}`` = ``regionTargets: {eastus: {storageAccount: <id>}}``)."""
    selection: Selection = Field(default_factory=Selection)
    """Tag rules. Omitted: every in-scope cluster is selected."""
    extension: ExtensionConfig = Field(default_factory=ExtensionConfig)
    """Extension settings."""
    remediation: RemediationConfig = Field(default_factory=RemediationConfig)
    """Remediation mode."""

    _if_null: ClassVar[Mapping[str, str]] = {
        "region_targets": "map at least one region to its targets, or remove the key and use storage",
        "storage": "map at least one region to a storage account id, or remove the key and use regionTargets",
        "extra_region_names": "list at least one region name, or remove the key",
        "selection": "give it include/exclude entries, or remove the key to select every in-scope cluster",
        "extension": "give it settings, or remove the key to use the policy's defaults",
        "remediation": "give it settings, or remove the key to use mode 'install'",
    }

    _targets: dict[str, RegionTargets] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _one_form_of_targets(self) -> RemediatorConfig:
        if self.region_targets is not None and self.storage is not None:
            raise UserInputError(
                "give either regionTargets or its shorthand storage, not both", field="storage"
            )
        if self.region_targets is None and self.storage is None:
            raise UserInputError(
                "required: map each region to its targets (regionTargets: {eastus: {storageAccount: <id>}},"
                " or the shorthand storage: {eastus: <id>})",
                field="regionTargets",
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Resolve the shorthand once: :attr:`targets` is the one form the product reads."""
        if self.region_targets is not None:
            self._targets = dict(self.region_targets)
        elif self.storage is not None:
            self._targets = {
                region: RegionTargets.model_validate({"storageAccount": account})
                for region, account in self.storage.items()
            }

    @property
    def targets(self) -> Mapping[str, RegionTargets]:
        """Normalized region -> its targets, whichever form the file used."""
        return self._targets

    def targets_for(self, region: str) -> RegionTargets | None:
        """The targets of a region (any spelling), or ``None``."""
        return self._targets.get(normalize_region(region))

    @field_validator("scope")
    @classmethod
    def _scope_regions_exist(cls, scope: Scope, info: ValidationInfo) -> Scope:
        extra = info.data.get("extra_region_names", ())
        problems: list[tuple[tuple[int | str, ...], str]] = [
            (("regions", index), unknown_region_message(region, extra=extra))
            for index, region in enumerate(scope.regions or ())
            if not is_known_region(region, extra=extra)
        ]
        if problems:
            raise _region_errors(problems)
        return scope

    @field_validator("region_targets", "storage")
    @classmethod
    def _target_regions_exist_and_agree_with_scope(
        cls, storage: dict[str, Any], info: ValidationInfo
    ) -> dict[str, Any]:
        """Every key of ``regionTargets`` (or its shorthand ``storage``) is an Azure region; with
        ``scope.regions``, the two name the same regions (an entry outside them is never used; an allowed
        region without a storage account selects clusters it cannot protect)."""
        extra = info.data.get("extra_region_names", ())
        problems: list[tuple[tuple[int | str, ...], str]] = [
            ((region, "[key]"), unknown_region_message(region, extra=extra))
            for region in storage
            if not is_known_region(region, extra=extra)
        ]
        scope = info.data.get("scope")
        allowed = scope.regions if isinstance(scope, Scope) else None
        if not problems and allowed is not None:
            listed = ", ".join(allowed)
            problems += [
                (
                    (region,),
                    f"{region} is not in scope.regions ({listed}), so no cluster there is ever selected;"
                    " add it to scope.regions or remove this entry",
                )
                for region in storage
                if region not in allowed
            ]
            missing = [region for region in allowed if region not in storage]
            if missing:
                names = ", ".join(missing)
                problems.append(
                    (
                        (),
                        f"no storage account for {names}, which scope.regions allows: clusters there would be"
                        f" selected and never protected; add a storage account for {names} here, or remove"
                        f" {names} from scope.regions",
                    )
                )
        if problems:
            raise _region_errors(problems)
        return storage

    def storage_for(self, region: str) -> ResourceId | None:
        """The storage account for a region (any spelling), or ``None``."""
        targets = self.targets_for(region)
        return None if targets is None else targets.storage_account


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if part == "[key]":
            path += " (key)"
        elif isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_]*", part):
            path += f".{part}" if path else part
        else:
            path += f"[{part!r}]"
    return path


def _error_message(error: Mapping[str, Any]) -> str:
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, UserInputError):
        return cause.message
    if isinstance(cause, Exception):
        return str(cause)
    if error.get("type") == "extra_forbidden":
        return "unknown field (check the spelling; field names are camelCase)"
    message = plain_validation_message(error)
    if error.get("type") == "string_type" and isinstance(error.get("input"), bool | int | float):
        return f"must be a text string; got {error['input']!r} (quote it in YAML)"
    if error.get("type") == "string_type":
        return "must be a text string"
    return message


def _is_consequence(error: Mapping[str, Any], errors: Iterable[Mapping[str, Any]]) -> bool:
    """A container's ``too_short`` reported because one of its items failed (pydantic counts only the valid
    items): not a second mistake. An empty list itself is caught earlier, with its own message."""
    if error.get("type") != "too_short":
        return False
    loc = tuple(error["loc"])
    return any(len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc for other in errors)


def user_input_error_from(exc: ValidationError, *, source: str | None) -> UserInputError:
    """Every pydantic error, in plain words, each naming its field: one :class:`UserInputError` when there is
    one mistake, a :class:`UserInputErrors` holding all of them otherwise. A model validator that raises a
    :class:`UserInputError` with a ``field`` names it below its model's path."""
    reported = exc.errors()
    errors = [error for error in reported if not _is_consequence(error, reported)] or reported

    def path_of(error: Any) -> str | None:
        path = _field_path(tuple(error["loc"]))
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, UserInputError) and cause.field:
            path = f"{path}.{cause.field}" if path else cause.field
        return path or None

    found = [UserInputError(_error_message(error), field=path_of(error), source=source) for error in errors]
    return found[0] if len(found) == 1 else UserInputErrors(found)


def parse_config(data: object, *, source: str | None = None) -> RemediatorConfig:
    """Validate an already-decoded config document.

    :raises UserInputError: with ``field`` = dotted path and ``source`` = ``source``.
    """
    if not isinstance(data, Mapping):
        raise UserInputError(f"the config must be a mapping, got {type(data).__name__}", source=source)
    try:
        return RemediatorConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise user_input_error_from(exc, source=source) from exc


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    keys: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        keys.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _reject_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def decode_document(text: str, *, source: str, prefer_json: bool | None = None) -> object:
    """Decode YAML or JSON text (JSON if ``prefer_json`` or, when ``None``, if it starts with ``{``).

    :raises UserInputError: naming the line for syntax errors and duplicate keys.
    """
    as_json = text.lstrip().startswith("{") if prefer_json is None else prefer_json
    if as_json:
        try:
            return json.loads(text, object_pairs_hook=_reject_duplicate_json_keys)
        except json.JSONDecodeError as exc:
            raise UserInputError(
                f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", source=source
            ) from exc
        except ValueError as exc:
            raise UserInputError(f"invalid JSON: {exc}", source=source) from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserInputError(f"invalid YAML{where}: {problem}", source=source) from exc


def load_config(path: str | Path) -> RemediatorConfig:
    """Read and validate a config file (``.json`` as JSON, ``.yaml``/``.yml`` as YAML, otherwise by content).

    :raises UserInputError: unreadable file, syntax error, or invalid field (``source`` = the path).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read the config file: {exc}", source=source) from exc
    suffix = Path(path).suffix.lower()
    prefer_json = True if suffix == ".json" else False if suffix in {".yaml", ".yml"} else None
    config = parse_config(decode_document(text, source=source, prefer_json=prefer_json), source=source)
    logger.debug("loaded config %s", source)
    return config
