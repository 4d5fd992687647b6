"""Shared plumbing for the sweep, writes and events benchmarks.

Why it exists: every benchmark needs the same three things done the same honest way:

* the ARM emulator runs as a **subprocess** (its own interpreter and core, so its CPU time is not charged to
  the code being measured), started from an estate file the benchmark also keeps, so expected results are
  computed from the estate directly;
* each measured sweep runs in **its own child process**, so "ours" and "naive" never share a heap; the child
  reports its own peak RSS from ``/proc/self/status`` ``VmHWM`` (the high-water mark of its address space
  since ``exec``). ``ru_maxrss`` (``getrusage``/``os.wait4``) is NOT used: Linux folds the RSS the forked
  child inherited from the parent before ``exec`` into it, so it shows the benchmark parent's size;
* results land in ``bench/results/<name>.json`` with the machine and the knobs used.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable


class BenchCredential:
    """A bearer token the emulator accepts; the raw token names the principal (throttled per principal)."""

    def __init__(self, principal: str) -> None:
        self.principal = principal

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.principal, int(time.time()) + 3600)


@dataclass
class EmulatorProcess:
    """``python -m emulator serve`` as a child process; ``stop()`` ends it (SIGTERM, then SIGKILL)."""

    proc: subprocess.Popen[str]
    base_url: str
    ca_bundle: str
    workdir: tempfile.TemporaryDirectory[str]

    @classmethod
    def start(
        cls,
        *,
        estate: Mapping[str, Any] | None = None,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        throttle: bool = True,
        extra_args: Sequence[str] = (),
        timeout_s: float = 600.0,
    ) -> EmulatorProcess:
        workdir = tempfile.TemporaryDirectory(prefix="bench-emu-")
        args = [PYTHON, "-m", "emulator", "serve", "--workdir", workdir.name]
        if estate is not None:
            estate_file = Path(workdir.name) / "estate.json"
            estate_file.write_text(json.dumps(estate), encoding="utf-8")
            args += ["--estate", str(estate_file)]
        args += ["--latency-ms", str(latency_ms), "--jitter-ms", str(jitter_ms)]
        if throttle:
            args.append("--throttle")
        args += list(extra_args)
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=None, text=True)
        deadline = time.monotonic() + timeout_s
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"emulator did not start (exit code {proc.poll()})")
        info = json.loads(line)
        return cls(proc=proc, base_url=info["baseUrl"], ca_bundle=info["caBundle"], workdir=workdir)

    def admin(self) -> Any:
        from emulator.admin_client import AdminClient

        return AdminClient(self.base_url, self.ca_bundle)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.workdir.cleanup()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class ChildResult:
    """What a measured child process printed (one JSON object) and what the kernel says it used."""

    output: dict[str, Any]
    wall_s: float
    peak_rss_mb: float
    """The child's ``VmHWM`` (it prints ``peakRssMb``); the kernel's ``ru_maxrss`` if it printed none."""
    ru_maxrss_mb: float
    """``os.wait4``'s ``ru_maxrss``: includes the parent's RSS inherited at fork, so an upper bound only."""
    exit_code: int


def run_child(module: str, args: Sequence[str], *, timeout_s: float = 3600.0) -> ChildResult:
    """Run ``python -m <module> <args>`` and return its last stdout JSON line plus its own peak RSS."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [PYTHON, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=None, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if wall > timeout_s:
        logger.warning("%s ran %.0f s, beyond its %.0f s budget", module, wall, timeout_s)
    lines = [line for line in out.splitlines() if line.strip().startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{module} {' '.join(args)} failed with exit code {proc.returncode}")
    output = json.loads(lines[-1])
    ru_maxrss_mb = usage.ru_maxrss / 1024  # Linux reports KiB
    return ChildResult(
        output=output,
        wall_s=wall,
        peak_rss_mb=float(output.get("peakRssMb", ru_maxrss_mb)),
        ru_maxrss_mb=ru_maxrss_mb,
        exit_code=proc.returncode,
    )


def peak_rss_mb() -> float:
    """This process's peak RSS since ``exec`` (``VmHWM``), in MiB; Linux only."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadAverage1m": round(os.getloadavg()[0], 2),
        "note": "the machine is shared with other work; load average taken when the run finished",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save_result(name: str, data: Mapping[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def count_by_kind(counters: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """The emulator's counters ``{"byOperation": {op: {status: n}}}`` as ``{op: {status: n}}``."""
    by_op = counters.get("byOperation", {})
    return {op: {str(s): int(n) for s, n in statuses.items()} for op, statuses in sorted(by_op.items())}


def total_calls(by_kind: Mapping[str, Mapping[str, int]]) -> int:
    return sum(sum(s.values()) for s in by_kind.values())


def total_status(by_kind: Mapping[str, Mapping[str, int]], status: str) -> int:
    return sum(s.get(status, 0) for s in by_kind.values())
