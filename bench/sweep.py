"""``python -m bench sweep``: our Resource Graph sweep against the naive list-then-GET sweep, same estate.

For each cluster count: generate the estate, start the emulator as a subprocess (latency 50 ms + up to 10 ms
jitter, ARM throttling and the Resource Graph quota on), then run each contender in its own child process:

* **ours** (``remediator.service.sweep.Sweeper`` over ``remediator.adapters.graph``): Resource Graph
  inventory with the whole visible chain (clusters left-joined with their backup extension in one query; the
  storage grants from ``authorizationresources`` and the backup instances from ``recoveryservicesresources``
  in side queries joined in memory), core decision, batched enqueue with write pacing;
* **naive** (``bench/naive.py``): list clusters per subscription, GET extensions per cluster, one role-
  assignment list per storage account, 16 threads.

Only the plan phase (inventory + decide + enqueue into an in-memory sink) is timed. Reported per contender:
wall time, emulator calls by operation and status (the emulator's own counters), 429s, peak RSS (the
child's ``VmHWM``). Both must enqueue exactly the clusters computed from the estate directly (the chain:
extension not Succeeded, or its identity without the storage grant). Also reported: the floor, which is the
ARM time the pages ours needed took *as served in this run* (each page at the ``servedMs`` the emulator's
call log gives the request id ours received: from its arrival, a new connection's TLS handshake included, to
the response written: latency drawn, jitter, the server's query time and serialization; the longest
chain of dependent pages, within the Resource Graph quota; the same definition as ``bench/events.py``'s floor)
plus the time a bare ``json.loads`` takes to decode the very page bytes ours received, measured in ours' own
process in the same run; and the ratios ours/naive and ours/floor. Beside it, the same pages at the base
latency alone (a Resource Graph that evaluates every query instantly). Targets are printed, never asserted.

``--mode protect`` runs the same comparison on protect mode's chain (``bench/estates.py:
add_protect_chain``): ours adds the vault query and, once it named the vaults' principals, the vault
identities' grants (a dependent query), the clusters' Contributor grants and the backup instances in the
vaults' subscriptions; naive adds a vault GET per region, principal-filtered role lists per subscription, the
snapshot groups' role lists and a backup-instance list per cluster. Results go to
``bench/results/sweep_protect.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.estates import (
    bench_config,
    bench_estate,
    expected_protect_work,
    expected_work,
    granted_without_work,
    in_scope_unprotected,
    vault_principal,
    write_config,
)
from bench.harness import (
    RESULTS,
    EmulatorProcess,
    count_by_kind,
    machine,
    run_child,
    save_result,
    total_calls,
    total_status,
)
from bench.sweep_child import digest_of

logger = logging.getLogger(__name__)

ARG_QUOTA = 15
ARG_WINDOW_S = 5.0
ARG_PAGE = 1000
ARM_READ_BURST = 250
ARM_READ_REFILL = 25.0


def arg_floor_s(rows: int, *, rtt_s: float, quota: int = ARG_QUOTA, window_s: float = ARG_WINDOW_S) -> float:
    """Least time to page ``rows`` through one Resource Graph query: pages follow each other (each needs the
    previous skip token), one round trip each, and at most ``quota`` pages per ``window_s``."""
    pages = max(1, math.ceil(rows / ARG_PAGE))
    last = pages - 1
    return max(last * rtt_s, (last // quota) * window_s) + rtt_s


def chain_floor_s(
    chains: list[int], *, rtt_s: float, quota: int = ARG_QUOTA, window_s: float = ARG_WINDOW_S
) -> float:
    """Least time for several independent paged queries run side by side (the clusters, the grants, the
    backup instances): the longest chain of dependent pages, one round trip each, and at most ``quota``
    queries per ``window_s`` over all of them."""
    longest = max(chains, default=1)
    total = sum(chains)
    return max((longest - 1) * rtt_s, ((total - 1) // quota) * window_s) + rtt_s


def served_chains(page_log: list[dict[str, Any]], calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Seconds the emulator took to answer each query chain's pages (its call log's ``servedMs``: from the
    request's arrival, a new connection's accept and TLS handshake included, to the response written; matched
    by the ``x-ms-request-id`` ours received), by chain; ``unmatched``: pages without a logged call."""
    took = {
        c["requestId"]: float(c.get("servedMs", c["durationMs"])) / 1000.0
        for c in calls
        if c.get("requestId")
    }
    chains: dict[str, float] = {}
    unmatched = 0
    for page in page_log:
        seconds = took.get(page.get("requestId") or "")
        if seconds is None:
            unmatched += 1
            continue
        chains[page["chain"]] = chains.get(page["chain"], 0.0) + seconds
    return {"chains": chains, "unmatched": unmatched}


