"""``python -m bench writes``: remediate 10,000 non-compliant clusters through the write pacer.

Each cluster gets the backup **extension PUT alone** (the body the DINE deploys, sent through the product's
``ArmGateway.begin_create_extension``, which does not poll the long-running operation); the container PUT and
the role assignment are left out because they land in the storage account's subscription, where ARM's write
bucket would make the run take over half an hour for 10,000 clusters (20,000 writes at 10/s).

Writes are paced by ``remediator.core.pacing.WritePacer`` (200 burst, 10/s per subscription) on a pool of
threads fed round-robin across subscriptions, against the emulator (subprocess) with latency and ARM
throttling on. Reported: wall time, throughput, the bound ARM's write buckets allow
(``max over subscriptions of (writes - 200) / 10`` seconds), the share of that bound achieved, and the 429s
the emulator sent. ``--unpaced`` runs the same writes without the pacer for contrast.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.harness import EmulatorProcess, count_by_kind, machine, save_result, total_calls, total_status
from emulator.estate import generate_estate
from remediator.adapters.arm import ArmError, ArmGateway, Throttled
from remediator.adapters.clients import AzureClients, ClientOptions
from remediator.adapters.credentials import EmulatorCredential
from remediator.core.extension_body import backup_extension_body
from remediator.core.ids import parse_cluster_id, parse_storage_account_id
from remediator.core.naming import backup_container_name
from remediator.core.pacing import WritePacer, write_bucket_bound_s

logger = logging.getLogger(__name__)


def _round_robin(by_sub: dict[str, list[str]]) -> Iterator[str]:
    for group in itertools.zip_longest(*by_sub.values()):
        yield from (cluster for cluster in group if cluster is not None)


def run(
    *, clusters: int, subscriptions: int, latency_ms: float, jitter_ms: float, threads: int, paced: bool
) -> dict[str, Any]:
    estate = generate_estate(
        subscriptions=subscriptions,
        clusters_per_subscription=clusters // subscriptions,
        seed=3,
        share_creating=0.0,
        share_stopped=0.0,
        share_service_principal=0.0,
        share_windows_only=0.0,
        share_arm64_only=0.0,
    )
    storage = {a["location"]: a["id"] for a in estate["storageAccounts"]}
    by_sub: dict[str, list[str]] = defaultdict(list)
    location: dict[str, str] = {}
    for item in estate["clusters"]:
        by_sub[item["id"].split("/")[2]].append(item["id"])
        location[item["id"]] = item["location"]
    bound_s = write_bucket_bound_s([len(v) for v in by_sub.values()])
    print(
        f"== writes: {clusters} extension PUTs in {subscriptions} subscriptions,"
        f" {'paced' if paced else 'UNPACED'}, {threads} threads ==",
        flush=True,
    )
    with EmulatorProcess.start(estate=estate, latency_ms=latency_ms, jitter_ms=jitter_ms) as emu:
        admin = emu.admin()
        clients = AzureClients(
            EmulatorCredential("bench-writes"),
            arm_endpoint=emu.base_url,
            ca_bundle=emu.ca_bundle,
            options=ClientOptions(retry_total=3, max_retry_after_s=5.0),
        )
        pacer = WritePacer() if paced else None
        # every 429 a PUT receives (SDK-internal retries too) holds that subscription in the pacer
        gateway = ArmGateway(clients, pacer=pacer)
        failures: dict[str, int] = defaultdict(int)
        lock = threading.Lock()
        admin.clear_calls()

        def remediate(cluster: str) -> None:
            cid = parse_cluster_id(cluster)
            account = storage[location[cluster]]
            body = backup_extension_body(
                storage_account=parse_storage_account_id(account),
                container=backup_container_name(str(cid.name), cid.canonical),
                tenant_id=estate["tenantId"],
                blob_endpoint=f"https://{account.rsplit('/', 1)[-1]}.blob.core.windows.net/",
            )
            if pacer is not None:
                pacer.acquire(str(cid.subscription_id))
            try:
                gateway.begin_create_extension(cid, "azure-aks-backup", body)
            except Throttled as exc:
                if pacer is not None:
                    pacer.throttled(str(cid.subscription_id), exc.retry_after_s)
                with lock:
                    failures["Throttled"] += 1
            except ArmError as exc:
                with lock:
                    failures[type(exc).__name__] += 1

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(remediate, _round_robin(by_sub)))
        wall = time.perf_counter() - started
        by_kind = count_by_kind(admin.counters())
        admin.close()
        clients.close()
    done = clusters - sum(failures.values())
    result = {
        "clusters": clusters,
        "subscriptions": subscriptions,
        "writesPerCluster": "extension PUT only",
        "paced": paced,
        "threads": threads,
        "latencyMs": latency_ms,
        "jitterMs": jitter_ms,
        "wallSeconds": round(wall, 2),
        "succeeded": done,
        "failedByError": dict(failures),
        "throughputPerSecond": round(done / wall, 1),
        "bucketBoundSeconds": round(bound_s, 2),
        "boundThroughputPerSecond": round(clusters / bound_s, 1) if bound_s else None,
        "shareOfBound": round(bound_s / wall, 3) if bound_s else None,
        "calls": {
            "total": total_calls(by_kind),
            "throttled429": total_status(by_kind, "429"),
            "byOperation": by_kind,
        },
    }
    print(
        f"  {wall:.1f} s for {done} PUTs ({result['throughputPerSecond']}/s); bucket bound {bound_s:.1f} s"
        f" ({result['boundThroughputPerSecond']}/s) -> {100 * (result['shareOfBound'] or 0):.0f} % of bound;"
        f" 429s {result['calls']['throttled429']}; failures {dict(failures) or 0}",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench writes", description=__doc__)
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--jitter-ms", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--unpaced", action="store_true", help="also run without the pacer, for contrast")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    common = dict(
        clusters=args.clusters,
        subscriptions=args.subscriptions,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        threads=args.threads,
    )
    runs = [run(paced=True, **common)]
    if args.unpaced:
        runs.append(run(paced=False, **common))
    if not args.no_save:
        data = {"benchmark": "writes", "target": "shareOfBound >= 0.8", "runs": runs, "machine": machine()}
        print(f"saved {save_result('writes', data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
