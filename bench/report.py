"""``python -m bench.report``: rewrite the measured-numbers section of ``docs/performance.md`` from
``bench/results/*.json``, so the document only ever shows numbers a benchmark wrote (no hand copying).

The section between ``<!-- results:begin -->`` and ``<!-- results:end -->`` is replaced; the prose around it
is kept.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.harness import RESULTS, ROOT

DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], align: str) -> list[str]:
    return [_row(header), "|" + "|".join("---:" if a == "r" else ":---:" for a in align) + "|"]


def _when(data: dict[str, Any]) -> str:
    m = data["machine"]
    load = m.get("loadAverage1m")
    suffix = f", 1-minute load average {load} at the end (shared machine)" if load is not None else ""
    return f"{m['when']} on {m['cpus']} CPUs, Python {m['python']}{suffix}"


def _calls(calls: dict[str, Any]) -> str:
    parts = [f"{op} {sum(st.values())}" for op, st in calls["byOperation"].items()]
    return "; ".join(parts)


def _served(run: dict[str, Any]) -> bool:
    """Whether the run's floor is the pages as served (older runs give only the base-latency one)."""
    return "oursServedSeconds" in run["floor"]


def _floor_ratio(run: dict[str, Any]) -> str:
    """Ours over the floor as served; ``-`` for a run recorded before the served floor."""
    return f"{run['ratios']['oursOverFloor']:.2f}" if _served(run) else "-"


def _base_latency_ratio(run: dict[str, Any]) -> str:
    """Ours over the floor at base latency (no server query time): a run recorded before the served floor
    gave only this one, as its ``oursOverFloor``."""
    ratios = run["ratios"]
    ratio = ratios.get("oursOverBaseLatencyFloor") if _served(run) else ratios.get("oursOverFloor")
    return "-" if ratio is None else f"{ratio:.1f}"


