"""The names of every span, metric and attribute the remediator emits through OpenTelemetry.

One home for them, because three things must agree: the telemetry adapter that emits them
(``remediator/adapters/telemetry.py``), the Azure Monitor workbook whose KQL reads them back
(``infra/workbook/*.kql``), and the tests that hold the two together (``tests/unit/infra/test_workbook.py``
fails when a query names a metric or attribute that is not here). Pure: no I/O, no SDK.

How the names land in Application Insights (Azure Monitor OpenTelemetry exporter): a span becomes a row of
``requests`` (a SERVER/CONSUMER span) or ``dependencies`` (INTERNAL) whose ``name`` is the span name, with
every attribute under ``customDimensions``; a metric becomes rows of ``customMetrics`` whose ``name`` is the
metric name, ``value`` the point value (sum of a counter's delta, last value of a gauge, sum of a histogram)
and ``valueCount`` the number of measurements, attributes again under ``customDimensions``.
"""

from __future__ import annotations

from typing import Final

SERVICE_NAME: Final = "aks-backup-remediator"
"""``service.name`` resource attribute (App Insights ``cloud_RoleName``)."""

INSTRUMENTATION_SCOPE: Final = "remediator"
"""Name of the tracer and the meter."""

# ---- spans -------------------------------------------------------------------------------------------

SPAN_RECONCILE: Final = "remediator.reconcile"
"""One span per reconcile of one cluster (event, queue item, HTTP request or CLI)."""

SPAN_SWEEP: Final = "remediator.sweep"
"""One span per sweep."""

# ---- attributes (span attributes and metric dimensions) --------------------------------------------------

ATTR_CLUSTER_ID: Final = "remediator.cluster_id"
"""The cluster's ARM id (span attribute only: never a metric dimension, its cardinality is the fleet)."""
ATTR_LINK: Final = "remediator.link"
"""The requirement (link of the reconcile chain) the reconcile ended on, e.g. ``extension-installed``."""
ATTR_OUTCOME: Final = "remediator.outcome"
"""``done`` / ``wait`` / ``gave_up`` / ``skipped``."""
ATTR_WHY: Final = "remediator.why"
"""The outcome's one-line reason (span attribute; the gave-up cause in the workbook)."""
ATTR_MODE: Final = "remediator.mode"
"""``install`` / ``policy-task`` / ``audit`` (and later ``protect``)."""
ATTR_DRY_RUN: Final = "remediator.dry_run"
ATTR_ATTEMPT: Final = "remediator.attempt"
ATTR_CORRELATION_ID: Final = "remediator.correlation_id"
ATTR_ACTION_KIND: Final = "remediator.action.kind"
"""A write's kind (``create-extension``, ...), on the action counter."""
ATTR_ACTION_STATUS: Final = "remediator.action.status"
"""``done`` / ``failed`` / ``exists`` / ``planned`` / ``deferred`` / ``claimed-elsewhere``."""
ATTR_WROTE: Final = "remediator.wrote"
"""Whether the reconcile sent at least one write."""
ATTR_TRIGGER: Final = "remediator.trigger"
"""What started the reconcile, given by the caller: the work-item source of the trigger (``event`` for a
cluster-write event, ``policy`` for a policy-state event, ``queue`` for a work item, ``http`` for
``POST /api/remediate``) or ``cli``; absent when the caller names none (``POST /api/explain``'s dry run)."""

# ---- metrics ---------------------------------------------------------------------------------------

METRIC_OUTCOMES: Final = "remediator.reconcile.outcomes"
"""Counter: reconciles by outcome, link and mode."""
METRIC_ACTIONS: Final = "remediator.reconcile.actions"
"""Counter: writes by kind and status."""
METRIC_RECONCILE_DURATION: Final = "remediator.reconcile.duration"
"""Histogram (seconds): wall time of one reconcile, by outcome."""
METRIC_EVENT_TO_WRITE: Final = "remediator.event_to_write.latency"
"""Histogram (seconds): from the triggering event's time to the end of the reconcile that wrote, for
reconciles that sent a write and were triggered by an event with a time."""

