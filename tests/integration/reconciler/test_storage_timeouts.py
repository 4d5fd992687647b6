"""Storage clients fail fast: an Event Grid invocation that must hand over to the queue cannot spend the SDK's
default minutes retrying unreachable storage (Event Grid gives a delivery 30 s). Real SDK clients against a
closed loopback port and a loopback listener that never answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import AzureError, ServiceRequestError

from remediator.adapters.journal import Journal
from remediator.adapters.work_queue import WorkQueue
from remediator.core.ids import parse_cluster_id
from remediator.core.settings import Settings
from remediator.core.work_item import WorkItem
from remediator.service.runtime import build_handler_context
from remediator.service.triggers import events as event_triggers
from tests.fixtures.emulator import TEST_SUB
from tests.fixtures.events import recent_event_time
from tests.integration.reconciler.conftest import arm_writes, cluster_id

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: connections are refused


def _storage_at(env: dict[str, str], port: int) -> dict[str, str]:
    account = "devstoreaccount1"
    key = env["AzureWebJobsStorage"].split("AccountKey=")[1].split(";")[0]
    return {
        **env,
        "AzureWebJobsStorage": (
            f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
            f"QueueEndpoint=http://127.0.0.1:{port}/{account};"
            f"TableEndpoint=http://127.0.0.1:{port}/{account};"
        ),
    }


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback listener that accepts connections and never answers (a hung storage front end)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_an_event_hand_over_to_unreachable_storage_raises_well_under_the_delivery_timeout(
    world: Any, azurite: Any
) -> None:
    ctx = build_handler_context(world.env)
    try:
        ctx.work = WorkQueue.from_settings(Settings.from_env(_storage_at(world.env, _closed_port())))
        event = {
            "id": "evt-storage-down",
            "subject": AKS_OK,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "topic": f"/subscriptions/{TEST_SUB}",
            "eventTime": recent_event_time(),
            "dataVersion": "2",
            "data": {
                "operationName": "Microsoft.ContainerService/managedClusters/write",
                "resourceUri": AKS_OK,
            },
        }
        started = time.monotonic()
        with pytest.raises(AzureError):
            event_triggers.handle_cluster_write_event(event, ctx=ctx)  # the install waits -> hand-over fails
        elapsed = time.monotonic() - started
    finally:
        ctx.extras["runtime"].close()
    assert len(arm_writes(world, path_contains="/extensions/")) == 1  # the reconcile ran, then the hand-over
    assert elapsed < 15, f"raised after {elapsed:.1f} s (Event Grid gives a delivery 30 s)"


def test_journal_calls_to_unreachable_storage_fail_fast(world: Any) -> None:
    journal = Journal.from_settings(Settings.from_env(_storage_at(world.env, _closed_port())))
    started = time.monotonic()
    with pytest.raises(ServiceRequestError):
        journal.latest(AKS_OK)
    assert time.monotonic() - started < 15


def test_an_enqueue_to_a_hung_storage_front_end_keeps_to_its_time_budget(
    world: Any, silent_port: int
) -> None:
    queue = WorkQueue.from_settings(Settings.from_env(_storage_at(world.env, silent_port)))
    started = time.monotonic()
    with pytest.raises(AzureError):
        queue.enqueue(WorkItem(cluster_id=parse_cluster_id(AKS_OK)), timeout_s=3.0)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"took {elapsed:.1f} s for a 3 s budget"  # unbudgeted: 3 x 5 s reads + backoffs
