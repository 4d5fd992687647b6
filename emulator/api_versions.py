"""Which ``api-version`` each modelled resource provider accepts, and ARM's answer to any other.

ARM rejects an api-version the resource type was never published with, before the resource provider sees
the call. Accepting anything (``?api-version=1999-01-01`` → 200) would let a product bug — a typo'd or
invented version in a raw REST call — pass every local test; rejecting a version Azure answers hides nothing
but breaks real clients (an Azure CLI cassette at containerservice 2022-11-02-preview, storage 2021-02-01).
The allow-lists hold published versions only, each from a source named beside it:

- ``[sdk]`` the versions the installed SDKs send (azure-mgmt-containerservice 41.8.0,
  -kubernetesconfiguration 3.1.0 (multi-API), -storage 25.3.0, -authorization 4.0.0 (multi-API),
  -policyinsights 1.0.1, -resourcegraph 8.0.1; read from their generated operations);
- ``[examples]`` the official examples in ``shared/azure-examples`` (MANIFEST.md);
- ``[recorded]`` versions real Azure answered in ``shared/recordings`` (request URLs and async URLs);
- ``[provider]`` provider metadata a recording shows (``GET /subscriptions/{id}/providers/
  Microsoft.KubernetesConfiguration``, ``resourceTypes[].apiVersions``, in
  azure-cli-extensions__k8s-extension__test_k8s_extension.json and in its source cassette
  Azure/azure-cli-extensions@0d74de6:src/k8s-extension/.../recordings/test_k8s_extension.yaml);
- ``[specs]`` the API versions (tags) of the AKS readme in Azure/azure-rest-api-specs@bff4b7a
  (specification/containerservice/resource-manager/Microsoft.ContainerService/aks/readme.md, through
  package-2024-07) and of the Storage readme in Azure/azure-rest-api-specs@03bbd63
  (specification/storage/resource-manager/readme.md, the tags read);
- ``[spec folders]`` the version folders of Azure/azure-rest-api-specs ``specification/…/{stable|preview}/
  <version>/`` — each version below so marked was checked to have the named swagger in its folder (the
  public-code index, ``find_files`` on the path, 2026-05): AKS ``…/Microsoft.ContainerService/aks/
  {stable|preview}/<v>/managedClusters.json``; Storage ``…/Microsoft.Storage/{stable|preview}/<v>/
  storage.json``; Kubernetes Configuration ``…/Microsoft.KubernetesConfiguration/extensions/{stable|preview}/
  <v>/extensions.json``; DataProtection ``…/Microsoft.DataProtection/{stable|preview}/<v>/
  dataprotection.json``; Policy Insights ``…/Microsoft.PolicyInsights/{stable|preview}/<v>/{remediations|
  policyStates}.json``; Resource Graph ``…/Microsoft.ResourceGraph/{stable|preview}/<v>/resourcegraph.json``;
  Authorization ``specification/resources/resource-manager/Microsoft.Authorization/stable/<v>/
  {policyAssignments|locks}.json``; Resources ``…/Microsoft.Resources/stable/<v>/{resources|
  subscriptions}.json``.
  Versions probed and NOT found there are not listed (AKS 2024-11/12-01, 2025-11/12-01, 2024-08-02-preview
  (only in a fork), 2024-11/12-02-preview, 2025-11/12-02-preview; Storage 2018-03-01, 2020-08-01).

The lists cover every version folder of those swaggers up to the newest the index holds (AKS 2026-08-01 /
2026-08-02-preview); the check is per namespace, not per resource type (ARM's is per type, so a version that
exists only for another type of the namespace passes here). A real, published version missing here is an
emulator gap, to be added with its source. Namespaces not listed (generic resources, Event Grid's data plane)
are not checked.

Answers (ARM's codes; wording ours): a version that is not a date (``YYYY-MM-DD[-suffix]``) → 400
``InvalidApiVersionParameter``; a well-formed but unpublished version → 400 ``NoRegisteredProviderFound``
for resource-provider types, ``InvalidApiVersionParameter`` for Microsoft.Resources (subscriptions, resource
groups, provider registration).
"""

from __future__ import annotations

import logging
import re

from emulator.errors import ArmError
from emulator.model.ids import fold

logger = logging.getLogger(__name__)

_WELL_FORMED = re.compile(r"^\d{4}-\d{2}-\d{2}(-[a-z0-9]+)?$", re.IGNORECASE)

