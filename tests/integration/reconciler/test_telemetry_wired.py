"""Telemetry through the real product path: an Event Grid event the emulator published, the real handler, the
real reconciler writing to the emulator, the real timer sweep over Resource Graph; spans and metrics caught
by OpenTelemetry's in-memory exporter and reader (the same API the Azure Monitor distro feeds in Azure).

The unit tests (tests/unit/test_telemetry.py) hold the adapter to fixed reports; these show that the runtime
wires it where every trigger passes: one span per reconcile with link, outcome and trigger, outcome and
action counters, the event->write latency from the event's own ``eventTime``, and the sweep's gauges.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from datetime import datetime
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from remediator.adapters.telemetry import OpenTelemetryTelemetry
from remediator.core import telemetry_names as names
from remediator.core.ids import parse_cluster_id
from remediator.core.settings import Settings
from remediator.core.work_item import WorkItem
from remediator.service.runtime import Runtime
from remediator.service.triggers import events as event_triggers
from remediator.service.triggers import queue as queue_triggers
from remediator.service.triggers import timer as timer_trigger
from tests.integration.reconciler.conftest import FAST, arm_writes, cluster_id

pytestmark = pytest.mark.integration

NEW_CLUSTER = cluster_id("aks-telemetry")


class Captured:
    """In-memory OpenTelemetry providers behind the product's adapter."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.telemetry = OpenTelemetryTelemetry(
            tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[self.reader])
        )

    def reconcile_spans(self) -> list[dict[str, Any]]:
        return [
            dict(span.attributes or {})
            for span in self.spans.get_finished_spans()
            if span.name == names.SPAN_RECONCILE
        ]

    def points(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """metric name -> [(attributes, value or histogram (count, sum))]."""
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = (point.count, point.sum) if hasattr(point, "bucket_counts") else point.value
                        found.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
        return found


def _arm(emulator: Any, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    request = urllib.request.Request(
        f"{emulator.base_url}{path}?api-version=2024-09-01",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": "Bearer someone-else", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def _published_cluster_write(emulator: Any) -> dict[str, Any]:
    """Create a cluster through ARM and return the ResourceWriteSuccess Event Grid published for it."""
    emulator.admin.request(
        "POST",
        "/eventgrid/subscriptions",
        {"name": "collect", "filter": {"includedEventTypes": ["Microsoft.Resources.ResourceWriteSuccess"]}},
    )
    _arm(
        emulator,
        "PUT",
        NEW_CLUSTER,
        {
            "location": "eastus",
            "tags": {"backup": "yes"},
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "dnsPrefix": "aks-telemetry",
                "agentPoolProfiles": [
                    {
                        "name": "np",
                        "count": 1,
                        "vmSize": "Standard_D2s_v5",
                        "mode": "System",
                        "osType": "Linux",
                    }
                ],
            },
        },
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        collected = emulator.admin.request("GET", "/eventgrid/subscriptions/collect/events")["value"]
        for event in collected:
            if event["subject"].lower() == NEW_CLUSTER.lower():
                return dict(event)
        time.sleep(0.05)
    raise AssertionError("the emulator published no ResourceWriteSuccess for the new cluster")


def test_an_event_reconcile_a_queue_reconcile_and_a_sweep_are_recorded(world: Any) -> None:
    captured = Captured()
    runtime = Runtime(Settings.from_env(world.env), client_options=FAST, telemetry=captured.telemetry)
    try:
        ctx = runtime.handler_context()
        assert ctx.telemetry is captured.telemetry  # the timer's gauges and the reconciler's span: one object
        event = _published_cluster_write(world.emulator)
        event_time = datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))

        result = event_triggers.handle_cluster_write_event(event, ctx=ctx)

        # the real reconcile wrote the extension to the emulator ...
        assert result.report is not None
        assert arm_writes(
            world, path_contains=NEW_CLUSTER.lower() + "/providers/microsoft.kubernetesconfiguration"
        )
        report = result.report.to_json()
        # ... and left exactly one span carrying what the report says
        (span,) = captured.reconcile_spans()
        assert span[names.ATTR_CLUSTER_ID].lower() == NEW_CLUSTER.lower()
        assert span[names.ATTR_TRIGGER] == "event"
        assert span[names.ATTR_OUTCOME] == report["outcome"]["kind"]
        assert span[names.ATTR_LINK] == names.link_of(report) != names.UNKNOWN_LINK
        assert span[names.ATTR_WROTE] is True
        assert span[names.ATTR_CORRELATION_ID] == event["id"]  # the event id ties span, journal and event
        assert span[names.ATTR_MODE] == "install"

        points = captured.points()
        ((outcome_attrs, count),) = points[names.METRIC_OUTCOMES]
        assert count == 1
        assert outcome_attrs[names.ATTR_OUTCOME] == report["outcome"]["kind"]
        assert outcome_attrs[names.ATTR_TRIGGER] == "event"
        actions = {
            (a[names.ATTR_ACTION_KIND], a[names.ATTR_ACTION_STATUS]) for a, _ in points[names.METRIC_ACTIONS]
        }
        assert ("create-extension", "done") in actions
        # event -> write latency, measured from the event's own eventTime (the emulator stamped it just now)
        ((latency_attrs, (latency_count, latency_sum)),) = points[names.METRIC_EVENT_TO_WRITE]
        assert latency_count == 1 and latency_attrs[names.ATTR_TRIGGER] == "event"
        assert 0 <= latency_sum <= (datetime.now(event_time.tzinfo) - event_time).total_seconds()

        # a queue worker's reconcile of the same cluster is a second span, trigger "queue" (no event time:
        # the work item carries none, so no second latency point)
        # (the work item the event handed over: its chain's, as the chain mark names it, core.chains)
        cluster = parse_cluster_id(NEW_CLUSTER)
        mark = runtime.chained_work.store.read(cluster)
        assert mark is not None
        item = WorkItem(
            cluster_id=cluster,
            attempt=mark.mark.attempt,
            source="event",
            correlation_id=event["id"],
            chain_id=mark.mark.chain_id,
        )
        queue_triggers.handle_work_item(json.dumps(item.to_json()), dequeue_count=1, ctx=ctx)
        assert [s[names.ATTR_TRIGGER] for s in captured.reconcile_spans()] == ["event", "queue"]
        points = captured.points()
        by_trigger = {a[names.ATTR_TRIGGER]: v for a, v in points[names.METRIC_OUTCOMES]}
        assert by_trigger == {"event": 1, "queue": 1}
        assert points[names.METRIC_EVENT_TO_WRITE][0][1][0] == 1

        # the timer sweep records its gauges from the summary it journaled
        summary = timer_trigger.handle_sweep(past_due=False, ctx=ctx).to_json()
        gauges = captured.points()
        for gauge, keys in names.SWEEP_GAUGES.items():
            value = next((summary[k] for k in keys if isinstance(summary.get(k), int | float)), None)
            if value is None:
                assert gauge not in gauges, f"{gauge}: no field in the summary, so no made-up value"
            else:
                ((attrs, recorded),) = gauges[gauge]
                assert recorded == value and attrs[names.ATTR_MODE] == "install"
        assert names.METRIC_SWEEP_SELECTED in gauges and names.METRIC_SWEEP_BLOCKED in gauges
    finally:
        runtime.close()
