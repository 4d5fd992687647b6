"""``python -m bench chaos``: the whole app under load, faults and host crashes, against a clean run of the
same estate (issue 17).

How the app runs: N **local Functions runners** (``tools/local_runner``), each its own process, each indexing
the real ``function_app.py`` and dispatching to it like the host (Event Grid webhook, queue trigger with the
host's 10-minute message lock and poison queue, timer via the admin API), all on one Azurite — the app
scaled out to N instances. Not direct handler calls: a crash must kill everything a host process holds (its
inline reconciles, its queue messages, its claims, its lease renewals), which only a process can show.

Each invocation runs, on the same estate (``bench/chaos_world.py``):

1. a **baseline**: no ARM faults, each event delivered once and in order, no kills;
2. the **chaos run**: every event delivered ``--copies`` times (default 4) with ``--reorder`` (30 %) of the
   copies held back 1-8 s, ARM reads and writes faulted with probability ``--faults`` (20 %: 429 with a 1 s
   and a 30 s Retry-After, 500, 409, dropped connections, 3 s delays, in equal parts), and one instance
   SIGKILLed every ``--kill-every`` seconds (then restarted), round robin.

Both: ARM throttling on, 20 ms + up to 20 ms latency, a sweep at the start, ``arrival_share`` of the clusters
created during the run (their write events drive them). The run ends when every target converged (extension
Succeeded, its container and its storage grant exist — read from the emulator's state) or at ``--timeout``.

Measured (see :func:`measure`): converged / targets; time to 50/90/99/100 % of the targets that needed work;
writes to unselected, blocked and stopped clusters; duplicate creates; lost work; poison items; give-ups by
cause and alert lines; claims left held; the longest any cluster waited on a claim of a killed process; ARM
calls per converged cluster; 429s per 1,000 writes; connection-pool warnings and non-injected timeouts in
the instances' logs. Results: ``bench/results/chaos.json`` (+ ``chaos.png``), ``docs/performance.md``.

``--throttle`` measures pacing across instances instead: no faults, no kills, one write-heavy subscription,
4 instances, once with per-process pacing (``REMEDIATOR_WRITE_BUDGET=process``, "before") and once with the
shared budget ("after"): 429s per 1,000 writes of each.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos_events import EventFanout
from bench.chaos_world import (
    EXTENSION_TYPE,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    ChaosEstate,
    Expectations,
    Runners,
    chaos_estate,
)
from bench.harness import RESULTS, EmulatorProcess, machine, percentile, save_result
from remediator.adapters.credentials import EMULATOR_PRINCIPAL
from remediator.adapters.leases import LEASE_S
from remediator.core.naming import role_assignment_name

logger = logging.getLogger(__name__)

APP_PRINCIPAL = EMULATOR_PRINCIPAL
"""The principal the app's ``EmulatorCredential`` presents (its default), which keys the call log."""
WRITE_METHODS = {"PUT", "PATCH", "DELETE", "POST"}
CLUSTER_WRITE = "Microsoft.ContainerService/managedClusters/write"


@dataclass
class ChaosOptions:
    clusters: int = 2000
    instances: int = 4
    copies: int = 4
    reorder: float = 0.3
    faults: float = 0.2
    kill_every_s: float = 40.0
    max_kills: int = 8
    kill_after_converged: int = 0
    """0: the first kill comes ``kill_every_s`` after the sweep answered. n > 0: the first kill waits until
    n targets converged (and the sweep answered), so that it lands mid-run however fast the machine is; a
    clock alone can come after the last target converged on a quick machine and then never fire."""
    restart_after_s: float = 3.0
    timeout_s: float = 3600.0
    seed: int = 17
    arrival_share: float = 0.15
    arrival_rate_per_s: float = 8.0
    latency_ms: float = 20.0
    jitter_ms: float = 20.0
    max_wait_s: int | None = None
    """``REMEDIATOR_MAX_WAIT_SECONDS`` (``None``: the product's default)."""
    poll_s: float | None = None
    write_budget: str = "shared"
    subscriptions: int | None = None
    keep_logs: Path | None = None
    """Copy the instances' logs here (for a look after the run)."""
    emulator_config: dict[str, Any] | None = None
    """Knobs set on the emulator after it started (``PATCH /_emulator/config``)."""


@dataclass
class RunState:
    started: float = 0.0
    started_wall: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0
    converged_at: dict[str, float] = field(default_factory=dict)
    sweep_done_at: float | None = None
    sweep_status: str = ""
    arrivals_done_at: float | None = None
    kills: list[dict[str, Any]] = field(default_factory=list)
    ended: float = 0.0
    reason: str = ""


# --------------------------------------------------------------------------------------------- faults


