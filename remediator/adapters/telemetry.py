"""OpenTelemetry for the remediator: a span per reconcile, outcome counters and sweep gauges.

Why an adapter: the product records what it did in one shape (``ReconcileReport.to_json()``,
``SweepSummary.to_json()``); this module turns those into spans and metrics, so the reconcile and sweep code
stay free of telemetry calls beyond ONE call site each. The names come from
:mod:`remediator.core.telemetry_names` (the workbook's KQL is checked against them).

With ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set, :func:`telemetry_from_environment` configures the Azure
Monitor OpenTelemetry distro once per process (traces, metrics and the ``remediator`` logger's records go to
Application Insights; Entra authentication with the app's user-assigned identity when
``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` says ``Authorization=AAD``, because local auth is disabled
on the component). Without it, it returns :class:`NoTelemetry`: nothing is imported, nothing is recorded. All
OpenTelemetry imports are lazy: the Flex Consumption host gives a worker 30 s to initialise.

Wiring (one place each, by the owner of those modules)::

    telemetry = telemetry_from_environment(os.environ)          # once per process, e.g. in the runtime
    with telemetry.reconcile_span(cluster_id, trigger="event", event_time=event_time) as span:
        report = reconciler.reconcile(...)
        span.finish(report.to_json())                           # attributes, counters, latency
    telemetry.swept(summary.to_json())                          # gauges, after each sweep
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from remediator.core import telemetry_names as names

logger = logging.getLogger(__name__)

CONNECTION_STRING_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING_SETTING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
LOGGER_NAME = "remediator"
"""The distro exports this logger's records (the product's own logs), not the root logger's."""


class ReconcileSpan(Protocol):
    """Handle on the open span of one reconcile."""

    def finish(self, report: Mapping[str, Any]) -> None:
        """Attach the reconcile's report (``ReconcileReport.to_json()``); metrics are recorded on exit."""


class Telemetry(Protocol):
    """What the service calls. Both implementations take the reports' JSON forms."""

    def reconcile_span(
        self, cluster_id: str, *, trigger: str = "", event_time: datetime | str | None = None
    ) -> Any:
        """Context manager around one reconcile; yields a :class:`ReconcileSpan`."""

    def reconciled(
        self,
        report: Mapping[str, Any],
        duration_s: float,
        *,
        trigger: str = "",
        event_time: datetime | str | None = None,
    ) -> None:
        """Record a finished reconcile that ran outside :meth:`reconcile_span` (span back-dated)."""

    def swept(self, summary: Mapping[str, Any]) -> None:
        """Record one sweep's gauges (``SweepSummary.to_json()``)."""


class _NoSpan:
    def finish(self, report: Mapping[str, Any]) -> None:
        del report


class NoTelemetry:
    """No connection string: every call is a no-op and nothing of OpenTelemetry is imported."""

    @contextmanager
    def reconcile_span(
        self, cluster_id: str, *, trigger: str = "", event_time: datetime | str | None = None
    ) -> Iterator[ReconcileSpan]:
        del cluster_id, trigger, event_time
        yield _NoSpan()

    def reconciled(
        self,
        report: Mapping[str, Any],
        duration_s: float,
        *,
        trigger: str = "",
        event_time: datetime | str | None = None,
    ) -> None:
        del report, duration_s, trigger, event_time

    def swept(self, summary: Mapping[str, Any]) -> None:
        del summary


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        logger.debug("telemetry: event time %r is not ISO 8601; no latency recorded", value)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _report_attributes(report: Mapping[str, Any], trigger: str) -> dict[str, Any]:
    outcome = report.get("outcome") if isinstance(report.get("outcome"), Mapping) else {}
    assert isinstance(outcome, Mapping)
    actions = [a for a in report.get("actions") or () if isinstance(a, Mapping)]
    wrote = any(a.get("status") in ("done", "failed") for a in actions)
    attributes: dict[str, Any] = {
        names.ATTR_CLUSTER_ID: str(report.get("clusterId", "")),
        names.ATTR_LINK: names.link_of(dict(report)),
        names.ATTR_OUTCOME: str(outcome.get("kind", "unknown")),
        names.ATTR_WHY: str(outcome.get("why", "")),
        names.ATTR_MODE: str(report.get("mode", "")),
        names.ATTR_DRY_RUN: bool(report.get("dryRun", False)),
        names.ATTR_ATTEMPT: int(report.get("attempt", 0) or 0),
        names.ATTR_CORRELATION_ID: str(report.get("correlationId", "")),
        names.ATTR_WROTE: wrote,
    }
    if trigger:
        attributes[names.ATTR_TRIGGER] = trigger
    return attributes