def sweep_section(data: dict[str, Any]) -> list[str]:
    first = data["runs"][0]
    protect = first.get("mode") == "protect"
    title = (
        "### Sweep in protect mode (plan phase)"
        if protect
        else "### Sweep (plan phase: inventory + decide + enqueue)"
    )
    out = [
        title,
        "",
        *(
            [
                "The same comparison on protect mode's visible chain (`python -m bench sweep --mode protect`;"
                " estate: `bench/estates.py: add_protect_chain`): ours adds the vault query, the vault"
                " identities' grants (a query that waits for the vault rows), the clusters' Contributor"
                " grants and the backup instances in the vaults' subscriptions; naive adds a vault GET per"
                " region, principal-filtered role lists per subscription, the snapshot groups' role lists"
                " and one backup-instance list (GET) per cluster.",
                "",
            ]
            if protect
            else []
        ),
        f"Last written {_when(data)}. Emulator latency {first['latencyMs']:.0f} ms + up to"
        f" {first['jitterMs']:.0f} ms jitter, ARM throttling and the Resource Graph quota on."
        f" Work items go to {first['sink']}.",
        "",
    ]
    header = [
        "clusters",
        "need work",
        "rows read",
        "ours (s)",
        "naive (s)",
        "floor as served (s)",
        "ours/floor",
    ]
    header += ["floor at base latency (s)", "ours/that"]
    header += ["naive/ours time", "calls ours", "calls naive", "naive/ours calls", "429s ours / naive"]
    header += ["peak RSS ours / naive (MB)", "both correct"]
    out += _table(header, "rrrrrrrrrrrrrrrc")
    for run in data["runs"]:
        ours, naive = run["ours"], run.get("naive")
        ratios = run["ratios"]
        naive_rss = f"{naive['peakRssMb']:.0f}" if naive else "-"
        out.append(
            _row(
                [
                    f"{run['clusters']:,}",
                    f"{run['needWork']:,}",
                    f"{ours['rowsFetched']:,}",
                    f"{ours['planSeconds']:.2f}",
                    f"{naive['planSeconds']:.1f}" if naive else "not run",
                    f"{run['floor']['oursSeconds']:.2f}" if _served(run) else "-",
                    _floor_ratio(run),
                    f"{run['floor'].get('oursAtBaseLatencySeconds', run['floor']['oursSeconds']):.2f}",
                    _base_latency_ratio(run),
                    f"{ratios['speedupVsNaive']:.0f}x" if naive else "-",
                    f"{ours['calls']['total']:,}",
                    f"{naive['calls']['total']:,}" if naive else "-",
                    f"{ratios['callsNaiveOverOurs']:.0f}x" if naive else "-",
                    f"{ours['calls']['throttled429']} / {naive['calls']['throttled429'] if naive else '-'}",
                    f"{ours['peakRssMb']:.0f} / {naive_rss}",
                    "yes" if ours["correct"] and (not naive or naive["correct"]) else "NO",
                ]
            )
        )
    timed = [r for r in data["runs"] if "machine" in r]
    if timed:
        out += ["", "When each run ended (runs of one table are recorded at different times):", ""]
        out += [f"- {r['clusters']:,} clusters: {_when(r)}" for r in timed]
    out += [
        "",
        "The floor, run by run: the longest chain of dependent pages *as served in this run* (each page at"
        " the time the emulator's call log says it took to answer it, from its arrival (a new connection's"
        " TLS handshake included) to the response written: latency drawn, jitter, the server's query time"
        " and serialization, matched by request id) + a bare `json.loads` of the same bytes. Beside it, the"
        " same pages at the base latency alone (what a Resource Graph that evaluated every query instantly"
        " would allow):",
        "",
    ]
    for run in data["runs"]:
        floor = run["floor"]
        if "oursRoundTripSeconds" not in floor:
            continue
        pages = floor.get("oursPages", [])
        kinds = "clusters, grants, backup instances" + (", vault + vault grants" if len(pages) > 3 else "")
        size = run["ours"].get("pageBytes", 0) / 1e6
        line = f"- {run['clusters']:,} clusters: pages ({kinds}) {pages}, {size:.1f} MB;"
        if "oursServedSeconds" in floor:
            chains = ", ".join(f"{k} {v:.3f} s" for k, v in floor["oursServedChains"].items())
            line += (
                f" as served: chains {chains} -> {floor['oursServedSeconds']:.3f} s + decode"
                f" {floor['oursDecodeSeconds']:.3f} s = **{floor['oursSeconds']:.3f} s**"
                f" ({floor['oursPagesUnmatched']} pages unmatched);"
                f" at base latency {floor['oursRoundTripSeconds']:.3f} s + decode"
                f" = {floor['oursAtBaseLatencySeconds']:.3f} s"
            )
        else:
            line += (
                f" recorded before the served floor: round trips {floor['oursRoundTripSeconds']:.3f} s"
                f" + decode {floor['oursDecodeSeconds']:.3f} s = {floor['oursSeconds']:.3f} s"
            )
        out.append(line)
    out += ["", "Calls by operation (emulator counters):", ""]
    for run in data["runs"]:
        line = f"- {run['clusters']:,} clusters: ours {_calls(run['ours']['calls'])}"
        if "naive" in run:
            threads = run["naive"].get("concurrency", "?")
            line += f"; naive {_calls(run['naive']['calls'])} ({threads} threads)"
        out.append(line)
    extra = [r for r in data["runs"] if "emulatorComputeSeconds" in r["ours"]]
    if extra:
        out += ["", "Emulator query time inside our plan time (server time beyond the configured latency,"
                " summed over pages, concurrent queries included):", ""]  # fmt: skip
        for run in extra:
            ours = run["ours"]
            seconds = f"{ours['emulatorComputeSeconds']:.2f} s of {ours['planSeconds']:.2f} s"
            out.append(f"- {run['clusters']:,} clusters: {seconds}")
    return out