def fault_rules(probability: float) -> list[dict[str, Any]]:
    """Rules on ARM paths so that a read or a write is faulted with ``probability``, the kinds in equal
    parts: 429 with a 1 s and with a 30 s Retry-After, 500, a dropped connection, a 3 s delay, and for writes
    also 409 (ARM answers 409 to a write that meets another operation; never to a read)."""
    if probability <= 0:
        return []
    rules: list[dict[str, Any]] = []
    for method, kinds in (("GET", 5), ("PUT", 6)):
        each = 1 - (1 - probability) ** (1 / kinds)
        common = {"method": method, "path": "/subscriptions/*", "probability": each}
        if method == "PUT":
            rules.append({**common, "action": "respond", "status": 409, "code": "Conflict"})
        rules += [
            {**common, "action": "respond", "status": 429, "code": "TooManyRequests", "retryAfterS": 1},
            {**common, "action": "respond", "status": 429, "code": "TooManyRequests", "retryAfterS": 30},
            {**common, "action": "respond", "status": 500, "code": "InternalServerError"},
            {**common, "action": "drop"},
            {**common, "action": "delay", "delayMs": 3000},
        ]
    return rules


# --------------------------------------------------------------------------------------------- convergence


CONVERGENCE_COLLECTIONS = ["extensions", "containers", "role_assignments"]
"""The emulator's state :func:`converged_clusters` reads."""


def converged_clusters(state: dict[str, Any], expect: Expectations, candidates: set[str]) -> set[str]:
    """The ``candidates`` whose extension is Succeeded and whose container and storage grant exist."""
    principals: dict[str, str] = {}
    for ext in state.get("extensions") or []:
        props = ext.get("properties") or {}
        if str(props.get("extensionType", "")).lower() != EXTENSION_TYPE:
            continue
        if props.get("provisioningState") != "Succeeded":
            continue
        cluster = ext["id"].lower().split("/providers/microsoft.kubernetesconfiguration/")[0]
        identity = props.get("aksAssignedIdentity") or {}
        if identity.get("principalId"):
            principals[cluster] = str(identity["principalId"]).lower()
    containers = {c["id"].lower() for c in state.get("containers") or []}
    grants: set[tuple[str, str]] = set()
    for ra in state.get("role_assignments") or []:
        props = ra.get("properties") or {}
        if str(props.get("roleDefinitionId", "")).lower().endswith(STORAGE_BLOB_DATA_CONTRIBUTOR):
            grants.add((str(props.get("principalId", "")).lower(), str(props.get("scope", "")).lower()))
    done = set()
    for cid in candidates:
        principal = principals.get(cid)
        if principal is None or expect.container_of(cid).lower() not in containers:
            continue
        account = expect.storage[expect.region_of(cid)].lower()
        parts = account.split("/")
        scopes = {account, "/".join(parts[:5]), "/".join(parts[:3])}
        if any((principal, scope) in grants for scope in scopes):
            done.add(cid)
    return done


# --------------------------------------------------------------------------------------------- one run


