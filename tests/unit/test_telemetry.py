"""The telemetry adapter, through the real OpenTelemetry SDK with in-memory exporters: what one reconcile and
one sweep emit (span name and attributes, counters, histograms, gauges), and that nothing is imported or
recorded without a connection string."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from remediator.adapters.telemetry import NoTelemetry, OpenTelemetryTelemetry, telemetry_from_environment
from remediator.core import telemetry_names as names
from remediator.core.outcomes import Action, ActionKind, ActionStatus, Outcome, ReconcileReport

CLUSTER = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg"
    "/providers/Microsoft.ContainerService/managedClusters/aks1"
)
NOW = datetime(2026, 11, 1, 12, 0, 30, tzinfo=UTC).timestamp()


class Harness:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.telemetry = OpenTelemetryTelemetry(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            clock=lambda: NOW,
        )

    def points(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """metric name -> [(attributes, value or histogram (count, sum))]."""
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                assert scope.scope.name == names.INSTRUMENTATION_SCOPE
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = (point.count, point.sum) if hasattr(point, "bucket_counts") else point.value
                        found.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
        return found


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield Harness()


def installed_report() -> dict[str, Any]:
    report = ReconcileReport(
        cluster_id=CLUSTER,
        decision=None,
        outcome=Outcome.done("extension install started"),
        actions=(
            Action(ActionKind.CREATE_CONTAINER, CLUSTER + "/c", ActionStatus.EXISTS),
            Action(ActionKind.CREATE_EXTENSION, CLUSTER + "/e", ActionStatus.DONE),
        ),
        mode="install",
        attempt=1,
        correlation_id="corr-1",
    ).to_json()
    report["link"] = "extension-installed"  # the reconcile chain names the requirement it ended on
    return report


def gave_up_report() -> dict[str, Any]:
    return ReconcileReport(
        cluster_id=CLUSTER,
        decision=None,
        outcome=Outcome.gave_up("blocked: Windows-only node pools"),
        mode="install",
        correlation_id="corr-2",
    ).to_json()


def test_a_reconcile_emits_one_span_with_link_and_outcome_and_counters(harness: Harness) -> None:
    with harness.telemetry.reconcile_span(
        CLUSTER, trigger="event", event_time="2026-11-01T12:00:00Z"
    ) as span:
        span.finish(installed_report())

    (finished,) = harness.spans.get_finished_spans()
    assert finished.name == names.SPAN_RECONCILE
    attributes = dict(finished.attributes or {})
    assert attributes[names.ATTR_CLUSTER_ID] == CLUSTER
    assert attributes[names.ATTR_LINK] == "extension-installed"
    assert attributes[names.ATTR_OUTCOME] == "done"
    assert attributes[names.ATTR_MODE] == "install"
    assert attributes[names.ATTR_TRIGGER] == "event"
    assert attributes[names.ATTR_WROTE] is True
    assert attributes[names.ATTR_CORRELATION_ID] == "corr-1"
    assert finished.status.status_code is not StatusCode.ERROR

    points = harness.points()
    ((outcome_attrs, count),) = points[names.METRIC_OUTCOMES]
    assert count == 1
    assert outcome_attrs == {
        names.ATTR_OUTCOME: "done",
        names.ATTR_LINK: "extension-installed",
        names.ATTR_MODE: "install",
        names.ATTR_DRY_RUN: False,
        names.ATTR_TRIGGER: "event",
    }
    actions = {
        (a[names.ATTR_ACTION_KIND], a[names.ATTR_ACTION_STATUS]): v for a, v in points[names.METRIC_ACTIONS]
    }
    assert actions == {("create-container", "exists"): 1, ("create-extension", "done"): 1}
    ((_, (latency_count, latency_sum)),) = points[names.METRIC_EVENT_TO_WRITE]
    assert latency_count == 1 and latency_sum == pytest.approx(30.0)  # event at :00, reconcile ended at :30
    ((duration_attrs, (duration_count, _)),) = points[names.METRIC_RECONCILE_DURATION]
    assert duration_count == 1 and duration_attrs == {names.ATTR_OUTCOME: "done"}


def test_outcomes_are_counted_by_kind_and_a_give_up_marks_the_span(harness: Harness) -> None:
    for report in (installed_report(), gave_up_report(), gave_up_report()):
        with harness.telemetry.reconcile_span(CLUSTER, trigger="queue") as span:
            span.finish(report)

    spans = harness.spans.get_finished_spans()
    assert len(spans) == 3
    gave_up = [s for s in spans if (s.attributes or {})[names.ATTR_OUTCOME] == "gave_up"]
    assert len(gave_up) == 2
    for span in gave_up:
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})[names.ATTR_WHY] == "blocked: Windows-only node pools"
        assert (span.attributes or {})[names.ATTR_LINK] == names.UNKNOWN_LINK  # today's report names no link

    by_outcome = {a[names.ATTR_OUTCOME]: v for a, v in harness.points()[names.METRIC_OUTCOMES]}
    assert by_outcome == {"done": 1, "gave_up": 2}
    assert names.METRIC_EVENT_TO_WRITE not in harness.points()  # no event time given: no latency


def test_reconciled_back_dates_a_span_for_callers_without_the_context_manager(harness: Harness) -> None:
    harness.telemetry.reconciled(gave_up_report(), 2.5, trigger="http")
    (span,) = harness.spans.get_finished_spans()
    assert span.name == names.SPAN_RECONCILE
    assert span.end_time is not None and span.start_time is not None
    assert (span.end_time - span.start_time) == pytest.approx(2.5e9)
    assert harness.points()[names.METRIC_OUTCOMES][0][1] == 1


def test_a_sweep_sets_the_gauges_it_has_data_for(harness: Harness) -> None:
    today = {"mode": "install", "dryRun": False, "candidates": 42, "blocked": 3, "enqueued": 39}
    harness.telemetry.swept(today)
    points = harness.points()
    assert points[names.METRIC_SWEEP_SELECTED] == [
        ({names.ATTR_MODE: "install", names.ATTR_DRY_RUN: False}, 42)
    ]
    assert points[names.METRIC_SWEEP_BLOCKED][0][1] == 3
    # today's summary has no protected / gave-up counts: no made-up zero
    assert names.METRIC_SWEEP_PROTECTED not in points and names.METRIC_SWEEP_GAVE_UP not in points

    harness.telemetry.swept(
        {"mode": "install", "selected": 100, "protected": 90, "blocked": 4, "gaveUp": 2, "candidates": 10}
    )
    points = harness.points()
    latest = {name: points[name][-1][1] for name in names.SWEEP_GAUGES}
    assert latest == {
        names.METRIC_SWEEP_SELECTED: 100,  # "selected" wins over "candidates"
        names.METRIC_SWEEP_PROTECTED: 90,
        names.METRIC_SWEEP_BLOCKED: 4,
        names.METRIC_SWEEP_GAVE_UP: 2,
    }


def test_every_name_emitted_is_declared_in_the_names_module(harness: Harness) -> None:
    with harness.telemetry.reconcile_span(CLUSTER, trigger="event", event_time=datetime.now(UTC)) as span:
        span.finish(installed_report())
    harness.telemetry.swept({"mode": "install", "selected": 1, "protected": 1, "blocked": 0, "gaveUp": 0})
    points = harness.points()
    assert set(points) <= names.METRIC_NAMES
    assert set(names.SWEEP_GAUGES) <= set(points)
    for span in harness.spans.get_finished_spans():
        assert span.name in names.SPAN_NAMES
        assert set(span.attributes or {}) <= names.ATTRIBUTE_NAMES
    for series in points.values():
        for attributes, _ in series:
            assert set(attributes) <= names.ATTRIBUTE_NAMES
            assert names.ATTR_CLUSTER_ID not in attributes  # never a metric dimension


def test_without_a_connection_string_nothing_changes() -> None:
    telemetry = telemetry_from_environment({})
    assert isinstance(telemetry, NoTelemetry)
    with telemetry.reconcile_span(CLUSTER) as span:
        span.finish(installed_report())
    telemetry.swept({"candidates": 1})
    # ... and the import of the adapter pulls in no OpenTelemetry or Azure Monitor module (Flex: 30 s init).
    code = (
        "import sys, remediator.adapters.telemetry as t;"
        "t.telemetry_from_environment({}).swept({'candidates': 1});"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_runtime_without_a_connection_string_wires_no_telemetry_and_imports_none() -> None:
    """The composition root (runtime.py) the Functions app and the CLI use: without the setting the
    reconciler gets the no-op telemetry, and nothing of OpenTelemetry is imported (the handlers get the same
    object: tests/integration/reconciler/test_telemetry_wired.py)."""
    code = (
        "import sys, json;"
        "from remediator.service.runtime import Runtime;"
        "r = Runtime.from_env({'REMEDIATOR_TENANT_ID': 't', 'REMEDIATOR_CONFIG_JSON': json.dumps("
        "{'scope': {'subscriptions': ['11111111-2222-3333-4444-555555555555']}, 'storage': {'eastus':"
        " '/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
        "Microsoft.Storage/storageAccounts/stbackup'}})});"
        "print(type(r.telemetry).__name__, r.reconciler.telemetry is r.telemetry);"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["NoTelemetry True", "[]"]


def test_link_is_the_first_unsatisfied_link_else_the_last_action() -> None:
    links = (
        {"link": "storage-usable", "state": "satisfied", "why": "ok"},
        {"link": "extension-installed", "state": "waiting", "why": "Creating"},
        {"link": "storage-access-granted", "state": "deferred", "why": "extension-installed"},
    )
    report = ReconcileReport(
        cluster_id=CLUSTER,
        decision=None,
        outcome=Outcome.wait(30, "extension installing"),
        actions=(
            Action(ActionKind.ASSIGN_ROLE, CLUSTER, ActionStatus.DEFERRED, link="storage-access-granted"),
        ),
        links=links,
    ).to_json()
    assert names.link_of(report) == "extension-installed"
    no_links = {**report, "links": []}
    assert names.link_of(no_links) == "storage-access-granted"  # the last action's link
    bare = {**no_links, "actions": [{"kind": "assign-role", "status": "deferred"}]}
    assert names.link_of(bare) == "assign-role"  # an action without a link: its kind
    satisfied = {**report, "actions": [], "links": [{**link, "state": "satisfied"} for link in links]}
    assert names.link_of(satisfied) == "storage-access-granted"
    assert names.link_of({**report, "outcome": {**report["outcome"], "requirement": "storage-access"}}) == (
        "storage-access"
    )
