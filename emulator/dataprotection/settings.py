"""Run-time knobs of the Azure Backup model: durations, propagation delays, limits and failure shapes.

Defaults are at test speed (fractions of a second) so integration tests stay fast while still exercising
every "not yet" path (role propagation, trusted-access Updating, LRO polling). ``PROFILES["realistic"]``
holds durations taken from recorded traffic and documentation (sources in emulator/README.md, Part 3); a
profile is applied with ``PATCH /_emulator/dataprotection {"profile": "realistic"}`` or the estate's
``dataProtection.settings.profile``. Knobs go back to the defaults with every estate (re)load.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_ROLE_ASSIGNMENT_LIMIT = 4000
"""Role assignments per subscription (subscription, resource-group and resource scopes; management-group
scope not counted): "Azure supports up to 4000 role assignments per subscription ... fixed and cannot be
increased" [MicrosoftDocs/azure-docs@articles/role-based-access-control/troubleshoot-limits.md]."""

MAX_TRUSTED_ACCESS_BINDINGS = 8
""""You can create up to 8 Trusted Access role bindings in an AKS cluster"
[MicrosoftDocs/azure-aks-docs@articles/aks/trusted-access-feature.md]."""


@dataclass
class DataProtectionSettings:
    """All knobs (JSON names in ``to_json``); times are clock seconds."""

    vault_create_s: float = 0.2
    """Backup vault PUT: Provisioning → Succeeded (the async operation completes then)."""
    bi_provision_s: float = 0.1
    """Backup instance PUT / sync: the async operation ends (provisioningState Succeeded)."""
    bi_configure_s: float = 0.3
    """ConfiguringProtection → ProtectionConfigured or the error state, after the PUT was accepted."""
    bi_delete_s: float = 0.1
    validate_s: float = 0.2
    """validateForBackup: the async operation's running time; prerequisites are checked at its end."""
    trusted_access_update_s: float = 0.2
    """Trusted-access binding PUT: provisioningState Updating → Succeeded."""
    trusted_access_effect_s: float = 0.0
    """Extra time after Succeeded before backup-side checks see a new binding (add-on manager cycle)."""
    role_propagation_s: float = 0.2
    """A role assignment is readable at once, but backup-side checks see it only this long after it was
    created (estate-declared assignments are propagated already)."""
    backup_tick_s: float = 1.0
    """Period of the scheduled "backup" that re-checks prerequisites of protected instances (0 = never)."""
    recheck_on_backup: bool = True
    """A protected instance whose prerequisite disappears turns ProtectionError on the next tick."""
    recover_on_backup: bool = False
    """A ProtectionError instance whose prerequisites are all back returns to ProtectionConfigured on the
    next tick (assumption; off by default: the product must repair with a re-PUT or sync)."""
    initial_failure_state: str = "ProtectionError"
    """currentProtectionState when configuring fails: ProtectionError or ConfiguringProtectionFailed."""
    require_data_operator_for_managed_disks: bool = False
    """Also require Data Operator for Managed Disks on the snapshot resource group (AVM/Terraform grant it,
    the CLI and the docs don't)."""
    require_vault_storage_reader: bool = True
    """Require Storage Blob Data Reader for the vault identity on the storage account (the CLI grants it)."""
    role_assignment_limit: int = DEFAULT_ROLE_ASSIGNMENT_LIMIT
    unsupported_redundancy: dict[str, list[str]] = field(default_factory=dict)
    """Region → storage redundancy types a vault PUT there is refused (``{"eastus": ["GeoRedundant"]}``)."""
    vault_tier_unsupported_regions: list[str] = field(
        default_factory=lambda: [
            "chinaeast2",
            "chinaeast3",
            "chinanorth2",
            "chinanorth3",
            "usgovarizona",
            "usgovtexas",
            "usgovvirginia",
            "israelcentral",
            "polandcentral",
            "spaincentral",
        ]
    )
    """Regions with the operational tier only (support matrix, aks_backup_facts.md §2.3): a policy with a
    VaultStore retention there is refused with DppUserErrorVaultTierPolicyNotSupported."""

    _JSON = {
        "vaultCreateS": "vault_create_s",
        "backupInstanceProvisionS": "bi_provision_s",
        "backupInstanceConfigureS": "bi_configure_s",
        "backupInstanceDeleteS": "bi_delete_s",
        "validateS": "validate_s",
        "trustedAccessUpdateS": "trusted_access_update_s",
        "trustedAccessEffectS": "trusted_access_effect_s",
        "rolePropagationS": "role_propagation_s",
        "backupTickS": "backup_tick_s",
        "recheckOnBackup": "recheck_on_backup",
        "recoverOnBackup": "recover_on_backup",
        "initialFailureState": "initial_failure_state",
        "requireDataOperatorForManagedDisks": "require_data_operator_for_managed_disks",
        "requireVaultStorageReader": "require_vault_storage_reader",
        "roleAssignmentLimit": "role_assignment_limit",
        "unsupportedRedundancy": "unsupported_redundancy",
        "vaultTierUnsupportedRegions": "vault_tier_unsupported_regions",
    }

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, attr) for name, attr in self._JSON.items()}

    def update(self, data: dict[str, Any]) -> None:
        """Apply a partial JSON update; ``profile`` first (then the other keys override it)."""
        if "profile" in data:
            name = str(data["profile"])
            if name not in PROFILES:
                raise ValueError(f"unknown profile '{name}'; known: {sorted(PROFILES)}")
            self.update(PROFILES[name])
        for key, value in data.items():
            if key == "profile":
                continue
            if key == "quota":
                raise ValueError(
                    "the DataProtection quota is the provider quota 'dataProtection': "
                    'PATCH /_emulator/config {"quotas": {"dataProtection": {...}}}'
                )
            attr = self._JSON.get(key)
            if attr is None:
                raise ValueError(f"unknown dataProtection setting '{key}'; known: {sorted(self._JSON)}")
            current = getattr(self, attr)
            if isinstance(current, bool):
                setattr(self, attr, bool(value))
            elif attr == "role_assignment_limit":
                if int(value) < 0:
                    raise ValueError("roleAssignmentLimit must be >= 0")
                setattr(self, attr, int(value))
            elif attr == "initial_failure_state":
                if value not in ("ProtectionError", "ConfiguringProtectionFailed"):
                    raise ValueError(
                        "initialFailureState must be ProtectionError or ConfiguringProtectionFailed"
                    )
                setattr(self, attr, str(value))
            elif attr == "unsupported_redundancy":
                if not isinstance(value, dict):
                    raise ValueError("unsupportedRedundancy must be an object {region: [types]}")
                setattr(
                    self,
                    attr,
                    {_region(k): [str(t) for t in (v or [])] for k, v in value.items()},
                )
            elif attr == "vault_tier_unsupported_regions":
                setattr(self, attr, [_region(r) for r in value or []])
            else:
                setattr(self, attr, _non_negative(key, value))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _non_negative(name: str, value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0")
    return number


def _region(name: str) -> str:
    return str(name).lower().replace(" ", "")


PROFILES: dict[str, dict[str, Any]] = {
    "test": {
        "vaultCreateS": 0.2,
        "backupInstanceProvisionS": 0.1,
        "backupInstanceConfigureS": 0.3,
        "backupInstanceDeleteS": 0.1,
        "validateS": 0.2,
        "trustedAccessUpdateS": 0.2,
        "trustedAccessEffectS": 0.0,
        "rolePropagationS": 0.2,
        "backupTickS": 1.0,
    },
    # Sources (README Part 3, "Realistic profile"): vault create ~1 s (recorded operationStatus start/end);
    # BI PUT operation ~1 s and validate ~12 s (Microsoft's REST walkthrough for Azure Backup); configure
    # 60 s INFERENCE (Terraform polls currentProtectionState once a minute); trusted-access Updating →
    # Succeeded ~1 s (recording lists Succeeded 0.5 s after the PUT) plus up to 5 min before it takes effect
    # (AKS doc: add-on manager cycle) → 150 s mean INFERENCE; role propagation 120 s (the CLI's own sleep;
    # RBAC doc: "up to 10 minutes"); backup every 4 h (the CLI's default policy PT4H).
    "realistic": {
        "vaultCreateS": 1.0,
        "backupInstanceProvisionS": 1.0,
        "backupInstanceConfigureS": 60.0,
        "backupInstanceDeleteS": 30.0,
        "validateS": 12.0,
        "trustedAccessUpdateS": 1.0,
        "trustedAccessEffectS": 150.0,
        "rolePropagationS": 120.0,
        "backupTickS": 14400.0,
    },
}