class ChaosRun:
    """One run (baseline or chaos) from fresh processes to measured results."""

    def __init__(self, world: ChaosEstate, options: ChaosOptions, *, chaotic: bool, label: str) -> None:
        self.world = world
        self.options = options
        self.chaotic = chaotic
        self.label = label
        self.state = RunState()
        self._stop = threading.Event()

    def run(self) -> dict[str, Any]:
        from tools.services import start_azurite

        options = self.options
        workdir_handle = tempfile.TemporaryDirectory(prefix=f"chaos-{self.label}-")
        workdir = Path(workdir_handle.name)
        emulator = EmulatorProcess.start(
            estate=self.world.estate,
            latency_ms=options.latency_ms,
            jitter_ms=options.jitter_ms,
            throttle=True,
        )
        azurite = start_azurite(workdir)
        runners: Runners | None = None
        fanout: EventFanout | None = None
        try:
            admin = emulator.admin()
            admin.set_config(lroRetryAfterS=0, **(options.emulator_config or {}))
            settings = self._settings(emulator, azurite.info["connectionString"])
            runners = Runners(options.instances, settings, workdir)
            runners.start_all()
            fanout = EventFanout(
                runners.pick,
                copies=options.copies if self.chaotic else 1,
                reorder=options.reorder if self.chaotic else 0.0,
                seed=options.seed,
            )
            url = fanout.start()
            admin.request(
                "POST",
                "/eventgrid/subscriptions",
                {
                    "name": "to-fanout",
                    "endpointUrl": f"{url}/deliver/on_cluster_write",
                    "filter": {
                        "includedEventTypes": ["Microsoft.Resources.ResourceWriteSuccess"],
                        "advancedFilters": [
                            {
                                "operatorType": "StringIn",
                                "key": "data.operationName",
                                "values": [CLUSTER_WRITE],
                            }
                        ],
                    },
                },
            )
            if self.chaotic:
                for rule in fault_rules(options.faults):
                    admin.add_fault(**rule)
            admin.clear_calls()
            self._drive(admin, runners, fanout)
            time.sleep(5.0)  # in-flight reconciles finish (they would in Azure too)
            self._collect_calls(admin)
            final = admin.state(collections=["extensions", "containers", "role_assignments", "clusters"])
            return self._measure(final, runners, fanout, settings, azurite.info["connectionString"])
        finally:
            if fanout is not None:
                fanout.stop()
            if runners is not None:
                runners.stop_all()
                if options.keep_logs is not None:
                    import shutil

                    target = options.keep_logs / self.label
                    target.mkdir(parents=True, exist_ok=True)
                    for log in runners.logs():
                        shutil.copy2(log, target / log.name)
            azurite.stop()
            emulator.stop()
            workdir_handle.cleanup()

    def _settings(self, emulator: EmulatorProcess, connection: str) -> dict[str, str]:
        suffix = self.label.replace("-", "")[:10]
        settings = {
            "AzureWebJobsStorage": connection,
            "REMEDIATOR_TENANT_ID": str(self.world.estate["tenantId"]),
            "REMEDIATOR_CONFIG_JSON": json.dumps(self.world.config),
            "REMEDIATOR_ARM_ENDPOINT": emulator.base_url,
            "REMEDIATOR_CA_BUNDLE": emulator.ca_bundle,
            "REMEDIATOR_CREDENTIAL": "emulator",
            "REMEDIATOR_WORK_QUEUE": f"work{suffix}",
            "REMEDIATOR_JOURNAL_TABLE": f"journal{suffix}",
            "REMEDIATOR_WRITE_BUDGET": self.options.write_budget,
            "SWEEP_SCHEDULE": "0 0 * * * *",
        }
        if self.options.max_wait_s is not None:
            settings["REMEDIATOR_MAX_WAIT_SECONDS"] = str(self.options.max_wait_s)
        return settings

    # -- driving ------------------------------------------------------------------------------------------

    def _drive(self, admin: Any, runners: Runners, fanout: EventFanout) -> None:
        options = self.options
        state = self.state
        expect = self.world.expect
        pending = set(expect.targets)
        state.started = time.monotonic()
        state.started_wall = time.time()
        threads = [
            threading.Thread(target=self._arrive, args=(admin,), daemon=True),
            threading.Thread(target=self._sweep, args=(runners,), daemon=True),
        ]
        if self.chaotic and options.kill_every_s > 0:
            threads.append(threading.Thread(target=self._kill, args=(admin, runners), daemon=True))
        for t in threads:
            t.start()
        poll = options.poll_s or (3.0 if options.clusters <= 3000 else 10.0)
        deadline = state.started + options.timeout_s
        while True:
            self._collect_calls(admin)
            snapshot = admin.state(collections=CONVERGENCE_COLLECTIONS)
            now = time.monotonic() - state.started
            for cid in converged_clusters(snapshot, expect, pending):
                state.converged_at[cid] = now
                pending.discard(cid)
            done_share = 1 - len(pending) / max(1, len(expect.targets))
            logger.info(
                "%s t=%.0fs converged %d/%d (%.1f%%), fan-out pending %d, kills %d",
                self.label,
                now,
                len(expect.targets) - len(pending),
                len(expect.targets),
                100 * done_share,
                fanout.pending(),
                len(runners.kills),
            )
            if not pending and state.arrivals_done_at is not None:
                state.reason = "every target converged"
                break
            if time.monotonic() > deadline:
                state.reason = f"timeout after {options.timeout_s:.0f} s"
                break
            time.sleep(poll)
        state.ended = time.monotonic() - state.started
        self._stop.set()
        for t in threads:
            t.join(timeout=30)
        state.kills = list(runners.kills)

    def _arrive(self, admin: Any) -> None:
        batch: list[dict[str, Any]] = []
        for at, cluster in self.world.arrivals:
            while time.monotonic() - self.state.started < at:
                if batch:
                    admin.put_resources({"clusters": batch})
                    batch = []
                time.sleep(0.05)
            batch.append(cluster)
        if batch:
            admin.put_resources({"clusters": batch})
        self.state.arrivals_done_at = time.monotonic() - self.state.started

    def _sweep(self, runners: Runners) -> None:
        url = runners.pick()
        request = urllib.request.Request(
            f"{url}/admin/functions/sweep", data=b"{}", method="POST",
            headers={"x-functions-key": runners.master_key, "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=1800) as response:  # noqa: S310 - loopback
                self.state.sweep_status = str(response.status)
        except urllib.error.HTTPError as exc:
            self.state.sweep_status = f"HTTP {exc.code}"
        except OSError as exc:
            self.state.sweep_status = type(exc).__name__
        self.state.sweep_done_at = time.monotonic() - self.state.started

    def _pending_now(self, admin: Any) -> int:
        """Targets not converged in the emulator's state now (read afresh, not the drive loop's last poll):
        taken right after a kill, they were pending when it came."""
        targets = set(self.world.expect.targets)
        snapshot = admin.state(collections=CONVERGENCE_COLLECTIONS)
        return len(targets - converged_clusters(snapshot, self.world.expect, targets))

    def _kill(self, admin: Any, runners: Runners) -> None:
        state, options = self.state, self.options
        while state.sweep_done_at is None and not self._stop.wait(0.5):
            pass
        if options.kill_after_converged > 0:
            while len(state.converged_at) < options.kill_after_converged:
                if self._stop.wait(0.1):
                    return
        index = 0
        while len(runners.kills) < options.max_kills:
            if (runners.kills or options.kill_after_converged <= 0) and self._stop.wait(options.kill_every_s):
                return
            record = runners.kill(index, at=time.monotonic() - state.started)
            record["pendingTargets"] = self._pending_now(admin)
            logger.info("%s: killed instance %d (pid %s)", self.label, index, record["pid"])
            if self._stop.wait(options.restart_after_s):
                return
            runners.start(index)
            index = (index + 1) % len(runners.runners)

    def _collect_calls(self, admin: Any) -> None:
        fresh = admin.calls(since=self.state.last_seq)
        if fresh:
            self.state.last_seq = max(int(c["seq"]) for c in fresh)
            self.state.calls.extend(c for c in fresh if c.get("principal") == APP_PRINCIPAL)

    # -- measuring ----------------------------------------------------------------------------------------

    def _measure(
        self,
        final: dict[str, Any],
        runners: Runners,
        fanout: EventFanout,
        settings: dict[str, str],
        connection: str,
    ) -> dict[str, Any]:
        expect = self.world.expect
        state = self.state
        converged = converged_clusters(final, expect, set(expect.targets))
        for cid in converged:
            state.converged_at.setdefault(cid, state.ended)
        times = self._convergence_times(final, converged)
        needed = sorted(t for cid, t in times.items() if cid not in expect.compliant_at_start)
        never_converged = [math.inf] * (len(expect.targets - expect.compliant_at_start) - len(needed))
        writes = attribute_writes(state.calls, final, expect)
        journal = scan_journal(connection, settings["REMEDIATOR_JOURNAL_TABLE"])
        queues = queue_lengths(connection, settings["REMEDIATOR_WORK_QUEUE"])
        killed = {str(k["pid"]): k for k in state.kills if k.get("pid")}
        converged_wall = {cid: state.started_wall + at for cid, at in times.items()}
        dead_waits = dead_claim_waits(journal["history"], killed, converged_wall)
        killed_any_time = dead_claim_waits(journal["history"], killed, converged_wall, after_death=False)
        logs = scan_logs(runners.logs())
        arm_calls = [
            c for c in state.calls if c["path"].lower().startswith(("/subscriptions/", "/providers/"))
        ]
        write_calls = [
            c for c in arm_calls if c["method"].upper() in WRITE_METHODS and "/resources" not in c["path"]
        ]
        throttled = sum(1 for c in write_calls if c["status"] == 429)
        lost = sorted(expect.targets - converged)
        return {
            "label": self.label,
            "chaotic": self.chaotic,
            "endedBecause": state.reason,
            "durationSeconds": round(state.ended, 1),
            "sweep": {"status": state.sweep_status, "doneAtSeconds": state.sweep_done_at},
            "arrivalsDoneAtSeconds": state.arrivals_done_at,
            "targets": len(expect.targets),
            "targetsNeedingWork": len(expect.targets - expect.compliant_at_start),
            "converged": len(converged),
            "timeToConvergedSeconds": {
                # over every target that needed work: one that never converged counts as later than any
                # (a percentile it decides is null), so a run cut short cannot look fast
                "p50": _round(percentile(never_converged + needed, 50)),
                "p90": _round(percentile(never_converged + needed, 90)),
                "p99": _round(percentile(never_converged + needed, 99)),
                "p100": _round(
                    max(needed) if len(needed) == len(expect.targets - expect.compliant_at_start) else None
                ),
            },
            "writesToUnselected": writes["unselected"],
            "writesToBlocked": writes["blocked"],
            "writesToStopped": writes["stopped"],
            "writesToCompliantAtStart": writes["compliant"],
            "unattributedWrites": writes["unattributed"],
            "duplicateCreates": writes["duplicates"],
            "duplicateCreateCalls": writes["duplicated"],
            "lost": len(lost),
            "lostClusters": lost[:20],
            "poison": {"journaled": journal["poison"], "leftInPoisonQueue": queues["poison"]},
            "workQueueLeft": queues["work"],
            "giveUpsByCause": journal["giveUps"],
            "sweepBlockedDecisions": journal["sweepBlockedDecisions"],
            "giveUpAlertLines": logs["alerts"],
            "claimsLeftHeld": live_held_claims(journal["claims"], killed),
            "deadProcessClaims": journal_dead_claims(journal["claims"], killed),
            "longestWaitOnDeadClaimSeconds": dead_waits["longest"],
            "clustersBlockedByDeadClaims": dead_waits["clusters"],
            "longestWaitOnClaimOfAProcessKilledAnyTimeSeconds": killed_any_time["longest"],
            "armCalls": len(arm_calls),
            "armCallsPerConvergedCluster": round(len(arm_calls) / max(1, len(converged)), 1),
            "writes": len(write_calls),
            "throttled429PerThousandWrites": round(1000 * throttled / max(1, len(write_calls)), 1),
            "callsByStatus": dict(sorted(Counter(str(c["status"]) for c in arm_calls).items())),
            "reconciles": logs["invocations"],
            "chains": logs["chains"],
            "connectionPoolFull": logs["poolFull"],
            "timeoutsInLogs": logs["timeouts"],
            "kills": state.kills,
            "events": fanout.stats.to_json(),
            "convergenceCurve": _curve(needed),
        }

    def _convergence_times(self, final: dict[str, Any], converged: set[str]) -> dict[str, float]:
        """Per converged target, seconds from the start until it converged: the latest of its accepted
        writes (extension PUT + the emulator's install time, container PUT, grant PUT) from the call log,
        bounded by the poll that first saw it converged; 0 for a target that needed none."""
        expect = self.world.expect
        ext_s = 1.0  # emulator extensionCreateS (its default)
        last_write: dict[str, float] = {}
        origin = self.state.started_wall
        names = grant_names(final, expect)
        containers = {expect.container_of(cid).lower(): cid for cid in expect.targets}
        for call in self.state.calls:
            if call["method"].upper() != "PUT" or not 200 <= int(call["status"]) < 300:
                continue
            path = call["path"].lower().split("?")[0]
            at = float(call["time"]) - origin
            cid = None
            extra = 0.0
            if "/providers/microsoft.kubernetesconfiguration/extensions/" in path:
                cid, extra = path.split("/providers/microsoft.kubernetesconfiguration/")[0], ext_s
            elif "/containers/" in path:
                cid = containers.get(path)
            elif "/roleassignments/" in path:
                cid = names.get(path.rsplit("/", 1)[-1])
            if cid in converged:
                last_write[cid] = max(last_write.get(cid, 0.0), at + extra)
        out = {}
        for cid in converged:
            seen = self.state.converged_at.get(cid, self.state.ended)
            out[cid] = (
                min(last_write.get(cid, 0.0), seen)
                if cid in last_write
                else (0.0 if cid in expect.compliant_at_start else seen)
            )
        return out


def _round(value: float | None) -> float | None:
    return None if value is None or value != value or math.isinf(value) else round(float(value), 1)


def _curve(times: list[float]) -> list[list[float]]:
    """(seconds, share converged) at each 1 % step, for the chart."""
    if not times:
        return []
    points = []
    n = len(times)
    for i, t in enumerate(sorted(times)):
        if i == n - 1 or int(100 * (i + 1) / n) != int(100 * i / n):
            points.append([round(t, 1), round((i + 1) / n, 3)])
    return points


def grant_names(final: dict[str, Any], expect: Expectations) -> dict[str, str]:
    """The product's role-assignment name of each cluster's storage grant (by the extension principal the
    final state shows) -> the cluster: attributes grant PUTs to clusters."""
    out: dict[str, str] = {}
    for ext in final.get("extensions") or []:
        cluster = ext["id"].lower().split("/providers/microsoft.kubernetesconfiguration/")[0]
        if cluster not in expect.names:
            continue
        principal = ((ext.get("properties") or {}).get("aksAssignedIdentity") or {}).get("principalId")
        if not principal:
            continue
        account = expect.storage[expect.region_of(cluster)]
        role = f"/subscriptions/{account.split('/')[2]}/providers/Microsoft.Authorization/roleDefinitions/"
        out[role_assignment_name(account, principal, role + STORAGE_BLOB_DATA_CONTRIBUTOR).lower()] = cluster
    return out


def attribute_writes(
    calls: list[dict[str, Any]], final: dict[str, Any], expect: Expectations
) -> dict[str, Any]:
    """Every write the app sent, attributed to a cluster (extension PUT by path, container PUT by the
    product's container name, grant PUT by its deterministic name), classified against the expectations;
    accepted creates beyond the first per resource are duplicates."""
    names = grant_names(final, expect)
    containers = {expect.container_of(cid).lower(): cid for cid in expect.names}
    counts = Counter()
    accepted: Counter[str] = Counter()
    accepted_calls: dict[str, list[str]] = defaultdict(list)
    for call in calls:
        method = call["method"].upper()
        path = call["path"].lower().split("?")[0]
        if method not in WRITE_METHODS or not path.startswith("/subscriptions/"):
            continue
        cid: str | None = None
        if "/providers/microsoft.kubernetesconfiguration/extensions/" in path:
            cid = path.split("/providers/microsoft.kubernetesconfiguration/")[0]
        elif "/blobservices/default/containers/" in path:
            cid = containers.get(path)
        elif "/providers/microsoft.authorization/roleassignments/" in path:
            cid = names.get(path.rsplit("/", 1)[-1])
        if cid is None or cid not in expect.names:
            counts["unattributed"] += 1
            continue
        for kind, members in (
            ("unselected", expect.unselected),
            ("blocked", expect.blocked),
            ("stopped", expect.stopped),
            ("compliant", expect.compliant_at_start),
        ):
            if cid in members:
                counts[kind] += 1
        status = int(call["status"])
        if method == "PUT" and (status == 201 or (status == 200 and "/extensions/" in path)):
            accepted[path] += 1
            accepted_calls[path].append(f"{status} at {float(call['time']):.1f}")
    duplicates = sum(n - 1 for n in accepted.values() if n > 1)
    duplicated = {path: accepted_calls[path] for path, n in accepted.items() if n > 1}
    return {
        "unselected": counts["unselected"],
        "blocked": counts["blocked"],
        "stopped": counts["stopped"],
        "compliant": counts["compliant"],
        "unattributed": counts["unattributed"],
        "duplicates": duplicates,
        "duplicated": dict(list(duplicated.items())[:10]),
    }


# --------------------------------------------------------------------------------------------- storage


def scan_journal(connection: str, table_name: str) -> dict[str, Any]:
    """Every row of the journal table: history reports, claims, give-ups by cause, poison give-ups."""
    from azure.data.tables import TableClient

    table = TableClient.from_connection_string(connection, table_name)
    history: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    gave_up: Counter[str] = Counter()
    poison = 0
    sweep_blocked = 0
    for row in table.list_entities():
        key = str(row["RowKey"])
        if key.startswith("claim-"):
            claims.append(dict(row))
        elif key.startswith("h-") and row.get("Report"):
            report = json.loads(row["Report"])
            history.append(report)
            if row.get("Outcome") == "gave_up":
                cause = str(row.get("StateKey") or "").removeprefix("gave_up|")
                if not cause and str(report.get("correlationId", "")).startswith("sweep-"):
                    # the sweep's journaled decision about a blocked cluster (no alert, no retry)
                    sweep_blocked += 1
                    continue
                gave_up[cause or "(unknown)"] += 1
                if str(row.get("Why", "")).startswith(("work item failed on every delivery", "malformed")):
                    poison += 1
    return {
        "history": history,
        "claims": claims,
        "giveUps": dict(gave_up.most_common()),
        "sweepBlockedDecisions": sweep_blocked,
        "poison": poison,
    }


def queue_lengths(connection: str, queue: str) -> dict[str, int]:
    from azure.storage.queue import QueueClient

    out = {}
    for key, name in (("work", queue), ("poison", f"{queue}-poison")):
        try:
            props = QueueClient.from_connection_string(connection, name).get_queue_properties()
            out[key] = int(props.approximate_message_count or 0)
        except Exception:
            out[key] = 0
    return out


_HOLDER = re.compile(r"held by [^/\s]+/(\d+)/")


def dead_claim_waits(
    history: list[dict[str, Any]],
    killed: dict[str, dict[str, Any]],
    converged_wall: dict[str, float],
    *,
    after_death: bool = True,
) -> dict[str, Any]:
    """The longest any cluster waited on a claim of a dead process: from its first reconcile refused by a
    claim whose holder had been killed by then to the first reconcile that started later and was not refused
    by one, or to the moment the cluster converged, whichever came first.

    ``after_death=False`` counts refusals by a process that was killed at any time, also while it was alive
    and working (the measure before 2026-12-05, kept beside the other for comparison): a live holder's claim
    is not a dead one's, and its wait is the ordinary wait for a write in progress."""
    by_cluster: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for report in history:
        by_cluster[report["clusterId"].lower()].append(report)
    longest = 0.0
    clusters = 0
    for cid, reports in by_cluster.items():
        reports.sort(key=lambda r: r.get("startedAt", ""))
        done_at = converged_wall.get(cid)
        first: float | None = None
        blocked_here = False
        for report in reports:
            at = _epoch(report.get("startedAt", ""))
            dead = any(
                a.get("status") == "claimed-elsewhere"
                and (m := _HOLDER.search(a.get("detail", ""))) is not None
                and m.group(1) in killed
                and (not after_death or at >= float(killed[m.group(1)]["wall"]))
                for a in report.get("actions", [])
            )
            if dead:
                blocked_here = True
                first = at if first is None else first
            elif first is not None:
                end = at if done_at is None else min(at, done_at)
                longest = max(longest, end - first)
                first = None
        clusters += int(blocked_here)
        if first is not None:
            end = done_at if done_at is not None else time.time()
            longest = max(longest, max(0.0, end - first))
    return {"longest": round(longest, 1), "clusters": clusters}


def live_held_claims(claims: list[dict[str, Any]], killed: dict[str, dict[str, Any]]) -> int:
    """Claims still *held* (lease running) at the end by a process that was not killed: work in progress or
    a leak. A killed process's held claim is not counted here: it stands until its lease runs out, which
    :func:`journal_dead_claims` measures (at most the lease past the death)."""
    now = time.time()
    held = 0
    for row in claims:
        parts = str(row.get("Owner") or "").split("/")
        if len(parts) >= 2 and parts[1] in killed:
            continue
        if row.get("State", "held") == "held" and float(row.get("ExpiresAt", 0)) > now:
            held += 1
    return held


def journal_dead_claims(claims: list[dict[str, Any]], killed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Claim rows a killed process still owned at the end, and how far past its death each could stand:
    a *held* one (its write in progress when the process died) at most the lease; a *sent* one (its write
    went out) for the settle time, which holds back only a repeat of a write that already happened."""
    held: list[float] = []
    sent: list[float] = []
    for row in claims:
        owner = str(row.get("Owner") or "")
        parts = owner.split("/")
        if len(parts) >= 2 and parts[1] in killed:
            after = float(row.get("ExpiresAt", 0.0)) - float(killed[parts[1]]["wall"])
            (sent if row.get("State") == "sent" else held).append(after)
    return {
        "heldRows": len(held),
        "longestHoldAfterDeathSeconds": round(max(held), 1) if held else 0.0,
        "sentRows": len(sent),
        "longestSettleAfterDeathSeconds": round(max(sent), 1) if sent else 0.0,
        "leaseSeconds": LEASE_S,
    }


def _epoch(iso_time: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


_INVOKED = re.compile(r"Executed 'Functions\.(\w+)' \((Succeeded|Failed)")


def scan_logs(paths: list[Path]) -> dict[str, Any]:
    invocations: Counter[str] = Counter()
    chains: Counter[str] = Counter()
    pool_full = timeouts = alerts = 0
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if (m := _INVOKED.search(line)) is not None:
                    invocations[f"{m.group(1)}:{m.group(2)}"] += 1
                elif "Connection pool is full" in line:
                    pool_full += 1
                elif "joins chain" in line:
                    chains["joined"] += 1
                elif "retires" in line and "remediator.service.triggers.queue" in line:
                    chains["retired"] += 1  # the queue's line (adapters/chains logs its own beside it)
                elif "gave up on" in line:
                    alerts += 1
                if "ReadTimeout" in line or "timed out" in line:
                    timeouts += 1
    return {
        "invocations": dict(sorted(invocations.items())),
        "chains": dict(chains),
        "poolFull": pool_full,
        "timeouts": timeouts,
        "alerts": alerts,
    }


# --------------------------------------------------------------------------------------------- invocation


def verdicts(baseline: dict[str, Any] | None, chaos: dict[str, Any]) -> dict[str, Any]:
    """The issue's correctness figures and its time target (chaos p99 within 2x the fault-free run's
    time to converge every target) — reported, never asserted here."""
    out: dict[str, Any] = {
        "allConverged": chaos["converged"] == chaos["targets"],
        "noWritesToUnselected": chaos["writesToUnselected"] == 0,
        "noWritesToBlockedOrStopped": chaos["writesToBlocked"] + chaos["writesToStopped"] == 0,
        "noDuplicateCreates": chaos["duplicateCreates"] == 0,
        "nothingLost": chaos["lost"] == 0,
        "noDeadClaimWaitOverAMinute": chaos["longestWaitOnDeadClaimSeconds"] <= 60,
        "deadClaimsHeldNoLongerThanTheLease": chaos["deadProcessClaims"]["longestHoldAfterDeathSeconds"]
        <= LEASE_S + 1,
    }
    if baseline is not None:
        base_all = baseline["timeToConvergedSeconds"]["p100"]
        chaos_99 = chaos["timeToConvergedSeconds"]["p99"]
        out["baselineSeconds"] = base_all
        out["chaosP99Seconds"] = chaos_99
        if base_all and chaos_99 is not None:
            out["p99OverBaseline"] = round(chaos_99 / base_all, 2)
            out["p99WithinTwiceBaseline"] = chaos_99 <= 2 * base_all
        elif base_all:  # 99 % never converged within the run (cut by its timeout)
            out["p99OverBaseline"] = None
            out["p99WithinTwiceBaseline"] = False
    return out


def run_pair(options: ChaosOptions, *, baseline: bool = True) -> dict[str, Any]:
    world = chaos_estate(
        options.clusters,
        seed=options.seed,
        arrival_share=options.arrival_share,
        arrival_rate_per_s=options.arrival_rate_per_s,
        subscriptions=options.subscriptions,
    )
    expect = world.expect
    entry: dict[str, Any] = {
        "clusters": options.clusters,
        "instances": options.instances,
        "estate": {
            "subscriptions": len(world.estate["subscriptions"]),
            "regions": len(expect.storage),
            "targets": len(expect.targets),
            "compliantAtStart": len(expect.compliant_at_start),
            "unselected": len(expect.unselected),
            "blocked": len(expect.blocked),
            "stopped": len(expect.stopped),
            "arrivingDuringRun": len(world.arrivals),
        },
        "knobs": {
            "copies": options.copies,
            "reorder": options.reorder,
            "faultProbability": options.faults,
            "faults": "reads and writes: 429 (Retry-After 1 s), 429 (Retry-After 30 s), 500, dropped"
            " connection, +3 s delay; writes also 409",
            "killEverySeconds": options.kill_every_s,
            "maxKills": options.max_kills,
            "killAfterConverged": options.kill_after_converged,
            "latencyMs": options.latency_ms,
            "jitterMs": options.jitter_ms,
            "armThrottling": True,
            "maxWaitSeconds": options.max_wait_s,
            "writeBudget": options.write_budget,
        },
    }
    base = None
    if baseline:
        base = ChaosRun(world, options, chaotic=False, label=f"baseline-{options.clusters}").run()
        entry["baseline"] = base
    chaos = ChaosRun(world, options, chaotic=True, label=f"chaos-{options.clusters}").run()
    entry["chaos"] = chaos
    entry["verdicts"] = verdicts(base, chaos)
    return entry


WIDE_READS = {"throttle": {"enabled": True, "reads": {"burst": 1_000_000, "perSecond": 1_000_000}}}
"""Emulator knobs that leave ARM's write and delete buckets as they are and make the read bucket too wide to
bind, so that the write bucket is the limit measured."""


def run_throttle(options: ChaosOptions, *, wide_reads: bool) -> dict[str, Any]:
    """429s per 1,000 writes with 4 instances, per-process pacing against the shared budget.

    :param wide_reads: widen ARM's read bucket (see :data:`WIDE_READS`): with the real one, the reads of one
        subscription throttle first and keep the writes under their bucket in both modes.
    """
    from dataclasses import replace

    # most clusters arrive during the run and are installed from their write events, on whichever instance
    # gets the event: a burst the sweep's visibility-delay planning cannot spread
    world = chaos_estate(
        options.clusters,
        seed=options.seed,
        arrival_share=0.8,
        arrival_rate_per_s=40.0,
        subscriptions=options.subscriptions or 1,
    )
    out: dict[str, Any] = {
        "clusters": options.clusters,
        "instances": options.instances,
        "readBucket": "widened (writes are the limit measured)" if wide_reads else "ARM's (250 + 25/s)",
        "runs": {},
    }
    for budget in ("process", "shared"):
        quiet = replace(
            options,
            faults=0.0,
            kill_every_s=0.0,
            copies=1,
            reorder=0.0,
            write_budget=budget,
            emulator_config=WIDE_READS if wide_reads else None,
        )
        result = ChaosRun(world, quiet, chaotic=False, label=f"throttle-{budget}").run()
        calls = result["callsByStatus"]
        out["runs"][budget] = {
            "writes": result["writes"],
            "throttled429PerThousandWrites": result["throttled429PerThousandWrites"],
            "writes429": round(result["throttled429PerThousandWrites"] * result["writes"] / 1000),
            "all429": calls.get("429", 0),
            "converged": result["converged"],
            "targets": result["targets"],
            "p100Seconds": result["timeToConvergedSeconds"]["p100"],
            "callsByStatus": calls,
            "duplicateCreates": result["duplicateCreates"],
        }
    return out


def chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = data.get("runs") or {}
    if not runs:
        return
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, (name, entry) in zip(axes[0], sorted(runs.items()), strict=True):
        for key, style in (("baseline", "--"), ("chaos", "-")):
            result = entry.get(key)
            if not result or not result.get("convergenceCurve"):
                continue
            xs = [0.0] + [p[0] for p in result["convergenceCurve"]]
            ys = [0.0] + [100 * p[1] for p in result["convergenceCurve"]]
            ax.step(xs, ys, style, where="post", label=f"{key} ({result['converged']}/{result['targets']})")
        for kill in (entry.get("chaos") or {}).get("kills", []):
            ax.axvline(kill["at"], color="red", alpha=0.25, linewidth=1)
        ax.set_title(f"{name}: targets converged (red: host kills)")
        ax.set_xlabel("seconds since the start")
        ax.set_ylabel("% of targets that needed work")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _load() -> dict[str, Any]:
    path = RESULTS / "chaos.json"
    if path.exists():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    return {"benchmark": "chaos", "runs": {}}


def _interrupt(signum: int, frame: Any) -> None:
    del frame
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--reorder", type=float, default=0.3)
    parser.add_argument("--faults", type=float, default=0.2)
    parser.add_argument("--kill-every", type=float, default=40.0)
    parser.add_argument("--max-kills", type=int, default=8)
    parser.add_argument(
        "--kill-after-converged", type=int, default=0,
        help="the first kill waits until this many targets converged (0: --kill-every after the sweep)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--max-wait", type=int, default=None, help="REMEDIATOR_MAX_WAIT_SECONDS")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--throttle", action="store_true", help="pacing across instances, before/after")
    parser.add_argument(
        "--wide-reads", action="store_true", help="with --throttle: widen ARM's read bucket (writes bind)"
    )
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--out", type=Path, help="also write this run's full result here")
    parser.add_argument("--keep-logs", type=Path, help="copy the instances' logs into this folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    # a SIGTERM (timeout, Ctrl-C of a wrapper) unwinds like Ctrl-C, so every child process is stopped
    signal.signal(signal.SIGTERM, _interrupt)
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    options = ChaosOptions(
        clusters=args.clusters,
        instances=args.instances,
        copies=args.copies,
        reorder=args.reorder,
        faults=args.faults,
        kill_every_s=args.kill_every,
        max_kills=args.max_kills,
        kill_after_converged=args.kill_after_converged,
        timeout_s=args.timeout,
        seed=args.seed,
        max_wait_s=args.max_wait,
        keep_logs=args.keep_logs,
    )
    data = _load()
    if args.throttle:
        result = run_throttle(options, wide_reads=args.wide_reads)
        data["throttleWriteBound" if args.wide_reads else "throttle"] = result
    else:
        result = run_pair(options, baseline=not args.no_baseline)
        data.setdefault("runs", {})[f"clusters-{options.clusters}"] = result
    data["machine"] = machine()
    print(json.dumps({k: v for k, v in result.items() if k not in ("baseline", "chaos")}, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    if not args.no_save:
        path = save_result("chaos", data)
        chart(data, RESULTS / "chaos.png")
        from bench import report

        report.main([])
        print(f"saved {path} and {RESULTS / 'chaos.png'}")
    return 0
