"""``python -m bench events``: time from a cluster-write event to the extension PUT, against its floor.

Each event is a ``Microsoft.Resources.ResourceWriteSuccess`` for a new, healthy, selected cluster, handed to
the product's own ``handle_cluster_write_event`` (the Functions glue's handler) with a runtime built from
settings: real SDK clients over HTTPS to the emulator (subprocess, throttling on) and the journal on Azurite.
The reconcile reads the cluster; then, together, its extensions, the storage account and the container
(while its write claim is taken in the journal table, off the critical path); then sends the container PUT
and the extension PUT together (neither depends on the other).

Measured per event, from the emulator's call log (wall-clock ``time`` and ``durationMs`` of every call):

* **to PUT**: from the handler call to the moment the emulator received the extension PUT;
* **floor**: the ARM time the task cannot avoid, in *this* event: the dependent round trips it needs before
  the extension PUT, each costing the latency actually drawn (jitter included) for the slowest call of the
  round, read from the call log's ``durationMs``:

  1. GET the cluster: nothing can be decided (selected? healthy? which region's storage account?) without it;
  2. one round of reads that need only the cluster: its extensions (is an install needed?) and the storage
     account (its blob endpoint goes into the extension body, its region must be the cluster's): the
     slower of the two.

  The backup container is *not* a prerequisite of the extension PUT: the built-in DeployIfNotExists template
  (``shared/azure-examples/azure-policy/Kubernetes_InstallAzureBackupExtension*_DINE.json``) deploys the
  container in a nested deployment that ``dependsOn`` the extension. ``durationMs`` is measured inside the
  emulator from the request's arrival to its response, so it also holds the emulator's own processing
  (about a millisecond);
* **p99/floor**: the 99th percentile of the per-event ratio *to PUT / floor* (target <= 1.2);
* **our overhead**: *to PUT* minus the wall time during which at least one ARM call of this event was in
  flight at the emulator (the union of the calls' ``[time - durationMs, time]``, so concurrent reads are
  counted once): the SDK, TLS, our code and threads.

Events are handled one at a time (no queueing in the measurement), after a few warm-up events that open the
connections. Run at 0 ms and 50 ms (+ up to 10 ms jitter) emulator latency.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.harness import EmulatorProcess, machine, percentile, save_result
from emulator.estate import cluster_from_shorthand, generate_estate
from remediator.core.decision import blockers_of
from remediator.core.snapshot import ClusterSnapshot
from remediator.service.runtime import Runtime
from remediator.service.triggers.events import handle_cluster_write_event

logger = logging.getLogger(__name__)

CLUSTER_WRITE = "Microsoft.ContainerService/managedClusters/write"


def write_event(cluster_id: str, tenant_id: str) -> dict[str, Any]:
    """A ResourceWriteSuccess event (Event Grid schema) for a cluster write, like the official sample."""
    sub = cluster_id.split("/")[2]
    return {
        "id": str(uuid.uuid4()),
        "topic": f"/subscriptions/{sub}",
        "subject": cluster_id,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()),
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "authorization": {"scope": cluster_id, "action": CLUSTER_WRITE, "evidence": {"role": "Owner"}},
            "claims": {},
            "correlationId": str(uuid.uuid4()),
            "resourceProvider": "Microsoft.ContainerService",
            "resourceUri": cluster_id,
            "operationName": CLUSTER_WRITE,
            "status": "Succeeded",
            "subscriptionId": sub,
            "tenantId": tenant_id,
        },
    }


def busy_seconds(calls: list[dict[str, Any]], *, start: float, end: float) -> float:
    """Wall time within ``[start, end]`` during which at least one of ``calls`` was in flight at the
    emulator (the union of their intervals)."""
    spans = sorted((max(start, c["time"] - c["durationMs"] / 1000), min(end, c["time"])) for c in calls)
    busy = 0.0
    cursor = start
    for begin, finish in spans:
        begin = max(begin, cursor)
        if finish > begin:
            busy += finish - begin
            cursor = finish
    return busy


FLOOR_ROUNDS: tuple[tuple[str, ...], ...] = (
    ("ManagedClusters_Get",),
    ("Extensions_List", "StorageAccounts_GetProperties"),
)
"""The dependent rounds of ARM calls the task needs before the extension PUT (see the module docstring), by
the emulator's operation names; each round costs its slowest call's ``durationMs``."""


def event_floor(calls: list[dict[str, Any]]) -> float:
    """The floor of one event, in seconds: per round, the slowest ``durationMs`` among that round's calls
    (the first call of each operation: a retried call's repeat is ours to avoid)."""
    floor = 0.0
    for operations in FLOOR_ROUNDS:
        durations = []
        for operation in operations:
            found = [c for c in calls if c["operation"] == operation]
            if not found:
                raise RuntimeError(f"no {operation} call before the extension PUT")
            durations.append(float(found[0]["durationMs"]))
        floor += max(durations) / 1000
    return floor


def measure(
    ctx: Any, admin: Any, clusters: list[str], tenant: str, *, latency_ms: float, warmup: int
) -> dict[str, Any]:
    to_put: list[float] = []
    overhead: list[float] = []
    floors: list[float] = []
    ratios: list[float] = []
    calls_before: list[int] = []
    container_first: int = 0
    outcomes: dict[str, int] = {}
    for index, cluster in enumerate(clusters):
        since = admin.calls(limit=1)
        since_seq = since[-1]["seq"] if since else 0
        started = time.time()
        result = handle_cluster_write_event(write_event(cluster, tenant), ctx=ctx)
        outcomes[result.status] = outcomes.get(result.status, 0) + 1
        calls = admin.calls(since=since_seq)
        puts = [c for c in calls if c["operation"] == "Extensions_Create"]
        if not puts:
            raise RuntimeError(f"no extension PUT for {cluster}: {result}")
        put = puts[0]
        put_at = put["time"] - put["durationMs"] / 1000
        before = [c for c in calls if c["seq"] < put["seq"]]
        if index < warmup:
            continue
        elapsed = put_at - started
        to_put.append(elapsed)
        overhead.append(elapsed - busy_seconds(before, start=started, end=put_at))
        calls_before.append(len(before))
        container_puts = [c for c in calls if c["operation"] == "BlobContainers_Create"]
        # the container PUT had its answer before the extension PUT left: the PUTs were not sent together
        if container_puts and container_puts[0]["time"] < put_at:
            container_first += 1
        if latency_ms:
            floor = event_floor(before)
            floors.append(floor)
            ratios.append(elapsed / floor)
    return {
        "latencyMs": latency_ms,
        "events": len(to_put),
        "outcomes": outcomes,
        "armCallsBeforePut": sorted(set(calls_before)),
        "floorRounds": [list(r) for r in FLOOR_ROUNDS],
        "toPutP50Ms": round(percentile(to_put, 50) * 1000, 1),
        "toPutP99Ms": round(percentile(to_put, 99) * 1000, 1),
        "floorP50Ms": round(percentile(floors, 50) * 1000, 1) if floors else None,
        "floorP99Ms": round(percentile(floors, 99) * 1000, 1) if floors else None,
        "p50OverFloor": round(percentile(ratios, 50), 3) if ratios else None,
        "p99OverFloor": round(percentile(ratios, 99), 3) if ratios else None,
        "containerPutFinishedBeforeExtensionPut": container_first,
        "ourOverheadP50Ms": round(percentile(overhead, 50) * 1000, 1),
        "ourOverheadP99Ms": round(percentile(overhead, 99) * 1000, 1),
    }


def report(run: dict[str, Any]) -> None:
    print(
        f"latency {run['latencyMs']:4.0f} ms: to PUT p50 {run['toPutP50Ms']} ms, p99 {run['toPutP99Ms']} ms;"
        f" floor p50 {run['floorP50Ms']} ms, p99 {run['floorP99Ms']} ms"
        f" ({run['armCallsBeforePut']} calls before the PUT);"
        f" per-event to-PUT/floor p50 {run['p50OverFloor']}, p99 {run['p99OverFloor']};"
        f" our overhead p50 {run['ourOverheadP50Ms']} ms, p99 {run['ourOverheadP99Ms']} ms",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench events", description=__doc__)
    parser.add_argument("--events", type=int, default=100, help="measured events per latency setting")
    parser.add_argument("--latencies", default="0,50", help="emulator base latencies in ms, comma separated")
    parser.add_argument("--jitter-ms", type=float, default=10.0, help="jitter added when latency > 0")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from tests.fixtures.azurite import start_azurite, stop_azurite

    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
    per_run = args.events + args.warmup
    subscriptions = 10
    estate = generate_estate(
        subscriptions=subscriptions,
        clusters_per_subscription=-(-2 * per_run * len(latencies) // subscriptions),
        seed=5,
        share_creating=0.0,
        share_stopped=0.0,
        share_service_principal=0.0,
        share_windows_only=0.0,
        share_arm64_only=0.0,
    )
    # Interleave subscriptions so consecutive events do not drain one subscription's read bucket.
    by_sub: dict[str, list[str]] = {}
    for item in estate["clusters"]:
        snapshot = ClusterSnapshot.from_arm(cluster_from_shorthand(item, tenant=estate["tenantId"]))
        if blockers_of(snapshot):  # e.g. an Arm64-only pool: the reconciler gives up before any PUT
            continue
        by_sub.setdefault(item["id"].split("/")[2], []).append(item["id"])
    ordered = [c for group in zip(*by_sub.values(), strict=False) for c in group]
    config = {
        "scope": {"subscriptions": list(by_sub)},
        "storage": {a["location"]: a["id"] for a in estate["storageAccounts"]},
    }
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        config_file = Path(tmp) / "config.json"
        config_file.write_text(json.dumps(config))
        azurite, azurite_proc = start_azurite(Path(tmp))
        try:
            with EmulatorProcess.start(estate=estate) as emu:
                admin = emu.admin()
                env = {
                    "REMEDIATOR_TENANT_ID": estate["tenantId"],
                    "REMEDIATOR_ARM_ENDPOINT": emu.base_url,
                    "REMEDIATOR_CA_BUNDLE": emu.ca_bundle,
                    "REMEDIATOR_CREDENTIAL": "emulator",
                    "REMEDIATOR_CONFIG_FILE": str(config_file),
                    "AzureWebJobsStorage": azurite.connection_string,
                }
                for i, latency in enumerate(latencies):
                    admin.set_config(latencyMs=latency, jitterMs=args.jitter_ms if latency else 0.0)
                    runtime = Runtime.from_env(env)
                    ctx = runtime.handler_context()
                    chunk = ordered[i * per_run : (i + 1) * per_run]
                    run = measure(
                        ctx, admin, chunk, estate["tenantId"], latency_ms=latency, warmup=args.warmup
                    )
                    run["jitterMs"] = args.jitter_ms if latency else 0.0
                    runtime.close()
                    runs.append(run)
                    report(run)
                admin.close()
        finally:
            stop_azurite(azurite_proc)
    if not args.no_save:
        data = {
            "benchmark": "events",
            "target": "p99 of per-event (event -> extension PUT) / floor <= 1.2",
            "floor": (
                "per event: durationMs of the cluster GET + the slower of (extension list, storage account"
                " GET), from the emulator's call log (the latency actually drawn, jitter included)"
            ),
            "journal": "Azurite (write claim taken while reading; journal record after the reconcile)",
            "runs": runs,
            "machine": machine(),
        }
        print(f"saved {save_result('events', data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