ALLOWED: dict[str, frozenset[str]] = {
    "microsoft.containerservice": frozenset(
        {
            # [sdk] azure-mgmt-containerservice 41.8.0 (default 2026-08-01) and its per-feature versions
            "2026-04-01",
            "2026-05-01",
            "2026-06-01",
            "2026-07-01",  # also [examples] ManagedClustersCreate_Update.json, TrustedAccessRoleBindings_*
            "2026-08-01",  # also [examples] ManagedClustersGet.json, ManagedClustersList.json
            # [specs] managedClusters.json versions of the AKS readme (stable, then previews)
            "2017-08-31",
            "2018-03-31",
            "2019-02-01",
            "2019-04-01",
            "2019-06-01",
            "2019-08-01",
            "2019-10-01",
            "2019-11-01",
            "2020-01-01",
            "2020-02-01",
            "2020-03-01",
            "2020-04-01",
            "2020-06-01",
            "2020-07-01",
            "2020-09-01",
            "2020-11-01",
            "2020-12-01",
            "2021-02-01",
            "2021-03-01",
            "2021-05-01",
            "2021-07-01",
            "2021-08-01",
            "2021-09-01",
            "2021-10-01",
            "2022-01-01",
            "2022-02-01",
            "2022-03-01",
            "2022-04-01",
            "2022-06-01",
            "2022-07-01",
            "2022-09-01",
            "2022-11-01",
            "2023-01-01",
            "2023-02-01",
            "2023-03-01",
            "2023-04-01",
            "2023-05-01",
            "2023-06-01",
            "2023-07-01",
            "2023-08-01",
            "2023-09-01",
            "2023-10-01",
            "2023-11-01",
            "2024-01-01",
            "2024-02-01",
            "2024-05-01",
            "2024-07-01",
            "2018-08-01-preview",
            "2021-11-01-preview",
            "2022-01-02-preview",
            "2022-02-02-preview",
            "2022-03-02-preview",
            "2022-04-02-preview",
            "2022-05-02-preview",
            "2022-06-02-preview",
            "2022-07-02-preview",
            "2022-08-02-preview",
            "2022-08-03-preview",
            "2022-09-02-preview",
            "2022-10-02-preview",
            "2022-11-02-preview",
            "2023-01-02-preview",
            "2023-02-02-preview",
            "2023-03-02-preview",
            "2023-04-02-preview",
            "2023-05-02-preview",
            "2023-06-02-preview",
            "2023-07-02-preview",
            "2023-08-02-preview",
            "2023-09-02-preview",
            "2023-10-02-preview",
            "2023-11-02-preview",
            "2024-01-02-preview",
            "2024-02-02-preview",
            "2024-03-02-preview",
            "2024-04-02-preview",
            "2024-05-02-preview",
            "2024-06-02-preview",
            # [spec folders] aks/stable and aks/preview after the readme's package-2024-07
            "2024-08-01",
            "2024-09-01",  # also sent by tests here on purpose
            "2024-10-01",
            "2025-01-01",
            "2025-02-01",
            "2025-03-01",
            "2025-04-01",
            "2025-05-01",
            "2025-06-01",
            "2025-07-01",  # also deploymentSafeguards' newest stable (Learn ARM template reference)
            "2025-08-01",
            "2025-09-01",
            "2025-10-01",
            "2026-01-01",
            "2026-02-01",
            "2026-03-01",
            "2024-07-02-preview",
            "2024-09-02-preview",
            "2024-10-02-preview",
            "2025-01-02-preview",
            "2025-02-02-preview",
            "2025-03-02-preview",
            "2025-04-02-preview",
            "2025-05-02-preview",
            "2025-06-02-preview",
            "2025-07-02-preview",
            "2025-08-02-preview",
            "2025-09-02-preview",
            "2025-10-02-preview",
            "2026-01-02-preview",
            "2026-02-02-preview",
            "2026-03-02-preview",
            "2026-04-02-preview",
            "2026-05-02-preview",
            "2026-06-02-preview",
            "2026-07-02-preview",
            "2026-08-02-preview",
            # [recorded] AKS's own async-operation URLs (locations/{loc}/operations/{id}) carry 2016-03-30
            "2016-03-30",
        }
    ),
    "microsoft.kubernetesconfiguration": frozenset(
        {
            # [sdk] azure-mgmt-kubernetesconfiguration 3.1.0 (multi-API; default 2023-05-01)
            "2020-07-01-preview",
            "2020-10-01-preview",
            "2021-03-01",
            "2021-05-01-preview",
            "2021-09-01",
            "2021-11-01-preview",
            "2022-01-01-preview",
            "2022-01-15-preview",
            "2022-03-01",
            "2022-04-02-preview",
            "2022-07-01",
            "2022-11-01",
            "2023-05-01",
            "2025-03-01",  # [examples] the official extension examples
            # [spec folders] extensions/stable/2024-11-01, extensions/preview/2024-11-02-preview
            "2024-11-01",
            "2024-11-02-preview",
            # [provider] more versions of the namespace's resource types (extensions, operations)
            "2019-11-01-preview",
            "2021-06-01-preview",
            "2021-12-01-preview",
            "2023-05-01-preview",
        }
    ),
    "microsoft.storage": frozenset(
        {
            # [sdk] azure-mgmt-storage 25.3.0; [specs] the Storage readme's tags read
            "2025-08-01",
            "2026-04-01",
            "2026-06-01",
            "2026-09-01",
            "2025-06-01",
            "2025-01-01",
            "2022-05-01",
            "2021-09-01",
            "2021-08-01",
            # [recorded] azure-cli__storage__test_storage_container_using_rm_main_scenario.json (also a
            # spec folder)
            "2021-02-01",
            # [spec folders] the older Storage versions (stable, then previews)
            "2015-06-15",
            "2016-01-01",
            "2016-05-01",
            "2016-12-01",
            "2017-06-01",
            "2017-10-01",
            "2018-02-01",
            "2018-07-01",
            "2018-11-01",
            "2019-04-01",
            "2019-06-01",
            "2021-01-01",
            "2021-04-01",
            "2021-06-01",
            "2022-09-01",
            "2023-01-01",
            "2023-04-01",
            "2023-05-01",
            "2024-01-01",
            "2015-05-01-preview",
            "2018-03-01-preview",
            "2020-08-01-preview",
        }
    ),
    "microsoft.authorization": frozenset(
        {
            # azure-mgmt-authorization 4.0.0 (multi-API; role assignments default 2022-04-01, the examples')
            "2015-06-01",
            "2015-07-01",
            "2018-01-01-preview",
            "2018-05-01-preview",
            "2018-07-01-preview",
            "2018-09-01-preview",
            "2019-08-01-preview",
            "2020-04-01-preview",
            "2020-10-01",
            "2020-10-01-preview",
            "2021-01-01-preview",
            "2021-03-01-preview",
            "2021-07-01-preview",
            "2021-12-01-preview",
            "2022-04-01",
            "2022-04-01-preview",
            "2022-05-01-preview",
            "2022-08-01-preview",
            # azure-mgmt-resource-policy 1.0.0 (policy assignments / definitions / set definitions)
            "2026-06-01",
            # management locks (Microsoft.Authorization/locks; azure-mgmt-resource locks / Bicep); also
            # [spec folders] locks.json
            "2016-09-01",
            "2020-05-01",
            "2015-01-01",  # [spec folders] locks.json
            # [spec folders] policyAssignments.json (policy assignments, definitions, set definitions)
            "2016-12-01",
            "2018-03-01",
            "2018-05-01",
            "2019-01-01",
            "2019-06-01",
            "2019-09-01",
            "2020-09-01",
            "2021-06-01",
            "2022-06-01",
            "2023-04-01",
            "2024-04-01",
            "2024-05-01",
            "2025-01-01",
            "2025-03-01",
        }
    ),
    "microsoft.dataprotection": frozenset(
        {
            "2021-01-01",  # MicrosoftDocs backup-azure-dataprotection-use-rest-api-backup-blobs.md
            "2024-04-01",  # shared/recordings dataprotection cassettes; the CLI's extension-routing call
            "2025-07-01",  # azure-rest-api-specs DataProtection examples/2025-07-01; the CLI's vault create
            "2025-09-01",  # azure-rest-api-specs DataProtection examples/2025-09-01; Terraform
            "2026-06-01",  # azure-mgmt-dataprotection 2.2.0 default; shared/azure-examples/dataprotection
            # [spec folders] dataprotection.json (stable, then previews)
            "2021-07-01",
            "2022-01-01",
            "2022-03-01",
            "2022-04-01",
            "2022-05-01",
            "2022-12-01",
            "2023-01-01",
            "2023-05-01",
            "2023-11-01",
            "2023-12-01",
            "2024-03-01",
            "2025-01-01",
            "2025-02-01",
            "2021-02-01-preview",
            "2021-06-01-preview",
            "2021-10-01-preview",
            "2021-12-01-preview",
            "2022-02-01-preview",
            "2022-09-01-preview",
            "2022-10-01-preview",
            "2022-11-01-preview",
            "2023-04-01-preview",
            "2023-06-01-preview",
            "2023-08-01-preview",
            "2024-02-01-preview",
        }
    ),
    "microsoft.policyinsights": frozenset(
        {
            # azure-mgmt-policyinsights 1.0.1 (per-operation versions)
            "2018-07-01-preview",
            "2019-07-01",
            "2019-10-01",  # also PolicyStates_FilterAndMultipleGroups.json
            "2020-07-01",
            # remediations.json stable 2021-10-01 and 2024-10-01 (aks_backup_facts R2021/R2024; the examples)
            "2021-10-01",
            "2024-10-01",
            # [spec folders] policyStates.json
            "2018-04-04",
            "2022-04-01",
        }
    ),
    "microsoft.resourcegraph": frozenset(
        {
            "2018-09-01-preview",  # [recorded] azure-cli-extensions__resource-graph__test_paged_query.json
            "2019-04-01",  # stable/2019-04-01/examples/ResourcesBasicQuery.json (default resultFormat table)
            "2021-03-01",  # azure-mgmt-resourcegraph 8.0.1
            "2022-10-01",  # ResourcesPropertiesQuery.json
            "2024-04-01",  # ResourcesBasicQuery.json and the other official queries
            # [spec folders] resourcegraph.json previews
            "2020-04-01-preview",
            "2020-09-01-preview",
            "2021-06-01-preview",
        }
    ),
    "microsoft.eventgrid": frozenset(
        {
            "2022-06-15",  # [specs] stable/2022-06-15 (SystemTopics_Get.json, ...); infra/events/*.bicep
            "2025-02-15",  # [sdk] azure-mgmt-eventgrid 10.4.0 (default)
        }
    ),
    "microsoft.resources": frozenset(
        {
            # subscriptions / resource groups / providers: published versions the tests and tools here send
            "2016-02-01",
            "2019-10-01",
            "2020-01-01",
            "2021-01-01",
            "2021-04-01",
            "2022-09-01",
            "2022-12-01",
            # [spec folders] Microsoft.Resources resources.json / subscriptions.json
            "2016-06-01",
            "2016-09-01",
            "2017-05-10",
            "2018-05-01",
            "2019-05-01",
            "2019-07-01",
            "2019-08-01",
            "2020-06-01",
            "2020-08-01",
            "2020-10-01",
            "2023-07-01",
            "2024-03-01",
            "2024-07-01",
            "2024-11-01",
            "2025-03-01",
            "2025-04-01",
        }
    ),
}
_TYPE_NAMES = {
    "microsoft.containerservice": "managedClusters",
    "microsoft.kubernetesconfiguration": "extensions",
    "microsoft.storage": "storageAccounts",
    "microsoft.authorization": "roleAssignments",
    "microsoft.policyinsights": "policyStates",
    "microsoft.resourcegraph": "resources",
    "microsoft.dataprotection": "backupVaults",
    "microsoft.eventgrid": "systemTopics",
}
_PROVIDER_REGISTRATION = re.compile(
    r"^/subscriptions/[^/]+/providers/[^/]+(/(un)?register)?/?$", re.IGNORECASE
)


