"""decide(): each reason code, each blocker, the check order, JSON shape, and determinism properties."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.core.blockers import Blocker
from remediator.core.config import RemediatorConfig, load_config, parse_config
from remediator.core.decision import Reason, blockers_of, decide
from remediator.core.snapshot import ClusterSnapshot
from tests.unit.official_examples import official_cluster_bodies

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
SUB2 = "9a7e4d21-0c3b-4e8f-a6d5-2b1c9f8e7d60"
SA_EUS = (
    f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.Storage/storageAccounts/stbackupeus"
)
SA_WEU = (
    f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.Storage/storageAccounts/stbackupweu"
)
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
JSON_KEYS = ["clusterId", "selected", "reason", "rule", "storageAccountId", "blockers", "matchedRule"]


def body(
    *,
    sub: str = SUB,
    location: str = "eastus",
    tags: dict[str, str] | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """A minimal, ready managedCluster body."""
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "powerState": {"code": "Running"},
        "agentPoolProfiles": [
            {"name": "system", "osType": "Linux", "vmSize": "Standard_D4ds_v5", "mode": "System"}
        ],
        "storageProfile": {"diskCSIDriver": {"enabled": True}, "snapshotController": {"enabled": True}},
    }
    props.update(properties)
    result: dict[str, Any] = {
        "id": f"/subscriptions/{sub}/resourceGroups/rg-aks/providers/{CLUSTER_TYPE}/aks1",
        "name": "aks1",
        "location": location,
        "identity": {"type": "SystemAssigned"},
        "properties": props,
    }
    if tags is not None:
        result["tags"] = tags
    return result


def config(**overrides: Any) -> RemediatorConfig:
    data: dict[str, Any] = {
        "scope": {"subscriptions": [SUB], "regions": ["eastus", "westeurope"]},
        "storage": {"eastus": SA_EUS, "westeurope": SA_WEU},
        "selection": {
            "include": [{"tag": "backup", "values": ["on", "gold-*"]}, {"tag": "env", "values": ["prod*"]}],
            "exclude": [{"tag": "backup", "values": ["off"]}, {"tag": "do-not-backup"}],
        },
    }
    data.update(overrides)
    return parse_config(data)


def run(cluster: dict[str, Any], cfg: RemediatorConfig | None = None) -> dict[str, Any]:
    return decide(ClusterSnapshot.from_arm(cluster), cfg or config()).to_json()


@pytest.mark.parametrize(
    ("cluster", "reason", "rule", "storage"),
    [
        (body(tags={"backup": "on"}), "selected", "include[0]", SA_EUS),
        (body(tags={"BACKUP": "Gold-Tier"}), "selected", "include[0]", SA_EUS),
        (body(location="West Europe", tags={"env": "production"}), "selected", "include[1]", SA_WEU),
        (body(sub=SUB2, tags={"backup": "on"}), "out-of-scope", None, None),
        (body(location="japaneast", tags={"backup": "on"}), "region-not-allowed", None, None),
        (body(location="centralus", tags={"backup": "on"}), "region-not-allowed", None, None),
        (body(tags={"env": "dev"}), "not-included", None, SA_EUS),
        (body(), "not-included", None, SA_EUS),  # untagged
        (body(tags={"backup": "off"}), "excluded-by-tag", "exclude[0]", SA_EUS),
        (body(tags={"env": "prod", "Do-Not-Backup": ""}), "excluded-by-tag", "exclude[1]", SA_EUS),
        # order: scope before region before tags
        (body(sub=SUB2, location="japaneast", tags={"backup": "off"}), "out-of-scope", None, None),
        (body(location="japaneast", tags={"backup": "off"}), "region-not-allowed", None, None),
    ],
)
def test_reasons(cluster: dict[str, Any], reason: str, rule: str | None, storage: str | None) -> None:
    result = run(cluster)
    assert list(result) == JSON_KEYS
    assert (result["reason"], result["rule"], result["storageAccountId"]) == (reason, rule, storage)
    assert result["selected"] is (reason == "selected")


@pytest.mark.parametrize(
    ("cluster", "reason", "rule"),
    [
        (body(location="centralus", tags={"backup": "on"}), "no-storage-for-region", "include[0]"),
        # order: tags before storage, so an excluded cluster in a region without storage says excluded
        (body(location="centralus", tags={"backup": "off"}), "excluded-by-tag", "exclude[0]"),
        (body(location="centralus", tags={"env": "dev"}), "not-included", None),
    ],
)
def test_reasons_in_a_region_without_storage(cluster: dict[str, Any], reason: str, rule: str | None) -> None:
    """Only without ``scope.regions``: a config listing an allowed region without storage is refused."""
    result = run(cluster, config(scope={"subscriptions": [SUB]}))
    assert (result["reason"], result["rule"], result["storageAccountId"]) == (reason, rule, None)


def test_no_include_selects_every_in_scope_cluster_and_no_region_list_allows_all() -> None:
    cfg = config(
        scope={"subscriptions": [SUB]},
        storage={"eastus": SA_EUS, "japaneast": SA_WEU},
        selection={"exclude": [{"tag": "backup", "values": ["off"]}]},
    )
    assert run(body(), cfg)["reason"] == "selected"
    assert run(body(), cfg)["rule"] is None
    assert run(body(location="japaneast"), cfg)["storageAccountId"] == SA_WEU
    assert run(body(location="brazilsouth"), cfg)["reason"] == "no-storage-for-region"
    assert run(body(tags={"backup": "OFF"}), cfg)["reason"] == "excluded-by-tag"


def test_management_group_scope() -> None:
    cfg = config(scope={"managementGroups": ["mg-prod"], "excludeSubscriptions": [SUB2]})
    snapshot = ClusterSnapshot.from_arm(body(tags={"backup": "on"}))
    assert decide(snapshot, cfg, management_groups_of=lambda s: ["mg-prod", "root"]).reason is Reason.SELECTED
    assert decide(snapshot, cfg, management_groups_of=lambda s: ["root"]).reason is Reason.OUT_OF_SCOPE
    excluded = ClusterSnapshot.from_arm(body(sub=SUB2, tags={"backup": "on"}))
    assert decide(excluded, cfg, management_groups_of=lambda s: ["mg-prod"]).reason is Reason.OUT_OF_SCOPE
    with pytest.raises(ValueError, match="management_groups_of"):
        decide(snapshot, cfg)


@pytest.mark.parametrize(
    ("change", "blockers"),
    [
        ({}, []),
        ({"provisioningState": "Updating"}, ["cluster-not-succeeded"]),
        ({"provisioningState": None}, ["cluster-not-succeeded"]),
        ({"provisioningState": "succeeded"}, []),
        ({"powerState": {"code": "Stopped"}}, ["cluster-stopped"]),
        ({"powerState": None}, []),
        ({"identity": None}, ["no-managed-identity"]),
        ({"identity": {"type": "None"}}, ["no-managed-identity"]),
        ({"identity": {"type": "userassigned"}}, []),
        ({"storageProfile": {"diskCSIDriver": {"enabled": False}}}, ["disk-csi-driver-disabled"]),
        ({"storageProfile": {"snapshotController": {"enabled": False}}}, ["snapshot-controller-disabled"]),
        ({"storageProfile": None}, []),
        ({"agentPoolProfiles": [{"name": "w", "osType": "Windows"}]}, ["no-linux-amd64-pool"]),
        ({"agentPoolProfiles": [{"name": "a", "vmSize": "Standard_D2ps_v5"}]}, ["no-linux-amd64-pool"]),
        ({"agentPoolProfiles": []}, ["no-linux-amd64-pool"]),
        (
            {
                "agentPoolProfiles": [
                    {"name": "a", "vmSize": "Standard_D2ps_v5"},
                    {"name": "b", "vmSize": "Standard_D2s_v5"},
                ]
            },
            [],
        ),
        (
            {
                "provisioningState": "Failed",
                "powerState": {"code": "Stopped"},
                "identity": None,
                "storageProfile": {
                    "diskCSIDriver": {"enabled": False},
                    "snapshotController": {"enabled": False},
                },
                "agentPoolProfiles": [],
            },
            [blocker.value for blocker in Blocker],
        ),
    ],
)
def test_blockers(change: dict[str, Any], blockers: list[str]) -> None:
    cluster = body(tags={"backup": "on"})
    for key, value in change.items():
        target = cluster if key == "identity" else cluster["properties"]
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    result = run(cluster)
    assert result["blockers"] == blockers
    assert result["selected"] is True  # blockers never change selection


@pytest.mark.parametrize(
    "name", ["policy3-include-tag.yaml", "policy4-exclude-tag.yaml", "multi-region.yaml"]
)
def test_every_official_example_gets_a_decision(azure_examples: Path, name: str) -> None:
    cfg = load_config(EXAMPLES / name)
    for label, cluster in official_cluster_bodies(azure_examples):
        decision = decide(
            ClusterSnapshot.from_arm(cluster, source=label), cfg, management_groups_of=lambda s: ()
        )
        assert decision.reason is Reason.OUT_OF_SCOPE, label  # subscription 0000... is in no example scope
        assert list(decision.to_json()) == JSON_KEYS


def test_official_examples_selected_when_scoped_to_them(azure_examples: Path) -> None:
    cfg = parse_config(
        {
            "scope": {"subscriptions": ["00000000-0000-0000-0000-000000000000"]},
            "extraRegionNames": ["location1"],  # the REST examples' placeholder region
            "storage": {"location1": SA_EUS},
            "selection": {"include": [{"tag": "tier", "values": ["PRODUCTION"]}]},
        }
    )
    results = {
        label: decide(ClusterSnapshot.from_arm(cluster), cfg)
        for label, cluster in official_cluster_bodies(azure_examples)
    }
    assert {d.reason for d in results.values()} == {Reason.SELECTED}
    assert results["ManagedClustersGet 200"].blockers == (Blocker.NO_MANAGED_IDENTITY,)
    assert results["ManagedClustersCreate_Update 200"].blockers == ()
    assert results["ManagedClustersCreate_Update 201"].blockers == (Blocker.CLUSTER_NOT_SUCCEEDED,)


EXPECTED_MULTI_REGION = {
    "arm64-only.json": ("selected", "include[1]", ["no-linux-amd64-pool"]),
    "central-us.json": ("region-not-allowed", None, []),
    "csi-disabled.json": (
        "selected",
        "include[1]",
        ["disk-csi-driver-disabled", "snapshot-controller-disabled"],
    ),
    "ephemeral.json": ("excluded-by-tag", "exclude[2]", []),
    "excluded.json": ("excluded-by-tag", "exclude[0]", []),
    "sandbox.json": ("out-of-scope", None, []),
    "service-principal.json": ("selected", "include[0]", ["no-managed-identity"]),
    "stopped.json": ("selected", "include[0]", ["cluster-stopped"]),
    "tagged.json": ("selected", "include[0]", []),
    "untagged.json": ("not-included", None, []),
    "updating.json": ("selected", "include[0]", ["cluster-not-succeeded"]),
    "west-us-2.json": ("region-not-allowed", None, []),
    "windows-only.json": ("selected", "include[0]", ["no-linux-amd64-pool"]),
}


def test_shipped_examples_decide_as_documented() -> None:
    cfg = load_config(EXAMPLES / "multi-region.yaml")
    ancestry = json.loads((EXAMPLES / "management-groups.json").read_text())
    seen = {}
    for path in sorted((EXAMPLES / "clusters").glob("*.json")):
        snapshot = ClusterSnapshot.from_arm(json.loads(path.read_text()))
        result = decide(snapshot, cfg, management_groups_of=lambda s: ancestry.get(s, [])).to_json()
        seen[path.name] = (result["reason"], result["rule"], result["blockers"])
    assert seen == EXPECTED_MULTI_REGION


def test_policy3_and_policy4_examples_differ_exactly_on_untagged_and_excluded() -> None:
    p3 = load_config(EXAMPLES / "policy3-include-tag.yaml")
    p4 = load_config(EXAMPLES / "policy4-exclude-tag.yaml")
    for name, (in_p3, in_p4) in {
        "tagged.json": ("selected", "selected"),
        "untagged.json": ("not-included", "selected"),
        "excluded.json": ("not-included", "excluded-by-tag"),
        "west-us-2.json": ("region-not-allowed", "region-not-allowed"),
        "sandbox.json": ("out-of-scope", "out-of-scope"),
    }.items():
        snapshot = ClusterSnapshot.from_arm(json.loads((EXAMPLES / "clusters" / name).read_text()))
        assert (decide(snapshot, p3).reason.value, decide(snapshot, p4).reason.value) == (in_p3, in_p4), name


# --- properties ---

_values = st.sampled_from(["on", "off", "ON", "gold-1", "prod", "production", "dev", "", "x*y", "?"])
_keys = st.sampled_from(["backup", "env", "do-not-backup", "team", "Backup", "ENV"])
_tags = st.dictionaries(_keys, _values, max_size=4).filter(lambda t: len({k.casefold() for k in t}) == len(t))
_locations = st.sampled_from(["eastus", "East US", "westeurope", "centralus", "japaneast"])
_subs = st.sampled_from([SUB, SUB2])


@given(tags=_tags, location=_locations, sub=_subs)
def test_same_input_same_decision(tags: dict[str, str], location: str, sub: str) -> None:
    cluster = body(sub=sub, location=location, tags=tags)
    first = run(cluster)
    assert run(copy.deepcopy(cluster)) == first
    assert decide(ClusterSnapshot.from_arm(cluster), config()) == decide(
        ClusterSnapshot.from_arm(cluster), config()
    )


@given(tags=_tags, location=_locations, data=st.data())
def test_tag_key_case_never_changes_a_decision(
    tags: dict[str, str], location: str, data: st.DataObject
) -> None:
    recased = {
        "".join(data.draw(st.sampled_from([c.lower(), c.upper()])) for c in k): v for k, v in tags.items()
    }
    recased_result = run(body(location=location, tags=recased))
    result = run(body(location=location, tags=tags))
    # matchedRule names the tag as the cluster spells it: equal up to case, everything else identical
    recased_hit, hit = recased_result.pop("matchedRule"), result.pop("matchedRule")
    assert recased_result == result
    assert (recased_hit is None) == (hit is None)
    if hit is not None:
        assert recased_hit["tag"].lower() == hit["tag"].lower() and recased_hit["tag"] in recased
        assert {k: v for k, v in recased_hit.items() if k != "tag"} == {
            k: v for k, v in hit.items() if k != "tag"
        }


@given(tags=_tags, location=_locations)
def test_exclude_always_wins_in_decisions(tags: dict[str, str], location: str) -> None:
    excluded = run(body(location=location, tags={**tags, "do-not-backup": "yes"}))
    assert excluded["selected"] is False
    assert excluded["reason"] in {"out-of-scope", "region-not-allowed", "excluded-by-tag"}


def test_blockers_of_is_ordered_and_pure() -> None:
    snapshot = ClusterSnapshot.from_arm(body(provisioningState="Failed", agentPoolProfiles=[]))
    assert blockers_of(snapshot) == (Blocker.CLUSTER_NOT_SUCCEEDED, Blocker.NO_LINUX_AMD64_POOL)
    assert blockers_of(snapshot) == blockers_of(snapshot)


def test_docs_table_matches_the_shipped_examples() -> None:
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    section = text.split("## Example clusters", 1)[1]
    documented = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].endswith(".json"):
            blockers = [b.strip() for b in cells[3].split(",") if b.strip()]
            documented[cells[0]] = (cells[1], cells[2] or None, blockers)
    assert documented == EXPECTED_MULTI_REGION
