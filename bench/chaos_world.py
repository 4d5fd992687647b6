"""The chaos benchmark's world: the estate and what it expects, and the processes that run the app.

Why a module of its own: ``bench/chaos.py`` measures; this builds what it measures against, the same way
for the fault-free baseline and the chaos run of one invocation (and for the small chaos test in
``make test``):

- :func:`chaos_estate`: a generated estate (several subscriptions and regions, tag rules with include and
  exclude, blocked, stopped and already protected clusters, some protected under a grant name the product
  did not choose, some clusters that only arrive during the run) and the config the app runs with;
- :class:`Expectations`: which clusters the rules select, which are blocked or stopped, which must converge
  — computed here from the estate with a small evaluator of its own, not with the product's decision;
- :class:`Runners`: N local Functions runners (``python -m tools.local_runner``, the real ``function_app.py``
  glue) on one Azurite, each its own process group, each killable with SIGKILL and restartable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.estate import generate_estate
from emulator.model.ids import deterministic_uuid
from remediator.core.naming import backup_container_name

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ("eastus", "westeurope", "centralus")
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
EXTENSION_NAME = "azure-aks-backup"
EXTENSION_TYPE = "microsoft.dataprotection.kubernetes"
SELECTION: dict[str, Any] = {
    "include": [
        {"tag": "backup", "values": ["yes", "true", "daily"]},
        {"tag": "environment", "values": ["production"]},
    ],
    "exclude": [{"tag": "env", "values": ["dev", "test"]}],
}
"""The operator's rules: two include rules and an exclude rule (exclude wins), over the generator's tags."""


# --------------------------------------------------------------------------------------------- expectations


def _matches(tags: Mapping[str, str], rule: Mapping[str, Any]) -> bool:
    wanted_key = str(rule["tag"]).lower()
    values = {str(v).lower() for v in rule.get("values") or []}
    for key, value in tags.items():
        if key.lower() == wanted_key and (not values or str(value).lower() in values):
            return True
    return False


def selected_by_rules(tags: Mapping[str, str]) -> bool:
    """The rules above, evaluated independently of the product (ASCII case-insensitive keys and values)."""
    if any(_matches(tags, rule) for rule in SELECTION["exclude"]):
        return False
    return any(_matches(tags, rule) for rule in SELECTION["include"])


def _human_blocked(cluster: Mapping[str, Any]) -> bool:
    if str(cluster.get("identity", "SystemAssigned")) == "None":
        return True
    pools = cluster.get("pools") or []
    linux_amd64 = [
        p for p in pools if p.get("osType") == "Linux" and "ps_" not in str(p.get("vmSize", "")).lower()
    ]
    return (
        not linux_amd64 or cluster.get("diskCSIDriver") is False or cluster.get("snapshotController") is False
    )


@dataclass
class Expectations:
    """What the estate (and its arrivals) should end as, by cluster id (lower case)."""

    storage: dict[str, str]
    """region -> storage account id."""
    targets: set[str] = field(default_factory=set)
    """Selected, unblocked, running: must end with the extension Succeeded, its container and its grant."""
    compliant_at_start: set[str] = field(default_factory=set)
    """Targets that already are (protected under a foreign grant name): no write may be needed."""
    unselected: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)
    stopped: set[str] = field(default_factory=set)
    names: dict[str, tuple[str, str]] = field(default_factory=dict)
    """id (lower) -> (canonical id, region)."""

    def region_of(self, cid: str) -> str:
        return self.names[cid][1]

    def container_of(self, cid: str) -> str:
        canonical = self.names[cid][0]
        name = backup_container_name(canonical.rsplit("/", 1)[-1], canonical)
        return f"{self.storage[self.region_of(cid)]}/blobServices/default/containers/{name}"


@dataclass
class ChaosEstate:
    estate: dict[str, Any]
    config: dict[str, Any]
    arrivals: list[tuple[float, dict[str, Any]]]
    """(seconds after the start, cluster shorthand): clusters created during the run (events announce
    them)."""
    expect: Expectations


def extension_principal(cluster_id: str) -> str:
    """The emulator's principal for the backup extension of a cluster (its deterministic rule)."""
    ext_id = f"{cluster_id}/providers/Microsoft.KubernetesConfiguration/extensions/{EXTENSION_NAME}"
    return deterministic_uuid("extension-identity", ext_id)


