"""One measured sweep in its own process: ``python -m bench.sweep_child ours|naive --config ...``.

Run by ``bench/sweep.py`` so each contender has its own heap; it reports its own peak RSS (``VmHWM``).
Prints one JSON line: the plan-phase wall time (inventory + decide + enqueue, measured here so interpreter
start-up and imports are not counted), how many clusters were enqueued, and an order-independent digest of
their ids so the parent can check both contenders enqueued exactly the same clusters.

Enqueueing goes to an in-memory sink (``DigestSink``): it keeps a count and a digest, not the items, so the
measurement is the sweep's, not a queue service's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)


class DigestSink:
    """An in-memory work queue that remembers only how many ids it got and their XOR-of-sha256 digest."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self._digest = 0
        self.max_delay_s = 0.0

    def add(self, cluster_id: str) -> None:
        value = int.from_bytes(hashlib.sha256(cluster_id.lower().encode()).digest()[:16], "big")
        with self._lock:
            self.count += 1
            self._digest ^= value

    def enqueue_work(
        self, cluster_id: Any, *, attempt: int, source: str, reason: str, correlation_id: str, delay_s: float
    ) -> None:
        self.add(str(cluster_id))  # the work port takes a parsed ResourceId
        with self._lock:
            self.max_delay_s = max(self.max_delay_s, delay_s)

    @property
    def digest(self) -> str:
        return f"{self._digest:032x}"


def digest_of(ids: list[str]) -> str:
    sink = DigestSink()
    for cluster_id in ids:
        sink.add(cluster_id)
    return sink.digest


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    from bench.harness import BenchCredential
    from remediator.adapters.clients import AzureClients, ClientOptions
    from remediator.adapters.graph import ResourceGraphInventory
    from remediator.core.config import load_config
    from remediator.core.pacing import WritePacer
    from remediator.service.sweep import Sweeper

    config = load_config(args.config)
    sink = DigestSink()
    pages: list[bytes] = []
    started = time.perf_counter()
    # The emulator evaluates a 100k-cluster query in Python, on a shared 2-core machine: allow it more than
    # the product's 60 s read timeout, so a slow first page is measured rather than failed (real Resource
    # Graph answers in seconds).
    clients = AzureClients(
        BenchCredential(args.principal),
        arm_endpoint=args.base_url,
        ca_bundle=args.ca_bundle,
        options=ClientOptions(read_timeout=600.0),
    )
    page_log: list[dict[str, Any]] = []

    class TimedInventory(ResourceGraphInventory):
        """Notes each page's request (which query chain it belongs to) and the emulator's request id, so the
        parent can read what the server took for it from the call log (the floor as served)."""

        def _send(self, request: Any, skip_token: str | None, *, top: int | None) -> Any:
            sent = time.time()
            answer = super()._send(request, skip_token, top=top)
            page_log.append(
                {
                    "request": request,
                    "first": not skip_token,
                    "sent": sent,
                    "requestId": answer[2].get("x-ms-request-id"),
                }
            )
            return answer

    inventory = TimedInventory(
        clients.resource_graph_pipeline(), page_size=args.page_size, page_hook=pages.append
    )
    sweeper = Sweeper(
        config=config,
        inventory=inventory,
        work=sink,
        pacer=WritePacer(),
        batch_size=args.batch_size,
        max_concurrency=args.concurrency,
        backup_instances=True,
    )
    summary = sweeper.run(dry_run=False)
    wall = time.perf_counter() - started
    plan = sweeper.plan()
    # The floor's decode: the same page bytes, decoded by a bare json.loads in this process, now (best of 3)
    decode_s = min(_decode_all(pages) for _ in range(3))
    chain_of = {}
    for kind, requests in (
        ("clusters", plan.requests),
        ("grants", plan.grants),
        ("backupInstances", plan.backup_instances),
        ("vaults", plan.vaults),
    ):
        for index, request in enumerate(requests):
            # the vault identities' grants need the vaults' rows: one chain with the vault query
            chain_of[request] = "vaults" if kind == "vaults" else f"{kind}-{index}"
    return {
        "pageLog": [
            {"chain": chain_of.get(entry["request"], "vaults"), "requestId": entry["requestId"]}
            for entry in sorted(page_log, key=lambda e: e["sent"])
        ],
        "contender": "ours",
        "planSeconds": wall,
        "enqueued": sink.count,
        "digest": sink.digest,
        "rowsFetched": summary.candidates,
        "summary": summary.to_json(),
        "pages": len(pages),
        "pageBytes": sum(len(p) for p in pages),
        "decodeSeconds": decode_s,
        "queries": {
            "clusters": len(plan.requests),
            "grants": len(plan.grants),
            "backupInstances": len(plan.backup_instances),
            "vaults": len(plan.vaults),
            "vaultGrants": 0 if plan.vault_grants is None else len(plan.vault_grants.requests([_ANY])),
        },
    }


_ANY = "00000000-0000-0000-0000-000000000000"
"""A placeholder principal: how many vault-grant requests the plan makes once it knows any principal."""


def _decode_all(pages: list[bytes]) -> float:
    started = time.perf_counter()
    for page in pages:
        json.loads(page)
    return time.perf_counter() - started


def run_naive(args: argparse.Namespace) -> dict[str, Any]:
    from bench.naive import naive_sweep
    from remediator.core.config import load_config

    config = load_config(args.config)
    sink = DigestSink()
    started = time.perf_counter()
    counts = naive_sweep(
        config,
        base_url=args.base_url,
        ca_bundle=args.ca_bundle,
        concurrency=args.concurrency,
        principal=args.principal,
        enqueue=sink.add,
    )
    wall = time.perf_counter() - started
    return {
        "contender": "naive",
        "planSeconds": wall,
        "enqueued": sink.count,
        "digest": sink.digest,
        "rowsFetched": counts["clusters"],
        "concurrency": args.concurrency,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_child")
    parser.add_argument("contender", choices=("ours", "naive"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--ca-bundle", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--principal", default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.principal is None:
        args.principal = f"bench-{args.contender}"
    if args.concurrency is None:
        args.concurrency = 16 if args.contender == "naive" else 8
    result = run_ours(args) if args.contender == "ours" else run_naive(args)
    from bench.harness import peak_rss_mb

    result["peakRssMb"] = peak_rss_mb()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
