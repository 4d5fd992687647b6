"""Start and stop the local stand-ins the demo needs as child processes: ARM emulator, Azurite, local runner.

Each child runs in its own session (process group), so stopping it also stops anything it spawned (Azurite is
a node process behind a shell shim). Stopping is by the child's own id, never by name.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.azurite_patch import require_patched

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account key (public, documented by Microsoft)."""


@dataclass
class Child:
    """A child process in its own process group, with its stderr kept in memory for failure reports."""

    name: str
    proc: subprocess.Popen[str]
    info: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log[-lines:])

    def stop(self, *, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            self.proc.wait(5)


def _spawn(name: str, cmd: list[str], *, env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> Child:
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    child = Child(name=name, proc=proc)

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            child.log.append(line.rstrip("\n"))

    threading.Thread(target=drain, name=f"{name}-stderr", daemon=True).start()
    return child


def _ready_line(child: Child, *, timeout_s: float) -> dict[str, Any]:
    """Read the one JSON line a child prints when it is ready."""
    box: list[str] = []

    def read() -> None:
        assert child.proc.stdout is not None
        box.append(child.proc.stdout.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not box or not box[0].strip():
        child.stop()
        raise RuntimeError(f"{child.name} did not start within {timeout_s} s:\n{child.tail()}")
    info: dict[str, Any] = json.loads(box[0])
    child.info = info
    return info


def free_ports(count: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def start_emulator(estate_file: Path, *, timeout_s: float = 60.0) -> Child:
    """``python -m emulator serve --estate FILE``; ``info`` has ``baseUrl`` and ``caBundle``."""
    child = _spawn("emulator", [sys.executable, "-m", "emulator", "serve", "--estate", str(estate_file)])
    _ready_line(child, timeout_s=timeout_s)
    return child


def azurite_argv(*, blob: int, queue: int, table: int) -> list[str]:
    """The one Azurite command line (the demo, the benchmarks and the tests' fixture all start it so).

    In memory, on loopback only, ``--skipApiVersionCheck`` (azure-storage-queue 12.18 sends an x-ms-version
    newer than Azurite 3.35 knows, shared/reference/spike.md Q5) and ``--disableTelemetry`` (without it
    Azurite 3.35 sends usage telemetry to Application Insights: traffic off this machine). Refuses an
    unpatched queue store (see tools/azurite_patch.py).
    """
    if not AZURITE_BIN.exists():
        raise FileNotFoundError(f"{AZURITE_BIN} not found: run `make deps` (npm ci)")
    require_patched()
    return [
        str(AZURITE_BIN), "--silent", "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
    ]  # fmt: skip


def start_azurite(workdir: Path, *, timeout_s: float = 30.0) -> Child:
    """Azurite in memory on free loopback ports; ``info["connectionString"]`` goes to AzureWebJobsStorage."""
    blob, queue, table = free_ports(3)
    child = _spawn("azurite", azurite_argv(blob=blob, queue=queue, table=table), cwd=workdir)
    deadline = time.monotonic() + timeout_s
    for port in (blob, queue, table):
        while True:
            if child.proc.poll() is not None:
                raise RuntimeError(f"azurite exited with {child.proc.returncode}:\n{child.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    child.stop()
                    raise TimeoutError(f"azurite did not open port {port} within {timeout_s} s") from None
                time.sleep(0.05)
    child.info = {
        "connectionString": (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob}/{AZURITE_ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{queue}/{AZURITE_ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{table}/{AZURITE_ACCOUNT};"
        )
    }
    return child


def start_runner(settings: Mapping[str, str], *, app_dir: Path = ROOT, timeout_s: float = 60.0) -> Child:
    """``python -m tools.local_runner`` with ``settings`` as app settings; ``info`` has url and keys."""
    env = {**os.environ, **settings, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "tools.local_runner", "--app-dir", str(app_dir), "--port", "0",
        "--max-poll-seconds", "0.5",
    ]  # fmt: skip
    child = _spawn("runner", cmd, env=env)
    _ready_line(child, timeout_s=timeout_s)
    return child


def temp_dir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=prefix)