def writes_section(data: dict[str, Any]) -> list[str]:
    out = [
        "### Writes (extension PUT per cluster through the pacer)",
        "",
        f"Measured {_when(data)}.",
        "",
    ]
    header = ["clusters", "subscriptions", "paced", "threads", "wall (s)", "PUTs/s", "bucket bound (s)"]
    header += ["bound PUTs/s", "share of bound", "429s", "failed"]
    out += _table(header, "rrcrrrrrrrr")
    for run in data["runs"]:
        out.append(
            _row(
                [
                    f"{run['clusters']:,}",
                    run["subscriptions"],
                    "yes" if run["paced"] else "no",
                    run["threads"],
                    f"{run['wallSeconds']:.1f}",
                    f"{run['throughputPerSecond']:.1f}",
                    f"{run['bucketBoundSeconds']:.1f}",
                    run["boundThroughputPerSecond"],
                    f"{100 * (run['shareOfBound'] or 0):.0f} %",
                    run["calls"]["throttled429"],
                    sum(run["failedByError"].values()),
                ]
            )
        )
    return out


def events_section(data: dict[str, Any]) -> list[str]:
    out = [
        "### Events (ResourceWriteSuccess -> extension PUT issued)",
        "",
        f"Measured {_when(data)}; journal on {data['journal']}.",
        "",
    ]
    out += [
        f"Floor per event: {data['floor']}. The ratio is taken per event (its time to PUT over its own"
        " floor); p50/p99 are over events. *Cold* events are a subscription's first in the process (its"
        " policy data not cached: a cold event starts at least"
        f" {data.get('coldSpacingS', '?')} s after the previous cold one, as Resource Graph allows 15 queries"
        " per 5 s); *warm* events find it cached.",
        "",
    ]
    header = ["emulator latency", "events (cold)", "ARM calls before the PUT", "to PUT p50 (ms)"]
    header += ["to PUT p99 (ms)", "floor p50 (ms)", "floor p99 (ms)", "to PUT / floor p50"]
    header += ["to PUT / floor p99", "warm p50 / p99", "cold p50 / max", "our overhead p50 / p99 (ms)"]
    header += ["container GET answered after the extension list, p50 / p99 (ms)"]
    header += ["extension PUTs sent before the container GET answered"]
    out += _table(header, "rrrrrrrrrrrrrr")

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    def pair(part: dict[str, Any] | None, high: str) -> str:
        if not part or not part.get("events"):
            return "-"
        return f"{ratio(part.get('p50OverFloor'))} / {ratio(part.get(high))}"

    for run in data["runs"]:
        out.append(
            _row(
                [
                    f"{run['latencyMs']:.0f} ms (+{run['jitterMs']:.0f} jitter)",
                    f"{run['events']} ({run.get('coldEvents', '-')})",
                    ", ".join(map(str, run["armCallsBeforePut"])),
                    run["toPutP50Ms"],
                    run["toPutP99Ms"],
                    run.get("floorP50Ms") or "-",
                    run.get("floorP99Ms") or "-",
                    ratio(run.get("p50OverFloor")),
                    ratio(run.get("p99OverFloor")),
                    pair(run.get("warm"), "p99OverFloor"),
                    pair(run.get("cold"), "maxOverFloor"),
                    f"{run['ourOverheadP50Ms']} / {run['ourOverheadP99Ms']}",
                    f"{run.get('containerGetAfterExtensionListP50Ms', '-')} /"
                    f" {run.get('containerGetAfterExtensionListP99Ms', '-')}",
                    run.get("extensionPutBeforeContainerGetAnswered", "-"),
                ]
            )
        )
    out += ["", "Per-event ratios, sorted: `bench/results/events.png`."]
    return out


