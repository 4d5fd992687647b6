"""The management-group tree of an estate: the subscriptions a group contains, and a subscription's ancestry.

Resource Graph's ``managementGroups`` scope covers every subscription below a group, at any depth, and the
``resourcecontainers`` table shows each subscription's ancestry (``properties.managementGroupAncestorsChain``,
immediate parent first, the Tenant Root Group last). Both need the tree, built here from the estate's
``managementGroups`` key, in any of these forms::

    managementGroups: {mg-a: [sub, ...]}                                    # flat (no nesting)
    managementGroups: {mg-a: {subscriptions: [sub], parent: mg-root, displayName: A}}
    managementGroups: [{name: mg-a, subscriptions: [sub], parent: mg-root}]

A group without ``parent`` hangs off the Tenant Root Group (named after the tenant id, as in Azure). A
subscription listed under no group sits directly under the Tenant Root Group. Azure gives a subscription one
parent; an estate that lists it under several groups keeps it in every one of their scopes, and its ancestry
follows the first group listing it (an emulator simplification).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.model.ids import fold

logger = logging.getLogger(__name__)

TENANT_ROOT_DISPLAY_NAME = "Tenant Root Group"


@dataclass(frozen=True)
class GroupEntry:
    name: str
    subscriptions: tuple[str, ...] = ()
    parent: str | None = None
    display_name: str | None = None


def normalize_groups(raw: Any) -> dict[str, GroupEntry]:
    """The estate's ``managementGroups`` value (any form above) -> name -> entry. Raises ``ValueError``."""
    if not raw:
        return {}
    items: Iterable[tuple[str, Any]]
    if isinstance(raw, list):
        items = [(str(g["name"]), g) for g in raw]
    elif isinstance(raw, Mapping):
        items = raw.items()
    else:
        raise ValueError("managementGroups must be a mapping or a list")
    out: dict[str, GroupEntry] = {}
    for name, value in items:
        if isinstance(value, Mapping):
            entry = GroupEntry(
                name=name,
                subscriptions=tuple(str(s) for s in value.get("subscriptions") or ()),
                parent=str(value["parent"]) if value.get("parent") else None,
                display_name=value.get("displayName"),
            )
        else:
            entry = GroupEntry(name=name, subscriptions=tuple(str(s) for s in value or ()))
        out[name] = entry
    return out


@dataclass
class ManagementGroupTree:
    """Group membership (transitive) and subscription ancestry; keys are ``emulator.model.ids.fold`` (Azure's
    OrdinalIgnoreCase)."""

    groups: dict[str, GroupEntry]
    tenants: Mapping[str, str] = field(default_factory=dict)
    """Folded subscription id -> tenant id (the Tenant Root Group's name)."""

    @classmethod
    def from_estate(cls, raw: Any, *, tenants: Mapping[str, str] | None = None) -> ManagementGroupTree:
        groups = {fold(name): entry for name, entry in normalize_groups(raw).items()}
        for entry in groups.values():
            if entry.parent is not None and fold(entry.parent) not in groups:
                raise ValueError(f"management group {entry.name!r}: parent {entry.parent!r} is not defined")
        return cls(groups=groups, tenants={fold(k): v for k, v in (tenants or {}).items()})

    def _chain_of_group(self, name: str) -> list[GroupEntry]:
        """The group itself, then its ancestors up to (not including) the Tenant Root Group."""
        chain: list[GroupEntry] = []
        seen: set[str] = set()
        current: str | None = fold(name)
        while current is not None:
            if current in seen:
                raise ValueError(f"management groups form a cycle through {current!r}")
            seen.add(current)
            entry = self.groups[current]
            chain.append(entry)
            current = fold(entry.parent) if entry.parent else None
        return chain

    def is_tenant_root(self, name: str) -> bool:
        return fold(name) not in self.groups and fold(name) in {fold(t) for t in self.tenants.values()}

    def exists(self, name: str) -> bool:
        return fold(name) in self.groups or self.is_tenant_root(name)

    def members(self, name: str) -> set[str]:
        """Folded subscription ids below the group, at any depth. ``KeyError`` for an unknown group."""
        key = fold(name)
        if self.is_tenant_root(key):
            return {sub for sub, tenant in self.tenants.items() if fold(tenant) == key}
        if key not in self.groups:
            raise KeyError(name)
        out: set[str] = set()
        for other in self.groups:
            if any(fold(e.name) == key for e in self._chain_of_group(other)):
                out.update(fold(s) for s in self.groups[other].subscriptions)
        return out

    def group_and_ancestors(self, name: str) -> set[str]:
        """Lower-cased names of the group, its ancestors and the Tenant Root Group (empty if unknown)."""
        key = name.lower()
        if self.is_tenant_root(key):
            return {key}
        if key not in self.groups:
            return set()
        out = {e.name.lower() for e in self._chain_of_group(key)}
        out.update(t.lower() for t in self.tenants.values())
        return out

    def parent_of(self, subscription_id: str) -> str | None:
        sub = fold(subscription_id)
        for key, entry in self.groups.items():
            if any(fold(s) == sub for s in entry.subscriptions):
                return key
        return None

    def ancestors_chain(self, subscription_id: str) -> list[dict[str, str]]:
        """``properties.managementGroupAncestorsChain`` of a subscription: parent first, root last."""
        parent = self.parent_of(subscription_id)
        chain = [
            {"name": e.name, "displayName": e.display_name or e.name}
            for e in (self._chain_of_group(parent) if parent else [])
        ]
        tenant = self.tenants.get(fold(subscription_id))
        if tenant:
            chain.append({"name": tenant, "displayName": TENANT_ROOT_DISPLAY_NAME})
        return chain
