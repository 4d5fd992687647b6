"""The CLI in protect mode: ``config check`` refuses placement errors (all at once) and, with ``--inventory``,
counts role assignments per subscription against Azure's 4000; ``reconcile``/``explain`` tables summarise the
chain's links."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediator.cli import EXIT_BAD_INPUT, main
from remediator.cli.reconcile import links_summary, report_rows

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "protect.yaml"
SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
OTHER = "5e8d2a47-b1c9-4f36-8e0d-7c4a9b2f1e83"


def _clusters(n: int, *, sub: str = SUB, tag: str = "enabled") -> list[dict[str, Any]]:
    return [
        {
            "id": f"/subscriptions/{sub}/resourceGroups/rg-{i % 3}/providers/Microsoft.ContainerService/"
            f"managedClusters/aks-{i}",
            "location": "eastus" if i % 2 else "westeurope",
            "tags": {"aks-backup": tag},
            "identity": {"type": "SystemAssigned", "principalId": f"00000000-0000-0000-0000-{i:012d}"},
        }
        for i in range(n)
    ]


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_protect_example_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(EXAMPLE)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "protect" and out["storageRegions"] == ["eastus", "westeurope"]
    assert "roleAssignments" not in out


def test_inventory_counts_role_assignments_per_subscription(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = _write(tmp_path, "clusters.json", _clusters(6) + _clusters(2, tag="disabled"))
    assert main(["config", "check", str(EXAMPLE), "--inventory", str(inventory)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["selectedClusters"] == 6
    (row,) = out["roleAssignments"]
    # per cluster: the extension's Storage Blob Data Contributor, the cluster's Contributor on the snapshot
    # group and the vault's Reader on the cluster (perCluster) = 18; per region, the vault's Reader and Disk
    # Snapshot Contributor on the snapshot group and Storage Blob Data Reader on the storage account (2 x 3),
    # plus Data Operator for Managed Disks where the policy keeps backups in the vault tier (West Europe) = 7
    assert row == {
        "subscription": SUB,
        "planned": 25,
        "existing": None,
        "limit": 4000,
        "headroom": 3975,
        "status": "ok",
    }


def test_inventory_over_the_limit_exits_2_naming_the_subscription(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = _write(tmp_path, "clusters.json", _clusters(6))
    held = _write(tmp_path, "held.json", {SUB: 3980})
    code = main(["config", "check", str(EXAMPLE), "--inventory", str(inventory), "--assignments", str(held)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert f"subscription {SUB}" in err and "4005 role assignments" in err and "roleAssignmentScope" in err


def test_assignments_without_an_inventory_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held = _write(tmp_path, "held.json", {SUB: 1})
    assert main(["config", "check", str(EXAMPLE), "--assignments", str(held)]) == EXIT_BAD_INPUT
    assert "--assignments" in capsys.readouterr().err


def test_placement_errors_are_reported_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config["scope"]["subscriptions"] = [SUB, OTHER]
    for region in ("eastus", "westeurope"):
        config["regionTargets"][region]["snapshotResourceGroup"] = f"/subscriptions/{SUB}/resourceGroups/snap"
    path = _write(tmp_path, "c.json", config)
    assert main(["config", "check", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    for region in ("eastus", "westeurope"):
        assert f"regionTargets.{region}.snapshotResourceGroup" in err
    assert OTHER in err
    assert "warning:" in err  # the storage accounts: another subscription than some clusters'


def test_links_summary_counts_what_holds_and_names_the_rest() -> None:
    links = [
        {"link": "backup-vault-ready", "state": "satisfied", "why": "", "next": "nothing"},
        {"link": "backup-validated", "state": "waiting", "why": "", "next": "look again in 4 s"},
        {"link": "backup-instance-exists", "state": "deferred", "why": "", "next": ""},
        {"link": "vault-disk-data-operator", "state": "not-needed", "why": "", "next": "nothing"},
    ]
    assert links_summary(links) == (
        "2/4 hold; backup-validated waiting (next: look again in 4 s); backup-instance-exists deferred"
    )
    report = {
        "clusterId": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/"
        "managedClusters/aks",
        "links": links,
    }
    (row,) = report_rows(report)
    assert row["Links"].startswith("2/4 hold")