def protect_section(data: dict[str, Any]) -> list[str]:
    """``bench protect``: write event -> ProtectionConfigured on the emulator's manual clock (realistic
    profile)."""
    out = [
        "### Protect (cluster write event -> backup instance ProtectionConfigured)",
        "",
        f"Measured {_when(data)}. Method: {data['method']}. Not modelled: {data['notModelled']}.",
        "",
    ]
    for scenario in data["scenarios"]:
        extension = scenario.get("extensionCreateS")
        assumed = f"; extension install {extension:g} s (assumed)" if extension else ""
        out += [
            f"**{scenario['scenario']}**{assumed}. Floor: {scenario['floorPath']} +"
            f" {scenario['floorRoundTrips']} dependent round trips.",
            "",
        ]
        header = ["cluster", "protected at (s)", "observed done (s)", "floor (s)", "protected / floor"]
        header += ["reconciles (queue hops)", "validations sent", "ARM calls (writes)"]
        out += _table(header, "rrrrrrrr")
        for c in scenario["clusters"]:
            out.append(
                _row(
                    [
                        c["cluster"],
                        c["protectedAtS"],
                        c["observedDoneAtS"],
                        c["floorS"],
                        f"{c['protectedOverFloor']:.3f}",
                        c["reconciles"],
                        c["validationsSent"],
                        f"{c['armCalls']} ({c['armWrites']})",
                    ]
                )
            )
        out.append("")
    out.append("Timeline chart (when each link was first satisfied): `bench/results/protect.png`.")
    return out