def chaos_estate(
    clusters: int,
    *,
    seed: int = 17,
    arrival_share: float = 0.15,
    arrival_rate_per_s: float = 8.0,
    subscriptions: int | None = None,
) -> ChaosEstate:
    """The estate of one chaos invocation (see the module docstring); deterministic from ``seed``."""
    subs = subscriptions or max(4, clusters // 1250)
    per_sub = math.ceil(clusters / subs)
    estate = generate_estate(
        subscriptions=subs,
        clusters_per_subscription=per_sub,
        seed=seed,
        regions=REGIONS,
        share_creating=0.03,
        share_stopped=0.05,
        share_service_principal=0.04,
        share_windows_only=0.03,
        share_arm64_only=0.03,
        share_untagged=0.1,
        share_with_backup_extension=0.0,
        creating_ready_in_s=15.0,
    )
    estate["clusters"] = estate["clusters"][:clusters]
    storage = {a["location"]: a["id"] for a in estate["storageAccounts"]}
    expect = Expectations(storage=storage)
    rng = random.Random(seed)
    estate.setdefault("roleAssignments", [])
    estate.setdefault("containers", [])
    keep: list[dict[str, Any]] = []
    arriving: list[dict[str, Any]] = []
    for cluster in estate["clusters"]:
        cid = cluster["id"]
        key = cid.lower()
        expect.names[key] = (cid, cluster["location"])
        if not selected_by_rules(cluster.get("tags") or {}):
            expect.unselected.add(key)
        elif _human_blocked(cluster):
            expect.blocked.add(key)
        elif cluster.get("powerState") == "Stopped":
            expect.stopped.add(key)
        else:
            expect.targets.add(key)
        roll = rng.random()
        if key in expect.targets and cluster.get("provisioningState") == "Succeeded" and roll < 0.08:
            # protected before the run, under a grant name the product did not choose (issue 17 F2)
            expect.compliant_at_start.add(key)
            estate["extensions"].append(
                {"clusterId": cid, "name": EXTENSION_NAME, "extensionType": EXTENSION_TYPE}
            )
            account = storage[cluster["location"]]
            name = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            estate["roleAssignments"].append(
                {
                    "id": f"{account}/providers/Microsoft.Authorization/roleAssignments/{name}",
                    "name": name,
                    "type": "Microsoft.Authorization/roleAssignments",
                    "properties": {
                        "roleDefinitionId": (
                            f"/subscriptions/{account.split('/')[2]}/providers/Microsoft.Authorization/"
                            f"roleDefinitions/{STORAGE_BLOB_DATA_CONTRIBUTOR}"
                        ),
                        "principalId": extension_principal(cid),
                        "principalType": "ServicePrincipal",
                        "scope": account,
                    },
                }
            )
            estate["containers"].append({"id": expect.container_of(key)})
            keep.append(cluster)
        elif cluster.get("provisioningState") == "Succeeded" and roll > 1 - arrival_share:
            arriving.append(cluster)
        else:
            keep.append(cluster)
    estate["clusters"] = keep
    arrivals = []
    for i, cluster in enumerate(arriving):
        body = dict(cluster, provisioningState="Creating", readyInS=2.0)
        arrivals.append((i / arrival_rate_per_s, body))
    config = {
        "scope": {"subscriptions": [s["subscriptionId"] for s in estate["subscriptions"]]},
        "storage": storage,
        "selection": SELECTION,
        "remediation": {"mode": "install", "grantStorageAccess": True},
    }
    return ChaosEstate(estate, config, arrivals, expect)


# --------------------------------------------------------------------------------------------- runners


@dataclass
class Runner:
    index: int
    proc: subprocess.Popen[str] | None = None
    url: str | None = None
    pid: int | None = None
    log_path: Path | None = None
    generation: int = 0


class Runners:
    """N local Functions runners over one storage account (the app scaled out to N instances).

    :param count: instances.
    :param settings: app settings (``local.settings.json`` Values).
    :param workdir: where each instance's stderr goes (``runner-<i>-<generation>.log``).
    """

    def __init__(self, count: int, settings: Mapping[str, str], workdir: Path) -> None:
        self.settings = dict(settings)
        self.workdir = workdir
        self.function_key = uuid.uuid4().hex
        self.master_key = uuid.uuid4().hex
        self.runners = [Runner(i) for i in range(count)]
        self.kills: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._next = 0

    def start(self, index: int, *, timeout_s: float = 90.0) -> None:
        runner = self.runners[index]
        runner.generation += 1
        runner.log_path = self.workdir / f"runner-{index}-{runner.generation}.log"
        env = {**os.environ, **self.settings, "PYTHONPATH": str(ROOT)}
        cmd = [
            sys.executable, "-m", "tools.local_runner", "--app-dir", str(ROOT), "--port", "0",
            "--max-poll-seconds", "0.5", "--function-key", self.function_key, "--master-key", self.master_key,
            "--log-level", "INFO",
        ]  # fmt: skip
        log = runner.log_path.open("w", encoding="utf-8")
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True
        )
        log.close()
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""))
        reader.start()
        reader.join(timeout_s)
        if not box or not box[0].strip():
            proc.kill()
            raise RuntimeError(f"runner {index} did not start; see {runner.log_path}")
        info = json.loads(box[0])
        with self._lock:
            runner.proc, runner.url, runner.pid = proc, str(info["url"]), proc.pid

    def start_all(self) -> None:
        threads = [threading.Thread(target=self.start, args=(i,)) for i in range(len(self.runners))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if any(r.url is None for r in self.runners):
            raise RuntimeError("not every runner started")

    def pick(self) -> str | None:
        """A live instance's URL, round robin (the Functions front end's load balancing)."""
        with self._lock:
            live = [r.url for r in self.runners if r.url is not None]
            if not live:
                return None
            self._next += 1
            return live[self._next % len(live)]

    def kill(self, index: int, *, at: float) -> dict[str, Any]:
        """SIGKILL instance ``index`` (its process group) now; it drops out of the load balancer."""
        runner = self.runners[index]
        with self._lock:
            proc, pid = runner.proc, runner.pid
            runner.url = None
        record = {"instance": index, "pid": pid, "at": at, "wall": time.time()}
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        self.kills.append(record)
        return record

    def stop_all(self) -> None:
        for runner in self.runners:
            proc = runner.proc
            runner.url = None
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

    def logs(self) -> list[Path]:
        return sorted(self.workdir.glob("runner-*.log"))