class OpenTelemetryTelemetry:
    """Spans and metrics through the OpenTelemetry API (any SDK: Azure Monitor in Azure, in-memory in tests).

    :param tracer_provider: provides the tracer (``opentelemetry.trace.get_tracer_provider()`` in Azure).
    :param meter_provider: provides the meter.
    :param clock: seconds since the epoch (tests pass a fixed clock for the event latency).
    """

    def __init__(self, *, tracer_provider: Any, meter_provider: Any, clock: Any = time.time) -> None:
        self._tracer = tracer_provider.get_tracer(names.INSTRUMENTATION_SCOPE)
        meter = meter_provider.get_meter(names.INSTRUMENTATION_SCOPE)
        self._clock = clock
        self._outcomes = meter.create_counter(
            names.METRIC_OUTCOMES, unit="{reconcile}", description="Reconciles by outcome, link and mode."
        )
        self._actions = meter.create_counter(
            names.METRIC_ACTIONS, unit="{write}", description="Writes by kind and status."
        )
        self._duration = meter.create_histogram(
            names.METRIC_RECONCILE_DURATION, unit=names.UNIT_SECONDS, description="Wall time of a reconcile."
        )
        self._latency = meter.create_histogram(
            names.METRIC_EVENT_TO_WRITE,
            unit=names.UNIT_SECONDS,
            description="From the triggering event's time to the end of the reconcile that wrote.",
        )
        self._gauges = {
            name: meter.create_gauge(name, unit=names.UNIT_CLUSTERS, description=f"Sweep: {name}")
            for name in names.SWEEP_GAUGES
        }

    @contextmanager
    def reconcile_span(
        self, cluster_id: str, *, trigger: str = "", event_time: datetime | str | None = None
    ) -> Iterator[ReconcileSpan]:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        holder = _SpanHandle()
        started = time.monotonic()
        with self._tracer.start_as_current_span(
            names.SPAN_RECONCILE,
            kind=SpanKind.INTERNAL,
            attributes={
                names.ATTR_CLUSTER_ID: cluster_id,
                **({names.ATTR_TRIGGER: trigger} if trigger else {}),
            },
        ) as span:
            yield holder
            if holder.report is not None:
                attributes = _report_attributes(holder.report, trigger)
                span.set_attributes(attributes)
                if attributes[names.ATTR_OUTCOME] == "gave_up":
                    span.set_status(Status(StatusCode.ERROR, attributes[names.ATTR_WHY][:256]))
        if holder.report is not None:
            self._record(holder.report, time.monotonic() - started, trigger=trigger, event_time=event_time)

    def reconciled(
        self,
        report: Mapping[str, Any],
        duration_s: float,
        *,
        trigger: str = "",
        event_time: datetime | str | None = None,
    ) -> None:
        from opentelemetry.trace import SpanKind

        end_ns = int(self._clock() * 1e9)
        attributes = _report_attributes(report, trigger)
        span = self._tracer.start_span(
            names.SPAN_RECONCILE,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=end_ns - int(max(duration_s, 0.0) * 1e9),
        )
        span.end(end_time=end_ns)
        self._record(report, duration_s, trigger=trigger, event_time=event_time)

    def _record(
        self,
        report: Mapping[str, Any],
        duration_s: float,
        *,
        trigger: str,
        event_time: datetime | str | None,
    ) -> None:
        attributes = _report_attributes(report, trigger)
        dimensions = {
            key: attributes[key]
            for key in (names.ATTR_OUTCOME, names.ATTR_LINK, names.ATTR_MODE, names.ATTR_DRY_RUN)
        }
        if trigger:
            dimensions[names.ATTR_TRIGGER] = trigger
        self._outcomes.add(1, dimensions)
        self._duration.record(max(duration_s, 0.0), {names.ATTR_OUTCOME: attributes[names.ATTR_OUTCOME]})
        for action in report.get("actions") or ():
            if isinstance(action, Mapping):
                self._actions.add(
                    1,
                    {
                        names.ATTR_ACTION_KIND: str(action.get("kind", "")),
                        names.ATTR_ACTION_STATUS: str(action.get("status", "")),
                        names.ATTR_MODE: attributes[names.ATTR_MODE],
                    },
                )
        when = _as_datetime(event_time)
        if when is not None and attributes[names.ATTR_WROTE]:
            latency = self._clock() - when.timestamp()
            if latency >= 0:
                self._latency.record(
                    latency, {names.ATTR_LINK: attributes[names.ATTR_LINK], names.ATTR_TRIGGER: trigger}
                )

    def swept(self, summary: Mapping[str, Any]) -> None:
        dimensions = {
            names.ATTR_MODE: str(summary.get("mode", "")),
            names.ATTR_DRY_RUN: bool(summary.get("dryRun", False)),
        }
        for name, keys in names.SWEEP_GAUGES.items():
            value = next((summary[k] for k in keys if isinstance(summary.get(k), int | float)), None)
            if value is not None:
                self._gauges[name].set(value, dimensions)


class _SpanHandle:
    def __init__(self) -> None:
        self.report: Mapping[str, Any] | None = None

    def finish(self, report: Mapping[str, Any]) -> None:
        self.report = report


def _credential_for(authentication: str | None) -> Any:
    """``ClientId=<id>;Authorization=AAD`` -> a managed identity credential for ingestion (else ``None``)."""
    if not authentication:
        return None
    parts = dict(part.split("=", 1) for part in authentication.split(";") if "=" in part)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = parts.get("ClientId")
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


_configured: Telemetry | None = None


def telemetry_from_environment(environ: Mapping[str, str]) -> Telemetry:
    """The process's telemetry: Azure Monitor when a connection string is set, else :class:`NoTelemetry`.

    Configures the distro at most once per process (a second call returns the first result).
    """
    global _configured
    connection_string = environ.get(CONNECTION_STRING_SETTING, "").strip()
    if not connection_string:
        return NoTelemetry()
    if _configured is not None:
        return _configured
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.resources import Resource

    configure_azure_monitor(
        connection_string=connection_string,
        credential=_credential_for(environ.get(AUTHENTICATION_STRING_SETTING)),
        logger_name=LOGGER_NAME,
        resource=Resource.create({"service.name": names.SERVICE_NAME}),
    )
    _configured = OpenTelemetryTelemetry(
        tracer_provider=trace.get_tracer_provider(), meter_provider=metrics.get_meter_provider()
    )
    logger.info("telemetry: exporting traces, metrics and logs to Azure Monitor")
    return _configured
