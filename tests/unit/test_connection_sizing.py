"""The SDK and storage connection pools are sized for the concurrency one host process runs (issue 17 item 5):
the constants in ``adapters/clients.py`` must match where that concurrency is set."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from remediator.adapters import clients
from remediator.adapters.clients import (
    PooledAdapter,
    ca_bundle_in_environment,
    pooled_session,
    proxies_in_environment,
)
from remediator.service import inline
from remediator.service.reconcile import reconciler
from remediator.service.sweep import Sweeper

ROOT = Path(__file__).resolve().parents[2]


def test_pool_sizes_follow_host_json_and_the_product_pools() -> None:
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    assert queues["batchSize"] + queues["newBatchThreshold"] == clients.HOST_QUEUE_CONCURRENCY
    assert clients.INLINE_CONCURRENCY == inline.INLINE_WORKERS
    assert clients.RECONCILE_IO_CONCURRENCY == reconciler.READ_WORKERS
    assert clients.EARLY_WAVE_CONCURRENCY == reconciler.EARLY_WAVE_WORKERS
    assert inspect.signature(Sweeper).parameters["max_concurrency"].default == clients.SWEEP_CONCURRENCY
    threads = clients.HOST_QUEUE_CONCURRENCY + clients.INLINE_CONCURRENCY + clients.RECONCILE_IO_CONCURRENCY
    threads += clients.EARLY_WAVE_CONCURRENCY
    assert threads < clients.ARM_POOL_SIZE
    assert threads + clients.SWEEP_CONCURRENCY < clients.STORAGE_POOL_SIZE


def test_every_arm_client_shares_one_pooled_session() -> None:
    from remediator.adapters.credentials import EmulatorCredential

    built = clients.AzureClients(EmulatorCredential(), arm_endpoint="https://127.0.0.1:1")
    try:
        first = built.container_service("sub-a")._client._pipeline._transport
        second = built.extensions("sub-b")._client._pipeline._transport
        assert first.session is second.session
        adapter = first.session.get_adapter("https://127.0.0.1:1/")
        assert adapter._pool_maxsize == clients.ARM_POOL_SIZE
    finally:
        built.close()


def test_storage_clients_share_one_pooled_session() -> None:
    table = clients.STORAGE_OPTIONS.table_kwargs()["transport"]
    queue = clients.STORAGE_OPTIONS.queue_kwargs()["transport"]
    assert table.session is queue.session
    assert table.session.get_adapter("http://127.0.0.1/")._pool_maxsize == clients.STORAGE_POOL_SIZE


def test_the_sessions_trust_the_environment_per_request_only_when_it_sets_a_proxy() -> None:
    """Trusting it costs an environment scan and two ~/.netrc stats on every request (issue 11's event
    path); a proxy variable keeps requests' per-request behaviour (``no_proxy`` is matched per host)."""
    assert proxies_in_environment({"PATH": "/usr/bin", "HOME": "/root"}) is False
    assert proxies_in_environment({"HTTPS_PROXY": ""}) is False
    assert proxies_in_environment({"REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca.pem"}) is False
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "all_proxy"):
        assert proxies_in_environment({name: "http://proxy:3128"}) is True, name
    assert pooled_session(4).trust_env is proxies_in_environment()


@pytest.mark.parametrize(
    "environ",
    [
        {"REQUESTS_CA_BUNDLE": "/etc/ssl/a.pem"},
        {"CURL_CA_BUNDLE": "/etc/ssl/b.pem"},
        {"REQUESTS_CA_BUNDLE": "/etc/ssl/a.pem", "CURL_CA_BUNDLE": "/etc/ssl/b.pem"},
        {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": "/etc/ssl/b.pem"},
        {},
    ],
)
def test_a_ca_bundle_variable_is_read_once_and_verifies_as_requests_would_per_request(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a proxy variable the session does not trust the environment per request, yet a request that
    verifies against the default CAs verifies against the bundle the environment names, as requests does
    when it trusts the environment (``Session.merge_environment_settings``)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    url = "https://management.azure.com/subscriptions"
    trusting = requests.Session()
    session = pooled_session(4)
    assert session.trust_env is False
    adapter = session.get_adapter(url)
    assert isinstance(adapter, PooledAdapter)
    assert adapter.ca_bundle == ca_bundle_in_environment()
    for verify in (True, False, "/etc/ssl/mine.pem"):
        expected = trusting.merge_environment_settings(url, {}, None, verify, None)["verify"]
        assert adapter.verify_for(verify) == expected, (environ, verify)
    # and what the adapter passes on is what it says
    seen: list[object] = []
    monkeypatch.setattr(HTTPAdapter, "send", lambda self, request, **kw: seen.append(kw["verify"]))
    adapter.send(requests.Request("GET", url).prepare())
    assert seen == [trusting.merge_environment_settings(url, {}, None, True, None)["verify"]]


def test_the_adapter_answers_as_requests_does_and_stats_a_ca_bundle_path_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    request = requests.Request("GET", "https://127.0.0.1:8443/subscriptions").prepare()
    ours, theirs = PooledAdapter(), HTTPAdapter()
    for verify in (True, False, str(bundle), str(tmp_path)):
        assert ours.build_connection_pool_key_attributes(
            request, verify
        ) == theirs.build_connection_pool_key_attributes(request, verify), verify
    stats: list[str] = []
    real_isdir = os.path.isdir
    monkeypatch.setattr(os.path, "isdir", lambda p: stats.append(p) or real_isdir(p))
    other = tmp_path / "other.pem"
    other.write_text("")
    for _ in range(5):
        ours.build_connection_pool_key_attributes(request, str(other))
    assert stats == [str(other)]
