"""Deployment preflight: everything that would make the first ``azd up`` / ``terraform apply`` fail halfway,
checked BEFORE anything is created, each problem reported as one line that names the field and the fix.

Pure: the checks take the parsed config and facts gathered elsewhere (``tools/deploy/azure.py`` asks ``az``),
so they are unit-tested without Azure. The same checks guard both paths: the azd preprovision hook runs them,
and ``python -m tools.deploy prepare`` runs them before Terraform (whose own ``validation`` and
``precondition`` blocks repeat the offline ones).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediator.core.config import RemediatorConfig
from remediator.core.ids import ResourceId
from remediator.core.text import ignore_case_key

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$", re.IGNORECASE)
"""azd environment names seed every resource name (``func-aksbr-<env>-<token>``, ``log-aksbr-<env>``, ...).
Sites, workspaces, topics and action groups take letters, digits and hyphens only, start with a letter or
digit and end with one; ``_ . ( )`` are valid in resource-group names but break the others. 24 characters
at most (main.bicep ``@maxLength(24)``)."""

PLACEHOLDER_GUIDS = frozenset({"00000000-0000-0000-0000-000000000000"})
PLACEHOLDER_WORDS = ("placeholder", "changeme", "replaceme", "replace-me", "example", "<", ">")

STORAGE_SKUS = ("Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_GZRS")
ZONE_SKUS = frozenset({"Standard_ZRS", "Standard_GZRS"})

MANAGED_PROVIDERS = (
    "Microsoft.ContainerService",
    "Microsoft.KubernetesConfiguration",
    "Microsoft.EventGrid",
    "Microsoft.PolicyInsights",
)
"""Registered in every managed subscription: the remediator's identity cannot register providers (Reader has
no ``register/action``) and the SDK's auto-registration would poll forever; Event Grid system topics and
policy events need the last two."""

APP_PROVIDERS = (
    "Microsoft.Web",
    "Microsoft.Storage",
    "Microsoft.Insights",
    "Microsoft.OperationalInsights",
    "Microsoft.ManagedIdentity",
    "Microsoft.EventGrid",
    "Microsoft.Authorization",
)
"""Registered in the app's subscription (the resource providers of what main.bicep creates there)."""

RESOURCES_TOPIC_TYPE = "Microsoft.Resources.Subscriptions"
POLICY_TOPIC_TYPE = "Microsoft.PolicyInsights.PolicyStates"
TOPIC_TYPES = (RESOURCES_TOPIC_TYPE, POLICY_TOPIC_TYPE)


def zrs_regions() -> frozenset[str]:
    """Regions offering ZRS for standard GPv2 accounts (``infra/regions.json``, with its source)."""
    data = json.loads((INFRA / "regions.json").read_text())
    return frozenset(data["zrsRegions"])


def host_storage_sku(location: str, requested: str = "") -> str:
    """The host storage SKU: the requested one, or ZRS where the region has it and LRS elsewhere."""
    if requested:
        return requested
    return "Standard_ZRS" if location.lower() in zrs_regions() else "Standard_LRS"


