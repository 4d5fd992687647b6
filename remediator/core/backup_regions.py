"""Where Azure Backup for AKS runs, and where its vault tier is available: shipped data with its source.

Preflight must say "this region has no vault tier" before a vault-tier policy is created
(``DppUserErrorVaultTierPolicyNotSupported``), and "this region has no AKS backup" before anything is written.
The lists are the Learn support matrix as read on 2026-04 (``shared/reference/aks_backup_facts.md`` §2.3,
source key DMAT: https://learn.microsoft.com/azure/backup/azure-kubernetes-service-cluster-backup-support-matrix).
They change as Azure adds regions: update them from that page, with the date below.
"""

from __future__ import annotations

import logging

from remediator.core.config import normalize_region

logger = logging.getLogger(__name__)

SOURCE = "https://learn.microsoft.com/azure/backup/azure-kubernetes-service-cluster-backup-support-matrix"
READ_ON = "2026-04"

_VAULT_AND_OPERATIONAL = (
    "Australia Central, Australia Central 2, Australia East, Australia Southeast, Brazil South, Brazil "
    "Southeast, "
    "Canada Central, Canada East, Central India, Central US, East Asia, East US, East US 2, France Central, "
    "France South, Germany North, Germany West Central, Italy North, Japan East, Japan West, Jio India West, "
    "Korea Central, Korea South, North Central US, North Europe, Norway East, Norway West, South Africa "
    "North, "
    "South Africa West, South Central US, South India, Southeast Asia, Sweden Central, Switzerland North, "
    "Switzerland West, UAE North, UK South, UK West, West Central US, West Europe, West US, West US 2, "
    "West US 3"
)
_OPERATIONAL_ONLY = (
    "China East 2, China East 3, China North 2, China North 3, US Gov Arizona, US Gov Texas, US Gov "
    "Virginia, "
    "Israel Central, Poland Central, Spain Central"
)

VAULT_TIER_REGIONS = frozenset(normalize_region(r.strip()) for r in _VAULT_AND_OPERATIONAL.split(","))
"""Regions with the vault tier and the operational tier (normalized: ``eastus2``)."""

OPERATIONAL_ONLY_REGIONS = frozenset(normalize_region(r.strip()) for r in _OPERATIONAL_ONLY.split(","))
"""Regions with the operational (snapshot) tier only."""

BACKUP_REGIONS = VAULT_TIER_REGIONS | OPERATIONAL_ONLY_REGIONS
"""Every region where Azure Backup for AKS is supported."""