METRIC_SWEEP_SELECTED: Final = "remediator.sweep.selected"
"""Gauge: clusters the sweep found selected by the rules."""
METRIC_SWEEP_PROTECTED: Final = "remediator.sweep.protected"
"""Gauge: selected clusters already in the wanted state."""
METRIC_SWEEP_BLOCKED: Final = "remediator.sweep.blocked"
"""Gauge: selected clusters a blocker only a human can lift holds back."""
METRIC_SWEEP_GAVE_UP: Final = "remediator.sweep.gave_up"
"""Gauge: selected clusters the remediator gave up on."""

UNIT_SECONDS: Final = "s"
UNIT_CLUSTERS: Final = "{cluster}"

SWEEP_GAUGES: Final[dict[str, tuple[str, ...]]] = {
    METRIC_SWEEP_SELECTED: ("selected", "candidates"),
    METRIC_SWEEP_PROTECTED: ("protected",),
    METRIC_SWEEP_BLOCKED: ("blocked",),
    METRIC_SWEEP_GAVE_UP: ("gaveUp",),
}
"""Gauge -> the ``SweepSummary.to_json()`` keys it reads, first present wins. Today's summary has
``candidates`` (in-scope clusters without a Succeeded extension) and ``blocked``; ``selected``, ``protected``
and ``gaveUp`` are read as soon as the sweep reports them (the truthful-report work), and a gauge whose key is
absent is not recorded (no made-up zero)."""

METRIC_NAMES: Final = frozenset(
    {
        METRIC_OUTCOMES,
        METRIC_ACTIONS,
        METRIC_RECONCILE_DURATION,
        METRIC_EVENT_TO_WRITE,
        *SWEEP_GAUGES,
    }
)
SPAN_NAMES: Final = frozenset({SPAN_RECONCILE, SPAN_SWEEP})
ATTRIBUTE_NAMES: Final = frozenset(
    {
        ATTR_CLUSTER_ID,
        ATTR_LINK,
        ATTR_OUTCOME,
        ATTR_WHY,
        ATTR_MODE,
        ATTR_DRY_RUN,
        ATTR_ATTEMPT,
        ATTR_CORRELATION_ID,
        ATTR_ACTION_KIND,
        ATTR_ACTION_STATUS,
        ATTR_WROTE,
        ATTR_TRIGGER,
    }
)

UNKNOWN_LINK: Final = "unknown"
"""``remediator.link`` when the report names no requirement (reports written before the reconcile chain)."""


def link_of(report: dict[str, object]) -> str:
    """The chain link a ``ReconcileReport.to_json()`` ended on.

    In order: an explicit ``link``/``requirement`` (top level or in the outcome); the first link of the
    report's ``links`` that is not satisfied (``{"link", "state", "why"}``, as the reconcile chain reports
    them); the ``link`` (else the ``kind``) of the last action; the last link when every one is satisfied;
    else :data:`UNKNOWN_LINK` (a skipped or gated cluster evaluates no link).
    """
    outcome = report.get("outcome")
    for holder in (report, outcome if isinstance(outcome, dict) else {}):
        for key in ("link", "requirement"):
            value = holder.get(key)
            if isinstance(value, str) and value:
                return value
    links = [entry for entry in report.get("links") or () if isinstance(entry, dict)]  # type: ignore[attr-defined]
    for entry in links:
        if entry.get("state") not in ("satisfied", "not-needed") and isinstance(entry.get("link"), str):
            return str(entry["link"])
    actions = report.get("actions")
    if isinstance(actions, list) and actions:
        last = actions[-1]
        if isinstance(last, dict):
            for key in ("link", "kind"):
                if isinstance(last.get(key), str) and last[key]:
                    return str(last[key])
    if links and isinstance(links[-1].get("link"), str):
        return str(links[-1]["link"])
    return UNKNOWN_LINK
