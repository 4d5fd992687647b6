"""ARM ids as Azure compares them: one key function for every id the emulator stores or compares.

Azure Resource Manager compares names and ids with .NET ``StringComparison.OrdinalIgnoreCase``: each UTF-16
character is upper-cased by its simple one-to-one mapping (never ``ß`` → ``SS``) and the results are compared
ordinally. Python's ``str.lower()`` is not that rule: it maps U+212A KELVIN SIGN to ASCII ``k`` (and
U+0130, U+2126, U+212B, U+1E9E to ASCII/other letters), so ``rg-a\u212as-prod`` and ``rg-aks-prod`` would be
one resource group. :func:`fold` keeps them apart, as Azure does.

The product models the same rule in ``remediator.core.rules.fold_case``; the emulator must not import the
product, so this is an independent implementation, cross-checked against it over Unicode by
``tests/unit/emulator/test_ids.py``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

CONTAINER_SERVICE = "Microsoft.ContainerService"
MANAGED_CLUSTERS_TYPE = "Microsoft.ContainerService/managedClusters"
KUBERNETES_CONFIGURATION = "Microsoft.KubernetesConfiguration"
EXTENSION_TYPE = "Microsoft.KubernetesConfiguration/extensions"
CONTAINER_TYPE = "Microsoft.Storage/storageAccounts/blobServices/containers"
RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"
_CANONICAL_TYPES = {
    t.lower(): t for t in (MANAGED_CLUSTERS_TYPE, EXTENSION_TYPE, CONTAINER_TYPE, RESOURCE_GROUP_TYPE)
}


def canonical_type(resource_type: str) -> str:
    """A resource type as ARM registers it (operation names, events), whatever casing a body carries: AKS
    answers ``Microsoft.ContainerService/ManagedClusters`` while its operations are
    ``Microsoft.ContainerService/managedClusters/write``."""
    return _CANONICAL_TYPES.get(resource_type.lower(), resource_type)


_UNCHANGED = frozenset("\u0131\u017f")
"""DOTLESS I and LONG S: .NET's ordinal casing table leaves them as they are (their simple uppercase is ASCII
``I``/``S``, which would bring the Turkish-i problem into ordinal comparisons)."""


@lru_cache(maxsize=8192)
def _simple_upper(char: str) -> str:
    """One code point's simple (one-to-one) uppercase, or the code point itself when it has none.

    ``str.upper`` applies the full mapping, which can lengthen (``ß`` → ``SS``, ``ŉ`` → ``ʼN``); where it
    does, the simple mapping is the titlecase if that is a single character (``ᾳ`` → ``ᾼ``), else the
    character is kept.
    """
    if char in _UNCHANGED:
        return char
    upper = char.upper()
    if len(upper) == 1:
        return upper
    title = char.title()
    return title if len(title) == 1 else char


def _key_char(char: str) -> str:
    upper = _simple_upper(char)
    return upper.lower() if upper.isascii() else upper


def fold(text: str) -> str:
    """The comparison key of ``text`` under .NET OrdinalIgnoreCase: two strings are equal under that rule iff
    their keys are equal.

    Each code point is upper-cased by its simple mapping, then ASCII letters are written lower-case, so an
    ASCII key is exactly ``text.lower()`` (ids in logs, snapshots and lower-cased literals compare as
    before) while ``\u212a`` (KELVIN SIGN, which has no other case) stays ``\u212a`` instead of becoming
    ``k``. Writing ASCII letters lower-case loses nothing: no simple uppercase is a lower-case ASCII letter.
    One code point in, one out.
    """
    if text.isascii():
        return text.lower()
    return "".join(map(_key_char, text))


def key_of(resource_id: str) -> str:
    """The state's key of an ARM id: :func:`fold` of it without a trailing slash."""
    return fold(resource_id.rstrip("/"))


def same_id(left: str, right: str) -> bool:
    """Whether two ARM ids (or names) name the same thing under Azure's rule."""
    return key_of(left) == key_of(right)


def is_under(resource_id: str, scope: str) -> bool:
    """Whether ``resource_id`` is ``scope`` itself or below it (``scope/...``), under Azure's rule."""
    key, prefix = key_of(resource_id), key_of(scope)
    return key == prefix or key.startswith(prefix + "/")


def seed_of(text: str) -> str:
    """A case-insensitive hashing seed for derived values (principal ids, fqdn suffixes, eTags): :func:`fold`,
    which for ASCII is the lower-cased text the emulator always hashed (generated estates are unchanged),
    while ids that Azure keeps apart get different derived values."""
    return fold(text)


def rg_id(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"


def cluster_id(subscription_id: str, resource_group: str, name: str) -> str:
    return f"{rg_id(subscription_id, resource_group)}/providers/{CONTAINER_SERVICE}/managedClusters/{name}"


def deterministic_uuid(*parts: str) -> str:
    """A stable UUID (v4 layout) from strings, so estates and tests are reproducible. Hot path: formats the
    digest directly instead of going through uuid.UUID."""
    h = hashlib.sha256(seed_of("|".join(parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