@dataclass(frozen=True)
class Problem:
    """One reason not to deploy: the field (or fact) and one line saying what to do."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"preflight: {self.field}: {self.message}"


@dataclass
class LiveFacts:
    """What only Azure can tell (gathered by ``tools/deploy/azure.py``; ``None`` = not gathered)."""

    registered_providers: Mapping[str, frozenset[str]] | None = None
    """subscription GUID -> namespaces in state Registered (lower-case)."""
    storage_locations: Mapping[str, str | None] | None = None
    """storage account id (lower-case) -> its region, or ``None`` when it does not exist / is not readable."""
    custom_role_scopes: Sequence[str] | None = None
    """assignableScopes of the container-writer role, or ``None`` when the role was not found."""
    system_topics: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    """subscription GUID -> system topics whose source is that subscription (name, resourceGroup, topicType,
    identity principal id)."""


def _ids(config: RemediatorConfig) -> list[tuple[str, ResourceId]]:
    found: list[tuple[str, ResourceId]] = []
    found += [(f"scope.subscriptions[{i}]", ref) for i, ref in enumerate(config.scope.subscriptions)]
    found += [(f"scope.resourceGroups[{i}]", ref) for i, ref in enumerate(config.scope.resource_groups)]
    found += [
        (f"scope.excludeSubscriptions[{i}]", ref) for i, ref in enumerate(config.scope.exclude_subscriptions)
    ]
    found += [(f"storage.{region}", ref) for region, ref in storage_accounts(config).items()]
    found += [
        (f"remediation.policyAssignmentIds[{i}]", ref)
        for i, ref in enumerate(config.remediation.policy_assignment_ids)
    ]
    return found


def storage_accounts(config: RemediatorConfig) -> dict[str, ResourceId]:
    """Region -> backup storage account (``regions.<r>.storageAccount`` once the config has per-region
    targets, ``storage`` today)."""
    regions = getattr(config, "regions", None)
    if isinstance(regions, Mapping) and regions:
        return {str(r): target.storage_account for r, target in regions.items()}
    return {str(region): ref for region, ref in config.storage.items()}


def check_environment_name(name: str) -> list[Problem]:
    if ENVIRONMENT_NAME.match(name):
        return []
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "-"))})
    detail = f"characters {''.join(bad)!r} are not allowed" if bad else "must be 2-24 characters"
    return [
        Problem(
            "environmentName",
            f"{name!r}: {detail}; use letters, digits and hyphens (2-24, starting with a letter, not ending"
            " with a hyphen): it seeds the names of the site, workspace, topics and action group",
        )
    ]


def check_placeholders(config: RemediatorConfig) -> list[Problem]:
    problems: list[Problem] = []
    for where, ref in _ids(config):
        text = ref.canonical.lower()
        if ref.subscription_id and ref.subscription_id.lower() in PLACEHOLDER_GUIDS:
            problems.append(
                Problem(where, f"{ref.canonical} uses the placeholder subscription GUID; put a real one")
            )
        elif any(word in text for word in PLACEHOLDER_WORDS):
            problems.append(Problem(where, f"{ref.canonical} looks like a placeholder; put a real id"))
    for i, ref in enumerate(config.scope.management_groups):
        if any(word in str(ref.name).lower() for word in PLACEHOLDER_WORDS) or str(ref.name).lower() in (
            PLACEHOLDER_GUIDS
        ):
            problems.append(Problem(f"scope.managementGroups[{i}]", f"{ref.name} looks like a placeholder"))
    return problems


def check_storage_sku(location: str, requested: str) -> list[Problem]:
    if not requested:
        return []
    if requested not in STORAGE_SKUS:
        return [Problem("hostStorageSku", f"{requested!r} is not one of {', '.join(STORAGE_SKUS)}")]
    if requested in ZONE_SKUS and location.lower() not in zrs_regions():
        return [
            Problem(
                "hostStorageSku",
                f"{requested} does not exist in {location} (no zone-redundant storage there,"
                " infra/regions.json); leave it empty to get ZRS where it exists and LRS elsewhere,"
                " or pick Standard_LRS/Standard_GRS",
            )
        ]
    return []


def managed_subscriptions(config: RemediatorConfig, extra: Iterable[str] = ()) -> list[str]:
    """Subscription GUIDs the deployment reaches: scope subscriptions, resource groups' subscriptions and the
    extra event subscriptions (lower-case, first-seen order)."""
    seen: dict[str, None] = {}
    for ref in (*config.scope.subscriptions, *config.scope.resource_groups):
        if ref.subscription_id:
            seen.setdefault(ref.subscription_id.lower(), None)
    for guid in extra:
        seen.setdefault(guid.lower(), None)
    return list(seen)


def check_live(
    config: RemediatorConfig,
    facts: LiveFacts,
    *,
    app_subscription: str,
    extra_event_subscriptions: Iterable[str] = (),
) -> list[Problem]:
    problems: list[Problem] = []
    if facts.registered_providers is not None:
        wanted = {sub: MANAGED_PROVIDERS for sub in managed_subscriptions(config, extra_event_subscriptions)}
        wanted[app_subscription.lower()] = tuple(
            dict.fromkeys((*wanted.get(app_subscription.lower(), ()), *APP_PROVIDERS))
        )
        for sub, namespaces in wanted.items():
            registered = facts.registered_providers.get(sub, frozenset())
            missing = [ns for ns in namespaces if ns.lower() not in registered]
            if missing:
                problems.append(
                    Problem(
                        f"subscription {sub}",
                        f"resource providers not registered: {', '.join(missing)}; run "
                        + " && ".join(
                            f"az provider register --subscription {sub} --namespace {ns}" for ns in missing
                        ),
                    )
                )
    if facts.storage_locations is not None:
        for region, ref in storage_accounts(config).items():
            location = facts.storage_locations.get(ref.key)
            if location is None:
                problems.append(
                    Problem(f"storage.{region}", f"{ref.canonical} does not exist or is not readable by you")
                )
            elif location.replace(" ", "").lower() != region.replace(" ", "").lower():
                problems.append(
                    Problem(f"storage.{region}", f"{ref.canonical} is in {location}, not in {region}")
                )
    if config.remediation.mode == "install" and facts.custom_role_scopes is not None:
        scopes = {s.lower().rstrip("/") for s in facts.custom_role_scopes}
        for region, ref in storage_accounts(config).items():
            sub_scope = f"/subscriptions/{(ref.subscription_id or '').lower()}"
            if not any(ref.key.startswith(s) or sub_scope == s for s in scopes) and "/" not in scopes:
                problems.append(
                    Problem(
                        "containerWriterRoleId",
                        f"the container-writer role is not assignable at {ref.canonical} (storage.{region});"
                        " add the subscription to its assignableScopes (docs/deploy.md, 'Custom role')",
                    )
                )
    for sub, topics in facts.system_topics.items():
        for topic in topics:
            if topic.get("topicType") in TOPIC_TYPES and not topic.get("principalId"):
                problems.append(
                    Problem(
                        f"subscription {sub}",
                        f"existing system topic {topic.get('name')} ({topic.get('topicType')}) has no"
                        " system-assigned identity, which dead-lettering needs; run az eventgrid"
                        f" system-topic update -g {topic.get('resourceGroup')} -n {topic.get('name')}"
                        " --identity systemassigned",
                    )
                )
    return problems


def check_custom_role_given(config: RemediatorConfig, role_id: str) -> list[Problem]:
    if config.remediation.mode != "install" or role_id:
        return []
    return [
        Problem(
            "containerWriterRoleId",
            "install mode needs the container-writer custom role, created once by an administrator; create it"
            " (docs/deploy.md, 'Custom role') and set REMEDIATOR_CONTAINER_WRITER_ROLE_ID to its GUID",
        )
    ]


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def check_entra_client_id(client_id: str) -> list[Problem]:
    """App Service authentication needs the app registration's client id (a GUID), or nothing."""
    if not client_id or _GUID.match(client_id):
        return []
    return [
        Problem(
            "entraClientId",
            f"{client_id!r} is not a client id (GUID) of an Entra app registration; create it with the app"
            " roles of infra/auth/app-roles.json (docs/deploy.md, 'HTTP authorization') or leave it empty",
        )
    ]


