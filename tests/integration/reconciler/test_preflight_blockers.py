"""Preflight through the reconciler, against the emulator with the real SDK clients (issue 16 must-show).

For each blocker kind: it is detected from emulator data (policy assignments read from Resource Graph,
Deployment Safeguards, the storage account, provider registrations), nothing is written while it blocks,
the outcome names the assignment (or account, or provider) and the exact change, the journal row carries the
findings, and once the operator applies that change the next reconcile installs. A Warn-level Safeguards or
an Audit-effect assignment is reported and does not block. A Failed extension caused by a Deny is attributed
to it and not re-installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from azure.core.rest import HttpRequest
from azure.mgmt.resource.policy import PolicyClient

from emulator.estate import cluster_from_shorthand
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import OutcomeKind, WriteKind
from remediator.core.plan.links import PREFLIGHT
from remediator.core.plan.preflight_check import CONFIRM_AGE_S
from remediator.service.runtime import Runtime
from remediator.service.triggers.http import handle_http_explain
from tests.fixtures.emulator import OTHER_SUB, TEST_SUB, TEST_TENANT
from tests.integration.reconciler.conftest import (
    FAST,
    ROOT_DIR,
    arm_writes,
    cluster_id,
    extension_state,
)

pytestmark = pytest.mark.integration

AKS_GK = cluster_id("aks-gk")
"""A selected cluster with the Azure Policy add-on (Gatekeeper) enabled."""
IMAGES = "/providers/Microsoft.Authorization/policyDefinitions/febd0533-8e55-448f-b837-bd0e06f16469"
AUTOMOUNT = "/providers/Microsoft.Authorization/policyDefinitions/423dd1ba-798e-40e4-9c4d-b6902674b423"
NOT_ALLOWED = "/providers/Microsoft.Authorization/policyDefinitions/6c112d4e-5bc7-47ae-a041-ea2d9dccd749"
EXT_TYPE = "Microsoft.KubernetesConfiguration/extensions"
SUB_SCOPE = f"/subscriptions/{TEST_SUB}"
SAFEGUARDS_URL = (
    f"{AKS_GK}/providers/Microsoft.ContainerService/deploymentSafeguards/default?api-version=2025-07-01"
)


@pytest.fixture
def gk(world, emulator):
    """The world plus aks-gk (add-on on) and a PolicyClient."""
    body = cluster_from_shorthand(
        {"id": AKS_GK, "location": "eastus", "tags": {"backup": "yes"}}, tenant=TEST_TENANT
    )
    body["properties"]["addonProfiles"] = {"azurepolicy": {"enabled": True, "config": None}}
    emulator.admin.put_resources({"clusters": [body]})
    emulator.admin.clear_calls()
    policy = PolicyClient(emulator.credential(), TEST_SUB, **emulator.client_kwargs())
    return world, policy


def assign(policy: PolicyClient, name: str, definition: str, **params: Any) -> None:
    """The operator's assignment (its PUT is not the product's write: the tests clear the call log after)."""
    policy.policy_assignments.create(
        SUB_SCOPE,
        name,
        {
            "properties": {
                "policyDefinitionId": definition,
                "parameters": {k: {"value": v} for k, v in params.items()},
            }
        },
    )


def reconcile(world, cid: str = AKS_GK, runtime=None, *, fresh_log: bool = True):
    if fresh_log:
        world.emulator.admin.clear_calls()
    return (runtime or world.runtime).reconciler.reconcile(parse_cluster_id(cid))


def after_the_fix() -> None:
    """The reconcile before the fix cached the policy data; a blocking verdict re-reads data older than
    CONFIRM_AGE_S, so the next reconcile after that sees the fix."""
    time.sleep(CONFIRM_AGE_S + 0.2)


def assert_blocked_without_writes(world, report, *needles: str) -> dict[str, Any]:
    assert report.outcome.kind is OutcomeKind.GAVE_UP, report.outcome
    assert arm_writes(world) == [], "nothing is written while preflight blocks"
    assert report.actions == ()
    for needle in needles:
        assert needle in report.outcome.why, (needle, report.outcome.why)
    (link,) = [link for link in report.links if link["link"] == PREFLIGHT]
    assert link["state"] == "blocked"
    journaled = world.runtime.journal.latest(report.cluster_id)
    assert journaled is not None and journaled.findings == report.findings and report.findings
    (blocking,) = [f for f in report.findings if f["severity"] == "block"]
    return blocking


def assert_installs(world, wait_until, cid: str = AKS_GK, runtime=None) -> None:
    report = reconcile(world, cid, runtime)
    assert WriteKind.CREATE_EXTENSION in [a.kind for a in report.actions], report.outcome
    assert not [f for f in report.findings if f["severity"] == "block"]
    wait_until(lambda: extension_state(world, cid) == "Succeeded", timeout_s=15)


def test_gatekeeper_allowed_images_deny_blocks_names_the_fix_and_the_install_follows_it(gk, wait_until):
    world, policy = gk
    assign(policy, "only-acr", IMAGES, allowedContainerImagesRegex=r"^myacr\.azurecr\.io/.+$")
    report = reconcile(world)
    blocking = assert_blocked_without_writes(world, report, "only-acr", "allowedContainerImagesRegex")
    assert blocking["code"] == "gatekeeper-policy" and blocking["evidence"]["parameter"] == (
        "allowedContainerImagesRegex"
    )
    # the operator applies the suggested value
    assign(policy, "only-acr", IMAGES, allowedContainerImagesRegex=blocking["evidence"]["suggested"])
    after_the_fix()
    assert_installs(world, wait_until)


def test_deployment_safeguards_enforce_blocks_and_excluding_the_namespace_lets_it_install(gk, wait_until):
    world, _policy = gk
    client = world.runtime.clients.container_service(TEST_SUB)
    put = {"properties": {"level": "Enforce", "excludedNamespaces": ["team-a"]}}
    client.send_request(HttpRequest("PUT", SAFEGUARDS_URL, json=put)).raise_for_status()
    world.emulator.admin.clear_calls()
    report = reconcile(world)
    blocking = assert_blocked_without_writes(world, report, "--excluded-ns team-a dataprotection-microsoft")
    assert blocking["code"] == "deployment-safeguards"
    fixed = {"properties": {"level": "Enforce", "excludedNamespaces": blocking["evidence"]["suggested"]}}
    client.send_request(HttpRequest("PUT", SAFEGUARDS_URL, json=fixed)).raise_for_status()
    assert_installs(world, wait_until)


def test_azure_side_deny_on_extensions_blocks_and_removing_the_type_lets_it_install(gk, wait_until):
    world, policy = gk
    assign(
        policy, "no-extensions", NOT_ALLOWED, listOfResourceTypesNotAllowed=[EXT_TYPE, "Microsoft.Web/sites"]
    )
    cid = cluster_id("aks-ok")
    report = reconcile(world, cid)
    blocking = assert_blocked_without_writes(world, report, "no-extensions", "listOfResourceTypesNotAllowed")
    assert blocking["code"] == "extension-denied-by-policy"
    assert blocking["evidence"]["suggested"] == ["Microsoft.Web/sites"]
    assign(policy, "no-extensions", NOT_ALLOWED, listOfResourceTypesNotAllowed=["Microsoft.Web/sites"])
    after_the_fix()
    assert_installs(world, wait_until, cid)


def _storage(world, **properties: Any) -> None:
    from emulator.bodies import storage_account_body

    body = storage_account_body(
        subscription_id=TEST_SUB,
        resource_group="rg-backup",
        name="stbackupeastus",
        location="eastus",
        kind="StorageV2",
        sku="Standard_LRS",
        tags=None,
    )
    body["properties"].update(properties)
    world.emulator.admin.put_resources({"storageAccounts": [body]})
    world.emulator.admin.clear_calls()


def test_storage_firewall_without_trusted_services_blocks_and_trusting_them_lets_it_install(
    world, wait_until
):
    _storage(
        world,
        networkAcls={"defaultAction": "Deny", "bypass": "None", "virtualNetworkRules": [], "ipRules": []},
    )
    cid = cluster_id("aks-ok")
    report = reconcile(world, cid)
    blocking = assert_blocked_without_writes(world, report, "stbackupeastus", "--bypass AzureServices")
    assert blocking["code"] == "storage-firewall"
    _storage(
        world,
        networkAcls={
            "defaultAction": "Deny",
            "bypass": "AzureServices",
            "virtualNetworkRules": [],
            "ipRules": [],
        },
    )
    assert_installs(world, wait_until, cid)


def test_storage_without_shared_keys_and_an_extension_not_using_entra_id_blocks_until_allowed(world):
    cid = cluster_id("aks-ok")
    world.emulator.admin.put_resources(
        {
            "extensions": [
                {
                    "clusterId": cid,
                    "name": "azure-aks-backup",
                    "extensionType": "microsoft.dataprotection.kubernetes",
                    "provisioningState": "Succeeded",
                    "configurationSettings": {"configuration.backupStorageLocation.config.useAAD": "false"},
                }
            ]
        }
    )
    _storage(world, allowSharedKeyAccess=False)
    report = reconcile(world, cid)
    blocking = assert_blocked_without_writes(world, report, "stbackupeastus", "useAAD=true")
    assert blocking["code"] == "storage-shared-key-disabled"
    _storage(world, allowSharedKeyAccess=True)
    again = reconcile(world, cid)
    assert not [f for f in again.findings if f["severity"] == "block"]
    assert again.outcome.kind is not OutcomeKind.GAVE_UP, again.outcome


def test_unregistered_provider_blocks_and_registering_it_lets_it_install(world, emulator, wait_until):
    cid = cluster_id("aks-unreg", sub=OTHER_SUB)
    emulator.admin.put_resources({"clusters": [{"id": cid, "location": "eastus", "tags": {"backup": "yes"}}]})
    runtime = world.with_config(scope={"subscriptions": [TEST_SUB, OTHER_SUB]})
    emulator.admin.clear_calls()
    try:
        report = reconcile(world, cid, runtime)
        assert report.outcome.kind is OutcomeKind.GAVE_UP and arm_writes(world) == []
        assert [f["code"] for f in report.findings] == ["provider-not-registered"]
        assert "az provider register --namespace Microsoft.KubernetesConfiguration" in report.outcome.why
        # the operator registers it: while Registering the reconcile waits (transient), then it installs
        emulator.admin.set_config(providerRegisterS=0.5)
        client = runtime.clients.container_service(OTHER_SUB)
        url = (
            f"/subscriptions/{OTHER_SUB}/providers/Microsoft.KubernetesConfiguration/register"
            "?api-version=2021-04-01"
        )
        client.send_request(HttpRequest("POST", url)).raise_for_status()
        waiting = reconcile(world, cid, runtime)
        assert waiting.outcome.kind is OutcomeKind.WAIT and "registration in progress" in waiting.outcome.why
        assert not [c for c in arm_writes(world) if "/extensions/" in c["path"].lower()]
        time.sleep(0.6)
        assert_installs(world, wait_until, cid, runtime)
    finally:
        runtime.close()


def test_audit_assignment_and_safeguards_at_warn_are_reported_and_do_not_block(gk, wait_until):
    world, policy = gk
    assign(policy, "automount-audit", AUTOMOUNT)  # default effect Audit
    client = world.runtime.clients.container_service(TEST_SUB)
    warn = {"properties": {"level": "Warn"}}
    client.send_request(HttpRequest("PUT", SAFEGUARDS_URL, json=warn)).raise_for_status()
    report = reconcile(world)
    assert WriteKind.CREATE_EXTENSION in [a.kind for a in report.actions], report.outcome
    codes = sorted((f["code"], f["severity"]) for f in report.findings)
    assert codes == [("deployment-safeguards", "warn"), ("gatekeeper-policy", "warn")]
    (link,) = [link for link in report.links if link["link"] == PREFLIGHT]
    assert link["state"] == "satisfied" and "automount-audit" in link["why"]
    journaled = world.runtime.journal.latest(AKS_GK)
    assert journaled is not None and [f["code"] for f in journaled.findings] == [
        f["code"] for f in report.findings
    ]
    wait_until(lambda: extension_state(world, AKS_GK) == "Succeeded", timeout_s=15)


def test_a_failed_install_caused_by_a_deny_is_attributed_and_not_reinstalled(gk, wait_until):
    world, policy = gk
    # the extension was installed (Failed) while the Deny applied, by something that did not look first
    assign(policy, "only-acr", IMAGES, allowedContainerImagesRegex="^myacr/.+$")
    world.emulator.admin.put_resources(
        {
            "extensions": [
                {
                    "clusterId": AKS_GK,
                    "name": "azure-aks-backup",
                    "extensionType": "microsoft.dataprotection.kubernetes",
                    "releaseTrain": "stable",
                    "configurationSettings": {"configuration.backupStorageLocation.bucket": "x"},
                }
            ]
        }
    )
    ext = world.runtime.clients.extensions(TEST_SUB)
    ext.extensions.begin_create(
        "rg1",
        "Microsoft.ContainerService",
        "managedClusters",
        "aks-gk",
        "azure-aks-backup",
        {"properties": {"extensionType": "microsoft.dataprotection.kubernetes", "releaseTrain": "stable"}},
        polling=False,
    )
    wait_until(lambda: extension_state(world, AKS_GK) == "Failed", timeout_s=15)
    world.emulator.admin.clear_calls()
    report = reconcile(world)
    blocking = assert_blocked_without_writes(world, report, "only-acr", "is Failed, caused by")
    assert 'admission webhook "validation.gatekeeper.sh"' in blocking["evidence"]["explainsFailure"]
    assert blocking["code"] == "gatekeeper-policy" and report.extension_state == "Failed"


def test_explain_http_and_cli_name_the_assignment_and_the_parameter_fix_and_write_nothing(gk):
    world, policy = gk
    assign(policy, "only-acr", IMAGES, allowedContainerImagesRegex=r"^myacr\.azurecr\.io/.+$")
    world.emulator.admin.clear_calls()
    ctx = world.runtime.handler_context()
    answer = handle_http_explain(json.dumps({"clusterId": AKS_GK}).encode(), ctx=ctx)
    assert answer.status == 200
    (blocked,) = answer.body["blockedBy"]
    assert blocked["assignment"] == "only-acr" and blocked["parameter"] == "allowedContainerImagesRegex"
    assert blocked["suggested"] == r"^myacr\.azurecr\.io/.+$|^mcr\.microsoft\.com/azurebackup/.*"
    assert "only-acr" in blocked["remedy"] and answer.body["blockedByPolicy"] == ["only-acr"]
    assert answer.body["outcome"]["kind"] == "gave_up" and answer.body["wouldDo"] == []
    env = {k: v for k, v in world.env.items() if k != "REMEDIATOR_CONFIG_FILE"}
    done = subprocess.run(
        [sys.executable, "-m", "remediator", "explain", "--config", str(world.config_path)]
        + ["--cluster-id", AKS_GK],
        cwd=ROOT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    cli = json.loads(done.stdout)
    assert cli["blockedBy"] == answer.body["blockedBy"] and cli["blockedByPolicy"] == ["only-acr"]
    assert arm_writes(world) == []


def test_the_gave_up_outcome_event_carries_the_findings(gk):
    world, policy = gk
    assign(policy, "only-acr", IMAGES, allowedContainerImagesRegex="^myacr/.+$")
    env = {
        **world.env,
        "REMEDIATOR_OUTCOME_TOPIC_ENDPOINT": world.emulator.base_url + "/api/events",
        "REMEDIATOR_OUTCOME_TOPIC_KEY": "emulator-topic-key",
    }
    world.emulator.admin.request("POST", "/eventgrid/reset")
    runtime = Runtime.from_env(env, client_options=FAST)
    try:
        reconcile(world, AKS_GK, runtime)
    finally:
        runtime.close()
    (event,) = [r["event"] for r in world.emulator.admin.request("GET", "/eventgrid/topic/events")["value"]]
    assert event["eventType"] == "AksBackupRemediator.GaveUp"
    (finding,) = event["data"]["findings"]
    assert finding["code"] == "gatekeeper-policy" and finding["evidence"]["assignmentName"] == "only-acr"
    assert finding["severity"] == "block" and finding["kind"] == "human"
