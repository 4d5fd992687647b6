# ruff: noqa: E501
"""Preflight findings: each blocker kind, what only warns, what clears a finding, and failure attribution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.core import policy_catalog as catalog
from remediator.core.blockers import BlockerKind
from remediator.core.preflight import (
    FindingCode,
    PolicyAssignment,
    PolicyData,
    PolicyDefinition,
    PolicySetDefinition,
    PreflightInput,
    Safeguards,
    Severity,
    StorageAccount,
    attribute_failure,
    blocking,
    covers,
    cpu_millicores,
    memory_bytes,
    preflight,
    regex_allows,
)
from remediator.core.snapshot import ClusterSnapshot

SUB = "11111111-1111-1111-1111-111111111111"
RG = "rg-apps"
CLUSTER = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService/managedClusters/aks1"
)
DEFINITIONS = Path(__file__).resolve().parents[2] / "emulator" / "policy" / "definitions"
IMAGES = "/providers/Microsoft.Authorization/policyDefinitions/febd0533-8e55-448f-b837-bd0e06f16469"
LIMITS = "/providers/Microsoft.Authorization/policyDefinitions/e345eecc-fa47-480f-9e88-67dcc122b164"
AUTOMOUNT = "/providers/Microsoft.Authorization/policyDefinitions/423dd1ba-798e-40e4-9c4d-b6902674b423"
LABELS = "/providers/Microsoft.Authorization/policyDefinitions/46592696-4c7b-4bf3-9e45-6c2763bdc0a6"
PRIVILEGED = "/providers/Microsoft.Authorization/policyDefinitions/95edb821-ddaf-4404-9732-666045e056b4"
BASELINE = "/providers/Microsoft.Authorization/policySetDefinitions/a8640138-9b0a-4a28-b8cb-1666c838647d"
SAFEGUARDS_SET = (
    "/providers/Microsoft.Authorization/policySetDefinitions/c047ea8e-9c78-49b2-958b-37e56d291a44"
)
NOT_ALLOWED = json.loads((DEFINITIONS / "general" / "InvalidResourceTypes_Deny.json").read_text())
ALLOWED = json.loads((DEFINITIONS / "general" / "AllowedResourceTypes_Deny.json").read_text())
EXT = "Microsoft.KubernetesConfiguration/extensions"


def cluster(*, addon: bool = True, location: str = "eastus") -> ClusterSnapshot:
    return ClusterSnapshot.from_arm(
        {
            "id": CLUSTER,
            "location": location,
            "properties": {
                "provisioningState": "Succeeded",
                "addonProfiles": {"azurepolicy": {"enabled": addon}} if addon is not None else {},
            },
        }
    )


def assignment(
    definition: str,
    name: str = "a1",
    *,
    scope: str = f"/subscriptions/{SUB}",
    mode: str = "Default",
    not_scopes: tuple[str, ...] = (),
    **params: Any,
) -> PolicyAssignment:
    return PolicyAssignment.from_arm(
        {
            "id": f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}",
            "name": name,
            "properties": {
                "scope": scope,
                "notScopes": list(not_scopes),
                "policyDefinitionId": definition,
                "enforcementMode": mode,
                "parameters": {k: {"value": v} for k, v in params.items()},
            },
        }
    )


def run(*assignments: PolicyAssignment, addon: bool = True, definitions=(), sets=(), **kw: Any):
    data = PolicyData(
        assignments=assignments,
        definitions={d["id"].lower(): PolicyDefinition.from_arm(d) for d in definitions},
        set_definitions={s["id"].lower(): PolicySetDefinition.from_arm(s) for s in sets},
    )
    return preflight(PreflightInput(cluster=cluster(addon=addon), policy=data, **kw))


def only(findings, code=FindingCode.GATEKEEPER_POLICY):
    assert [f.code for f in findings] == [code], [f.to_json() for f in findings]
    return findings[0]


# ---- Gatekeeper ------------------------------------------------------------------------------------------


def test_allowed_images_deny_without_the_backup_registry_blocks_and_names_the_regex_change():
    f = only(run(assignment(IMAGES, "only-acr", allowedContainerImagesRegex=r"^myacr\.azurecr\.io/.+$")))
    assert f.severity is Severity.BLOCK
    assert "only-acr" in f.remedy and "allowedContainerImagesRegex" in f.remedy
    assert f.evidence["parameter"] == "allowedContainerImagesRegex"
    assert f.evidence["suggested"] == r"^myacr\.azurecr\.io/.+$|^mcr\.microsoft\.com/azurebackup/.*"
    assert regex_allows(f.evidence["suggested"]) is True
    assert f.evidence["alternativeSuggested"][-1] == "dataprotection-microsoft"
    assert f.evidence["members"][0]["impact"] == "evidence"


@pytest.mark.parametrize(
    "params",
    [
        {"allowedContainerImagesRegex": r"^mcr\.microsoft\.com/.+$"},
        {"allowedContainerImagesRegex": r"^myacr\.azurecr\.io/.+$|^mcr\.microsoft\.com/azurebackup/.*"},
        {
            "allowedContainerImagesRegex": "^x$",
            "excludedNamespaces": ["kube-system", "dataprotection-microsoft"],
        },
        {"allowedContainerImagesRegex": "^x$", "excludedNamespaces": ["dataprotection-*"]},
        {"allowedContainerImagesRegex": "^x$", "namespaces": ["team-a", "team-b"]},
        {"allowedContainerImagesRegex": "^x$", "effect": "Disabled"},
    ],
    ids=[
        "registry-allowed",
        "fixed-regex",
        "namespace-excluded",
        "wildcard-excluded",
        "other-namespaces",
        "off",
    ],
)
def test_allowed_images_that_let_the_extension_through_give_no_finding(params):
    assert run(assignment(IMAGES, **params)) == ()


@pytest.mark.parametrize(
    ("params", "mode", "addon"),
    [
        ({"effect": "Audit"}, "Default", True),
        ({}, "DoNotEnforce", True),
        ({}, "Default", False),
    ],
    ids=["audit-effect", "do-not-enforce", "addon-off"],
)
def test_audit_do_not_enforce_and_addon_off_only_warn(params, mode, addon):
    f = only(run(assignment(IMAGES, mode=mode, allowedContainerImagesRegex="^x$", **params), addon=addon))
    assert f.severity is Severity.WARN
    assert blocking([f]) == ()


def test_automount_token_default_audit_warns_and_deny_blocks():
    assert only(run(assignment(AUTOMOUNT))).severity is Severity.WARN
    f = only(run(assignment(AUTOMOUNT, effect="Deny")))
    assert f.severity is Severity.BLOCK
    assert f.evidence["suggested"] == [
        *catalog.KUBERNETES_DEFINITIONS[AUTOMOUNT[-36:]].excluded_namespaces_default,
        "dataprotection-microsoft",
    ]
    assert "excludedNamespaces" in f.remedy


def test_automount_excluded_images_covering_the_backup_registry_clear_it():
    assert run(assignment(AUTOMOUNT, effect="Deny", excludedImages=["mcr.microsoft.com/azurebackup/*"])) == ()
    assert only(run(assignment(AUTOMOUNT, effect="Deny", excludedImages=["mcr.microsoft.com/other/*"])))


@pytest.mark.parametrize(
    ("cpu", "memory", "settings", "blocked"),
    [
        ("500m", "4Gi", {}, True),  # extension default limit 1000m exceeds 500m
        ("2", "1Gi", {}, True),  # 1280Mi exceeds 1Gi
        ("2", "2Gi", {}, False),
        ("1000m", "1280Mi", {}, False),
        ("2", "2Gi", {"resources.limits.memory": "4400Mi"}, True),  # the troubleshoot doc's raised limit
    ],
)
def test_resource_limits_compare_the_caps_with_the_extension_limits(cpu, memory, settings, blocked):
    findings = run(assignment(LIMITS, cpuLimit=cpu, memoryLimit=memory), extension_settings=settings)
    assert bool(findings) == blocked
    if blocked:
        assert findings[0].severity is Severity.BLOCK
        assert findings[0].evidence["extensionLimits"]["cpu"] in (
            "1000m",
            settings.get("resources.limits.cpu"),
        )


def test_required_labels_block_and_an_empty_label_list_does_not():
    assert only(run(assignment(LABELS, labelsList=["cost-center"]))).severity is Severity.BLOCK
    assert run(assignment(LABELS, labelsList=[])) == ()


def test_unconfirmed_impact_blocks_by_default_and_can_be_made_a_warning():
    data = PolicyData(assignments=(assignment(PRIVILEGED),))
    inp = PreflightInput(cluster=cluster(), policy=data)
    assert only(preflight(inp)).severity is Severity.BLOCK
    assert only(preflight(inp, unconfirmed_deny=Severity.WARN)).severity is Severity.WARN


def test_initiative_assignment_names_the_initiative_parameter_and_merges_its_members():
    f = only(run(assignment(BASELINE, "psp-baseline", effect="Deny")))
    assert f.severity is Severity.BLOCK
    assert f.evidence["parameter"] == "excludedNamespaces"
    assert "psp-baseline" in f.remedy
    assert {m["referenceId"] for m in f.evidence["members"]} == {
        m.reference_id for m in catalog.INITIATIVES[BASELINE[-36:]].members
    }
    assert run(assignment(BASELINE, effect="Deny", excludedNamespaces=["dataprotection-microsoft"])) == ()
    assert only(run(assignment(BASELINE))).severity is Severity.WARN  # initiative default effect is Audit


def test_safeguards_initiative_binds_the_allowed_images_regex_to_its_own_parameter():
    findings = run(assignment(SAFEGUARDS_SET, "safeguards", effect="Deny", allowedContainerImagesRegex="^x$"))
    by_param = {f.evidence["parameter"]: f for f in findings}
    assert set(by_param) == {"allowedContainerImagesRegex", "excludedNamespaces"}
    assert all(f.severity is Severity.BLOCK for f in findings)


def test_initiative_read_from_azure_wins_over_the_catalog_and_a_fixed_member_gets_an_exemption_remedy():
    custom_set = {
        "id": BASELINE,
        "properties": {
            "parameters": {"effect": {"type": "String", "defaultValue": "Deny"}},
            "policyDefinitions": [
                {
                    "policyDefinitionId": PRIVILEGED,
                    "policyDefinitionReferenceId": "priv",
                    "parameters": {"effect": {"value": "[parameters('effect')]"}},
                }
            ],
        },
    }
    f = only(run(assignment(BASELINE, "pinned"), sets=[custom_set]))
    assert f.evidence["parameter"] is None
    assert "az policy exemption create" in f.remedy and "--policy-definition-reference-ids priv" in f.remedy


@pytest.mark.parametrize(
    ("scope", "not_scopes", "groups", "applies"),
    [
        (f"/subscriptions/{SUB}", (), (), True),
        (f"/subscriptions/{SUB}/resourceGroups/{RG}", (), (), True),
        (f"/subscriptions/{SUB}/resourceGroups/{RG}-other", (), (), False),
        (CLUSTER, (), (), True),
        (f"/subscriptions/{SUB}", (f"/subscriptions/{SUB}/resourceGroups/{RG.upper()}",), (), False),
        ("/providers/Microsoft.Management/managementGroups/corp", (), ("Corp",), True),
        ("/providers/Microsoft.Management/managementGroups/corp", (), ("other",), False),
        ("/subscriptions/22222222-2222-2222-2222-222222222222", (), (), False),
    ],
)
def test_scope_and_not_scopes_decide_coverage(scope, not_scopes, groups, applies):
    a = assignment(IMAGES, scope=scope, not_scopes=not_scopes, allowedContainerImagesRegex="^x$")
    assert covers(a, CLUSTER, groups) is applies
    data = PolicyData(assignments=(a,))
    findings = preflight(PreflightInput(cluster=cluster(), policy=data, management_groups=groups))
    assert bool(findings) is applies


@settings(max_examples=60, deadline=None)
@given(
    effect=st.sampled_from(["Deny", "deny", "Audit", "audit"]),
    others=st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), max_size=4),
    definition=st.sampled_from(sorted(catalog.KUBERNETES_DEFINITIONS)),
)
def test_property_excluding_the_namespace_always_clears_a_gatekeeper_finding(effect, others, definition):
    excluded = [*others, "dataprotection-microsoft"]
    a = assignment(
        catalog.DEFINITION_PREFIX + definition,
        effect=effect,
        excludedNamespaces=excluded,
        allowedContainerImagesRegex="^x$",
        labelsList=["a"],
        cpuLimit="1m",
        memoryLimit="1Mi",
    )
    assert run(a) == ()


@settings(max_examples=60, deadline=None)
@given(
    definition=st.sampled_from(sorted(catalog.KUBERNETES_DEFINITIONS)),
    addon=st.booleans(),
    mode=st.sampled_from(["Default", "DoNotEnforce"]),
)
def test_property_a_gatekeeper_finding_blocks_only_when_enforced_deny_with_the_addon(definition, addon, mode):
    a = assignment(
        catalog.DEFINITION_PREFIX + definition,
        mode=mode,
        effect="Deny",
        allowedContainerImagesRegex="^x$",
        labelsList=["a"],
        cpuLimit="1m",
        memoryLimit="1Mi",
    )
    findings = run(a, addon=addon)
    assert len(findings) == 1
    assert findings[0].blocks is (addon and mode == "Default")


# ---- Deployment Safeguards --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "excluded", "system", "expected"),
    [
        ("Enforce", ["team-a"], ["kube-system"], Severity.BLOCK),
        ("Warn", [], [], Severity.WARN),
        ("Enforce", ["dataprotection-microsoft"], [], None),
        ("Enforce", [], ["kube-system", "dataprotection-microsoft"], None),
    ],
)
def test_deployment_safeguards(level, excluded, system, expected):
    sg = Safeguards.from_arm(
        {"properties": {"level": level, "excludedNamespaces": excluded, "systemExcludedNamespaces": system}}
    )
    findings = preflight(PreflightInput(cluster=cluster(), safeguards=sg))
    if expected is None:
        assert findings == ()
        return
    f = only(findings, FindingCode.DEPLOYMENT_SAFEGUARDS)
    assert f.severity is expected
    assert f.remedy.endswith(
        f"az aks safeguards update --resource-group {RG} --name aks1 --excluded-ns "
        + " ".join([*excluded, "dataprotection-microsoft"])
    )


# ---- Azure-side deny on the extension resource -------------------------------------------------------------


def test_not_allowed_resource_types_listing_extensions_blocks_and_names_the_list_change():
    a = assignment(NOT_ALLOWED["id"], "no-ext", listOfResourceTypesNotAllowed=[EXT, "Microsoft.Web/sites"])
    f = only(run(a, definitions=[NOT_ALLOWED]), FindingCode.EXTENSION_DENIED_BY_POLICY)
    assert f.severity is Severity.BLOCK
    assert f.evidence["suggested"] == ["Microsoft.Web/sites"]
    assert "no-ext" in f.remedy and "listOfResourceTypesNotAllowed" in f.remedy


def test_not_allowed_resource_types_without_extensions_and_allowed_types_give_nothing():
    a = assignment(NOT_ALLOWED["id"], listOfResourceTypesNotAllowed=["Microsoft.Web/sites"])
    b = assignment(ALLOWED["id"], "allowed", listOfResourceTypesAllowed=["Microsoft.Compute/virtualMachines"])
    assert run(a, b, definitions=[NOT_ALLOWED, ALLOWED]) == ()  # Allowed types is Indexed: never extensions


def test_audit_effect_on_extensions_warns_and_a_custom_rule_gets_an_exemption_remedy():
    custom = {
        "id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyDefinitions/deny-backup-ext",
        "properties": {
            "mode": "All",
            "parameters": {"effect": {"type": "String", "defaultValue": "Deny"}},
            "policyRule": {
                "if": {
                    "allOf": [
                        {"field": "type", "equals": EXT},
                        {"field": f"{EXT}/extensionType", "like": "microsoft.dataprotection.*"},
                    ]
                },
                "then": {"effect": "[parameters('effect')]"},
            },
        },
    }
    f = only(
        run(assignment(custom["id"], "custom"), definitions=[custom]), FindingCode.EXTENSION_DENIED_BY_POLICY
    )
    assert f.severity is Severity.BLOCK and "az policy exemption create" in f.remedy
    w = only(
        run(assignment(custom["id"], effect="Audit"), definitions=[custom]),
        FindingCode.EXTENSION_DENIED_BY_POLICY,
    )
    assert w.severity is Severity.WARN


def test_a_rule_that_cannot_be_evaluated_warns_and_an_unread_definition_warns():
    opaque = {
        "id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyDefinitions/opaque",
        "properties": {
            "mode": "All",
            "policyRule": {"if": {"count": {"field": "x[*]"}, "greater": 0}, "then": {"effect": "deny"}},
        },
    }
    f = only(run(assignment(opaque["id"]), definitions=[opaque]), FindingCode.POLICY_NOT_EVALUATED)
    assert f.severity is Severity.WARN
    g = only(run(assignment(opaque["id"])), FindingCode.POLICY_NOT_EVALUATED)
    assert "could not read definition" in g.remedy


# ---- storage, providers, regions ----------------------------------------------------------------------------

SA = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.Storage/storageAccounts/sabackup"


@pytest.mark.parametrize(
    ("props", "settings", "codes"),
    [
        ({"allowSharedKeyAccess": False}, {}, [FindingCode.STORAGE_SHARED_KEY_DISABLED]),
        ({"allowSharedKeyAccess": False}, {"configuration.backupStorageLocation.config.useAAD": "true"}, []),
        ({}, {}, []),
        ({"networkAcls": {"defaultAction": "Deny", "bypass": "None"}}, {}, [FindingCode.STORAGE_FIREWALL]),
        ({"networkAcls": {"defaultAction": "Deny", "bypass": "Logging, AzureServices"}}, {}, []),
        (
            {
                "networkAcls": {
                    "defaultAction": "Deny",
                    "bypass": "None",
                    "resourceAccessRules": [
                        {
                            "resourceId": f"/subscriptions/{SUB}/resourceGroups/r/providers/Microsoft.DataProtection"
                            "/backupVaults/v",
                            "tenantId": "t",
                        }
                    ],
                }
            },
            {},
            [],
        ),
    ],
)
def test_storage_checks(props, settings, codes):
    account = StorageAccount.from_arm({"id": SA, "properties": props})
    findings = preflight(PreflightInput(cluster=cluster(), storage=account, extension_settings=settings))
    assert [f.code for f in findings] == codes
    assert all(f.blocks and "sabackup" in f.remedy for f in findings)


@pytest.mark.parametrize(
    ("providers", "protecting", "expected"),
    [
        ({"Microsoft.KubernetesConfiguration": "Registered"}, False, []),
        (
            {"microsoft.kubernetesconfiguration": "NotRegistered"},
            False,
            ["Microsoft.KubernetesConfiguration"],
        ),
        ({"Microsoft.KubernetesConfiguration": "Registered"}, True, ["Microsoft.DataProtection"]),
        (
            {"Microsoft.KubernetesConfiguration": "Registering", "Microsoft.DataProtection": "Registered"},
            True,
            ["Microsoft.KubernetesConfiguration"],
        ),
    ],
)
def test_provider_registrations(providers, protecting, expected):
    findings = preflight(PreflightInput(cluster=cluster(), providers=providers, protecting=protecting))
    assert [f.evidence["provider"] for f in findings] == expected
    assert all(f.code is FindingCode.PROVIDER_NOT_REGISTERED and f.blocks for f in findings)
    assert all(f"az provider register --namespace {f.evidence['provider']}" in f.remedy for f in findings)


@pytest.mark.parametrize(
    ("location", "protecting", "vault", "code"),
    [
        ("eastus", True, True, None),
        ("polandcentral", True, False, None),
        ("polandcentral", True, True, FindingCode.VAULT_TIER_NOT_IN_REGION),
        ("qatarcentral", True, False, FindingCode.REGION_NOT_SUPPORTED),
        ("qatarcentral", False, False, None),
    ],
)
def test_region_support(location, protecting, vault, code):
    findings = preflight(
        PreflightInput(cluster=cluster(location=location), protecting=protecting, vault_tier=vault)
    )
    assert [f.code for f in findings] == ([code] if code else [])


def test_every_code_has_a_kind_in_the_blockers_one_policy():
    # replaces the former FINDING_KINDS check: the kinds now live in core.blockers with the snapshot blockers'
    assert {code: code.kind for code in FindingCode}.keys() == set(FindingCode)
    assert {code.kind for code in FindingCode} <= set(BlockerKind)


def test_a_registering_provider_is_transient_and_an_unregistered_one_needs_a_human():
    providers = {"Microsoft.KubernetesConfiguration": "Registering"}
    (registering,) = preflight(PreflightInput(cluster=cluster(), providers=providers))
    assert registering.kind is BlockerKind.TRANSIENT and registering.to_json()["kind"] == "transient"
    (missing,) = preflight(PreflightInput(cluster=cluster(), providers={}))
    assert missing.kind is BlockerKind.HUMAN


# ---- attribution -----------------------------------------------------------------------------------------

DENIAL = (
    "dataprotection-microsoft 51s Warning FailedCreate job/dataprotection-microsoft-kubernetes-agent-upgrade-crds "
    'Error creating: admission webhook "validation.gatekeeper.sh" denied the request: '
    "[azurepolicy-k8sazurev2containerallowedimag-e2f1d6a9d3f6b1e5a1e0] Container image "
    "mcr.microsoft.com/azurebackup/k8s/x has not been allowed."
)


def test_a_gatekeeper_denial_is_attributed_to_the_assignment_of_that_definition():
    findings = run(
        assignment(LABELS, "labels", labelsList=["team"]),
        assignment(IMAGES, "images", allowedContainerImagesRegex="^x$"),
    )
    assert attribute_failure(DENIAL, findings).evidence["assignmentName"] == "images"
    # the CRD job's BackoffLimitExceeded: the first blocking policy finding
    assert (
        attribute_failure("Job has reached the specified backoff limit: BackoffLimitExceeded", findings)
        == (findings[0])
    )


def test_an_unexplained_denial_still_names_the_constraint_and_other_errors_map_by_code():
    f = attribute_failure(DENIAL, ())
    assert f is not None and f.code is FindingCode.GATEKEEPER_POLICY
    assert f.evidence["definitions"] == [IMAGES.lower()]
    assert attribute_failure("BackoffLimitExceeded", ()) is None
    assert attribute_failure("some other helm error", ()) is None
    snapshot = attribute_failure("UserErrorPVSnapshotDisallowedByPolicy: ...", ())
    assert snapshot is not None and snapshot.code is FindingCode.SNAPSHOT_DISALLOWED_BY_POLICY
    account = StorageAccount.from_arm({"id": SA, "properties": {"allowSharedKeyAccess": False}})
    storage = preflight(PreflightInput(cluster=cluster(), storage=account))
    assert attribute_failure("KeyBasedAuthenticationNotPermitted", storage) == storage[0]


def test_arm_policy_denial_is_attributed_by_assignment_id():
    a = assignment(NOT_ALLOWED["id"], "no-ext", listOfResourceTypesNotAllowed=[EXT])
    findings = run(a, definitions=[NOT_ALLOWED])
    text = f"RequestDisallowedByPolicy: ... policyAssignment {a.id} ..."
    assert attribute_failure(text, findings) == findings[0]


def test_quantities():
    assert cpu_millicores("1") == 1000 and cpu_millicores("250m") == 250 and cpu_millicores("x") is None
    assert memory_bytes("1280Mi") == 1280 * 2**20 and memory_bytes("1G") == 1e9 and memory_bytes("1Q") is None


@pytest.mark.parametrize(
    ("addons", "expected"),
    [
        ({}, False),
        ({"azurepolicy": {"enabled": True}}, True),
        ({"azurePolicy": {"enabled": True}}, True),
        ({"azurepolicy": {"enabled": False}}, False),
        ({"omsagent": {"enabled": True}}, False),
    ],
)
def test_snapshot_reads_the_azure_policy_addon(addons, expected):
    body = {"id": CLUSTER, "location": "eastus", "properties": {"addonProfiles": addons}}
    assert ClusterSnapshot.from_arm(body).azure_policy_enabled is expected


def test_snapshot_names_a_malformed_addon_field():
    from remediator.core.errors import UserInputError

    body = {
        "id": CLUSTER,
        "location": "eastus",
        "properties": {"addonProfiles": {"azurepolicy": {"enabled": "yes"}}},
    }
    with pytest.raises(UserInputError) as err:
        ClusterSnapshot.from_arm(body)
    assert err.value.field == "properties.addonProfiles.azurepolicy.enabled"