def chaos_section(data: dict[str, Any]) -> list[str]:
    """``bench/results/chaos.json``: per estate size, the fault-free baseline and the chaos run side by side,
    then the pacing-across-instances comparison."""
    out = ["### Chaos (the whole app under faults, duplicate and reordered events, and host kills)", ""]
    if "machine" in data:
        out += [f"Measured {_when(data)}.", ""]
    for entry in sorted((data.get("runs") or {}).values(), key=lambda e: e["clusters"]):
        estate, knobs = entry["estate"], entry["knobs"]
        out += [
            f"**{entry['clusters']:,} clusters**, {entry['instances']} instances:"
            f" {estate['subscriptions']} subscriptions, {estate['regions']} regions;"
            f" {estate['targets']:,} targets (selected, unblocked, running; {estate['compliantAtStart']}"
            " already protected under a grant name the product did not choose),"
            f" {estate['unselected']:,} unselected, {estate['blocked']} blocked, {estate['stopped']} stopped;"
            f" {estate['arrivingDuringRun']} created during the run. Chaos: every event delivered"
            f" {knobs['copies']} times, {100 * knobs['reorder']:.0f} % of the copies held back, ARM calls"
            f" faulted with probability {knobs['faultProbability']} ({knobs['faults']}), one instance"
            f" SIGKILLed every {knobs['killEverySeconds']:.0f} s (at most {knobs['maxKills']}), ARM"
            f" throttling on, {knobs['latencyMs']:.0f} ms + up to {knobs['jitterMs']:.0f} ms latency.",
            "",
        ]
        header = ["", "baseline (no faults, no kills)", "chaos"]
        out += _table(header, "lrr")
        base, chaos = entry.get("baseline"), entry["chaos"]

        def cell(run: dict[str, Any] | None, key: str, fmt: Any = str) -> str:
            if run is None:
                return "not run"
            value: Any = run
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return "-" if value is None else fmt(value)

        rows = [
            ("converged / targets", lambda r: f"{r['converged']:,} / {r['targets']:,}" if r else "not run"),
            ("time to 50 % (s)", lambda r: cell(r, "timeToConvergedSeconds.p50")),
            ("time to 90 % (s)", lambda r: cell(r, "timeToConvergedSeconds.p90")),
            ("time to 99 % (s)", lambda r: cell(r, "timeToConvergedSeconds.p99")),
            ("time to 100 % (s)", lambda r: cell(r, "timeToConvergedSeconds.p100")),
            ("writes to unselected / blocked / stopped clusters", lambda r: "not run" if r is None else
             f"{r['writesToUnselected']} / {r['writesToBlocked']} / {r['writesToStopped']}"),
            ("duplicate creates", lambda r: cell(r, "duplicateCreates")),
            ("lost (targets not converged)", lambda r: cell(r, "lost")),
            ("poison items (journaled / left in the poison queue)", lambda r: "not run" if r is None else
             f"{r['poison']['journaled']} / {r['poison']['leftInPoisonQueue']}"),
            ("give-ups by cause", lambda r: "not run" if r is None else
             (", ".join(f"{k}: {v}" for k, v in r["giveUpsByCause"].items()) or "none")),
            ("give-up alert lines", lambda r: cell(r, "giveUpAlertLines")),
            ("the sweep's journaled decisions about blocked clusters",
             lambda r: cell(r, "sweepBlockedDecisions")),
            ("claims left held at the end", lambda r: cell(r, "claimsLeftHeld")),
            ("longest wait on a killed process's claim (s)",
             lambda r: cell(r, "longestWaitOnDeadClaimSeconds")),
            ("... counting refusals while that process was alive too (s)",
             lambda r: cell(r, "longestWaitOnClaimOfAProcessKilledAnyTimeSeconds")),
            ("killed processes' held claims: longest stand after death (s)",
             lambda r: cell(r, "deadProcessClaims.longestHoldAfterDeathSeconds")),
            ("ARM calls per converged cluster", lambda r: cell(r, "armCallsPerConvergedCluster")),
            ("429s per 1,000 writes (chaos: injected included)",
             lambda r: cell(r, "throttled429PerThousandWrites")),
            ("invocations: queue worker (retiring ones included) / Event Grid",
             lambda r: "not run" if r is None else
             f"{r['reconciles'].get('reconcile_worker:Succeeded', 0):,} /"
             f" {r['reconciles'].get('on_cluster_write:Succeeded', 0):,}"),
            ("work items retired / deliveries that joined a chain", lambda r: "not run" if r is None else
             f"{r['chains'].get('retired', 0):,} / {r['chains'].get('joined', 0):,}"),
            ("host kills", lambda r: "not run" if r is None else str(len(r["kills"]))),
            ("'Connection pool is full' / timeouts in the logs", lambda r: "not run" if r is None else
             f"{r['connectionPoolFull']} / {r['timeoutsInLogs']}"),
        ]  # fmt: skip
        for label, render in rows:
            out.append(_row([label, render(base), render(chaos)]))
        verdicts = entry.get("verdicts") or {}
        if verdicts.get("p99OverBaseline") is not None:
            out += [
                "",
                f"Chaos time to 99 % over the baseline's time to 100 %: {verdicts['p99OverBaseline']}x"
                f" (target at most 2x: {_verdict(verdicts.get('p99WithinTwiceBaseline'))}).",
            ]
        elif "p99WithinTwiceBaseline" in verdicts:
            out += [
                "",
                f"The chaos run ended ({chaos['endedBecause']}) before 99 % of its targets converged"
                f" (target: within 2x the baseline's {verdicts['baselineSeconds']} s: **not met**).",
            ]
        out.append("")
    for key in ("throttle", "throttleWriteBound"):
        throttle = data.get(key)
        if not throttle:
            continue
        runs = throttle["runs"]
        out += [
            f"**Pacing across instances** ({throttle['clusters']:,} clusters in one subscription, most of"
            f" them created during the run and installed from their events, {throttle['instances']}"
            f" instances, ARM throttling on with the read bucket {throttle.get('readBucket', 'as ARM')}, no"
            " faults, no"
            " kills):",
            "",
        ]
        header = ["write budget", "writes", "429s per 1,000 writes", "429s on reads and writes"]
        out += _table([*header, "converged", "time to 100 % (s)"], "lrrrrr")
        for name, label in (
            ("process", "per process (before)"),
            ("shared", "shared in Table Storage (after)"),
        ):
            run = runs.get(name)
            if run is None:
                continue
            out.append(
                _row(
                    [
                        label,
                        run["writes"],
                        run["throttled429PerThousandWrites"],
                        run.get("all429", run["callsByStatus"].get("429", 0)),
                        f"{run['converged']} / {run['targets']}",
                        run["p100Seconds"],
                    ]
                )
            )
        out.append("")
    return out