def control_plane_resource_groups(
    config: RemediatorConfig, entries: list[str]
) -> tuple[list[dict[str, str]], list[Problem]]:
    """``<subscription>/<resource group>`` entries of the per-resource-group variant, checked: each group must
    lie in a subscription the config lists whole (scope.subscriptions), since the variant moves exactly those
    subscriptions' write roles down to their groups.

    :returns: the groups as ``{subscriptionId, name}`` (subscription lower-cased, sorted, no duplicates under
        Azure's case rule) and the problems.
    """
    listed = {ref.subscription_id.lower() for ref in config.scope.subscriptions if ref.subscription_id}
    groups: dict[tuple[str, str], dict[str, str]] = {}
    problems: list[Problem] = []
    for i, entry in enumerate(entries):
        field = f"controlPlaneResourceGroups[{i}]"
        sub, _, name = entry.strip().strip("/").partition("/")
        if name.lower().startswith("resourcegroups/"):
            name = name.split("/", 1)[1]
        if sub.lower() == "subscriptions":
            sub, _, rest = name.partition("/")
            name = rest.split("/", 1)[1] if rest.lower().startswith("resourcegroups/") else rest
        if not _GUID.match(sub) or not re.fullmatch(r"[-\w.()]{1,90}", name or "") or name.endswith("."):
            problems.append(Problem(field, f"{entry!r} is not <subscription GUID>/<resource group name>"))
            continue
        if sub.lower() not in listed:
            problems.append(
                Problem(
                    field,
                    f"subscription {sub} is not in scope.subscriptions; the variant narrows the write roles"
                    " of listed subscriptions only (list resource groups in scope.resourceGroups instead)",
                )
            )
            continue
        groups.setdefault((sub.lower(), ignore_case_key(name)), {"subscriptionId": sub.lower(), "name": name})
    return [groups[k] for k in sorted(groups)], problems


def reusable_topics(facts: LiveFacts) -> dict[str, dict[str, dict[str, str]]]:
    """subscription GUID -> topic type -> {name, resourceGroup, principalId} of the existing system topics
    the deployment reuses instead of creating a second one for the same source."""
    reuse: dict[str, dict[str, dict[str, str]]] = {}
    for sub, topics in facts.system_topics.items():
        for topic in topics:
            kind = str(topic.get("topicType", ""))
            if kind in TOPIC_TYPES and kind not in reuse.get(sub, {}):
                reuse.setdefault(sub, {})[kind] = {
                    "name": str(topic["name"]),
                    "resourceGroup": str(topic["resourceGroup"]),
                    "principalId": str(topic.get("principalId") or ""),
                }
    return reuse
