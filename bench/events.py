"""``python -m bench events``: time from a cluster-write event to the extension PUT, against its floor.

Each event is a ``Microsoft.Resources.ResourceWriteSuccess`` for a new, healthy, selected cluster, handed to
the product's own ``handle_cluster_write_event`` (the Functions glue's handler) with a runtime built from
settings: real SDK clients over HTTPS to the emulator (subprocess, throttling on) and the journal, the write
claims and the shared write budget on Azurite. The reconcile reads the cluster while preflight's reads of
the cluster's subscription (its policy data, from Resource Graph when the process has none cached, and its
provider registrations) go out with it; then, together, its extensions, the storage account (when the process
does not remember it) and the container, while its write claim and its writes' tokens from the shared write
budget are taken in the journal table (off the critical path); then it sends the extension PUT as soon as the
extension list is in, without waiting for the container GET (the container is no dependency of the extension:
``planner.settled_writes``), and the container PUT once that GET answered.

Measured per event, from the emulator's call log (wall-clock ``time`` and ``durationMs`` of every call):

* **to PUT**: from the handler call to the moment the emulator received the extension PUT;
* **floor**: the ARM time the task cannot avoid, in *this* event: the reads a perfect implementation must
  have answered before the extension PUT, as two independent paths, each read costing the latency actually
  drawn for it in this event (jitter included), read from the call log's ``durationMs``; the floor is the
  longer path:

  1. *the cluster path*: GET the cluster (nothing can be decided without it: selected? healthy? which
     region's storage account? is the Azure Policy add-on on?), then one round of reads that need its answer,
     costing the slowest of them: its extensions (is an install needed?), the storage account (its blob
     endpoint goes into the extension body, its region must be the cluster's; only when the process does not
     remember it, as the product remembers it a minute) and Deployment Safeguards (only for a cluster with the
     Azure Policy add-on on: preflight needs it);
  2. *the subscription path*: preflight's reads that need only the subscription the event names, which
     therefore need not wait for the cluster GET: the provider registrations (read until ``Registered``) and,
     when the process has no policy data of the subscription cached (its first event within
     ``REMEDIATOR_PREFLIGHT_CACHE_SECONDS``: a *cold* event), the policy data from Resource Graph: the
     subscription's management-group ancestry then the assignments at those groups, beside the assignments
     at the subscription's own scopes (which need no ancestry), then the custom definitions they reference
     if any: ``max(ancestry + group assignments, own assignments) + definitions``. The emulator logs no
     query text, so its calls are matched to the requests the process sent (:class:`GraphLog`). The bench
     checks that the process made one policy load for a cold event, none for a warm one, and no Resource
     Graph query after the PUT that the load needed.

  Preflight gates every write (nothing is written while a known policy or setting stands in the way), so a
  cold event's policy data is a prerequisite of the PUT. The backup container is *not*: the built-in
  DeployIfNotExists template (``shared/azure-examples/azure-policy/``
  ``Kubernetes_InstallAzureBackupExtension*_DINE.json``) deploys the container in a nested deployment
  that ``dependsOn`` the extension. ``durationMs`` is
  measured inside the emulator from the request's arrival to its response, so it also holds the emulator's
  own processing (about a millisecond);
* **p99/floor**: the 99th percentile of the per-event ratio *to PUT / floor* (target <= 1.2), over every
  measured event, and separately over the warm events (policy data cached) and the cold ones;
* **our overhead**: *to PUT* minus the wall time during which at least one ARM call of this event was in
  flight at the emulator (the union of the calls' ``[time - durationMs, time]``, so concurrent reads are
  counted once): the SDK, TLS, our code, threads and the table round trips left on the path.

Events are handled one at a time (no queueing in the measurement), after a few warm-up events that open the
connections. Subscriptions take turns, so the first event of each subscription (after the warm-up: 7 of
100 with 10 subscriptions) is cold. A cold event costs three Resource Graph queries and Resource Graph allows
15 per 5 s per principal: a cold event starts at least :data:`COLD_SPACING_S` after the previous one, so the
quota stays a throughput bound (not hit here) and not a latency the floor would have to carry. Run at 0 ms
and 50 ms (+ up to 10 ms jitter) emulator latency.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, EmulatorProcess, machine, percentile, save_result
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


CLUSTER_GET = "ManagedClusters_Get"
CLUSTER_ROUND: tuple[str, ...] = (
    "Extensions_List",
    "StorageAccounts_GetProperties",
    "DeploymentSafeguards_Get",
)
"""The reads that need the cluster's answer (the extension list always; the others when the event made
them)."""
REQUIRED_IN_ROUND = "Extensions_List"
PROVIDERS = "Providers_Get"
GRAPH = "ResourceGraph_Resources"
COLD_SPACING_S = 1.2
"""At least this long between the starts of two cold events (3 queries each; Resource Graph: 15 per 5 s)."""


def _first(calls: list[dict[str, Any]], operation: str) -> dict[str, Any] | None:
    """The first call of ``operation`` (a retried call's repeat is ours to avoid)."""
    return next((c for c in calls if c["operation"] == operation), None)


class GraphLog:
    """What each Resource Graph request of the process asked for, and when (client side), so the emulator's
    calls (which log no body) can be told apart: the ancestry, the assignments at the subscription's own
    scopes, the assignments at its management groups, the definitions. A measurement hook on
    ``ResourceGraphInventory.iter_data``; it changes nothing the product does."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._original: Any = None

    @staticmethod
    def kind(request: Any) -> str:
        query = request.query.lower()
        if "resourcecontainers" in query:
            return "ancestry"
        if "policyassignments" in query:
            return "group-assignments" if request.management_groups else "assignments"
        if "policydefinitions" in query or "policysetdefinitions" in query:
            return "definitions"
        return "other"

    def install(self) -> None:
        from remediator.adapters.graph import ResourceGraphInventory

        original = self._original = ResourceGraphInventory.iter_data
        log = self

        def iter_data(inventory: Any, request: Any, **kwargs: Any) -> Any:
            started = time.time()
            try:
                yield from original(inventory, request, **kwargs)
            finally:
                with log._lock:
                    log.entries.append({"kind": log.kind(request), "start": started, "end": time.time()})

        ResourceGraphInventory.iter_data = iter_data  # type: ignore[method-assign, assignment]

    def uninstall(self) -> None:
        from remediator.adapters.graph import ResourceGraphInventory

        if self._original is not None:
            ResourceGraphInventory.iter_data = self._original  # type: ignore[method-assign]

    def since(self, when: float) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.entries if e["start"] >= when]


def label_graph_calls(calls: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """``(kind, durationMs)`` of each emulator Resource Graph call, matched one to one with the client-side
    requests by the closest start and end (the assignment of least total distance)."""
    if len(calls) != len(entries):
        raise RuntimeError(f"{len(calls)} Resource Graph calls at the emulator, {len(entries)} sent")
    if len(calls) > 6:
        raise RuntimeError(f"{len(calls)} Resource Graph calls in one event")

    def distance(call: dict[str, Any], entry: dict[str, Any]) -> float:
        begin = call["time"] - call["durationMs"] / 1000
        return float(abs(begin - entry["start"]) + abs(call["time"] - entry["end"]))

    best = min(
        itertools.permutations(range(len(entries))),
        key=lambda order: sum(distance(c, entries[i]) for c, i in zip(calls, order, strict=True)),
        default=(),
    )
    return [(entries[i]["kind"], float(c["durationMs"])) for c, i in zip(calls, best, strict=True)]


def policy_path_ms(labelled: list[tuple[str, float]]) -> float:
    """The policy data's dependent Resource Graph time: the ancestry, then the assignments at the groups it
    names, beside the assignments at the subscription's own scopes (which need no ancestry); then the
    definitions they reference."""
    by_kind: dict[str, list[float]] = {}
    for kind, duration in labelled:
        by_kind.setdefault(kind, []).append(duration)
    if "other" in by_kind:
        raise RuntimeError("a Resource Graph query preflight's policy load does not make")
    ancestry = max(by_kind.get("ancestry", [0.0]))
    groups = max(by_kind.get("group-assignments", [0.0]))
    own = max(by_kind.get("assignments", [0.0]))
    definitions = max(by_kind.get("definitions", [0.0]))
    return max(ancestry + groups, own) + definitions


def event_floor(calls: list[dict[str, Any]], graph: list[dict[str, Any]] | None = None) -> dict[str, float]:
    """The floor of one event, in seconds, and its two paths (see the module docstring), from the calls made
    before its extension PUT and (cold events) the client-side log of its Resource Graph requests."""
    get = _first(calls, CLUSTER_GET)
    if get is None or _first(calls, REQUIRED_IN_ROUND) is None:
        raise RuntimeError(f"no {CLUSTER_GET} or {REQUIRED_IN_ROUND} call before the extension PUT")
    round_two = [c for c in (_first(calls, op) for op in CLUSTER_ROUND) if c is not None]
    cluster_path = (float(get["durationMs"]) + max(float(c["durationMs"]) for c in round_two)) / 1000
    graph_calls = [c for c in calls if c["operation"] == GRAPH]
    labelled = label_graph_calls(graph_calls, graph or []) if graph_calls else []
    policy_path = policy_path_ms(labelled) / 1000
    providers = _first(calls, PROVIDERS)
    providers_path = 0.0 if providers is None else float(providers["durationMs"]) / 1000
    subscription_path = max(policy_path, providers_path)
    return {
        "floor": max(cluster_path, subscription_path),
        "clusterPath": cluster_path,
        "subscriptionPath": subscription_path,
    }


def _ratios(values: list[float]) -> dict[str, Any]:
    return {
        "events": len(values),
        "p50OverFloor": round(percentile(values, 50), 3) if values else None,
        "p99OverFloor": round(percentile(values, 99), 3) if values else None,
        "maxOverFloor": round(max(values), 3) if values else None,
    }


def measure(
    ctx: Any,
    admin: Any,
    clusters: list[str],
    tenant: str,
    *,
    latency_ms: float,
    warmup: int,
    preflight: Any,
    graph: GraphLog,
) -> dict[str, Any]:
    to_put: list[float] = []
    overhead: list[float] = []
    floors: list[float] = []
    ratios: list[float] = []
    warm_ratios: list[float] = []
    cold_ratios: list[float] = []
    subscription_led = 0
    calls_before: list[int] = []
    container_first: int = 0
    outcomes: dict[str, int] = {}
    seen: set[str] = set()
    last_cold = 0.0
    cold_measured = 0
    waited_on_container: list[float] = []
    put_before_container_answer = 0
    per_event: list[list[float]] = []
    for index, cluster in enumerate(clusters):
        subscription = cluster.split("/")[2].lower()
        cold = subscription not in seen
        seen.add(subscription)
        if cold:  # Resource Graph's quota is a throughput bound: keep it out of the latency measured
            time.sleep(max(0.0, last_cold + COLD_SPACING_S - time.monotonic()))
            last_cold = time.monotonic()
        since = admin.calls(limit=1)
        since_seq = since[-1]["seq"] if since else 0
        loads, queries = preflight.policy_reads, preflight.graph_queries
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
        graph_before = sum(1 for c in before if c["operation"] == GRAPH)
        loaded, queried = preflight.policy_reads - loads, preflight.graph_queries - queries
        if loaded != (1 if cold else 0) or graph_before != queried:
            raise RuntimeError(
                f"event {index} ({'cold' if cold else 'warm'}): {loaded} policy loads, {graph_before}"
                f" Resource Graph calls before the PUT of {queried}"
            )
        if index < warmup:
            continue
        cold_measured += cold
        elapsed = put_at - started
        to_put.append(elapsed)
        overhead.append(elapsed - busy_seconds(before, start=started, end=put_at))
        calls_before.append(len(before))
        container_puts = [c for c in calls if c["operation"] == "BlobContainers_Create"]
        # the container PUT had its answer before the extension PUT left: the PUTs were not sent together
        if container_puts and container_puts[0]["time"] < put_at:
            container_first += 1
        container_get = _first(before, "BlobContainers_Get")
        extension_list = _first(before, REQUIRED_IN_ROUND)
        if container_get is not None and extension_list is not None:
            # the container GET's answer after the extension list's: what a PUT waiting for its whole round of
            # reads would add (not in the floor); the extension PUT leaves without it
            waited_on_container.append(max(0.0, container_get["time"] - extension_list["time"]))
            put_before_container_answer += put_at < container_get["time"]
        if latency_ms:
            floor = event_floor(before, graph.since(started))
            floors.append(floor["floor"])
            ratio = elapsed / floor["floor"]
            ratios.append(ratio)
            (cold_ratios if cold else warm_ratios).append(ratio)
            per_event.append([round(ratio, 3), int(cold)])
            subscription_led += floor["subscriptionPath"] > floor["clusterPath"]
    return {
        "latencyMs": latency_ms,
        "events": len(to_put),
        "coldEvents": cold_measured,
        "outcomes": outcomes,
        "armCallsBeforePut": sorted(set(calls_before)),
        "floorPaths": {
            "cluster": [CLUSTER_GET, list(CLUSTER_ROUND)],
            "subscription": [
                PROVIDERS,
                f"{GRAPH}: max(ancestry + group assignments, own assignments) + definitions (cold events)",
            ],
        },
        "eventsLedBySubscriptionPath": subscription_led if latency_ms else None,
        "toPutP50Ms": round(percentile(to_put, 50) * 1000, 1),
        "toPutP99Ms": round(percentile(to_put, 99) * 1000, 1),
        "floorP50Ms": round(percentile(floors, 50) * 1000, 1) if floors else None,
        "floorP99Ms": round(percentile(floors, 99) * 1000, 1) if floors else None,
        "p50OverFloor": round(percentile(ratios, 50), 3) if ratios else None,
        "p99OverFloor": round(percentile(ratios, 99), 3) if ratios else None,
        "warm": _ratios(warm_ratios) if latency_ms else None,
        "cold": _ratios(cold_ratios) if latency_ms else None,
        "containerPutFinishedBeforeExtensionPut": container_first,
        "ourOverheadP50Ms": round(percentile(overhead, 50) * 1000, 1),
        "ourOverheadP99Ms": round(percentile(overhead, 99) * 1000, 1),
        "containerGetAfterExtensionListP50Ms": round(percentile(waited_on_container, 50) * 1000, 1),
        "containerGetAfterExtensionListP99Ms": round(percentile(waited_on_container, 99) * 1000, 1),
        "extensionPutBeforeContainerGetAnswered": put_before_container_answer,
        "perEvent": per_event if latency_ms else None,
        "perEventFields": ["toPut/floor", "cold"],
    }


def report(run: dict[str, Any]) -> None:
    print(
        f"latency {run['latencyMs']:4.0f} ms: to PUT p50 {run['toPutP50Ms']} ms, p99 {run['toPutP99Ms']} ms;"
        f" floor p50 {run['floorP50Ms']} ms, p99 {run['floorP99Ms']} ms"
        f" ({run['armCallsBeforePut']} calls before the PUT);"
        f" per-event to-PUT/floor p50 {run['p50OverFloor']}, p99 {run['p99OverFloor']}"
        f" (warm {run['warm']}, cold {run['cold']});"
        f" our overhead p50 {run['ourOverheadP50Ms']} ms, p99 {run['ourOverheadP99Ms']} ms;"
        " extension PUTs sent before the container GET answered:"
        f" {run['extensionPutBeforeContainerGetAnswered']}",
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
    load_before = round(os.getloadavg()[0], 2)
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
                graph = GraphLog()
                graph.install()
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
                        ctx,
                        admin,
                        chunk,
                        estate["tenantId"],
                        latency_ms=latency,
                        warmup=args.warmup,
                        preflight=runtime.reconciler.preflight,
                        graph=graph,
                    )
                    run["loadAverage1mAfter"] = round(os.getloadavg()[0], 2)
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
                "per event, the longer of two independent paths of reads the PUT needs, from the emulator's"
                " call log (the latency actually drawn, jitter included): the cluster GET + the slowest of"
                " (extension list, storage account GET when not remembered, Deployment Safeguards GET when"
                " the add-on is on); and preflight's subscription reads, which need no cluster GET: provider"
                " registrations, and on a cold event (no policy data of the subscription cached) the"
                " Resource Graph queries of its policy data: max(ancestry + group assignments, own"
                " assignments) + definitions"
            ),
            "journal": (
                "Azurite (write claim and shared write-budget tokens taken while reading; journal record"
                " after the reconcile)"
            ),
            "coldSpacingS": COLD_SPACING_S,
            "loadAverage1mBefore": load_before,
            "runs": runs,
            "machine": machine(),
        }
        print(f"saved {save_result('events', data)}")
        chart(data, RESULTS / "events.png")
        print(f"saved {RESULTS / 'events.png'}")
    return 0


def chart(data: dict[str, Any], path: Path) -> None:
    """Every measured event's to-PUT / floor, sorted, per latency with a floor (cold events marked), and the
    1.2 target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in data["runs"]:
        events = sorted(run.get("perEvent") or [], key=lambda e: e[0])
        if not events:
            continue
        xs = [100 * (i + 1) / len(events) for i in range(len(events))]
        label = f"{run['latencyMs']:.0f} ms (+{run['jitterMs']:.0f} jitter)"
        ax.plot(xs, [e[0] for e in events], label=label)
        cold = [(x, e[0]) for x, e in zip(xs, events, strict=True) if e[1]]
        if cold:
            ax.scatter([c[0] for c in cold], [c[1] for c in cold], marker="o", s=18, label="cold events")
    ax.axhline(1.2, color="red", linestyle="--", linewidth=1, label="target 1.2")
    ax.set_xlabel("events, sorted (percentile)")
    ax.set_ylabel("event -> extension PUT / floor")
    ax.set_title("python -m bench events: time to the extension PUT over its per-event floor")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
