"""The deployment preflight (tools/deploy, run by the azd preprovision hook and before Terraform): it refuses
what would break the first deployment halfway, one line per problem, before anything is created, and writes
the deployment file the templates read only when everything passed.

The live checks ask ``az``; here a stand-in ``az`` on PATH answers from a table and records every call, so the
tests see both the answers the preflight acts on and that it makes read-only calls only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.iac import INFRA, ROOT
from tools.deploy import preflight

APP_SUB = "11111111-1111-1111-1111-111111111111"
MANAGED_SUB = "22222222-2222-2222-2222-222222222222"
STORAGE_ID = (
    f"/subscriptions/{MANAGED_SUB}/resourceGroups/rg-backup"
    "/providers/Microsoft.Storage/storageAccounts/bkpeastus"
)
ROLE_ID = "33333333-3333-3333-3333-333333333333"

FAKE_AZ = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
answers = json.loads(os.environ["FAKE_AZ_ANSWERS"])
for prefix, answer in answers.items():
    if " ".join(args).startswith(prefix):
        if answer is None:
            print("ERROR: not found", file=sys.stderr)
            sys.exit(3)
        print(json.dumps(answer))
        sys.exit(0)
print("ERROR: unexpected az call " + " ".join(args), file=sys.stderr)
sys.exit(9)
"""

REGISTERED = [
    "Microsoft.ContainerService",
    "Microsoft.KubernetesConfiguration",
    "Microsoft.EventGrid",
    "Microsoft.PolicyInsights",
    "Microsoft.Web",
    "Microsoft.Storage",
    "Microsoft.Insights",
    "Microsoft.OperationalInsights",
    "Microsoft.ManagedIdentity",
    "Microsoft.Authorization",
]


def good_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"scope:\n  subscriptions: [{MANAGED_SUB}]\nstorage:\n  eastus: {STORAGE_ID}\n"
        "selection:\n  include:\n    - tag: backup\n      values: [enabled]\n"
    )
    return path


def answers(**overrides: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        f"provider list --subscription {MANAGED_SUB}": REGISTERED,
        f"provider list --subscription {APP_SUB}": REGISTERED,
        f"eventgrid system-topic list --subscription {MANAGED_SUB}": [],
        "storage account show": "eastus",
        "role definition list": [{"assignableScopes": [f"/subscriptions/{MANAGED_SUB}"]}],
    }
    table.update(overrides)
    return table