def protect_targets(data: dict[str, Any] | None) -> list[str]:
    """The protect target next to its measured value (a table of its own, after the issue's targets)."""
    if data is None:
        return []
    worst = data["worstProtectedOverFloor"]
    return [
        "",
        _row(["target", "measured", "verdict"]),
        "|:---:|:---:|:---:|",
        _row(
            [
                "write event -> ProtectionConfigured within 1.2x its floor (every scenario)",
                f"{worst:.3f}x",
                _verdict(worst <= 1.2),
            ]
        ),  # fmt: skip
    ]


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**not met**")


def targets_section(
    sweep: dict[str, Any] | None,
    writes: dict[str, Any] | None,
    events: dict[str, Any] | None,
    sweep_protect: dict[str, Any] | None = None,
    chaos: dict[str, Any] | None = None,
) -> list[str]:
    """The issue's targets next to the measured values (reported, never asserted)."""
    rows: list[list[Any]] = []
    at10k = next((r for r in (sweep or {}).get("runs", []) if r["clusters"] == 10_000), None)
    if at10k is not None:
        ours = at10k["ours"]
        ratio = at10k["ratios"]
        rows.append(
            [
                "10k plan within 1.5x the floor (the pages as served + json.loads of the same bytes)",
                f"{ratio['oursOverFloor']:.2f}x"
                f" (at base latency, no server query time: {_base_latency_ratio(at10k)}x)",
                _verdict(ratio["oursOverFloor"] <= 1.5),
            ]
        )
        if "speedupVsNaive" in ratio:
            rows.append(["10k: at least 10x faster than naive", f"{ratio['speedupVsNaive']:.0f}x",
                         _verdict(ratio["speedupVsNaive"] >= 10)])  # fmt: skip
            rows.append(["10k: at least 20x fewer calls than naive", f"{ratio['callsNaiveOverOurs']:.0f}x",
                         _verdict(ratio["callsNaiveOverOurs"] >= 20)])  # fmt: skip
        rows.append(["peak RSS at 10k at most 150 MB", f"{ours['peakRssMb']:.0f} MB",
                     _verdict(ours["peakRssMb"] <= 150)])  # fmt: skip
    runs = (sweep or {}).get("runs", [])
    if len(runs) >= 2:
        rss = ", ".join(f"{r['clusters']:,}: {r['ours']['peakRssMb']:.0f} MB" for r in runs)
        first, last = runs[0], runs[-1]
        growth = (last["ours"]["peakRssMb"] - first["ours"]["peakRssMb"]) / (
            last["clusters"] - first["clusters"]
        )
        linear = (
            last["ours"]["peakRssMb"] <= first["ours"]["peakRssMb"] * last["clusters"] / first["clusters"]
        )
        rows.append(["peak RSS grows no more than linearly", f"{rss} ({growth * 1000:.1f} KB per cluster)",
                     _verdict(linear)])  # fmt: skip
    protect10k = next((r for r in (sweep_protect or {}).get("runs", []) if r["clusters"] == 10_000), None)
    if protect10k is not None:
        ratio = protect10k["ratios"]
        rows.append(
            [
                "protect mode, 10k plan within 1.5x the floor",
                f"{ratio['oursOverFloor']:.2f}x"
                f" (at base latency, no server query time: {_base_latency_ratio(protect10k)}x)",
                _verdict(ratio["oursOverFloor"] <= 1.5),
            ]
        )
        if "speedupVsNaive" in ratio:
            speedup = f"{ratio['speedupVsNaive']:.0f}x"
            rows.append(["protect mode, 10k: at least 10x faster than naive", speedup,
                         _verdict(ratio["speedupVsNaive"] >= 10)])  # fmt: skip
        correct = protect10k["ours"]["correct"] and protect10k.get("naive", {}).get("correct", True)
        rows.append(["protect mode, 10k: both enqueue exactly the clusters computed from the estate",
                     "yes" if correct else "no", _verdict(bool(correct))])  # fmt: skip
    paced = next((r for r in (writes or {}).get("runs", []) if r["paced"]), None)
    if paced is not None and paced["shareOfBound"] is not None:
        rows.append(["write phase at least 80 % of the bucket bound", f"{100 * paced['shareOfBound']:.0f} %",
                     _verdict(paced["shareOfBound"] >= 0.8)])  # fmt: skip
    slow = next((r for r in (events or {}).get("runs", []) if r["p99OverFloor"] is not None), None)
    if slow is not None:
        split = ""
        warm, cold = slow.get("warm"), slow.get("cold")
        if warm and cold:
            split = (
                f" (warm {warm['p99OverFloor']:.2f}x over {warm['events']} events,"
                f" cold max {cold['maxOverFloor']:.2f}x over {cold['events']})"
            )
        rows.append(
            [
                f"event -> extension PUT p99 at most 1.2x its floor ({slow['latencyMs']:.0f} ms)",
                f"{slow['p99OverFloor']:.2f}x{split}",
                _verdict(slow["p99OverFloor"] <= 1.2),
            ]
        )
    for entry in sorted(((chaos or {}).get("runs") or {}).values(), key=lambda e: e["clusters"]):
        v, run = entry["verdicts"], entry["chaos"]
        n = f"{entry['clusters']:,}"
        correct = all(
            v.get(k) for k in ("allConverged", "noWritesToUnselected", "noDuplicateCreates", "nothingLost")
        )
        rows.append([f"chaos {n}: 100 % converged, 0 writes to unselected, 0 duplicate creates, 0 lost",
                     f"{run['converged']}/{run['targets']}, {run['writesToUnselected']},"
                     f" {run['duplicateCreates']}, {run['lost']}", _verdict(correct)])  # fmt: skip
        if v.get("p99OverBaseline") is not None:
            rows.append([f"chaos {n}: 99 % converged within 2x the fault-free run",
                         f"{v['chaosP99Seconds']} s vs {v['baselineSeconds']} s ({v['p99OverBaseline']}x)",
                         _verdict(v.get("p99WithinTwiceBaseline"))])  # fmt: skip
        elif "p99WithinTwiceBaseline" in v:
            rows.append([f"chaos {n}: 99 % converged within 2x the fault-free run",
                         f"99 % not reached: {run['converged']:,}/{run['targets']:,} converged when the run"
                         f" ended ({run['endedBecause']}); baseline {v['baselineSeconds']} s",
                         _verdict(False)])  # fmt: skip
        rows.append([f"chaos {n}: no cluster waits on a dead process's claim over a minute",
                     f"{run['longestWaitOnDeadClaimSeconds']} s",
                     _verdict(v.get("noDeadClaimWaitOverAMinute"))])  # fmt: skip
    throttle = (chaos or {}).get("throttleWriteBound") or (chaos or {}).get("throttle")
    if throttle:
        runs = throttle["runs"]
        before = runs.get("process", {}).get("throttled429PerThousandWrites")
        after = runs.get("shared", {}).get("throttled429PerThousandWrites")
        rows.append([f"{throttle['instances']} instances, throttling on: 429s per 1,000 writes (near) zero",
                     f"before {before}, after {after}",
                     _verdict(after is not None and after <= 1.0)])  # fmt: skip
    out = ["### Targets (from the issue; reported, never asserted)", ""]
    out += _table(["target", "measured", "verdict"], "ccc")
    out += [_row(r) for r in rows]
    return out


def render() -> str:
    lines: list[str] = targets_section(
        _load("sweep"),
        _load("writes"),
        _load("events"),
        sweep_protect=_load("sweep_protect"),
        chaos=_load("chaos"),
    )
    lines += protect_targets(_load("protect")) + [""]
    sections = (
        ("sweep", sweep_section),
        ("sweep_protect", sweep_section),
        ("writes", writes_section),
        ("events", events_section),
        ("protect", protect_section),
        ("chaos", chaos_section),
    )
    for name, section in sections:
        data = _load(name)
        if data is None:
            command = "sweep --mode protect" if name == "sweep_protect" else name
            lines += [f"### {name}", "", f"No results yet: run `python -m bench {command}`.", ""]
            continue
        lines += section(data) + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"{DOC} has no {BEGIN} ... {END} section", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{render()}\n{END}{tail}", encoding="utf-8")
    print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
