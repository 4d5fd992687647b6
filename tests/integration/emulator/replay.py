"""Replaying recorded real Azure traffic (``../shared/recordings/``) against the emulator, and comparing.

A recording holds request/response pairs that real Azure answered (Azure CLI test cassettes, trimmed). The
replay:

1. builds ONE estate holding the resources the recordings show (:func:`estate_for`): every subscription and
   resource group in a URL; every resource a request needs before the recording creates it (a parent, or the
   target of a GET/DELETE/POST answered 2xx before any PUT of it); resources that recorded list answers
   (``value[]``) and Resource Graph answers (``data``) carry, with their recorded bodies where they are whole
   ARM bodies (DataProtection vaults, policies and instances go to the plug-in's ``dataProtection`` keys; a
   DELETE answered 204 shows its target was absent, ARM's "204 No Content" for a missing resource); plus
   :data:`ESTATE_EXTRAS`, the few facts traffic cannot show (which policy definition an assignment uses, what
   a recorded validateForBackup found in place), and :data:`ESTATE_SETTINGS` (plug-in knobs at Azure's pace).
   Names, ids and subscriptions are the recordings' own.
2. resets the emulator to that estate before each recording and sends every request in order, raw (exact
   method, path, query and JSON body) over HTTPS, following the recording's ``replay`` hints:
   ``url_from`` (use the async/Location URL the EMULATOR answered to an earlier interaction),
   ``skip_token_from`` / ``skip_token_prefetch`` (use the emulator's own ``$skipToken``), ``sleep_before_s``
   (advance the emulator's manual clock), ``$SUBSCRIPTION`` (the emulator's subscription). Hints the
   trimmed recordings lack (the pauses of polls cut from a cassette) are added here, in :data:`REPLAY_HINTS`,
   each with the original cassette's evidence.
3. compares status, the headers that matter, the body's shape and an operation's ``status`` value
   (:func:`compare`).

Supplementary interactions (``replay.supplementary``) are not Azure's answer to their request but a copy of
the answer to the interaction before them, added so a replay could continue past an emulator gap. They are
sent only when the interaction before them deviated, and are never counted as replayed interactions.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import ssl
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from emulator.resources.common import deterministic_uuid

# ----- recordings -------------------------------------------------------------------------------------------

HEADER_FAMILY = re.compile(
    r"^(azure-asyncoperation|location|retry-after|x-ms-ratelimit-.*|x-ms-user-quota-.*)$"
)
"""The headers that matter (the recordings keep exactly these)."""
RATE_LIMIT_FAMILY = re.compile(r"^(x-ms-ratelimit-.*|x-ms-user-quota-.*)$")
"""Quota headers: each recorded one must be sent (with an integer, or hh:mm:ss for the reset time); more of
this family are allowed, because ARM's set grew over the years the recordings span (2025 answers add the
``-global-`` headers that 2021-2023 answers lack)."""
SUBSCRIPTION_PLACEHOLDER = "$SUBSCRIPTION"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Interaction:
    recording: str
    id: str
    method: str
    url: str
    request_body: Any
    status: int
    headers: dict[str, str]
    body: Any
    replay: dict[str, Any]

    @property
    def supplementary(self) -> bool:
        return bool(self.replay.get("supplementary"))

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass(frozen=True)
class Recording:
    name: str
    """The file name without ``.json``."""
    source: dict[str, Any]
    interactions: tuple[Interaction, ...]


REPLAY_HINTS: dict[str, dict[str, dict[str, Any]]] = {
    # Pauses of the polls trimmed from the cassettes, from the original cassettes' Date headers (whole
    # seconds): Azure/azure-cli-extensions@125996eee1f0c6a9e74c468b78c09987545449bb:src/dataprotection/
    # azext_dataprotection/tests/latest/recordings/test_dataprotection_update_msi_permissions_aks.yaml
    "azure-cli-extensions__dataprotection__test_dataprotection_update_msi_permissions_aks": {
        # vault PUT answered 09:27:21, its status poll (Succeeded, endTime 09:27:22) answered 09:27:22
        "vault-op": {"sleep_before_s": 1.0},
    },
    # Azure/azure-cli-extensions@010df219325fbea4a9ef26456762cd56b7513406:src/dataprotection/
    # azext_dataprotection/tests/latest/recordings/test_dataprotection_backup_and_restore_aks.yaml
    "azure-cli-extensions__dataprotection__test_dataprotection_backup_and_restore_aks": {
        # validateForBackup answered 10:31:38, the first status poll (Inprogress) 10:31:39
        "validate-op": {"sleep_before_s": 1.0},
        # two more polls (10:32:10 Inprogress, 10:32:41 Succeeded with endTime 10:32:20) were trimmed;
        # the operationResults GET followed the last one (10:32:41): 62 s after the first poll
        "validate-result": {"sleep_before_s": 62.0},
    },
}
"""Replay hints a trimmed recording lacks, per recording and interaction (merged into its ``replay``)."""


def load_recordings(folder: Path) -> list[Recording]:
    out = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        name = path.stem
        interactions = tuple(
            Interaction(
                recording=name,
                id=item["id"],
                method=item["method"].upper(),
                url=item["url"],
                request_body=item.get("request_body"),
                status=int(item["status"]),
                headers={k.lower(): v for k, v in (item.get("headers") or {}).items()},
                body=item.get("body"),
                replay={**(item.get("replay") or {}), **REPLAY_HINTS.get(name, {}).get(item["id"], {})},
            )
            for item in data["interactions"]
        )
        out.append(Recording(name=name, source=data.get("source") or {}, interactions=interactions))
    return out


# ----- the estate -------------------------------------------------------------------------------------------

_SUB_RG = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups"
_DPP_RG = f"{_SUB_RG}/clitest-dpp-rg"
_DPP_VAULT = f"{_DPP_RG}/providers/Microsoft.DataProtection/backupVaults/clitest-bkp-vault-aks-donotdelete"
_DPP_CLUSTER = (
    f"{_SUB_RG}/oss-clitest-rg/providers/Microsoft.ContainerService/managedClusters/"
    "clitest-cluster1-donotdelete"
)
_DPP_STORAGE = f"{_DPP_RG}/providers/Microsoft.Storage/storageAccounts/clitestbkpsa"
_DPP_EXTENSION = f"{_DPP_CLUSTER}/providers/Microsoft.KubernetesConfiguration/extensions/azure-aks-backup"
_DPP_VAULT_PRINCIPAL = "6f1b7a52-5d0e-4c4b-9d43-3c1e1f6a2b7e"
_DPP_CLUSTER_PRINCIPAL = "5b1c6a60-0a5e-4d5f-9a5b-7c1d2e3f4a5b"
_BACKUP_LOCATION = "configuration.backupStorageLocation."
_RECORDED_VALIDATION: dict[str, Any] = {
    # The recorded validateForBackup (2024-05-08) ended Succeeded with OperationJobExtendedInfo, so every
    # prerequisite the backup side checks (emulator/README.md Part 3) was in place: the vault (eastus2euap,
    # the region of its operationResults URL) and its AKS policy "akspolicy" (the request's policyId), the
    # cluster of the request (eastus2euap, its resourceLocation) with the backup extension, the extension's
    # storage account and container, the role assignments of the chain, and the trusted-access binding. The
    # traffic names the vault, policy, cluster and snapshot resource group (clitest-dpp-rg); the storage
    # account, container, binding name and principal ids are not in it (assumed names).
    "clusters": [
        {
            "id": _DPP_CLUSTER,
            "location": "eastus2euap",
            "identity": {"type": "SystemAssigned", "principalId": _DPP_CLUSTER_PRINCIPAL},
        }
    ],
    "storageAccounts": [{"id": _DPP_STORAGE, "location": "eastus2euap"}],
    "containers": [{"storageAccountId": _DPP_STORAGE, "name": "clitest-cluster1"}],
    "extensions": [
        {
            "clusterId": _DPP_CLUSTER,
            "name": "azure-aks-backup",
            "extensionType": "microsoft.dataprotection.kubernetes",
            "configurationSettings": {
                _BACKUP_LOCATION + "bucket": "clitest-cluster1",
                _BACKUP_LOCATION + "config.storageAccount": "clitestbkpsa",
                _BACKUP_LOCATION + "config.resourceGroup": "clitest-dpp-rg",
                _BACKUP_LOCATION + "config.subscriptionId": "00000000-0000-0000-0000-000000000000",
            },
        }
    ],
    "dataProtection": {
        "vaults": [{"id": _DPP_VAULT, "location": "eastus2euap", "principalId": _DPP_VAULT_PRINCIPAL}],
        "policies": [{"vaultId": _DPP_VAULT, "name": "akspolicy", "strategy": "Week"}],
        "roleAssignments": [
            {"scope": _DPP_CLUSTER, "principalId": _DPP_VAULT_PRINCIPAL, "role": "Reader"},
            {"scope": _DPP_RG, "principalId": _DPP_VAULT_PRINCIPAL, "role": "Reader"},
            {"scope": _DPP_RG, "principalId": _DPP_VAULT_PRINCIPAL, "role": "Disk Snapshot Contributor"},
            {"scope": _DPP_STORAGE, "principalId": _DPP_VAULT_PRINCIPAL, "role": "Storage Blob Data Reader"},
            {"scope": _DPP_RG, "principalId": _DPP_CLUSTER_PRINCIPAL, "role": "Contributor"},
            {
                "scope": _DPP_STORAGE,
                # the principal the emulator gives the extension's aksAssignedIdentity
                "principalId": deterministic_uuid("extension-identity", _DPP_EXTENSION),
                "role": "Storage Blob Data Contributor",
            },
        ],
    },
    "trustedAccessRoleBindings": [
        {"clusterId": _DPP_CLUSTER, "name": "tarb-vault", "sourceResourceId": _DPP_VAULT},
    ],
}

ESTATE_SETTINGS: dict[str, Any] = {
    # The suite replays with the emulator's default config (Azure's behaviour, not test speed); the
    # DataProtection plug-in's defaults are test-speed, so its realistic profile (durations from recorded
    # traffic and Microsoft's docs, README Part 3): e.g. the recorded validation was still Inprogress 1 s in.
    "dataProtection": {"settings": {"profile": "realistic"}},
}
"""Plug-in knobs for the replay (estate ``settings`` blocks)."""


ESTATE_EXTRAS: dict[str, dict[str, Any]] = {
    "azure-cli__storage__test_storage_container_using_rm_main_scenario": {
        # the recorded account (created 2021, before anonymous access was off by default) took a container
        # with publicAccess "blob", so it allows public blob access
        "storageAccounts": [
            {
                "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/cli000001/"
                "providers/Microsoft.Storage/storageAccounts/containerrm000002",
                "location": "eastus",
                "allowBlobPublicAccess": True,
            }
        ]
    },
    "azure-cli__policyinsights__test_policy_insights_remediation": {
        # The recorded task is for a subscription-scope assignment of the built-in AUDIT policy
        # 06a78e20-9358-41c9-923c-fb736d382a4d (recording notes); the emulator knows the four Backup
        # built-ins, so the same assignment name gets the AuditIfNotExists one (also not remediable).
        "policyAssignments": [
            {
                "name": "azurecli-test-policy-assignment000003",
                "scope": "/subscriptions/00000000-0000-0000-0000-000000000000",
                "definition": "extension-audit",
            },
        ]
    },
    "azure-cli-extensions__dataprotection__test_dataprotection_backup_and_restore_aks": _RECORDED_VALIDATION,
}
"""What traffic cannot show, per recording: merged into the estate (nested keys merge, lists extend)."""

ESTATE_KEYS_BY_TYPE: dict[str, str] = {
    "microsoft.containerservice/managedclusters": "clusters",
    "microsoft.storage/storageaccounts": "storageAccounts",
    "microsoft.storage/storageaccounts/blobservices/containers": "containers",
    "microsoft.kubernetesconfiguration/extensions": "extensions",
    "microsoft.authorization/roleassignments": "roleAssignments",
    "microsoft.storage/storageaccounts/blobservices": "",
    "microsoft.dataprotection/backupvaults": "dataProtection.vaults",
    "microsoft.dataprotection/backupvaults/backuppolicies": "dataProtection.policies",
    "microsoft.dataprotection/backupvaults/backupinstances": "dataProtection.backupInstances",
}
"""Estate list for a resource type (``a.b``: the list ``b`` inside the object ``a``, a plug-in's estate
block, README Part 3 for ``dataProtection``); any other type goes to ``resources`` as a generic body.
``""``: implied by its parent (the ``blobServices/default`` pseudo-resource), nothing to add."""


@dataclass(frozen=True)
class ArmPath:
    """A request path split into the resource it names, its type, and whether it names a resource at all."""

    resource_id: str | None
    """The deepest resource the path names (itself, or the parent of a collection/action)."""
    resource_type: str | None
    targets_resource: bool
    """True when the path is the resource itself (not a list below it, an action or an operation)."""
    subscription: str | None
    resource_group: str | None


_NON_RESOURCE_TAILS = ("operations", "operationresults", "operationstatus", "asyncoperationresults")


def parse_arm_path(path: str) -> ArmPath:
    parts = [p for p in path.split("/") if p]
    sub = parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else None
    rg = parts[3] if sub and len(parts) > 3 and parts[2].lower() == "resourcegroups" else None
    # walk /providers/NS/type/name[/type/name...] blocks, keeping the deepest complete (type, name) chain
    deepest: str | None = None
    deepest_type: str | None = None
    whole = False
    i = 0
    prefix: list[str] = []
    types: list[str] = []
    while i < len(parts):
        if parts[i].lower() == "providers" and i + 1 < len(parts):
            namespace = parts[i + 1]
            prefix += parts[i : i + 2]
            i += 2
            types = [namespace]
            while i + 1 < len(parts) and parts[i].lower() != "providers":
                if parts[i].lower() in _NON_RESOURCE_TAILS or (
                    parts[i].lower() == "locations" and len(types) == 1
                ):
                    return ArmPath(deepest, deepest_type, False, sub, rg)
                prefix += parts[i : i + 2]
                types.append(parts[i])
                deepest = "/" + "/".join(prefix)
                deepest_type = "/".join(types)
                i += 2
            whole = i == len(parts)
            if i < len(parts) and parts[i].lower() != "providers":
                return ArmPath(deepest, deepest_type, False, sub, rg)  # a collection or an action
        else:
            prefix.append(parts[i])
            i += 1
    return ArmPath(deepest, deepest_type, whole and deepest is not None, sub, rg)


def _ancestors(resource_id: str) -> Iterator[tuple[str, str]]:
    """(id, type) of every resource on the way down to ``resource_id`` (itself included)."""
    parts = [p for p in resource_id.split("/") if p]
    prefix: list[str] = []
    types: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i].lower() == "providers" and i + 1 < len(parts):
            prefix += parts[i : i + 2]
            types = [parts[i + 1]]
            i += 2
            while i + 1 < len(parts) and parts[i].lower() != "providers":
                prefix += parts[i : i + 2]
                types.append(parts[i])
                i += 2
                yield "/" + "/".join(prefix), "/".join(types)
        else:
            prefix.append(parts[i])
            i += 1


def _subscription_of(resource_id: str) -> str | None:
    parts = [p for p in resource_id.split("/") if p]
    if len(parts) > 1 and parts[0].lower() == "subscriptions" and _GUID.match(parts[1]):
        return parts[1]
    return None


def _estate_entry(resource_id: str, resource_type: str, body: Mapping[str, Any] | None) -> tuple[str, Any]:
    key = ESTATE_KEYS_BY_TYPE.get(resource_type.lower(), "resources")
    whole = body is not None and {"id", "type", "properties"} <= set(body)
    if whole:
        return key, copy.deepcopy(dict(body))  # type: ignore[arg-type]
    name = resource_id.rstrip("/").split("/")[-1]
    if key == "clusters":
        return key, {"id": resource_id, "location": (body or {}).get("location", "eastus")}
    if key in ("storageAccounts",):
        return key, {"id": resource_id, "location": (body or {}).get("location", "eastus")}
    if key == "containers":
        return key, {"id": resource_id}
    if key == "dataProtection.vaults":
        return key, {"id": resource_id, "location": (body or {}).get("location", "eastus")}
    if key == "dataProtection.policies":  # the CLI's default AKS policy
        return key, {"id": resource_id, "vaultId": resource_id.rsplit("/", 2)[0], "strategy": "Week"}
    if key == "dataProtection.backupInstances":
        raise ValueError(
            f"{resource_id}: a backup instance needs its cluster and policy; give it in ESTATE_EXTRAS"
        )
    return "resources", {
        "id": resource_id,
        "name": name,
        "type": resource_type,
        "location": (body or {}).get("location", "eastus"),
        "properties": dict((body or {}).get("properties") or {"provisioningState": "Succeeded"}),
    }


def _ids_in_answer(interaction: Interaction) -> Iterator[tuple[str, Mapping[str, Any] | None]]:
    """Resource ids (and whole bodies where the answer has them) that a recorded 2xx answer shows."""
    body = interaction.body
    if not isinstance(body, dict) or not 200 <= interaction.status < 300:
        return
    items = body.get("value")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                yield item["id"], item
    data = body.get("data")
    if isinstance(data, list):
        for row in data:
            if isinstance(row, dict) and isinstance(row.get("id"), str):
                yield row["id"], None
    elif isinstance(data, dict):
        columns = [c.get("name") for c in data.get("columns") or []]
        if "id" in columns:
            index = columns.index("id")
            for row in data.get("rows") or []:
                if isinstance(row, list) and len(row) > index and isinstance(row[index], str):
                    yield row[index], None


def estate_for(recordings: Iterable[Recording], *, default_subscription: str) -> dict[str, Any]:
    """One estate holding every resource the recordings need to exist (see the module docstring)."""
    estate: dict[str, Any] = {"subscriptions": []}
    subscriptions: dict[str, dict[str, Any]] = {}
    entries: dict[str, tuple[str, Any]] = {}  # lower-cased id -> (estate key, entry)

    def want_scope(sub: str | None, rg: str | None, location: str | None = None) -> None:
        if not sub or not _GUID.match(sub):
            return
        record = subscriptions.setdefault(sub.lower(), {"subscriptionId": sub, "resourceGroups": []})
        if rg and all(g["name"].lower() != rg.lower() for g in record["resourceGroups"]):
            record["resourceGroups"].append({"name": rg, "location": location or "eastus"})

    def want(resource_id: str, resource_type: str, body: Mapping[str, Any] | None) -> None:
        sub = _subscription_of(resource_id)
        if resource_id.startswith("/subscriptions/") and sub is None:
            return  # an id from trimmed traffic ("/subscriptions/x/...")
        if ESTATE_KEYS_BY_TYPE.get(resource_type.lower()) == "":
            return
        key = resource_id.lower()
        if key in entries and (body is None or entries[key][0] != "resources"):
            return
        entries[key] = _estate_entry(resource_id, resource_type, body)

    want_scope(default_subscription, None)
    for recording in recordings:
        created: set[str] = set()
        for interaction in recording.interactions:
            if interaction.replay.get("url_from"):
                continue
            target = parse_arm_path(interaction.path)
            location = (
                (interaction.request_body or {}).get("location")
                if isinstance(interaction.request_body, dict)
                else None
            )
            if not location and isinstance(interaction.body, dict):
                location = interaction.body.get("location")
            want_scope(target.subscription, target.resource_group, location)
            if target.resource_id is not None:
                for rid, rtype in _ancestors(target.resource_id):
                    if rid.lower() in created:
                        continue
                    is_target = target.targets_resource and rid.lower() == target.resource_id.lower()
                    if is_target:
                        absent = interaction.status == 404 or (
                            interaction.method == "DELETE" and interaction.status == 204
                        )
                        if interaction.method == "PUT" or absent:
                            created.add(rid.lower())
                            continue
                        if not 200 <= interaction.status < 300:
                            continue
                    want(rid, rtype, None)
            for rid, body in _ids_in_answer(interaction):
                if rid.lower() in created:
                    continue
                parsed = parse_arm_path(rid)
                if parsed.resource_id is None or parsed.resource_type is None:
                    if body is not None and "roleAssignments" in rid:
                        want(rid, "Microsoft.Authorization/roleAssignments", body)
                    continue
                want_scope(parsed.subscription, parsed.resource_group, (body or {}).get("location"))
                want(rid, parsed.resource_type, body)
    estate["subscriptions"] = list(subscriptions.values())
    for key, entry in entries.values():
        *blocks, name = key.split(".")
        target = estate
        for block in blocks:
            target = target.setdefault(block, {})
        target.setdefault(name, []).append(entry)
    for recording in recordings:  # after the derived entries: a later entry for the same id wins
        _merge_into(estate, ESTATE_EXTRAS.get(recording.name) or {})
    _merge_into(estate, ESTATE_SETTINGS)
    return estate


def _merge_into(estate: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Objects merge key by key, lists extend, anything else is replaced."""
    for key, value in extra.items():
        if isinstance(value, Mapping):
            _merge_into(estate.setdefault(key, {}), value)
        elif isinstance(value, list):
            estate.setdefault(key, []).extend(copy.deepcopy(value))
        else:
            estate[key] = copy.deepcopy(value)