def run_prepare(
    tmp_path: Path,
    *args: str,
    az_answers: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], list[list[str]], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable))
    az.chmod(0o755)
    log = tmp_path / "az.log"
    output = tmp_path / "deployment.json"
    environ = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_AZ_LOG": str(log),
        "FAKE_AZ_ANSWERS": json.dumps(az_answers if az_answers is not None else answers()),
        **(env or {}),
    }
    cmd = command or [sys.executable, "-m", "tools.deploy", "prepare", "--output", str(output), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls, output


def common(config: Path) -> list[str]:
    return [
        "--config",
        str(config),
        "--env-name",
        "aksbr-prod",
        "--location",
        "swedencentral",
        "--subscription",
        APP_SUB,
        "--container-writer-role-id",
        ROLE_ID,
    ]


def test_the_shipped_placeholder_config_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    # Through the azd hook itself, with the shipped config and a live (not offline) run.
    hook = INFRA / "hooks" / "preprovision.sh"
    generated = INFRA / "generated" / "deployment.json"
    before = generated.stat().st_mtime_ns if generated.exists() else None
    proc, calls, _ = run_prepare(
        tmp_path,
        command=["sh", str(hook)],
        env={
            "AZURE_ENV_NAME": "aksbr-prod",
            "AZURE_LOCATION": "swedencentral",
            "AZURE_SUBSCRIPTION_ID": APP_SUB,
            "REMEDIATOR_CONTAINER_WRITER_ROLE_ID": ROLE_ID,
            "REMEDIATOR_PYTHON": sys.executable,
        },
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == (
        "preflight: scope.subscriptions[0]: /subscriptions/00000000-0000-0000-0000-000000000000 uses the"
        " placeholder subscription GUID; put a real one"
    )
    assert lines[-1] == "preflight: 2 problem(s); nothing was created"
    assert calls == []  # stopped before asking (let alone changing) anything in Azure
    assert (generated.stat().st_mtime_ns if generated.exists() else None) == before  # nothing written


def test_a_good_config_passes_and_the_deployment_file_holds_what_the_templates_read(tmp_path: Path) -> None:
    proc, calls, output = run_prepare(tmp_path, *common(good_config(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert "preflight: ok (live checks)" in proc.stdout
    document = json.loads(output.read_text())
    assert document["config"]["scope"]["subscriptions"] == [MANAGED_SUB]
    assert document["subscriptions"] == [MANAGED_SUB]
    assert document["eventSubscriptionIds"] == [MANAGED_SUB]
    assert document["storageAccounts"] == [
        {
            "region": "eastus",
            "id": STORAGE_ID,
            "subscriptionId": MANAGED_SUB,
            "resourceGroup": "rg-backup",
            "name": "bkpeastus",
        }
    ]
    assert document["hostStorageSku"] == "Standard_ZRS"  # swedencentral has ZRS
    assert document["assignAuditPolicies"] is True
    assert document["containerWriterRoleId"] == ROLE_ID
    assert len(document["nameToken"]) == 13
    assert document["entraClientId"] == "" and document["controlPlaneResourceGroups"] == []  # options off
    # read-only calls only
    verbs = {" ".join(call[:3]) for call in calls}
    assert all(call[1] in ("list", "show") or call[2] in ("list", "show") for call in calls), verbs


def test_the_issue_15_options_reach_the_deployment_file(tmp_path: Path) -> None:
    client = "44444444-4444-4444-4444-44444444AAAA"
    args = [
        *common(good_config(tmp_path)),
        "--entra-client-id",
        client,
        "--control-plane-resource-group",
        f"{MANAGED_SUB.upper()}/rg-aks-prod",
        "--control-plane-resource-group",
        f"/subscriptions/{MANAGED_SUB}/resourceGroups/RG-AKS-PROD",  # the same group: kept once
    ]
    proc, _, output = run_prepare(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(output.read_text())
    assert document["entraClientId"] == client.lower()
    assert document["controlPlaneResourceGroups"] == [{"subscriptionId": MANAGED_SUB, "name": "rg-aks-prod"}]


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--entra-client-id", "not-a-guid", "entraClientId"),
        ("--control-plane-resource-group", "rg-only", "controlPlaneResourceGroups[0]"),
        # a group outside scope.subscriptions would narrow nothing: refused
        (
            "--control-plane-resource-group",
            "99999999-9999-9999-9999-999999999999/rg",
            "controlPlaneResourceGroups[0]",
        ),
    ],
)
def test_bad_issue_15_options_are_refused(tmp_path: Path, option: str, value: str, field: str) -> None:
    proc, _, output = run_prepare(tmp_path, *common(good_config(tmp_path)), option, value)
    assert proc.returncode == 2 and f"preflight: {field}:" in proc.stderr, proc.stderr
    assert not output.exists()


def test_westus_gets_lrs_and_a_requested_zrs_there_is_refused(tmp_path: Path) -> None:
    config = good_config(tmp_path)
    args = [a if a != "swedencentral" else "westus" for a in common(config)]
    proc, _, output = run_prepare(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(output.read_text())["hostStorageSku"] == "Standard_LRS"
    proc, calls, _ = run_prepare(tmp_path, *args, "--host-storage-sku", "Standard_ZRS")
    assert proc.returncode == 2
    assert proc.stderr.startswith("preflight: hostStorageSku: Standard_ZRS does not exist in westus")


@pytest.mark.parametrize("name", ["my_env", "env.prod", "env(1)", "a" * 25, "-x"])
def test_environment_names_that_break_resource_names_are_refused(tmp_path: Path, name: str) -> None:
    args = common(good_config(tmp_path))
    position = args.index("--env-name")
    args[position : position + 2] = [f"--env-name={name}"]  # "=" form: argparse takes "-x" as a value
    proc, calls, _ = run_prepare(tmp_path, *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"preflight: environmentName: {name!r}")
    assert calls == []


def test_an_unregistered_provider_is_refused_with_the_command_to_fix_it(tmp_path: Path) -> None:
    registered = [ns for ns in REGISTERED if ns != "Microsoft.PolicyInsights"]
    proc, _, output = run_prepare(
        tmp_path,
        *common(good_config(tmp_path)),
        az_answers=answers(**{f"provider list --subscription {MANAGED_SUB}": registered}),
    )
    assert proc.returncode == 2
    (line, summary) = proc.stderr.strip().splitlines()
    assert line == (
        f"preflight: subscription {MANAGED_SUB}: resource providers not registered: Microsoft.PolicyInsights;"
        f" run az provider register --subscription {MANAGED_SUB} --namespace Microsoft.PolicyInsights"
    )
    assert not output.exists()


def test_missing_storage_account_and_unassignable_custom_role_are_refused(tmp_path: Path) -> None:
    proc, _, _ = run_prepare(
        tmp_path,
        *common(good_config(tmp_path)),
        az_answers=answers(
            **{
                "storage account show": None,
                "role definition list": [{"assignableScopes": [f"/subscriptions/{APP_SUB}"]}],
            }
        ),
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert any(line.startswith("preflight: storage.eastus:") and "does not exist" in line for line in lines)
    assert any(
        line.startswith("preflight: containerWriterRoleId: the container-writer role is not assignable")
        for line in lines
    )


def test_install_mode_without_the_custom_role_is_refused(tmp_path: Path) -> None:
    args = common(good_config(tmp_path))
    args[args.index(ROLE_ID)] = ""
    proc, calls, _ = run_prepare(tmp_path, *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("preflight: containerWriterRoleId: install mode needs the container-writer")
    assert calls == []


def test_existing_system_topics_are_reused_not_duplicated(tmp_path: Path) -> None:
    topics = [
        {
            "name": "defender-topic",
            "resourceGroup": "rg-security",
            "topicType": "Microsoft.Resources.Subscriptions",
            "source": f"/subscriptions/{MANAGED_SUB}",
            "identity": {"principalId": "44444444-4444-4444-4444-444444444444"},
        },
        {  # another source in the same subscription: not ours to reuse
            "name": "storage-topic",
            "resourceGroup": "rg-x",
            "topicType": "Microsoft.Storage.StorageAccounts",
            "source": STORAGE_ID,
        },
    ]
    proc, _, output = run_prepare(
        tmp_path,
        *common(good_config(tmp_path)),
        az_answers=answers(**{f"eventgrid system-topic list --subscription {MANAGED_SUB}": topics}),
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 existing system topic(s) reused" in proc.stdout
    assert json.loads(output.read_text())["existingSystemTopics"] == {
        MANAGED_SUB: {
            "Microsoft.Resources.Subscriptions": {
                "name": "defender-topic",
                "resourceGroup": "rg-security",
                "principalId": "44444444-4444-4444-4444-444444444444",
            }
        }
    }
    # without an identity it cannot dead-letter: refused with the command that adds one
    del topics[0]["identity"]
    proc, _, _ = run_prepare(
        tmp_path,
        *common(good_config(tmp_path)),
        az_answers=answers(**{f"eventgrid system-topic list --subscription {MANAGED_SUB}": topics}),
    )
    assert proc.returncode == 2
    assert "--identity systemassigned" in proc.stderr


def test_an_invalid_config_is_reported_by_the_products_parser(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("scope: {}\nstorage: {}\n")
    proc, calls, _ = run_prepare(tmp_path, *common(config)[2:], "--config", str(config))
    assert proc.returncode == 2
    assert proc.stderr.startswith("preflight: ") and "scope" in proc.stderr
    assert "Traceback" not in proc.stderr and calls == []


def test_host_storage_sku_rule_uses_the_cited_region_list() -> None:
    regions = json.loads((INFRA / "regions.json").read_text())
    assert "redundancy-regions-zrs" in regions["source"]
    for absent in ("westus", "northcentralus", "ukwest", "southindia"):
        assert absent not in regions["zrsRegions"]
        assert preflight.host_storage_sku(absent) == "Standard_LRS"
    assert preflight.host_storage_sku("eastus") == "Standard_ZRS"


def test_management_groups_turn_the_wiring_on_only_with_the_event_wiring_role(tmp_path: Path) -> None:
    """Wiring that follows the scope needs the Event Wiring custom role (docs/deploy.md): with its id the
    deployment file carries it (main.bicep and Terraform then set REMEDIATOR_EVENT_WIRING); without it the
    preflight still passes and says, in one line, that new subscriptions of the groups will not be wired."""
    config = tmp_path / "mg.yaml"
    config.write_text(
        f"scope:\n  managementGroups: [mg-platform]\nstorage:\n  eastus: {STORAGE_ID}\n"
        "selection:\n  include:\n    - tag: backup\n      values: [enabled]\n"
    )
    wiring_role = "9d2b2b51-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
    proc, _calls, output = run_prepare(
        tmp_path, *common(config), "--offline", "--event-wiring-role-id", wiring_role
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads(output.read_text())
    assert document["managementGroups"] == ["mg-platform"] and document["eventWiringRoleId"] == wiring_role
    assert "get no Event Grid wiring" not in proc.stdout
    proc, _calls, output = run_prepare(tmp_path, *common(config), "--offline")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(output.read_text())["eventWiringRoleId"] == ""
    (note,) = [line for line in proc.stdout.splitlines() if "note:" in line]
    assert note.startswith("preflight: note: scope.managementGroups without REMEDIATOR_EVENT_WIRING_ROLE_ID")
