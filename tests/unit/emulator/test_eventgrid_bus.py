# ruff: noqa: E501
"""Event Grid delivery semantics of the emulator's bus: filters, retry schedule, dead-lettering."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from emulator.eventgrid.bus import RETRY_SCHEDULE_S, AdvancedFilter, EventBus, EventSubscription

EVENT = {
    "eventType": "Microsoft.Resources.ResourceWriteSuccess",
    "subject": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/a",
    "data": {"operationName": "Microsoft.ContainerService/managedClusters/write", "status": "Succeeded"},
}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (
            AdvancedFilter(
                "StringIn", "data.operationName", ["microsoft.containerservice/managedclusters/WRITE"]
            ),
            True,
        ),
        (
            AdvancedFilter(
                "StringIn",
                "data.operationName",
                ["Microsoft.ContainerService/managedClusters/agentPools/write"],
            ),
            False,
        ),
        (AdvancedFilter("StringNotIn", "data.operationName", ["x"]), True),
        (AdvancedFilter("StringBeginsWith", "subject", ["/SUBSCRIPTIONS/s/"]), True),
        (AdvancedFilter("StringEndsWith", "Subject", ["/managedclusters/a"]), True),
        (AdvancedFilter("StringContains", "data.status", ["succ"]), True),
        (AdvancedFilter("StringIn", "data.missing", ["x"]), False),
        (AdvancedFilter("IsNullOrUndefined", "data.missing"), True),
        (AdvancedFilter("IsNotNull", "data.status"), True),
    ],
)
def test_advanced_filters_are_case_insensitive(flt, expected):
    assert flt.matches(EVENT) is expected


def test_unsupported_filter_and_bad_subscription_are_rejected():
    with pytest.raises(ValueError):
        AdvancedFilter("NumberIn", "data.x", [1])
    with pytest.raises(ValueError):
        EventSubscription.from_json({"name": "x", "endpointUrl": "ftp://x"})
    with pytest.raises(ValueError):
        EventSubscription.from_json({"name": "x", "retryPolicy": {"maxDeliveryAttempts": 31}})


def test_included_types_and_subject_prefix():
    sub = EventSubscription.from_json(
        {
            "name": "s",
            "filter": {
                "includedEventTypes": ["microsoft.resources.resourcewritesuccess"],
                "subjectBeginsWith": "/subscriptions/S/",
            },
        }
    )
    assert sub.wants(EVENT)
    assert not sub.wants({**EVENT, "eventType": "Microsoft.Resources.ResourceDeleteSuccess"})


class _Endpoint:
    def __init__(self, statuses):
        self.times: list[float] = []
        self.bodies: list[bytes] = []
        self.statuses = list(statuses)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                outer.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                outer.times.append(time.monotonic())
                self.send_response(outer.statuses.pop(0) if outer.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_retry_schedule_is_the_documented_one_time_compressed():
    endpoint = _Endpoint([503, 500, 429, 200])
    bus = EventBus()
    try:
        bus.update_settings({"timeFactor": 100})  # 10 s → 0.1 s, 30 s → 0.3 s, 60 s → 0.6 s
        bus.add_subscription({"name": "s", "endpointUrl": endpoint.url})
        bus.publish("T", "/x", {}, topic="/subscriptions/s")
        wait(lambda: len(bus.deliveries) == 4)  # the log is written after the endpoint has answered
        # The schedule itself, as the bus planned it: exact, whatever the load on the machine.
        assert [d.get("retryInS") for d in bus.deliveries] == [*RETRY_SCHEDULE_S[:3], None]
        # And it is honoured: a retry is never early (a loaded machine can only make it late).
        gaps = [b - a for a, b in zip(endpoint.times, endpoint.times[1:], strict=False)]
        for gap, expected in zip(gaps, RETRY_SCHEDULE_S[:3], strict=True):
            assert gap >= expected / 100 * 0.9
        assert [d["attempt"] for d in bus.deliveries] == [1, 2, 3, 4]
        assert bus.dead_letters == []
    finally:
        bus.stop()
        endpoint.server.shutdown()


def test_max_attempts_and_unreachable_endpoint_dead_letter():
    bus = EventBus()
    try:
        bus.update_settings({"timeFactor": 1000})
        bus.add_subscription(
            {
                "name": "s",
                "endpointUrl": "http://127.0.0.1:9/unreachable",
                "retryPolicy": {"maxDeliveryAttempts": 3},
            }
        )
        event = bus.publish("T", "/x", {"k": 1}, topic="/subscriptions/s")
        wait(lambda: bus.dead_letters)
        letter = bus.dead_letters[0]
        assert letter["id"] == event["id"] and letter["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
        assert letter["deliveryAttempts"] == 3 and letter["lastDeliveryOutcome"]
    finally:
        bus.stop()


def test_collecting_subscription_keeps_events_in_memory():
    bus = EventBus()
    try:
        bus.add_subscription({"name": "mem", "filter": {"includedEventTypes": ["A"]}})
        bus.publish("A", "/x", {}, topic="/t")
        bus.publish("B", "/x", {}, topic="/t")
        assert [e["eventType"] for e in bus.subscriptions["mem"].collected] == ["A"]
        assert [e["eventType"] for e in bus.published] == ["A", "B"]
    finally:
        bus.stop()


def test_held_event_waits_for_the_next_delivery_not_for_a_time():
    """reorderAfterEvents: the held event reaches the webhook after the next one, however late that one is
    published (the time-based hold let a slow publisher deliver in order, which made reordering flaky)."""
    import json

    endpoint = _Endpoint([])
    bus = EventBus()
    try:
        bus.update_settings({"reorderProbability": 1, "reorderAfterEvents": 1, "reorderDelayS": 60})
        bus.add_subscription({"name": "s", "endpointUrl": endpoint.url})
        first = bus.publish("T", "/first", {}, topic="/subscriptions/s")
        time.sleep(0.5)  # far longer than the old 0.3 s hold
        assert endpoint.bodies == []
        bus.update_settings({"reorderProbability": 0})
        second = bus.publish("T", "/second", {}, topic="/subscriptions/s")
        wait(lambda: len(endpoint.bodies) == 2)
        assert [json.loads(b)[0]["id"] for b in endpoint.bodies] == [second["id"], first["id"]]
        assert [d["reordered"] for d in bus.deliveries] == [False, True]
    finally:
        bus.stop()
        endpoint.server.shutdown()
