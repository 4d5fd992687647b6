"""function_app.py loads in the Functions host: indexed and loaded by the Python worker's own code.

``tools/host_index.py`` drives azure-functions-runtime's ``worker_init_request -> functions_metadata_request
-> function_load_request`` in a fresh interpreter. The negative cases prove the harness rejects what the
real worker rejects (which ``app.get_functions()`` alone accepts).
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


def run_indexer(app_dir: Path, *, harness_only: bool = False) -> tuple[int, dict[str, Any]]:
    """Run the harness in a fresh interpreter. ``harness_only``: the repository is on the path only as far as
    ``tools/`` goes, so the app must load from ``app_dir`` alone (as the deployed package does)."""
    path = str(ROOT)
    if harness_only:
        shim = app_dir.parent / "harness"
        shutil.copytree(ROOT / "tools", shim / "tools", ignore=shutil.ignore_patterns("__pycache__"))
        path = str(shim)
    proc = subprocess.run(
        [sys.executable, "-m", "tools.host_index", str(app_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=app_dir if harness_only else ROOT,
        env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def indexed() -> dict[str, dict[str, Any]]:
    rc, out = run_indexer(ROOT)
    assert rc == 0 and out["init_ok"], out.get("error")
    assert out["worker"]["worker_version"] == "1.3.0"
    return {f["name"]: f for f in out["functions"]}


def _bindings(fn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in fn["raw_bindings"]}


def test_every_function_is_indexed_and_loaded(indexed: dict[str, dict[str, Any]]) -> None:
    assert set(indexed) == {
        "on_cluster_write",
        "on_policy_state",
        "reconcile_worker",
        "reconcile_poison",
        "sweep",
        "remediate",
        "explain",
        "report",
        "health",
        "openapi",
    }
    assert all(f["load_ok"] and f["script_file"] == "function_app.py" for f in indexed.values())


@pytest.mark.parametrize("name", ["on_cluster_write", "on_policy_state"])
def test_event_grid_triggers(indexed: dict[str, dict[str, Any]], name: str) -> None:
    fn = indexed[name]
    assert fn["raw_bindings"] == [{"direction": "IN", "type": "eventGridTrigger", "name": "event"}]
    assert fn["input_types"] == {"event": "eventGridTrigger"}
    assert fn["output_types"] == {} and not fn["has_return"] and not fn["is_http_func"]


def test_queue_worker_and_poison_bindings(indexed: dict[str, dict[str, Any]]) -> None:
    worker = _bindings(indexed["reconcile_worker"])["msg"]
    poison = _bindings(indexed["reconcile_poison"])["msg"]
    assert worker == {
        "direction": "IN",
        "type": "queueTrigger",
        "name": "msg",
        "queueName": "%REMEDIATOR_WORK_QUEUE%",
        "connection": "AzureWebJobsStorage",
    }
    assert poison["queueName"] == "%REMEDIATOR_WORK_QUEUE%-poison"
    assert poison["connection"] == "AzureWebJobsStorage"
    assert indexed["reconcile_worker"]["input_types"] == {"msg": "queueTrigger"}


def test_sweep_timer_binding(indexed: dict[str, dict[str, Any]]) -> None:
    timer = _bindings(indexed["sweep"])["timer"]
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%SWEEP_SCHEDULE%"
    assert timer["runOnStartup"] is False and timer["useMonitor"] is True


@pytest.mark.parametrize(
    ("name", "route", "methods"),
    [
        ("remediate", "remediate", ["POST"]),
        ("explain", "explain", ["POST"]),
        ("report", "report", ["GET"]),
        ("health", "health", ["GET"]),
        ("openapi", "openapi.json", ["GET"]),
    ],
)
def test_http_routes_need_a_function_key(
    indexed: dict[str, dict[str, Any]], name: str, route: str, methods: list[str]
) -> None:
    fn = indexed[name]
    trigger = _bindings(fn)["req"]
    assert trigger["type"] == "httpTrigger" and trigger["route"] == route and trigger["methods"] == methods
    assert trigger["authLevel"] == "FUNCTION"
    assert _bindings(fn)["$return"] == {"direction": "OUT", "type": "http", "name": "$return"}
    assert fn["is_http_func"] and fn["has_return"]


def _broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the real app with one edit (plus the product package it imports)."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    source = (ROOT / "function_app.py").read_text(encoding="utf-8")
    assert old in source, f"the real app no longer contains {old!r}; update the negative case"
    (app_dir / "function_app.py").write_text(source.replace(old, new, 1), encoding="utf-8")
    shutil.copytree(ROOT / "remediator", app_dir / "remediator", ignore=shutil.ignore_patterns("__pycache__"))
    return app_dir


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        (
            '@app.event_grid_trigger(arg_name="event")\ndef on_cluster_write',
            '@app.event_grid_trigger(arg_name="evt")\ndef on_cluster_write',
            "declared in Python but not in the function definition",
        ),
        (
            "def reconcile_worker(msg: func.QueueMessage)",
            "def reconcile_worker(msg: func.HttpRequest)",
            "do not match the corresponding function parameter",
        ),
        (
            "import azure.functions as func\n",
            "import azure.functions as func\nimport azure.mgmt.notinstalled\n",
            "No module named 'azure.mgmt.notinstalled'",
        ),
        (
            '@app.function_name("explain")',
            '@app.function_name("remediate")',
            "does not have a unique function name",
        ),
    ],
    ids=["arg-name-mismatch", "wrong-annotation", "missing-module", "duplicate-name"],
)
def test_the_harness_rejects_a_broken_app(tmp_path: Path, old: str, new: str, needle: str) -> None:
    rc, out = run_indexer(_broken_copy(tmp_path, old, new))
    assert rc == 1 and not out["init_ok"]
    assert needle in out["error"]


def _funcignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    for pattern in patterns:
        if pattern.endswith("/"):
            name = pattern.rstrip("/")
            if "/" in name:
                if relative.startswith(name + "/"):
                    return True
            elif any(fnmatch.fnmatch(part, name) for part in parts[:-1]):
                return True
        elif fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(parts[-1], pattern):
            return True
    return False


def test_the_deployed_package_alone_loads(tmp_path: Path) -> None:
    """What .funcignore leaves (the product only) is enough for the worker to index and load it all."""
    patterns = [
        line.strip()
        for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    deployed = [f for f in tracked if not _funcignored(f, patterns) and (ROOT / f).is_file()]
    assert "function_app.py" in deployed and "host.json" in deployed and "requirements.txt" in deployed
    assert not any(f.startswith(("tests/", "tools/", "emulator/", "infra/")) for f in deployed)
    app_dir = tmp_path / "site" / "wwwroot"
    for relative in deployed:
        target = app_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    rc, out = run_indexer(app_dir, harness_only=True)
    assert rc == 0 and out["init_ok"], out.get("error")
    assert len(out["functions"]) == 10 and all(f["load_ok"] for f in out["functions"])
    loaded = out["loaded_from"]
    assert "function_app" in loaded and "remediator.service.triggers.queue" in loaded
    outside = {name: path for name, path in loaded.items() if not path.startswith(str(app_dir))}
    assert outside == {}, "modules came from outside the deployed package"
