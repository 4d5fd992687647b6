"""Column schemas of the Resource Graph tables the emulator serves.

KQL is statically typed: a string column is never null (it is empty), a dynamic one can be. The evaluator
needs the types to give unmatched `leftouter` rows and failed `parse` captures the same empty/null values
Resource Graph gives.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

STRING = "string"
DYNAMIC = "dynamic"
LONG = "long"
BOOL = "bool"

_ARM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", STRING),
    ("name", STRING),
    ("type", STRING),
    ("tenantId", STRING),
    ("kind", STRING),
    ("location", STRING),
    ("resourceGroup", STRING),
    ("subscriptionId", STRING),
    ("managedBy", STRING),
    ("sku", DYNAMIC),
    ("plan", DYNAMIC),
    ("properties", DYNAMIC),
    ("tags", DYNAMIC),
    ("identity", DYNAMIC),
    ("zones", DYNAMIC),
    ("extendedLocation", DYNAMIC),
)

TABLE_SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "resources": _ARM_COLUMNS,
    "kubernetesconfigurationresources": _ARM_COLUMNS,
    "policyresources": _ARM_COLUMNS,
    "resourcecontainers": _ARM_COLUMNS,
    "recoveryservicesresources": _ARM_COLUMNS,  # backup instances (emulator/dataprotection)
    "authorizationresources": _ARM_COLUMNS,  # role assignments
}
"""Lower-cased table name -> ordered (column, type). Table names are case-insensitive in Resource Graph."""

ARG_TABLE_TYPE_NAMES = {STRING: "string", DYNAMIC: "object", LONG: "integer", BOOL: "boolean"}
"""Column type names used by `resultFormat: table` responses."""
