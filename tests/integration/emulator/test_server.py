"""Server plumbing: ARM request rules (auth, api-version, 404/405 envelopes), keep-alive, the plug-in hook,
the injectable clock with lifecycle observers, admin edits, snapshots, and ``python -m emulator serve``."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.mgmt.containerservice import ContainerServiceClient

from emulator.clock import ManualClock
from emulator.model.ids import key_of
from emulator.server import Emulator, EmulatorConfig
from tests.fixtures.emulator import CLUSTER_ID, ROOT_DIR, TEST_ESTATE, TEST_RG, TEST_SUB
from tests.integration.emulator import sample_plugin
from tests.integration.emulator.helpers import raw_https

pytestmark = pytest.mark.integration


def test_requests_without_bearer_token_are_401(emulator: Emulator) -> None:
    status, _, body = raw_https(
        emulator.base_url, emulator.ca_bundle, "GET", CLUSTER_ID + "?api-version=2026-08-01", token=None
    )
    assert status == 401 and body["error"]["code"] == "AuthenticationFailed"


def test_missing_api_version_is_400(emulator: Emulator) -> None:
    status, _, body = raw_https(emulator.base_url, emulator.ca_bundle, "GET", CLUSTER_ID)
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"


def test_unmodelled_path_and_wrong_method(emulator: Emulator) -> None:
    status, _, body = raw_https(emulator.base_url, emulator.ca_bundle, "GET", "/nothing/here?api-version=1")
    assert status == 404 and set(body["error"]) >= {"code", "message"}
    status, _, body = raw_https(
        emulator.base_url, emulator.ca_bundle, "POST", CLUSTER_ID + "?api-version=2026-08-01", {}
    )
    assert status == 405 and body["error"]["code"] == "MethodNotAllowed"


def test_keep_alive_serves_many_requests_on_one_connection(emulator: Emulator) -> None:
    parts = urlsplit(emulator.base_url)
    conn = http.client.HTTPSConnection(
        parts.hostname, parts.port, context=ssl.create_default_context(cafile=str(emulator.ca_bundle))
    )
    for _ in range(20):
        conn.request("GET", CLUSTER_ID + "?api-version=2026-08-01", headers={"Authorization": "Bearer k"})
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Connection") != "close"
        response.read()
    sock_before = conn.sock
    conn.request("GET", CLUSTER_ID + "?api-version=2026-08-01", headers={"Authorization": "Bearer k"})
    conn.getresponse().read()
    assert conn.sock is sock_before
    conn.close()


def test_plugin_module_registers_routes_and_observes_writes() -> None:
    sample_plugin.SEEN.clear()
    config = EmulatorConfig()
    config.update({"lroRetryAfterS": 0.05, "clusterCreateS": 0.1, "clusterUpdateS": 0.1})
    estate = {**TEST_ESTATE, "sample": {"x": 1}}
    with Emulator.start(
        estate=estate,
        config=config,
        plugins=("tests.integration.emulator.sample_plugin",),
        discover_plugins=False,
    ) as emu:
        assert emu.state.plugin_state["sample"] == {"x": 1}
        status, _, body = raw_https(
            emu.base_url,
            emu.ca_bundle,
            "GET",
            f"/subscriptions/{TEST_SUB}/providers/Contoso.Sample/hello?api-version=1",
        )
        assert status == 200 and body == {
            "scope": f"/subscriptions/{TEST_SUB}",
            "principal": "raw-test-token",
        }
        client = ContainerServiceClient(emu.credential("writer-oid"), TEST_SUB, **emu.client_kwargs())
        client.managed_clusters.begin_update_tags(TEST_RG, "aks1", {"tags": {"a": "b"}}).result()
    # observers get the id as AKS answers it (/resourcegroups/ lower-cased): compare under Azure's rule
    seen = {(op, key_of(rid), who) for op, rid, who in sample_plugin.SEEN}
    assert ("write", key_of(CLUSTER_ID), "writer-oid") in seen
    assert ("provisioned", key_of(CLUSTER_ID), "writer-oid") in seen


def test_manual_clock_drives_lifecycles_and_observers() -> None:
    clock = ManualClock()
    config = EmulatorConfig()
    config.update({"clusterCreateS": 30, "lroRetryAfterS": 1})
    events: list[tuple[str, str]] = []
    with Emulator.start(estate=TEST_ESTATE, config=config, clock=clock, discover_plugins=False) as emu:
        emu.state.subscribe(
            lambda op, rid, body, who: events.append((op, body["properties"]["provisioningState"]))
        )
        path = CLUSTER_ID.replace("aks1", "aks-clock") + "?api-version=2026-08-01"
        assert raw_https(emu.base_url, emu.ca_bundle, "PUT", path, {"location": "eastus"})[0] == 201
        assert emu.admin.advance_clock(29)["transitionsApplied"] == 0
        assert (
            raw_https(emu.base_url, emu.ca_bundle, "GET", path)[2]["properties"]["provisioningState"]
            == "Creating"
        )
        assert emu.admin.advance_clock(1)["transitionsApplied"] == 1
        assert (
            raw_https(emu.base_url, emu.ca_bundle, "GET", path)[2]["properties"]["provisioningState"]
            == "Succeeded"
        )
    assert events == [("write", "Creating"), ("provisioned", "Succeeded")]


def test_admin_edits_fire_observers_and_show_in_snapshot(emulator: Emulator) -> None:
    seen: list[tuple[str, str, str | None]] = []
    unsubscribe = emulator.state.subscribe(lambda op, rid, body, who: seen.append((op, rid, who)))
    try:
        new_id = CLUSTER_ID.replace("aks1", "aks-demo")
        emulator.admin.put_resources(
            {"clusters": [{"id": new_id, "location": "eastus", "tags": {"Backup": "yes"}}]}
        )
        emulator.admin.patch_cluster(new_id, tags={"Backup": "no"}, provisioningState="Updating", readyInS=0)
        snap = emulator.admin.state(collections=["clusters"])
        mine = next(c for c in snap["clusters"] if key_of(c["id"]) == key_of(new_id))
        assert mine["tags"] == {"Backup": "no"}
        assert snap["counts"]["clusters"] == len(TEST_ESTATE["clusters"]) + 1
    finally:
        unsubscribe()
    assert [s[0] for s in seen if key_of(s[1]) == key_of(new_id)][:2] == ["write", "write"]
    assert all(who == "emulator-admin" for _, _, who in seen)


def test_cli_serve_prints_one_json_line_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", "--generate", "subscriptions=2", "clusters=3", "seed=5"],
        cwd=ROOT_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info: dict[str, Any] = json.loads(proc.stdout.readline())
        assert info["baseUrl"].startswith("https://127.0.0.1:") and info["caBundle"].endswith(".pem")
        assert info["counts"]["clusters"] == 6
        status, _, body = raw_https(
            info["baseUrl"], info["caBundle"], "GET", "/subscriptions?api-version=2022-12-01"
        )
        assert status == 200 and len(body["value"]) == 2
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("path", "version", "code"),
    [
        (CLUSTER_ID, "1999-01-01", "NoRegisteredProviderFound"),
        (CLUSTER_ID, "latest", "InvalidApiVersionParameter"),
        (
            CLUSTER_ID + "/providers/Microsoft.KubernetesConfiguration/extensions",
            "2099-01-01",
            "NoRegisteredProviderFound",
        ),
        (f"/subscriptions/{TEST_SUB}", "1999-01-01", "InvalidApiVersionParameter"),
        (
            f"/subscriptions/{TEST_SUB}/providers/Microsoft.KubernetesConfiguration",
            "2015-01-01",
            "InvalidApiVersionParameter",
        ),
        (
            f"/subscriptions/{TEST_SUB}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults",
            "2026-08-01",
            "NoRegisteredProviderFound",
        ),
    ],
)
def test_unpublished_api_version_is_400(emulator: Emulator, path: str, version: str, code: str) -> None:
    method = "POST" if path.endswith("queryResults") else "GET"
    status, _, body = raw_https(
        emulator.base_url, emulator.ca_bundle, method, f"{path}?api-version={version}"
    )
    assert status == 400 and body["error"]["code"] == code, body
    assert version in body["error"]["message"]


def test_api_version_check_can_be_switched_off(emulator: Emulator) -> None:
    emulator.admin.set_config(checkApiVersions=False)
    status, _, _ = raw_https(
        emulator.base_url, emulator.ca_bundle, "GET", CLUSTER_ID + "?api-version=1999-01-01"
    )
    assert status == 200


def test_installed_sdks_default_api_versions_are_allowed() -> None:
    """The allow-list covers what the SDKs here send by default (a new SDK pin must extend it)."""
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.containerservice import ContainerServiceClient
    from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.mgmt.storage import StorageManagementClient

    from emulator.api_versions import ALLOWED
    from emulator.credentials import EmulatorCredential

    cred = EmulatorCredential("p")
    clients = {
        "microsoft.containerservice": ContainerServiceClient(cred, TEST_SUB),
        "microsoft.kubernetesconfiguration": SourceControlConfigurationClient(cred, TEST_SUB),
        "microsoft.storage": StorageManagementClient(cred, TEST_SUB),
        "microsoft.authorization": AuthorizationManagementClient(cred, TEST_SUB),
        "microsoft.resourcegraph": ResourceGraphClient(cred),
    }
    for namespace, client in clients.items():
        version = getattr(client._config, "api_version", None) or client.DEFAULT_API_VERSION
        assert version in ALLOWED[namespace], (namespace, version)
    assert {"2019-10-01", "2021-10-01", "2024-10-01"} <= ALLOWED["microsoft.policyinsights"]
