# ruff: noqa: E501
"""The Azure Policy rule evaluator preflight uses for Azure-side Deny assignments on the extension resource."""

from __future__ import annotations

import pytest

from remediator.core.policy_rule import effective_parameters, evaluate, resolve_binding

EXT = {
    "id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/c/providers/"
    "Microsoft.KubernetesConfiguration/extensions/azure-aks-backup",
    "name": "azure-aks-backup",
    "type": "Microsoft.KubernetesConfiguration/extensions",
    "properties": {
        "extensionType": "microsoft.dataprotection.kubernetes",
        "releaseTrain": "stable",
        "configurationSettings": {"a": "b"},
    },
}
T = "Microsoft.KubernetesConfiguration/extensions"


@pytest.mark.parametrize(
    ("condition", "params", "expected"),
    [
        ({"field": "type", "equals": T.upper()}, {}, True),
        ({"field": "type", "in": "[parameters('types')]"}, {"types": ["microsoft.web/sites"]}, False),
        ({"not": {"field": "type", "in": "[parameters('types')]"}}, {"types": ["microsoft.web/sites"]}, True),
        ({"field": f"{T}/extensionType", "like": "Microsoft.DataProtection.*"}, {}, True),
        ({"field": f"{T}/extensionType", "match": "microsoft.dataprotection.kubernetes"}, {}, True),
        ({"field": f"{T}/extensionType", "match": "MICROSOFT.dataprotection.kubernetes"}, {}, False),
        (
            {"field": f"{T}/extensionType", "matchInsensitively": "MICROSOFT.dataprotection.kubernetes"},
            {},
            True,
        ),
        ({"field": f"{T}/configurationSettings", "containsKey": "A"}, {}, True),
        ({"field": "Microsoft.Storage/storageAccounts/allowSharedKeyAccess", "exists": "true"}, {}, False),
        ({"field": "Microsoft.Storage/storageAccounts/allowSharedKeyAccess", "notEquals": "x"}, {}, True),
        ({"field": "location", "exists": False}, {}, True),
        ({"field": "tags['env']", "equals": "prod"}, {}, False),
        ({"value": "[concat(field('name'), '-x')]", "equals": "azure-aks-backup-x"}, {}, True),
        ({"value": "[empty(parameters('l'))]", "equals": True}, {"l": []}, True),
        ({"anyOf": [{"field": "type", "equals": "x"}, {"count": {"field": "a[*]"}, "greater": 0}]}, {}, None),
        (
            {"allOf": [{"field": "type", "equals": "x"}, {"count": {"field": "a[*]"}, "greater": 0}]},
            {},
            False,
        ),
        ({"value": "[unknownFunction()]", "equals": 1}, {}, None),
        ({"field": "type", "equals": "[parameters('missing')]"}, {}, None),
    ],
)
def test_conditions(condition, params, expected):
    assert evaluate(condition, EXT, params) is expected


def test_effective_parameters_and_bindings():
    spec = {"effect": {"defaultValue": "Deny"}, "list": {"type": "Array"}}
    values, missing = effective_parameters(spec, {"LIST": {"value": ["a"]}})
    assert values == {"effect": "Deny", "list": ["a"]} and missing == ()
    assert effective_parameters(spec, {})[1] == ("list",)
    assert resolve_binding("[parameters('effect')]", {"Effect": "Audit"}) == ("Audit", "Effect")
    assert resolve_binding(["kube-system"], {}) == (["kube-system"], None)
