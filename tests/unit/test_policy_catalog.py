# ruff: noqa: E501
"""The vendored Azure Policy definitions are the recorded bytes, and the product's catalog agrees with them.

The catalog (remediator/core/policy_catalog.py) is hand-written knowledge; the JSON files under
emulator/policy/definitions/ are byte-exact copies of Azure/azure-policy (MANIFEST.json records the commit and
each file's sha256). If either drifts — a re-vendored file, a typo in a default — these tests fail.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from remediator.core import policy_catalog as catalog

DEFINITIONS = Path(__file__).resolve().parents[2] / "emulator" / "policy" / "definitions"
MANIFEST = json.loads((DEFINITIONS / "MANIFEST.json").read_text(encoding="utf-8"))


def _load(folder: str) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((DEFINITIONS / folder).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out[data["name"]] = data
    return out


KUBERNETES = _load("kubernetes")
INITIATIVES = _load("kubernetes-initiatives")
GENERAL = _load("general")


def test_manifest_names_the_snapshot_commit_the_catalog_was_read_from():
    assert MANIFEST["repository"] == "Azure/azure-policy"
    assert MANIFEST["commit"] == catalog.SNAPSHOT_COMMIT


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_vendored_file_has_its_recorded_sha256(entry):
    data = (DEFINITIONS / entry["file"]).read_bytes()
    assert len(data) == entry["bytes"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert json.loads(data)["name"] == entry["name"]


def test_every_vendored_file_is_in_the_manifest():
    listed = {e["file"] for e in MANIFEST["files"]}
    present = {
        str(p.relative_to(DEFINITIONS)) for p in DEFINITIONS.rglob("*.json") if p.name != "MANIFEST.json"
    }
    assert present == listed


def test_catalog_covers_exactly_the_vendored_kubernetes_definitions():
    assert set(catalog.KUBERNETES_DEFINITIONS) == set(KUBERNETES)
    assert set(catalog.INITIATIVES) == set(INITIATIVES)
    assert set(catalog.RESOURCE_TYPE_RULES) == set(GENERAL)


@pytest.mark.parametrize("name", sorted(catalog.KUBERNETES_DEFINITIONS))
def test_kubernetes_definition_matches_its_json(name):
    entry = catalog.KUBERNETES_DEFINITIONS[name]
    data = KUBERNETES[name]
    props = data["properties"]
    params = props["parameters"]
    assert data["id"] == entry.id
    assert props["displayName"] == entry.display_name
    assert props["version"] == entry.version
    assert props["mode"] == "Microsoft.Kubernetes.Data"
    assert params["effect"]["defaultValue"] == entry.default_effect
    assert tuple(params["excludedNamespaces"]["defaultValue"]) == entry.excluded_namespaces_default
    assert ("namespaces" in params) == entry.has_namespaces
    if entry.has_namespaces and "defaultValue" in params["namespaces"]:
        assert params["namespaces"]["defaultValue"] == []
    assert ("excludedImages" in params) == entry.has_excluded_images
    if entry.has_excluded_images:
        assert params["excludedImages"]["defaultValue"] == []
    for extra in entry.extra_parameters:
        assert extra in params, extra
    # parameters without a default stay without one in the catalog (the assignment must give them)
    if "allowedContainerImagesRegex" in entry.extra_parameters:
        assert "defaultValue" not in params["allowedContainerImagesRegex"]
    # the definition is Gatekeeper's (a constraint template), evaluated for managed clusters
    details = props["policyRule"]["then"]["details"]
    assert "templateInfo" in details
    assert "Microsoft.ContainerService/managedClusters" in props["policyRule"]["if"]["in"]


@pytest.mark.parametrize("name", sorted(catalog.INITIATIVES))
def test_initiative_members_and_bindings_match_the_json(name):
    entry = catalog.INITIATIVES[name]
    data = INITIATIVES[name]
    props = data["properties"]
    assert data["id"] == entry.id
    assert props["displayName"] == entry.display_name
    assert props["version"] == entry.version
    for pname, default in entry.defaults.items():
        assert props["parameters"][pname]["defaultValue"] == default, pname
    relevant = {
        "effect",
        "excludedNamespaces",
        "namespaces",
        "excludedImages",
        "excludedContainers",
        "allowedContainerImagesRegex",
    }
    json_members = [
        m
        for m in props["policyDefinitions"]
        if m["policyDefinitionId"].rsplit("/", 1)[-1] in catalog.KUBERNETES_DEFINITIONS
    ]
    assert [
        (m["policyDefinitionId"].rsplit("/", 1)[-1], m["policyDefinitionReferenceId"]) for m in json_members
    ] == [(m.definition, m.reference_id) for m in entry.members]
    for member, raw in zip(entry.members, json_members, strict=True):
        want = {k: v["value"] for k, v in raw.get("parameters", {}).items() if k in relevant}
        assert dict(member.bindings) == want, member.reference_id


@pytest.mark.parametrize("name", sorted(catalog.RESOURCE_TYPE_RULES))
def test_resource_type_rules_match_the_json(name):
    rule = catalog.RESOURCE_TYPE_RULES[name]
    props = GENERAL[name]["properties"]
    assert props["displayName"] == rule.display_name
    # Not allowed (deny listed types) is mode All; Allowed (deny the rest) is Indexed: it never sees extensions
    assert props["mode"] == ("All" if rule.denies_listed else "Indexed")
    assert rule.parameter in props["parameters"]
    assert props["parameters"]["effect"]["defaultValue"] == "Deny"
    condition = json.dumps(props["policyRule"]["if"])
    assert f"parameters('{rule.parameter}')" in condition
    negated = '"not"' in condition or '"notIn"' in condition
    assert negated == (not rule.denies_listed)


@pytest.mark.parametrize(
    ("constraint", "definition"),
    [
        # the denial of MicrosoftDocs/azure-docs#121332
        (
            "azurepolicy-k8sazurev2containerallowedimag-xxxxxxxxxxxxxxxxxxxx",
            "febd0533-8e55-448f-b837-bd0e06f16469",
        ),
        (
            "azurepolicy-k8sazurev3allowedusersgroups-57ac95e12d2c31538661",
            "f06ddb64-5fa3-4b77-b166-acb36f7f6042",
        ),
        (
            "azurepolicy-k8sazurev3allowedcapabilities-69e35e5e70785d0cd7c5",
            "c26596ff-4d70-4e6a-9a30-c2506bd2f80c",
        ),
        (
            "AZUREPOLICY-K8SAZUREV3CONTAINERLIMITS-0123456789abcdef0123",
            "e345eecc-fa47-480f-9e88-67dcc122b164",
        ),
    ],
)
def test_constraint_names_map_to_their_definition(constraint, definition):
    assert [d.name for d in catalog.definitions_for_constraint(constraint)] == [definition]


def test_unknown_or_foreign_constraint_names_map_to_nothing():
    assert (
        catalog.definitions_for_constraint("azurepolicy-k8sazurev1antiaffinityrules-ceffa082711831ebffd1")
        == ()
    )
    assert catalog.definitions_for_constraint("my-own-constraint") == ()
    assert catalog.constraint_kind_of("azurepolicy-k8sazurev2containerallowedimag-e2f1") == (
        "k8sazurev2containerallowedimag"
    )