def namespace_of(path: str) -> str | None:
    """The resource provider namespace that answers ``path`` (the last ``providers/<ns>``), or
    ``microsoft.resources`` for subscriptions, resource groups and provider registration; ``None`` for
    anything that is not an ARM path."""
    low = fold(path.split("?", 1)[0])
    if not (low.startswith("/subscriptions") or low.startswith("/providers/")):
        return None
    if _PROVIDER_REGISTRATION.match(low):
        return "microsoft.resources"
    segments = [s for s in low.split("/") if s]
    for i in range(len(segments) - 2, -1, -1):
        if segments[i] == "providers":
            return segments[i + 1]
    return "microsoft.resources"


def check_api_version(path: str, api_version: str) -> None:
    """Raise ARM's 400 when ``api_version`` was never published for the provider answering ``path``."""
    namespace = namespace_of(path)
    if namespace is None or namespace not in ALLOWED:
        return
    allowed = ALLOWED[namespace]
    listing = ", ".join(sorted(allowed, reverse=True))
    if not _WELL_FORMED.match(api_version):
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{api_version}' is invalid. The supported versions are '{listing}'.",
        )
    if api_version.lower() in allowed:
        return
    if namespace == "microsoft.resources":
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{api_version}' is invalid. The supported versions are '{listing}'.",
        )
    raise ArmError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location 'global' and API version '{api_version}' for "
        f"type '{_TYPE_NAMES.get(namespace, 'resource')}'. The supported api-versions are '{listing}'.",
    )