# ----- comparing ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deviation:
    recording: str
    interaction: str
    where: str
    """``status``, ``header:<name>``, a body path (``value[].properties.x``, ``<body>`` for the whole) or
    ``value:status`` (an operation's status value)."""
    detail: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.recording, self.interaction, self.where)

    def __str__(self) -> str:
        return f"{self.recording} / {self.interaction} / {self.where}: {self.detail}"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Union:
    """Several recorded values for one place (the items of one recorded list): a key is required when every
    variant has it and allowed when any does; a value may have the type of any variant."""

    def __init__(self, variants: list[Any]) -> None:
        self.variants = variants


def _variants(expected: Any) -> list[Any]:
    return expected.variants if isinstance(expected, Union) else [expected]


def _merge(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else Union(values)


def compare_shape(
    expected: Any,
    actual: Any,
    *,
    opaque: Iterable[str] = (),
    map_paths: Iterable[str] = (),
    path: str = "",
) -> list[tuple[str, str]]:
    """Differences in keys and JSON types between a recorded body and the emulator's, as (path, detail).

    Objects: the same keys (missing and extra both count). Values: the same JSON type (``null`` is a type of
    its own; integers and fractions are both ``number``). Arrays: the recorded items together are the
    template of every emulator item (recordings keep one or two items of a list, which may differ in optional
    fields: a key is required when every recorded item has it, allowed when any has it); an empty array on
    one side only is a difference (where one place has several recorded arrays, an empty one matches when
    any of them is empty). ``opaque`` paths: the JSON type alone. ``map_paths``: objects whose keys
    are data (addon names, key names): present on either side or both; where both have a key, the values
    are compared.
    """
    opaque, map_paths = tuple(opaque), tuple(map_paths)
    out: list[tuple[str, str]] = []
    where = path or "<body>"
    variants = [v for v in _variants(expected) if json_type(v) == json_type(actual)]
    if not variants:
        types = "|".join(sorted({json_type(v) for v in _variants(expected)}))
        return [(where, f"recorded {types}, emulator {json_type(actual)}")]
    if path in opaque:
        return []
    if isinstance(actual, dict):
        if path in map_paths:
            for key in sorted(actual):
                having = [v[key] for v in variants if key in v]
                if having:
                    out += compare_shape(
                        _merge(having), actual[key], opaque=opaque, map_paths=map_paths, path=_join(path, key)
                    )
            return out
        required = set.intersection(*(set(v) for v in variants))
        allowed = set.union(*(set(v) for v in variants))
        for key in sorted(required - actual.keys()):
            if _join(path, key) not in map_paths:
                out.append((_join(path, key), "missing in the emulator's answer"))
        for key in sorted(actual.keys() - allowed):
            if _join(path, key) not in map_paths:
                out.append((_join(path, key), "not in the recorded answer"))
        for key in sorted(actual.keys() & allowed):
            having = [v[key] for v in variants if key in v]
            out += compare_shape(
                _merge(having), actual[key], opaque=opaque, map_paths=map_paths, path=_join(path, key)
            )
        return out
    if isinstance(actual, list):
        items = [item for v in variants for item in v]
        if not actual and any(not v for v in variants):
            return []  # a recorded variant is empty too (e.g. one lifecycle without copy settings)
        if not items or not actual:
            return [(where, f"recorded {len(items)} items, emulator {len(actual)}")]
        template = _merge(items)
        for item in actual:
            for found in compare_shape(template, item, opaque=opaque, map_paths=map_paths, path=f"{path}[]"):
                if found not in out:
                    out.append(found)
        return out
    return out


def compare_headers(recorded: Mapping[str, str], actual: Mapping[str, str]) -> list[tuple[str, str]]:
    """The headers that matter: every recorded one must be sent (quota values as integers); an async,
    Location or Retry-After header the recording does not have must not be."""
    got = {k.lower(): v for k, v in actual.items()}
    out = []
    for name in recorded:
        if name not in got:
            out.append((f"header:{name}", "missing in the emulator's answer"))
        elif name.startswith("x-ms-ratelimit-") and not str(got[name]).isdigit():
            out.append((f"header:{name}", f"not an integer: {got[name]!r}"))
        elif name in ("azure-asyncoperation", "location") and not str(got[name]).startswith("https://"):
            out.append((f"header:{name}", f"not an absolute https URL: {got[name]!r}"))
    for name in got:
        if HEADER_FAMILY.match(name) and not RATE_LIMIT_FAMILY.match(name) and name not in recorded:
            out.append((f"header:{name}", f"not in the recorded answer ({got[name]!r})"))
    if "retry-after-ms" in got and "retry-after" not in recorded:
        out.append(("header:retry-after-ms", "not in the recorded answer"))
    return out


def compare_operation_status(recorded: Any, actual: Any) -> list[tuple[str, str]]:
    """An async operation's ``status`` value (``InProgress``, the DataProtection RP's ``Inprogress``,
    ``Succeeded``…) where the recorded body is an operation-status body: the value, spelling included, says
    whether the emulator's operation had finished when Azure's had (or not)."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("status"), str):
        return []
    value = actual.get("status") if isinstance(actual, dict) else None
    if not isinstance(value, str) or value == recorded["status"]:
        return []  # a missing or mistyped status is the shape comparison's finding
    return [("value:status", f"recorded {recorded['status']!r}, emulator {value!r}")]


def compare(interaction: Interaction, status: int, headers: Mapping[str, str], body: Any) -> list[Deviation]:
    found: list[tuple[str, str]] = []
    if status != interaction.status:
        found.append(("status", f"recorded {interaction.status}, emulator {status}"))
    found += compare_headers(interaction.headers, headers)
    opaque = interaction.replay.get("opaque") or ()
    found += compare_shape(
        interaction.body,
        body,
        opaque=opaque,
        map_paths=interaction.replay.get("map_paths") or (),
    )
    if "status" not in opaque:
        found += compare_operation_status(interaction.body, body)
    return [Deviation(interaction.recording, interaction.id, where, detail) for where, detail in found]


# ----- the allow-list of documented deviations -------------------------------------------------------------

ALLOW_LIST_HEADING = "### Documented deviations from recorded Azure traffic"


@dataclass(frozen=True)
class AllowedDeviation:
    """One row of the allow-list: a recording, its interactions and the places in their answers, and why."""

    recording: str
    interactions: frozenset[str]
    places: frozenset[str]
    reason: str

    def covers(self, deviation: Deviation) -> bool:
        return (
            deviation.recording == self.recording
            and deviation.interaction in self.interactions
            and deviation.where in self.places
        )


def load_allowed_deviations(readme: Path) -> list[AllowedDeviation]:
    """The allow-list table under :data:`ALLOW_LIST_HEADING` in emulator/README.md, one row per documented
    deviation: ``| recording | interactions | where | reason |`` (interactions, places: comma-separated)."""
    text = readme.read_text(encoding="utf-8")
    start = text.index(ALLOW_LIST_HEADING)
    rest = text[start + len(ALLOW_LIST_HEADING) :]
    end = rest.find("\n#")
    section = rest if end < 0 else rest[:end]
    out: list[AllowedDeviation] = []
    for line in section.splitlines():
        if not line.strip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or set(cells[0]) <= set("-: ") or cells[0].lower() == "recording":
            continue

        def names(cell: str) -> frozenset[str]:
            return frozenset(n.strip().strip("`") for n in cell.split(",") if n.strip())

        if not cells[3]:
            raise ValueError(f"allowed deviation without a reason: {line!r}")
        out.append(AllowedDeviation(cells[0].strip("`"), names(cells[1]), names(cells[2]), cells[3]))
    return out


# ----- sending ----------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class RawClient:
    """Exact requests over HTTPS to the emulator (no SDK: the replay is about the wire)."""

    def __init__(self, base_url: str, ca_bundle: Path, token: str = "replay") -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.context = ssl.create_default_context(cafile=str(ca_bundle))
        self.token = token

    def send(self, method: str, path_and_query: str, body: Any = None) -> Answer:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=60)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif method in ("PUT", "POST", "PATCH"):
            headers["Content-Length"] = "0"
        try:
            conn.request(method, path_and_query, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        data = json.loads(raw) if raw.strip() else None
        return Answer(response.status, answer_headers, data)


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _with_subscription(value: Any, subscription: str) -> Any:
    if isinstance(value, str):
        return subscription if value == SUBSCRIPTION_PLACEHOLDER else value
    if isinstance(value, list):
        return [_with_subscription(v, subscription) for v in value]
    if isinstance(value, dict):
        return {k: _with_subscription(v, subscription) for k, v in value.items()}
    return value


@dataclass
class Outcome:
    interaction: Interaction
    sent: bool
    deviations: list[Deviation] = field(default_factory=list)


def replay(
    recording: Recording,
    client: RawClient,
    *,
    advance_clock: Any,
    subscription: str,
) -> list[Outcome]:
    """Send a recording's requests in order; returns one outcome per interaction."""
    answers: dict[str, Answer] = {}
    outcomes: list[Outcome] = []
    previous_deviated = False
    for interaction in recording.interactions:
        hints = interaction.replay
        if interaction.supplementary and not previous_deviated:
            outcomes.append(Outcome(interaction, sent=False))
            continue
        if hints.get("sleep_before_s"):
            advance_clock(float(hints["sleep_before_s"]))
        target = interaction.url
        source = hints.get("url_from")
        if source:
            earlier = answers.get(source["interaction"])
            header = (earlier.headers.get(source["header"].lower()) if earlier else None) or ""
            if not header:
                outcomes.append(
                    Outcome(
                        interaction,
                        sent=False,
                        deviations=[
                            Deviation(
                                recording.name,
                                interaction.id,
                                f"header:{source['header'].lower()}",
                                f"no URL to follow: {source['interaction']} answered no {source['header']}",
                            )
                        ],
                    )
                )
                previous_deviated = True
                continue
            target = _path_of(header)
        body = _with_subscription(copy.deepcopy(interaction.request_body), subscription)
        if hints.get("skip_token_from"):
            earlier = answers.get(hints["skip_token_from"])
            token = (
                (earlier.body or {}).get("$skipToken") if earlier and isinstance(earlier.body, dict) else None
            )
            body.setdefault("options", {})["$skipToken"] = token
        prefetch = hints.get("skip_token_prefetch")
        if prefetch:
            first = copy.deepcopy(body)
            first["query"] = prefetch["query"]
            first["options"] = {k: v for k, v in first.get("options", {}).items() if k != "$skipToken"}
            first["options"]["$top"] = prefetch["top"]
            pre = client.send("POST", _path_of(target), first)
            body["options"]["$skipToken"] = (pre.body or {}).get("$skipToken")
        answer = client.send(interaction.method, _path_of(target), body)
        answers[interaction.id] = answer
        deviations = compare(interaction, answer.status, answer.headers, answer.body)
        outcomes.append(Outcome(interaction, sent=True, deviations=deviations))
        previous_deviated = bool(deviations)
    return outcomes
