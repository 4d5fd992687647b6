"""Names that must be valid, deterministic and unique per cluster.

The built-in DINE names the backup container ``take(concat('azure-aks-backup-', clusterName), 63)``, which
breaks for AKS names with uppercase letters or underscores (blob container names allow neither) and collides
for clusters with the same name in different resource groups. The names here are derived from the cluster
name for humans, made valid by construction, and made unique by a short hash of the cluster id under Azure's
case rule (:func:`remediator.core.text.ignore_case_key`: the lower-cased id for every ASCII id, so names made
before that rule are unchanged; ids that differ only by a KELVIN SIGN for a ``k`` now get different names, as
they name different resources). Role assignments and remediation tasks get deterministic names so that
repeating a reconcile can never create a second one (a remediation task's name also carries a generation,
because an ended task never runs again).
"""

from __future__ import annotations

import hashlib
import re
import uuid

from remediator.core.catalog import CONTAINER_PREFIX
from remediator.core.text import ignore_case_key

CONTAINER_MAX_LEN = 63
CONTAINER_HASH_LEN = 8
CONTAINER_NAME_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
"""Azure blob container names: 3-63 chars, lowercase letters, digits and single hyphens, alphanumeric at
both ends."""

NAME_NAMESPACE = uuid.UUID("6f1c9e1e-2b7a-5a53-9d0e-a1c4b0a7e5d2")
"""uuid5 namespace of every deterministic name this product makes (fixed forever: changing it renames
things)."""


def _short_hash(text: str, length: int) -> str:
    return hashlib.sha256(ignore_case_key(text).encode("utf-8")).hexdigest()[:length]


def is_valid_container_name(name: str) -> bool:
    """Whether ``name`` satisfies Azure's blob container naming rules."""
    return CONTAINER_NAME_RE.match(name) is not None


def backup_container_name(cluster_name: str, cluster_id: str) -> str:
    """The blob container holding one cluster's backups.

    ``azure-aks-backup-<sanitised cluster name>-<8 hex of sha256(ignore_case_key(cluster id))>``, cut to 63
    characters: lowercase, ``[a-z0-9-]``, single hyphens, alphanumeric at both ends. Two clusters with the
    same name in different resource groups or subscriptions get different containers; the same cluster (any
    id casing) always gets the same one.
    """
    sanitised = re.sub(r"[^a-z0-9]+", "-", cluster_name.lower()).strip("-")
    suffix = "-" + _short_hash(cluster_id, CONTAINER_HASH_LEN)
    stem = (CONTAINER_PREFIX + sanitised).strip("-")
    stem = stem[: CONTAINER_MAX_LEN - len(suffix)].rstrip("-")
    name = stem + suffix
    if not is_valid_container_name(name):  # pragma: no cover - guarded by property tests
        raise AssertionError(f"built an invalid container name {name!r}")
    return name


def role_assignment_name(scope_id: str, principal_id: str, role_definition_id: str) -> str:
    """Deterministic role-assignment name (a GUID, as ARM requires): uuid5 of scope + principal + role.

    Case-insensitive in every part, so the same grant always gets the same name and a repeat PUT is
    idempotent.
    """
    key = "|".join(ignore_case_key(part.strip()) for part in (scope_id, principal_id, role_definition_id))
    return str(uuid.uuid5(NAME_NAMESPACE, "role-assignment|" + key))


REMEDIATION_GENERATION_SEPARATOR = "-g"
"""``aks-backup-<uuid>-g<n>``: the generation suffix of a remediation-task name (generation 0 has none)."""


def remediation_task_name(cluster_id: str, assignment_id: str, *, generation: int = 0) -> str:
    """Deterministic remediation-task name per cluster, policy assignment and generation.

    A remediation task is a one-shot resource: once it has ended (Succeeded, Failed, Canceled) it never runs
    again, and its name cannot be reused while it exists. So the name carries a generation: the reconciler
    keeps using the newest generation while that task runs (repeats don't pile up) and moves to the next one
    only when the newest task has ended and the cluster still lacks the extension
    (``core.planning.latest_remediation_task``). Generation 0 is ``aks-backup-<uuid5>`` (the name before
    generations existed, so earlier tasks are still found); generation ``n`` appends ``-g<n>``.

    :param cluster_id: the cluster (any casing).
    :param assignment_id: the policy assignment (any casing).
    :keyword generation: 0, 1, 2, ...
    """
    if generation < 0:
        raise ValueError(f"remediation task generation must be >= 0, got {generation}")
    key = f"{ignore_case_key(cluster_id.strip())}|{ignore_case_key(assignment_id.strip())}"
    base = "aks-backup-" + str(uuid.uuid5(NAME_NAMESPACE, "remediation|" + key))
    return base if generation == 0 else f"{base}{REMEDIATION_GENERATION_SEPARATOR}{generation}"


def cluster_key(cluster_id: str) -> str:
    """sha256 hex of the cluster id's :func:`~remediator.core.text.ignore_case_key`: a Table-Storage-safe key
    for everything about one cluster (ARM ids contain ``/``, which PartitionKey and RowKey forbid).

    Journal partitions written before the key followed Azure's case rule hashed ``id.lower()``. For every
    ASCII id the two are the same string, so those partitions keep their history. An id whose resource group
    name holds one of the 27 code points where ``lower()`` and the rule differ (KELVIN SIGN, ANGSTROM SIGN,
    OHM SIGN, Greek symbol letters, ...) gets a new partition; other non-ASCII ids keep theirs.
    """
    return _short_hash(cluster_id.strip(), 64)
