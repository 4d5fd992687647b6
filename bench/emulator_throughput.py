"""How many simple ARM GETs per second the emulator serves on this machine (target: >= 500/s).

The emulator runs as a subprocess (``python -m emulator serve``, its own interpreter); the client runs
several threads, each with its own HTTP/1.1 keep-alive TLS connection, issuing managed-cluster GETs with a
bearer token for a fixed duration. Reported: requests/s, latency percentiles, error count — and, separately,
the same measurement through the real azure-mgmt-containerservice client (whose own per-call overhead on the
shared 2 cores is part of that number).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bench.harness import EmulatorProcess, machine, percentile, save_result

logger = logging.getLogger(__name__)

API = "2024-05-01"


def _raw_worker(
    base_url: str, ca_bundle: str, paths: list[str], stop_at: float, out: list[float], errors: list[str]
) -> None:
    parts = urlsplit(base_url)
    context = ssl.create_default_context(cafile=ca_bundle)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)
    headers = {"Authorization": "Bearer bench-throughput"}
    i = 0
    while time.perf_counter() < stop_at:
        path = paths[i % len(paths)]
        i += 1
        start = time.perf_counter()
        try:
            conn.request("GET", f"{path}?api-version={API}", headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors.append(str(response.status))
        except (OSError, http.client.HTTPException) as exc:
            errors.append(type(exc).__name__)
            conn.close()
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)
            continue
        out.append(time.perf_counter() - start)
    conn.close()


def _sdk_worker(
    base_url: str, ca_bundle: str, ids: list[str], stop_at: float, out: list[float], errors: list[str]
) -> None:
    from azure.mgmt.containerservice import ContainerServiceClient

    from emulator.credentials import EmulatorCredential

    sub = ids[0].split("/")[2]
    client = ContainerServiceClient(
        EmulatorCredential("bench-sdk"), sub, base_url=base_url, connection_verify=ca_bundle
    )
    targets = [(i.split("/")[4], i.split("/")[-1]) for i in ids if i.split("/")[2] == sub]
    i = 0
    while time.perf_counter() < stop_at:
        rg, name = targets[i % len(targets)]
        i += 1
        start = time.perf_counter()
        try:
            client.managed_clusters.get(rg, name)
        except Exception as exc:  # report, don't hide
            errors.append(type(exc).__name__)
            continue
        out.append(time.perf_counter() - start)
    client.close()


def measure(
    worker: Callable[..., None],
    base_url: str,
    ca_bundle: str,
    targets: list[str],
    *,
    threads: int,
    seconds: float,
) -> dict[str, Any]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    # each thread opens its connection inside the timed window (one TLS handshake per thread is counted)
    stop_at = time.perf_counter() + seconds
    pool = [
        threading.Thread(target=worker, args=(base_url, ca_bundle, targets, stop_at, latencies[i], errors))
        for i in range(threads)
    ]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    flat = sorted(x for chunk in latencies for x in chunk)
    return {
        "threads": threads,
        "seconds": round(elapsed, 3),
        "requests": len(flat),
        "requestsPerSecond": round(len(flat) / elapsed, 1),
        "p50Ms": round(percentile(flat, 50) * 1000, 3) if flat else None,
        "p95Ms": round(percentile(flat, 95) * 1000, 3) if flat else None,
        "p99Ms": round(percentile(flat, 99) * 1000, 3) if flat else None,
        "errors": len(errors),
        "errorKinds": sorted(set(errors))[:10],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench emulator-throughput", description=__doc__)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clusters", type=int, default=100, help="clusters in the generated estate")
    parser.add_argument("--skip-sdk", action="store_true", help="only the raw keep-alive client")
    parser.add_argument("--target", type=float, default=500.0, help="requests/s the raw run must reach")
    args = parser.parse_args(argv)

    from emulator.estate import generate_estate

    estate = generate_estate(subscriptions=1, clusters_per_subscription=args.clusters, seed=11)
    ids = [c["id"] for c in estate["clusters"]]
    result: dict[str, Any] = {"machine": machine(), "estateClusters": len(ids)}
    with EmulatorProcess.start(estate=estate, throttle=False) as emu:
        # one untimed call per path shape so lazily built state is warm
        measure(_raw_worker, emu.base_url, emu.ca_bundle, ids, threads=1, seconds=0.3)
        result["raw"] = measure(
            _raw_worker, emu.base_url, emu.ca_bundle, ids, threads=args.threads, seconds=args.seconds
        )
        if not args.skip_sdk:
            result["sdk"] = measure(
                _sdk_worker, emu.base_url, emu.ca_bundle, ids, threads=args.threads, seconds=args.seconds
            )
        counters = emu.admin().counters()
        result["serverCounted"] = counters["byOperation"].get("ManagedClusters_Get", {})
    path = save_result("emulator_throughput", result)
    raw = result["raw"]
    print(
        f"raw keep-alive HTTPS, {raw['threads']} threads/connections: {raw['requestsPerSecond']} req/s "
        f"(p50 {raw['p50Ms']} ms, p95 {raw['p95Ms']} ms, errors {raw['errors']}) over {raw['seconds']} s"
    )
    if "sdk" in result:
        sdk = result["sdk"]
        print(
            f"azure-mgmt-containerservice client, {sdk['threads']} threads: {sdk['requestsPerSecond']} req/s "
            f"(p50 {sdk['p50Ms']} ms, p95 {sdk['p95Ms']} ms, errors {sdk['errors']})"
        )
    print(f"server counted: {json.dumps(result['serverCounted'])}; saved {path}")
    ok = raw["requestsPerSecond"] >= args.target and raw["errors"] == 0
    print(f"target {args.target:.0f} req/s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
