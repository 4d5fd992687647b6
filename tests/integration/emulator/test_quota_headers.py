"""Quota headers on the wire: ARM's always (throttling on or off), the provider quotas where the recordings
show them, and a provider quota's own throttling (429 + Retry-After before the handler runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.policyinsights import PolicyInsightsClient
from azure.mgmt.policyinsights.models import Remediation

from emulator.config import EmulatorConfig
from emulator.server import Emulator
from tests.fixtures.emulator import CLUSTER_ID, TEST_ESTATE, TEST_RG, TEST_SUB
from tests.integration.emulator.helpers import raw_https

pytestmark = pytest.mark.integration

API = "2024-05-01"
PI_HEADER = "x-ms-ratelimit-remaining-policy-insights-requests"
DP_HEADER = "x-ms-ratelimit-remaining-subscription-resource-requests"
AUDIT = f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/policyAssignments/audit"


def _call(emulator: Emulator, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    sep = "&" if "?" in path else "?"
    return raw_https(emulator.base_url, emulator.ca_bundle, method, f"{path}{sep}api-version={API}", body)


def test_arm_headers_are_sent_with_throttling_off(emulator: Emulator) -> None:
    assert not emulator.config.throttle.enabled
    _, read, _ = _call(emulator, "GET", CLUSTER_ID)
    assert int(read["x-ms-ratelimit-remaining-subscription-reads"]) == 249  # a full bucket less this call
    assert int(read["x-ms-ratelimit-remaining-subscription-global-reads"]) == 250 * 15 - 1
    _, write, _ = _call(emulator, "PATCH", CLUSTER_ID, {"tags": {"a": "b"}})
    assert {
        "x-ms-ratelimit-remaining-subscription-writes",
        "x-ms-ratelimit-remaining-subscription-global-writes",
    } <= set(write)
    _, delete, _ = _call(emulator, "DELETE", CLUSTER_ID.replace("aks1", "aks-sp"))
    assert "x-ms-ratelimit-remaining-subscription-deletes" in delete
    assert "x-ms-ratelimit-remaining-subscription-global-deletes" in delete
    assert "x-ms-ratelimit-remaining-subscription-writes" not in delete  # recorded: deletes only
    for _ in range(300):  # more than a bucket: nothing is refused, nothing counts down
        status, headers, _ = _call(emulator, "GET", CLUSTER_ID)
        assert status == 200 and headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"


def test_policy_insights_quota_on_remediation_puts_only(
    emulator: Emulator, mgmt_client: Callable[..., Any]
) -> None:
    estate = dict(TEST_ESTATE)
    estate["policyAssignments"] = [
        {"name": "audit", "scope": f"/subscriptions/{TEST_SUB}", "definition": "extension-audit"}
    ]
    emulator.reset(estate=estate)
    path = f"/subscriptions/{TEST_SUB}/providers/Microsoft.PolicyInsights/remediations/r1"
    status, headers, _ = raw_https(
        emulator.base_url,
        emulator.ca_bundle,
        "PUT",
        f"{path}?api-version=2021-10-01",
        {"properties": {"policyAssignmentId": AUDIT}},
    )
    assert status == 201 and headers[PI_HEADER] == "149"  # the recorded figure
    _, got, _ = raw_https(emulator.base_url, emulator.ca_bundle, "GET", f"{path}?api-version=2021-10-01")
    assert PI_HEADER not in got and "x-ms-ratelimit-remaining-subscription-global-reads" in got

    emulator.admin.set_config(quotas={"policyInsights": {"enabled": True, "burst": 2, "perSecond": 0.5}})
    client = mgmt_client(PolicyInsightsClient, retry_total=0)
    for name in ("a", "b"):
        client.remediations.create_or_update_at_subscription(name, Remediation(policy_assignment_id=AUDIT))
    with pytest.raises(HttpResponseError) as err:
        client.remediations.create_or_update_at_subscription("c", Remediation(policy_assignment_id=AUDIT))
    assert err.value.status_code == 429 and err.value.error.code == "TooManyRequests"
    assert err.value.response.headers[PI_HEADER] == "0"
    assert int(err.value.response.headers["Retry-After"]) >= 1
    assert client.remediations.get_at_subscription("a").name == "a"  # reads are not in this quota
    with pytest.raises(HttpResponseError):
        client.remediations.get_at_subscription("c")  # the refused PUT created nothing


def test_a_plug_in_attaches_a_quota_to_its_routes() -> None:
    estate = {"subscriptions": [{"subscriptionId": TEST_SUB, "resourceGroups": [{"name": TEST_RG}]}]}
    config = EmulatorConfig()
    config.update({"quotas": {"dataProtection": {"enabled": True, "burst": 2}}})
    with Emulator.start(
        estate=estate,
        config=config,
        plugins=("tests.integration.emulator.quota_plugin",),
        discover_plugins=False,
    ) as emu:
        vault = (
            f"/subscriptions/{TEST_SUB}/resourceGroups/{TEST_RG}/providers/"
            "Microsoft.DataProtection/backupVaults/v"
        )

        def call(method: str, path: str) -> tuple[int, dict[str, str]]:
            status, headers, _ = raw_https(
                emu.base_url, emu.ca_bundle, method, f"{path}?api-version=2024-04-01"
            )
            return status, headers

        assert [call("GET", vault)[1][DP_HEADER] for _ in range(2)] == ["1", "0"]
        status, headers = call("GET", vault)
        assert status == 429 and headers[DP_HEADER] == "0" and "retry-after" in headers
        status, headers = call("POST", vault + "/validateForBackup")
        assert status == 202 and DP_HEADER not in headers  # not attached for POST
