"""Realism knobs through the admin API: ARM throttling (token buckets, 429 + Retry-After, azure-core's
retry then succeeds), fault rules (status + code, count, dropped connections, delay), latency, call log,
counters."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient

from emulator.credentials import EmulatorCredential
from emulator.server import Emulator
from tests.fixtures.emulator import CLUSTER_ID, TEST_RG, TEST_SUB
from tests.integration.emulator.helpers import raw_https

pytestmark = pytest.mark.integration

GET_PATH = CLUSTER_ID + "?api-version=2024-05-01"


def _get(emulator: Emulator, token: str = "tok-a") -> tuple[int, dict[str, str], Any]:
    return raw_https(emulator.base_url, emulator.ca_bundle, "GET", GET_PATH, token=token)


def test_throttling_429_with_retry_after_then_sdk_retry_succeeds(
    emulator: Emulator, mgmt_client: Callable[..., Any]
) -> None:
    emulator.admin.set_config(throttle={"enabled": True, "reads": {"burst": 3, "perSecond": 1}})
    remaining = [int(_get(emulator)[1]["x-ms-ratelimit-remaining-subscription-reads"]) for _ in range(3)]
    assert remaining == [2, 1, 0]
    status, headers, body = _get(emulator)
    assert status == 429 and headers["retry-after"] == "1"
    assert body["error"]["code"] == "SubscriptionRequestsThrottled"
    # another principal has its own bucket (the global cap is 15x)
    assert _get(emulator, token="tok-b")[0] == 200
    # the SDK principal starts with a full bucket; drain it, then azure-core's RetryPolicy honours Retry-After
    client = mgmt_client(ContainerServiceClient, principal="sdk-principal")
    for _ in range(3):
        client.managed_clusters.get(TEST_RG, "aks1")
    emulator.admin.clear_calls()
    started = time.monotonic()
    assert client.managed_clusters.get(TEST_RG, "aks1").name == "aks1"
    assert time.monotonic() - started >= 0.9
    statuses = [(c["status"], c["principal"]) for c in emulator.admin.calls()]
    assert statuses == [(429, "sdk-principal"), (200, "sdk-principal")]


def test_writes_have_their_own_bucket(emulator: Emulator, mgmt_client: Callable[..., Any]) -> None:
    emulator.admin.set_config(throttle={"enabled": True, "writes": {"burst": 1, "perSecond": 0.5}})
    path = CLUSTER_ID.rsplit("/", 1)[0] + "/aks-w?api-version=2024-05-01"
    body = {"location": "eastus"}
    first = raw_https(emulator.base_url, emulator.ca_bundle, "PUT", path, body)
    assert first[0] == 201 and first[1]["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    second = raw_https(emulator.base_url, emulator.ca_bundle, "PUT", path, body)
    assert second[0] == 429 and int(second[1]["retry-after"]) >= 1
    assert _get(emulator)[0] == 200  # reads unaffected


def test_fault_rule_status_code_count_and_sdk_retry(
    emulator: Emulator, mgmt_client: Callable[..., Any]
) -> None:
    rule = emulator.admin.add_fault(
        method="GET", path="*/managedClusters/aks1", status=503, code="ServiceUnavailable", count=2
    )
    status, _, body = _get(emulator)
    assert status == 503 and body["error"]["code"] == "ServiceUnavailable"
    client = mgmt_client(ContainerServiceClient, retry_backoff_factor=0.01)
    assert client.managed_clusters.get(TEST_RG, "aks1").name == "aks1"  # one more 503, then the retry passes
    assert [r["fired"] for r in emulator.admin.faults() if r["id"] == rule["id"]] == [2]
    statuses = [c["status"] for c in emulator.admin.calls()]
    assert statuses == [503, 503, 200]


def test_fault_rule_non_retryable_conflict_surfaces(
    mgmt_client: Callable[..., Any], emulator: Emulator
) -> None:
    emulator.admin.add_fault(method="GET", path="*aks1", status=409, code="Conflict", message="busy", count=1)
    client = mgmt_client(ContainerServiceClient)
    with pytest.raises(HttpResponseError) as info:
        client.managed_clusters.get(TEST_RG, "aks1")
    assert info.value.status_code == 409 and info.value.error.code == "Conflict"


def test_dropped_connection_is_retried_by_azure_core(
    emulator: Emulator, mgmt_client: Callable[..., Any]
) -> None:
    emulator.admin.add_fault(method="GET", path="*/managedClusters/aks1", action="drop", count=1)
    client = mgmt_client(ContainerServiceClient, retry_backoff_factor=0.01)
    assert client.managed_clusters.get(TEST_RG, "aks1").name == "aks1"
    assert [c["status"] for c in emulator.admin.calls()] == [0, 200]  # 0 = no response sent


def test_probability_zero_never_fires_and_delay_applies(emulator: Emulator) -> None:
    emulator.admin.add_fault(path="*aks1", status=500, probability=0.0)
    emulator.admin.add_fault(path="*aks1", action="delay", delayMs=150, count=1)
    started = time.monotonic()
    assert _get(emulator)[0] == 200
    assert time.monotonic() - started >= 0.15
    assert _get(emulator)[0] == 200


def test_bad_fault_rule_is_rejected(emulator: Emulator) -> None:
    from emulator.admin_client import AdminError

    with pytest.raises(AdminError) as info:
        emulator.admin.add_fault(action="explode")
    assert info.value.status == 400


def test_latency_knob(emulator: Emulator) -> None:
    _get(emulator)
    emulator.admin.set_config(latencyMs=600, jitterMs=30)
    timings = []
    for _ in range(2):
        started = time.monotonic()
        assert _get(emulator)[0] == 200
        timings.append(time.monotonic() - started)
    assert min(timings) >= 0.6  # never faster than the configured latency
    emulator.admin.set_config(latencyMs=0, jitterMs=0)
    started = time.monotonic()
    _get(emulator)
    # Turning it off takes effect (a margin of 0.6 s, so a loaded machine does not make this flaky).
    assert time.monotonic() - started < 0.6


def test_call_log_names_principals_and_counters_count(emulator: Emulator) -> None:
    for principal in ("alice-oid", "bob-oid"):
        client = ContainerServiceClient(EmulatorCredential(principal), TEST_SUB, **emulator.client_kwargs())
        client.managed_clusters.get(TEST_RG, "aks1")
    _get(emulator, token="not-a-jwt")
    calls = emulator.admin.calls()
    assert [c["principal"] for c in calls] == ["alice-oid", "bob-oid", "not-a-jwt"]
    assert all(c["method"] == "GET" and c["status"] == 200 and c["path"] == CLUSTER_ID for c in calls)
    assert all(isinstance(c["time"], float) and c["apiVersion"] for c in calls)
    assert emulator.admin.calls(since=calls[1]["seq"]) == calls[2:]
    counters = emulator.admin.counters()
    assert counters["byOperation"]["ManagedClusters_Get"] == {"200": 3}
    assert counters["total"] == 3


def test_reset_restores_estate_and_knobs(emulator: Emulator, mgmt_client: Callable[..., Any]) -> None:
    emulator.admin.set_config(latencyMs=50)
    emulator.admin.add_fault(path="*", status=500)
    emulator.admin.patch_cluster(CLUSTER_ID, tags={"changed": "yes"})
    emulator.admin.reset()
    assert emulator.admin.config()["latencyMs"] == 0 and emulator.admin.faults() == []
    cluster = mgmt_client(ContainerServiceClient).managed_clusters.get(TEST_RG, "aks1")
    assert cluster.tags == {"Backup": "Yes", "env": "Prod"}
    assert emulator.admin.calls()[-1]["operation"] == "ManagedClusters_Get"


def test_probability_rule_fires_about_that_often(emulator: Emulator) -> None:
    import http.client
    import ssl
    from urllib.parse import urlsplit

    emulator.admin.add_fault(method="GET", path="*/managedClusters/aks1", status=500, probability=0.3)
    parts = urlsplit(emulator.base_url)
    conn = http.client.HTTPSConnection(
        parts.hostname, parts.port, context=ssl.create_default_context(cafile=str(emulator.ca_bundle))
    )
    statuses = []
    for _ in range(300):
        conn.request("GET", GET_PATH, headers={"Authorization": "Bearer p"})
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
    conn.close()
    failures = statuses.count(500)
    assert statuses.count(200) + failures == 300
    assert 50 <= failures <= 130  # binomial(300, 0.3): mean 90, sd ~8


def test_call_log_gives_each_call_its_request_id_and_the_time_it_was_served(emulator: Emulator) -> None:
    """``durationMs`` is the dispatch; ``servedMs`` runs from the request's arrival (a new connection's
    accept, so its TLS handshake counts) to the response written; ``requestId`` is the x-ms-request-id
    answered."""
    emulator.admin.set_config(latencyMs=50, jitterMs=0)
    try:
        status, headers, _ = _get(emulator)
    finally:
        emulator.admin.set_config(latencyMs=0, jitterMs=0)
    assert status == 200
    [call] = emulator.admin.calls()
    request_id = next(v for k, v in headers.items() if k.lower() == "x-ms-request-id")
    assert call["requestId"] == request_id
    assert call["durationMs"] >= 50
    assert call["servedMs"] >= call["durationMs"]
