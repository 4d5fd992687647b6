"""ARM id parsing: canonical form, case-insensitive identity, and loud, specific failures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.core.errors import UserInputError
from remediator.core.ids import (
    InvalidResourceIdError,
    parse_cluster_id,
    parse_management_group_id,
    parse_resource_group_id,
    parse_resource_id,
    parse_storage_account_id,
    parse_subscription_id,
)

SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
CLUSTER = (
    f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-1"
)


@pytest.mark.parametrize(
    ("raw", "canonical", "parts"),
    [
        (f"/subscriptions/{SUB}", f"/subscriptions/{SUB}", (SUB, None, None, None, None)),
        (f"/SUBSCRIPTIONS/{SUB.upper()}", f"/subscriptions/{SUB}", (SUB, None, None, None, None)),
        (
            f"/subscriptions/{SUB}/resourcegroups/RG_1.(x)",
            f"/subscriptions/{SUB}/resourceGroups/RG_1.(x)",
            (SUB, "RG_1.(x)", None, None, None),
        ),
        (CLUSTER, CLUSTER, (SUB, "rg-aks", "Microsoft.ContainerService", "managedClusters", "aks-1")),
        (
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa/"
            "blobServices/default/containers/c1",
            None,
            (SUB, "rg", "Microsoft.Storage", "storageAccounts/blobServices/containers", "c1"),
        ),
        (
            f"{CLUSTER}/providers/Microsoft.KubernetesConfiguration/extensions/azure-aks-backup",
            None,
            (SUB, "rg-aks", "Microsoft.KubernetesConfiguration", "extensions", "azure-aks-backup"),
        ),
        (
            "/providers/Microsoft.Authorization/policyDefinitions/bdff5235-9f40-4a32-893f-38a03d5d607c",
            None,
            (
                None,
                None,
                "Microsoft.Authorization",
                "policyDefinitions",
                "bdff5235-9f40-4a32-893f-38a03d5d607c",
            ),
        ),
        (
            "/providers/Microsoft.Management/managementGroups/mg-1/providers/Microsoft.Authorization/"
            "policyAssignments/a1",
            None,
            (None, None, "Microsoft.Authorization", "policyAssignments", "a1"),
        ),
    ],
)
def test_parse_resource_id_valid(raw: str, canonical: str | None, parts: tuple[str | None, ...]) -> None:
    parsed = parse_resource_id(raw)
    assert (parsed.subscription_id, parsed.resource_group, parsed.provider, parsed.type, parsed.name) == parts
    assert str(parsed) == (canonical or raw)
    assert parsed.key == parsed.canonical.lower()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "must start with '/'"),
        ("subscriptions/x", "must start with '/'"),
        (f"/subscriptions/{SUB}/", "empty path segment"),
        ("/subscriptions//resourceGroups/rg", "empty path segment"),
        ("/subscriptions/not-a-guid", "is not a GUID"),
        ("/subscriptions", "must be followed by a subscription id"),
        (f"/subscriptions/{SUB}/resourceGroups", "must be followed by a resource group name"),
        (f"/subscriptions/{SUB}/resourceGroups/bad<rg>", "resource group name"),
        (f"/subscriptions/{SUB}/resourceGroups/ends.with.dot.", "resource group name"),
        (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage", "namespace/type/name"),
        (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts", "namespace/"),
        (f"/subscriptions/{SUB}/resourceGroups/rg/providers/NoDot/things/x", "provider namespace"),
        (f"/subscriptions/{SUB}/resourceGroups/rg/widgets/x", "expected 'providers'"),
        (
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/sa/x/blobServices",
            "has no name",
        ),
        ("/tenants/abc", "must start with '/subscriptions/' or '/providers/'"),
        (f"/subscriptions/{SUB}/resourceGroups/ rg", "whitespace"),
    ],
)
def test_parse_resource_id_invalid_names_the_problem(raw: str, why: str) -> None:
    with pytest.raises(InvalidResourceIdError, match="invalid resource id") as info:
        parse_resource_id(raw, field="scope.x")
    assert why in info.value.message
    assert info.value.field == "scope.x"
    assert isinstance(info.value, UserInputError)


@pytest.mark.parametrize("value", [None, 42, ["/subscriptions/x"], {"id": CLUSTER}])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(InvalidResourceIdError, match="expected a string"):
        parse_resource_id(value)


def test_equality_and_hash_ignore_casing() -> None:
    lower = parse_cluster_id(CLUSTER.lower())
    upper = parse_cluster_id(CLUSTER.upper().replace(SUB.upper(), SUB))
    assert lower == upper
    assert hash(lower) == hash(upper)
    assert len({lower, upper}) == 1
    assert lower != parse_cluster_id(CLUSTER.replace("aks-1", "aks-2"))
    assert lower != CLUSTER  # never equal to a plain string: compare ids with ids


def test_cluster_helpers() -> None:
    cluster = parse_cluster_id(CLUSTER)
    assert cluster.full_type == "Microsoft.ContainerService/managedClusters"
    assert cluster.is_type("microsoft.containerservice/MANAGEDCLUSTERS")
    assert cluster.resource_group_id == f"/subscriptions/{SUB}/resourceGroups/rg-aks"
    assert cluster.subscription_scope == f"/subscriptions/{SUB}"


@pytest.mark.parametrize(
    ("parser", "raw", "why"),
    [
        (parse_cluster_id, f"/subscriptions/{SUB}/resourceGroups/rg", "is not a Microsoft.ContainerService"),
        (parse_cluster_id, f"{CLUSTER}/agentPools/np1", "is not a Microsoft.ContainerService"),
        (parse_cluster_id, f"{CLUSTER}/providers/Microsoft.KubernetesConfiguration/extensions/e", "is not a"),
        (parse_cluster_id, CLUSTER.replace("aks-1", "-aks"), "not a valid AKS cluster name"),
        (parse_cluster_id, CLUSTER.replace("aks-1", "a" * 64), "not a valid AKS cluster name"),
        (parse_storage_account_id, CLUSTER, "is not a Microsoft.Storage/storageAccounts id"),
        (
            parse_storage_account_id,
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st-1",
            "3-24 letters/digits",
        ),
        (parse_subscription_id, CLUSTER, "is not a subscription id"),
        (parse_subscription_id, "prod-subscription", "is not a subscription id"),
        (parse_resource_group_id, f"/subscriptions/{SUB}", "is not a resource group id"),
        (parse_resource_group_id, "rg-aks", "must start with '/'"),
        (parse_management_group_id, f"/subscriptions/{SUB}", "Microsoft.Management/managementGroups"),
        (parse_management_group_id, "bad/name", "Microsoft.Management/managementGroups"),
    ],
)
def test_typed_parsers_reject_other_kinds(parser: object, raw: str, why: str) -> None:
    assert callable(parser)
    with pytest.raises(InvalidResourceIdError) as info:
        parser(raw)
    assert why in info.value.message


def test_typed_parsers_accept_short_forms() -> None:
    assert str(parse_subscription_id(SUB.upper())) == f"/subscriptions/{SUB}"
    assert (
        str(parse_management_group_id("mg-prod"))
        == "/providers/Microsoft.Management/managementGroups/mg-prod"
    )
    mg = parse_management_group_id("/providers/microsoft.management/managementgroups/MG-Prod")
    assert mg == parse_management_group_id("mg-prod")
    assert parse_cluster_id(CLUSTER.replace("aks-1", "A")).name == "A"
    sa = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stbackup01"
    assert parse_storage_account_id(sa).name == "stbackup01"


@given(st.lists(st.booleans(), min_size=len(CLUSTER), max_size=len(CLUSTER)))
def test_any_casing_of_an_id_is_the_same_id(flips: list[bool]) -> None:
    recased = "".join(ch.upper() if flip else ch.lower() for ch, flip in zip(CLUSTER, flips, strict=True))
    parsed = parse_cluster_id(recased)
    assert parsed == parse_cluster_id(CLUSTER)
    assert parsed.key == CLUSTER.lower()
    assert parsed.canonical.split("/")[1::2][:3] == ["subscriptions", "resourceGroups", "providers"]


_names = st.text(alphabet="abcXYZ019-_.()", min_size=1, max_size=20).filter(lambda s: not s.endswith("."))


@given(sub=st.uuids(), group=_names, name=st.text(alphabet="abcXYZ019-", min_size=1, max_size=20))
def test_parse_is_idempotent_on_its_canonical_form(sub: object, group: str, name: str) -> None:
    raw = f"/SUBSCRIPTIONS/{sub}/RESOURCEGROUPS/{group}/providers/Microsoft.Web/sites/{name}"
    parsed = parse_resource_id(raw)
    again = parse_resource_id(str(parsed))
    assert again == parsed and again.canonical == parsed.canonical
    assert (parsed.resource_group, parsed.name) == (group, name)
