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
from remediator.adapters.clients import PooledAdapter, environment_matters, pooled_session
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


def test_the_sessions_trust_the_environment_only_when_it_sets_something_requests_reads() -> None:
    """Trusting it costs an environment scan and two ~/.netrc stats on every request (issue 11's event
    path); a proxy or CA-bundle variable keeps requests' per-request behaviour."""
    assert environment_matters({"PATH": "/usr/bin", "HOME": "/root"}) is False
    assert environment_matters({"HTTPS_PROXY": ""}) is False
    for name, value in (
        ("HTTPS_PROXY", "http://proxy:3128"),
        ("https_proxy", "http://proxy:3128"),
        ("NO_PROXY", "localhost"),
        ("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca.pem"),
        ("CURL_CA_BUNDLE", "/etc/ssl/certs/ca.pem"),
    ):
        assert environment_matters({name: value}) is True, name
    assert pooled_session(4).trust_env is environment_matters()


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