def served_floor_s(
    chains: Mapping[str, float],
    *,
    pages: int,
    rtt_s: float,
    quota: int = ARG_QUOTA,
    window_s: float = ARG_WINDOW_S,
) -> float:
    """The longest chain as served, and at least what the quota allows for ``pages`` queries."""
    return max(max(chains.values(), default=rtt_s), ((pages - 1) // quota) * window_s + rtt_s)


def arm_read_floor_s(reads_per_subscription: list[int], *, rtt_s: float) -> float:
    """Least time the ARM read buckets (250 burst, 25/s per subscription and principal) allow, plus the two
    dependent round trips (list, then GET) the naive shape needs at minimum."""
    worst = max(reads_per_subscription, default=0)
    return max(0.0, (worst - ARM_READ_BURST) / ARM_READ_REFILL) + 2 * rtt_s


def _calls_summary(counters: Mapping[str, Any]) -> dict[str, Any]:
    by_kind = count_by_kind(counters)
    return {
        "total": total_calls(by_kind),
        "throttled429": total_status(by_kind, "429"),
        "byOperation": by_kind,
    }


def run_one(
    *,
    clusters: int,
    subscriptions: int,
    latency_ms: float,
    jitter_ms: float,
    naive: bool,
    naive_concurrency: int,
    seed: int,
    mode: str = "install",
) -> dict[str, Any]:
    estate = bench_estate(clusters=clusters, subscriptions=subscriptions, seed=seed, mode=mode)
    config = bench_config(estate, mode=mode)
    expected = expected_protect_work(estate, config) if mode == "protect" else expected_work(estate, config)
    expected_digest = digest_of(expected)
    unprotected = in_scope_unprotected(estate)
    vault_principals = {
        vault_principal(v["id"]) for v in (estate.get("dataProtection") or {}).get("vaults", [])
    }
    vault_grants = sum(
        1 for a in estate.get("roleAssignments", []) if a["properties"]["principalId"] in vault_principals
    )
    grants = len(estate.get("roleAssignments", [])) - vault_grants
    instances = len(estate.get("resources", []))
    granted = granted_without_work(estate)
    per_sub = clusters // subscriptions
    print(
        f"\n== {clusters} clusters in {subscriptions} subscriptions: {len(expected)} need work,"
        f" {unprotected} lack a Succeeded extension, {grants} grants, {instances} backup instances ==",
        flush=True,
    )
    result: dict[str, Any] = {
        "mode": mode,
        "clusters": clusters,
        "subscriptions": subscriptions,
        "needWork": len(expected),
        "withoutSucceededExtension": unprotected,
        "storageGrants": grants,
        "vaultGrants": vault_grants,
        "grantedClusters": granted,
        "backupInstances": instances,
        "latencyMs": latency_ms,
        "jitterMs": jitter_ms,
        "sink": "in-memory (count + digest of ids)",
    }
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        config_file = write_config(config, Path(tmp) / "config.json")
        with EmulatorProcess.start(estate=estate, latency_ms=latency_ms, jitter_ms=jitter_ms) as emu:
            del estate
            admin = emu.admin()
            common = ["--base-url", emu.base_url, "--ca-bundle", emu.ca_bundle, "--config", str(config_file)]
            contenders = [("ours", [])] + (
                [("naive", ["--concurrency", str(naive_concurrency)])] if naive else []
            )
            for name, extra in contenders:
                admin.clear_calls()
                child = run_child("bench.sweep_child", [name, *common, *extra])
                out = child.output
                result[name] = {
                    "planSeconds": round(out["planSeconds"], 3),
                    "enqueued": out["enqueued"],
                    "correct": out["digest"] == expected_digest and out["enqueued"] == len(expected),
                    "rowsFetched": out["rowsFetched"],
                    "peakRssMb": round(child.peak_rss_mb, 1),
                    "ruMaxrssMb": round(child.ru_maxrss_mb, 1),
                    "calls": _calls_summary(admin.counters()),
                }
                if "concurrency" in out:
                    result[name]["concurrency"] = out["concurrency"]
                if "summary" in out:
                    result[name]["inventory"] = out["summary"]["inventory"]
                    result[name]["byNeed"] = out["summary"]["byNeed"]
                for key in ("pages", "pageBytes", "decodeSeconds", "queries"):
                    if key in out:
                        result[name][key] = out[key]
                if name == "ours":
                    # Server time beyond the configured latency (expected jitter taken as half its range): the
                    # emulator evaluating KQL in Python.
                    base_ms = latency_ms + jitter_ms / 2
                    graph = [c for c in admin.calls() if c["operation"] == "ResourceGraph_Resources"]
                    compute = sum(max(0.0, c["durationMs"] - base_ms) for c in graph) / 1000
                    result[name]["emulatorComputeSeconds"] = round(compute, 3)
                    served_log = served_chains(out.get("pageLog", []), graph)
                print(
                    f"  {name:5s}: {out['planSeconds']:8.2f} s  calls {result[name]['calls']['total']:6d}"
                    f"  429s {result[name]['calls']['throttled429']:4d}  peak RSS {child.peak_rss_mb:6.1f} MB"
                    f"  enqueued {out['enqueued']} ({'correct' if result[name]['correct'] else 'WRONG'})",
                    flush=True,
                )
            admin.close()
    rtt = latency_ms / 1000.0
    ours = result["ours"]
    chains = [
        math.ceil(max(1, ours["rowsFetched"]) / ARG_PAGE),
        math.ceil(max(1, grants) / ARG_PAGE),
        math.ceil(max(1, instances) / ARG_PAGE),
    ]
    if mode == "protect":  # the vault query, then the vault identities' grants that depend on it
        chains.append(1 + math.ceil(max(1, vault_grants) / ARG_PAGE))
    round_trips = chain_floor_s(chains, rtt_s=rtt)
    served = served_floor_s(served_log["chains"], pages=sum(chains), rtt_s=rtt)
    result["floor"] = {
        "oursSeconds": round(served + ours["decodeSeconds"], 3),
        "oursServedSeconds": round(served, 3),
        "oursServedChains": {k: round(v, 3) for k, v in sorted(served_log["chains"].items())},
        "oursPagesUnmatched": served_log["unmatched"],
        "oursDecodeSeconds": round(ours["decodeSeconds"], 3),
        "oursModel": (
            "the ARM time ours could not avoid, as served in this run: each page ours needed costs what the"
            " emulator's call log says it took to answer it (servedMs: from the request's arrival, or a new"
            " connection's accept with its TLS handshake, to the response written: the latency drawn, jitter"
            " included, the server's query time and its serialization of the page), the pages of one query"
            " follow each other (each needs the previous skip token; in protect mode the vault identities'"
            " grants also wait for the vault query), the queries are otherwise independent, so the floor is"
            " the longest chain (and at least what 15 queries per 5 s allow); plus a bare json.loads of the"
            " same page bytes ours received, timed in ours' process after its run (best of 3). Everything"
            " else is ours: sending, reading, decoding,"
            " joining, deciding, enqueueing, and the gaps between pages"
        ),
        "oursAtBaseLatencySeconds": round(round_trips + ours["decodeSeconds"], 3),
        "oursRoundTripSeconds": round(round_trips, 3),
        "oursPages": chains,
        "oursAtBaseLatencyModel": (
            "the same pages, each at the emulator's base latency alone (no jitter, no server query time):"
            " what a Resource Graph that evaluated every query instantly would allow"
        ),
        "naiveSeconds": round(
            arm_read_floor_s([(2 if mode == "protect" else 1) * per_sub + 1] * subscriptions, rtt_s=rtt), 3
        ),
        "naiveModel": (
            "ARM read bucket per subscription (250 burst, 25/s) for 1 list + 1 GET per cluster (protect:"
            " 2 GETs), plus the two dependent round trips"
        ),
    }
    ours["vsFloor"] = round(ours["planSeconds"] / result["floor"]["oursSeconds"], 2)
    ours["vsBaseLatencyFloor"] = round(ours["planSeconds"] / result["floor"]["oursAtBaseLatencySeconds"], 2)
    if naive:
        nv = result["naive"]
        result["ratios"] = {
            "speedupVsNaive": round(nv["planSeconds"] / ours["planSeconds"], 1),
            "callsNaiveOverOurs": round(nv["calls"]["total"] / max(1, ours["calls"]["total"]), 1),
            "oursOverFloor": ours["vsFloor"],
            "oursOverBaseLatencyFloor": ours["vsBaseLatencyFloor"],
        }
    else:
        result["ratios"] = {
            "oursOverFloor": ours["vsFloor"],
            "oursOverBaseLatencyFloor": ours["vsBaseLatencyFloor"],
        }
    print(
        f"  floor: ours {result['floor']['oursSeconds']} s, naive {result['floor']['naiveSeconds']} s;"
        f" served chains {result['floor']['oursServedChains']};"
        f" at base latency {result['floor']['oursAtBaseLatencySeconds']} s"
        f" (ours/that {ours['vsBaseLatencyFloor']})"
    )
    print(f"  ratios: {json.dumps(result['ratios'])}", flush=True)
    result["machine"] = machine()  # when this run ended, and the load then (runs of one file differ)
    return result


TARGETS = {
    "oursOverFloorAt10k": "<= 1.5",
    "speedupVsNaiveAt10k": ">= 10",
    "callsNaiveOverOursAt10k": ">= 20",
    "peakRssAt10k": "<= 150 MB, growing no more than linearly",
}


def _merge(
    previous: Mapping[str, Any] | None, runs: list[dict[str, Any]], *, name: str = "sweep"
) -> dict[str, Any]:
    by_count: dict[int, dict[str, Any]] = {}
    if previous:
        for run in previous.get("runs", []):
            by_count[int(run["clusters"])] = run
    for run in runs:
        by_count[int(run["clusters"])] = run
    return {"benchmark": name, "targets": TARGETS, "runs": [by_count[k] for k in sorted(by_count)]}


def chart(data: Mapping[str, Any], path: Path) -> Path:
    """Plan time against cluster count for ours, naive and our floor (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = data["runs"]
    xs = [r["clusters"] for r in runs]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(xs, [r["ours"]["planSeconds"] for r in runs], "o-", label="ours (Resource Graph)")
    naive_runs = [r for r in runs if "naive" in r]
    if naive_runs:
        ax.plot(
            [r["clusters"] for r in naive_runs],
            [r["naive"]["planSeconds"] for r in naive_runs],
            "s-",
            label="naive (list + GET per cluster, 16 threads)",
        )
    ax.plot(xs, [r["floor"]["oursSeconds"] for r in runs], "k--", label="floor: pages as served + json.loads")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("clusters")
    ax.set_ylabel("plan phase wall time (s)")
    mode = data["runs"][0].get("mode", "install")
    ax.set_title(f"Sweep plan time, {mode} mode (emulator, 50 ms latency, throttling on)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sweep", description=__doc__)
    parser.add_argument(
        "--clusters", default="10000", help="cluster count, or a comma list for scaling (e.g. 1000,10000)"
    )
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--jitter-ms", type=float, default=10.0)
    parser.add_argument("--naive-concurrency", type=int, default=16)
    parser.add_argument(
        "--naive-max-clusters", type=int, default=100_000, help="skip the naive sweep above this count"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--mode", choices=("install", "protect"), default="install", help="the chain the sweep reads"
    )
    parser.add_argument("--no-save", action="store_true", help="print only; do not touch bench/results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    counts = [int(c) for c in str(args.clusters).split(",") if c.strip()]
    runs = [
        run_one(
            clusters=n,
            subscriptions=args.subscriptions,
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            naive=n <= args.naive_max_clusters,
            naive_concurrency=args.naive_concurrency,
            seed=args.seed,
            mode=args.mode,
        )
        for n in counts
    ]
    if args.no_save:
        return 0
    name = "sweep" if args.mode == "install" else f"sweep_{args.mode}"
    path = RESULTS / f"{name}.json"
    previous = json.loads(path.read_text()) if path.exists() else None
    data = _merge(previous, runs, name=name)
    data["machine"] = machine()
    save_result(name, data)
    chart(data, RESULTS / f"{name}.png")
    print(f"\nsaved {path} and {RESULTS / f'{name}.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
