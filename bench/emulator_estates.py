"""How long generating and loading big estates takes, and how much memory they hold.

Each size runs in its own child interpreter (so one size's heap never inflates the next), generating the
estate deterministically and loading it into an ``EmulatorState`` (the core's loader only — plug-in load
hooks such as Resource Graph tables are not included). Reported: generation seconds, load seconds, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from typing import Any

from bench.harness import ROOT, machine, save_result

logger = logging.getLogger(__name__)

SIZES = ((100, 100), (100, 1000))
"""(subscriptions, clusters per subscription): 10,000 and 100,000 clusters."""


def _child(subscriptions: int, per: int) -> dict[str, Any]:
    from emulator.estate import apply_estate, generate_estate
    from emulator.state import EmulatorState

    started = time.perf_counter()
    estate = generate_estate(subscriptions=subscriptions, clusters_per_subscription=per, seed=7)
    generated = time.perf_counter() - started
    state = EmulatorState(estate_loader=apply_estate)
    started = time.perf_counter()
    state.load_estate(estate)
    loaded = time.perf_counter() - started
    return {
        "subscriptions": subscriptions,
        "clusters": len(state.clusters),
        "storageAccounts": len(state.storage_accounts),
        "generateS": round(generated, 3),
        "loadS": round(loaded, 3),
        "peakRssMb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench emulator-estates", description=__doc__)
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    runs = []
    for subs, per in SIZES:
        out = subprocess.run(
            [sys.executable, "-m", "bench", "emulator-estates", "--child", str(subs), str(per)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        run = json.loads(out.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"{run['clusters']:>7} clusters / {run['subscriptions']} subscriptions: "
            f"generate {run['generateS']} s, "
            f"load {run['loadS']} s, peak RSS {run['peakRssMb']} MB"
        )
    path = save_result("emulator_estates", {"machine": machine(), "runs": runs})
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
