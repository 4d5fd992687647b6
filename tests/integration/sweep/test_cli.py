"""``python -m remediator sweep`` as a user runs it: a subprocess whose settings point at the emulator (HTTPS)
and Azurite, checked against the estate; bad input exits 2 naming the field, with no query sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableClient

from tests.integration.sweep.test_inventory import SELECTION, config_for, make_estate, needing_work

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def sweep_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remediator", "sweep", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def setup(emulator: Any, tmp_path: Path) -> tuple[dict[str, Any], Path, dict[str, str]]:
    estate = make_estate()
    emulator.reset(estate)
    config = config_for(estate)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.model_dump(mode="json", by_alias=True, exclude_none=True)))
    env = {
        "REMEDIATOR_TENANT_ID": estate["tenantId"],
        "REMEDIATOR_ARM_ENDPOINT": emulator.base_url,
        "REMEDIATOR_CA_BUNDLE": str(emulator.ca_bundle),
        "REMEDIATOR_CREDENTIAL": "emulator",
        "REMEDIATOR_CONFIG_JSON": "{}",  # replaced by --config
    }
    return estate, path, env


def graph_calls(emulator: Any) -> list[dict[str, Any]]:
    return [c for c in emulator.admin.calls() if c["operation"] == "ResourceGraph_Resources"]


def test_dry_run_reports_what_it_would_enqueue_without_storage(emulator: Any, setup: Any) -> None:
    estate, path, env = setup
    done = sweep_cli(["--config", str(path), "--dry-run", "--output", "json"], env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["dryRun"] is True
    assert summary["wouldEnqueue"] == len(needing_work(estate, config_for(estate)))  # no re-verification
    assert summary["enqueued"] == 0
    named = {c["id"].lower(): c for c in summary["clusters"]}
    assert len(named) == summary["candidates"]
    assert {k for k, c in named.items() if c["decision"] == "would-enqueue"} == needing_work(
        estate, config_for(estate)
    )
    assert graph_calls(emulator)


def test_sweep_enqueues_and_journals_the_summary(
    emulator: Any, setup: Any, azurite_env: dict[str, str]
) -> None:
    estate, path, env = setup
    done = sweep_cli(["--config", str(path), "--output", "table"], {**env, **azurite_env})
    assert done.returncode == 0, done.stderr
    assert "enqueued" in done.stdout
    table = TableClient.from_connection_string(
        azurite_env["AzureWebJobsStorage"], azurite_env["REMEDIATOR_JOURNAL_TABLE"]
    )
    latest = json.loads(table.get_entity("sweeps", "latest")["Summary"])
    # plus the satisfied clusters whose daily re-verification slot fell in this first sweep's one-hour window
    assert latest["enqueued"] == len(needing_work(estate, config_for(estate))) + latest["reverified"]
    assert latest["decisionsJournaled"] > 0 and latest["decisionJournalFailures"] == 0
    assert "clusters" not in latest  # the journaled summary never carries the list
    assert latest["enqueueFailures"] == 0


def test_injection_attempt_exits_2_naming_the_field(emulator: Any, setup: Any, tmp_path: Path) -> None:
    estate, _, env = setup
    bad = {
        "scope": {"subscriptions": [s["subscriptionId"] for s in estate["subscriptions"]]},
        "storage": {a["location"]: a["id"] for a in estate["storageAccounts"]},
        "selection": {**SELECTION, "include": [{"tag": "backup'\n| take 1"}]},
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    done = sweep_cli(["--config", str(path), "--dry-run"], env)
    assert done.returncode == 2
    assert "selection.include[0].tag" in done.stderr
    assert "KQL injection" in done.stderr
    assert "Traceback" not in done.stderr
    assert graph_calls(emulator) == []
