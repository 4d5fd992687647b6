"""Azure's region names, shipped as data, so that a misspelled region in a config is an error, not a silent
gap.

A config that maps ``westeruope`` to a storage account is valid YAML and a valid region *shape*; without a
list of real names it would pass ``config check`` and leave every West Europe cluster unprotected. This module
is the product's one list of region names (ARM's ``location`` form: lower case, no spaces) and the "did you
mean" suggestion for a name that is not on it. Pure: no I/O.

Sources (the list is as of :data:`REGIONS_AS_OF`):

* Public cloud: Microsoft Learn, "Azure regions list", the *Programmatic name* column of the "All" tab
  (https://learn.microsoft.com/azure/reliability/regions-list; MicrosoftDocs/reliability-docs
  ``articles/reliability/regions-list.md``, ``ms.date: 09/23/2025``). Sweden South appears there only as
  Sweden Central's paired (restricted) region and is listed here too.
* Names ARM's ``GET /subscriptions/{id}/locations`` (``az account list-locations``) returns for physical
  regions that the page above leaves out: the early-access (EUAP) regions ``centraluseuap`` and
  ``eastus2euap``, where AKS clusters can exist, and the restricted ``jioindiacentral``, ``jioindiawest`` and
  ``brazilus`` (a recorded response in cloud-barista/cb-spider
  ``cloud-control-manager/cloud-driver/drivers/azure/resources/RegionZoneHandler.go``, 2023-09-22).
  Logical locations from the same response (``global``, ``europe``, ``unitedstates``, ...) and
  Microsoft-internal stage regions (``eastusstage``, ``eastusstg``, ...) are left out: no cluster or storage
  account lives there.
* Sovereign clouds (Azure Government, Azure operated by 21Vianet): ``Azure.Core.AzureLocation``
  (Azure/azure-sdk-for-net ``sdk/core/Azure.Core/src/AzureLocation.cs``) and
  ``com.azure.core.management.Region`` of azure-core-management 1.17.0 (China East 3 / North 3). The retired
  Azure Germany cloud (``germanycentral``, ``germanynortheast``) is left out.

Azure opens regions faster than this list is released: a config names a region newer than the list in
``extraRegionNames``, and the region check accepts it.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType

logger = logging.getLogger(__name__)

REGIONS_AS_OF = "2025-09-23"
"""Date of the newest source of :data:`AZURE_REGIONS` (the Microsoft Learn page's ``ms.date``)."""

REGIONS_SOURCE = "https://learn.microsoft.com/azure/reliability/regions-list"
"""Where the public-cloud names come from (see the module docstring for the others)."""

AZURE_REGIONS: Mapping[str, str] = MappingProxyType(
    {
        # Public cloud: Microsoft Learn "Azure regions list" (All tab), ms.date 2025-09-23.
        "australiacentral": "Australia Central",
        "australiacentral2": "Australia Central 2",
        "australiaeast": "Australia East",
        "australiasoutheast": "Australia Southeast",
        "austriaeast": "Austria East",
        "belgiumcentral": "Belgium Central",
        "brazilsouth": "Brazil South",
        "brazilsoutheast": "Brazil Southeast",
        "canadacentral": "Canada Central",
        "canadaeast": "Canada East",
        "centralindia": "Central India",
        "centralus": "Central US",
        "chilecentral": "Chile Central",
        "denmarkeast": "Denmark East",
        "eastasia": "East Asia",
        "eastus": "East US",
        "eastus2": "East US 2",
        "francecentral": "France Central",
        "francesouth": "France South",
        "germanynorth": "Germany North",
        "germanywestcentral": "Germany West Central",
        "indonesiacentral": "Indonesia Central",
        "israelcentral": "Israel Central",
        "italynorth": "Italy North",
        "japaneast": "Japan East",
        "japanwest": "Japan West",
        "koreacentral": "Korea Central",
        "koreasouth": "Korea South",
        "malaysiawest": "Malaysia West",
        "mexicocentral": "Mexico Central",
        "newzealandnorth": "New Zealand North",
        "northcentralus": "North Central US",
        "northeurope": "North Europe",
        "norwayeast": "Norway East",
        "norwaywest": "Norway West",
        "polandcentral": "Poland Central",
        "qatarcentral": "Qatar Central",
        "southafricanorth": "South Africa North",
        "southafricawest": "South Africa West",
        "southcentralus": "South Central US",
        "southindia": "South India",
        "southeastasia": "Southeast Asia",
        "spaincentral": "Spain Central",
        "swedencentral": "Sweden Central",
        "swedensouth": "Sweden South",
        "switzerlandnorth": "Switzerland North",
        "switzerlandwest": "Switzerland West",
        "uaecentral": "UAE Central",
        "uaenorth": "UAE North",
        "uksouth": "UK South",
        "ukwest": "UK West",
        "westcentralus": "West Central US",
        "westeurope": "West Europe",
        "westindia": "West India",
        "westus": "West US",
        "westus2": "West US 2",
        "westus3": "West US 3",
        # Physical regions ARM lists (az account list-locations) that the page above leaves out.
        "brazilus": "Brazil US",
        "centraluseuap": "Central US EUAP",
        "eastus2euap": "East US 2 EUAP",
        "jioindiacentral": "Jio India Central",
        "jioindiawest": "Jio India West",
        # Azure Government.
        "usdodcentral": "US DoD Central",
        "usdodeast": "US DoD East",
        "usgovarizona": "US Gov Arizona",
        "usgoviowa": "US Gov Iowa",
        "usgovtexas": "US Gov Texas",
        "usgovvirginia": "US Gov Virginia",
        # Azure operated by 21Vianet (China).
        "chinaeast": "China East",
        "chinaeast2": "China East 2",
        "chinaeast3": "China East 3",
        "chinanorth": "China North",
        "chinanorth2": "China North 2",
        "chinanorth3": "China North 3",
    }
)
"""ARM location name -> display name, for every region a cluster or storage account can be in."""

SUGGESTION_CUTOFF = 0.75
"""Least ``difflib`` similarity for a "did you mean" (``westeruope`` -> ``westeurope`` scores 0.9)."""


def is_known_region(name: str, *, extra: Iterable[str] = ()) -> bool:
    """Whether ``name`` (ARM form: lower case, no spaces) is on the list or in ``extra``."""
    return name in AZURE_REGIONS or name in set(extra)


def suggest_region(name: str, *, extra: Iterable[str] = ()) -> str | None:
    """The closest known region name to ``name``, or ``None`` when none is close."""
    candidates = [*AZURE_REGIONS, *extra]
    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=SUGGESTION_CUTOFF)
    return matches[0] if matches else None


def unknown_region_message(name: str, *, extra: Iterable[str] = ()) -> str:
    """One line saying that ``name`` is not an Azure region, with a suggestion when one is close."""
    extras = tuple(extra)
    suggestion = suggest_region(name, extra=extras)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    return (
        f"{name!r} is not an Azure region{hint} (names as of {REGIONS_AS_OF}; a newer region goes in"
        " extraRegionNames)"
    )


__all__ = [
    "AZURE_REGIONS",
    "REGIONS_AS_OF",
    "REGIONS_SOURCE",
    "SUGGESTION_CUTOFF",
    "is_known_region",
    "suggest_region",
    "unknown_region_message",
]
