"""The HTTP API (``/api/remediate``, ``/api/explain``, ``/api/report``, ``/api/health``), framework-free.

Each handler takes the raw body and query parameters and returns an :class:`HttpResult`; ``function_app.py``
turns it into an ``HttpResponse``. Rules every route follows: a malformed body is a 400 naming the field, a
cluster or scope outside the configured scope is a 403 with the reason (journaled under the id the request
named), and nothing is written to a cluster on any 4xx (the checks run before any call that could write).
When the scope cannot be decided now (the management-group membership lookup in Resource Graph failed) the
answer is a 503 with ``retryAfterSeconds``, and nothing is written or enqueued.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from remediator.adapters.management_groups import ManagementGroupLookupError
from remediator.core.config import RemediatorConfig, Scope
from remediator.core.decision import Reason, decide
from remediator.core.errors import UserInputError
from remediator.core.ids import (
    InvalidResourceIdError,
    ResourceId,
    parse_cluster_id,
    parse_resource_group_id,
    parse_resource_id,
    parse_subscription_id,
)
from remediator.core.inventory_query import InventoryPlan, plan_inventory
from remediator.core.outcomes import OutcomeKind
from remediator.core.snapshot import ClusterSnapshot
from remediator.service.app_context import HandlerContext, journal_decision, scope_contains
from remediator.service.inline import InlineUnavailable, run_inline
from remediator.service.sweep import HUMAN_BLOCKERS

logger = logging.getLogger(__name__)

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}
_PROBE_CLUSTER = "/providers/Microsoft.ContainerService/managedClusters/probe"


@dataclass(frozen=True)
class HttpResult:
    """An HTTP answer: status code and JSON body."""

    status: int
    body: Mapping[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(self.body, indent=2, default=str).encode("utf-8")


class Forbidden(Exception):
    """The request names a cluster or scope outside the configured scope (HTTP 403)."""


def _bad_request(exc: UserInputError) -> HttpResult:
    return HttpResult(400, exc.to_json())


def _forbidden(ctx: HandlerContext, subject: str, route: str, reason: str) -> HttpResult:
    """403, journaled under the cluster (or scope) id the request named, with the reason."""
    correlation = request_id()
    journal_decision(ctx, subject, f"{route} refused (403): {reason}", correlation_id=correlation)
    return HttpResult(403, {"error": "out-of-scope", "message": reason, "correlationId": correlation})


SCOPE_RETRY_AFTER_S = 30
"""``retryAfterSeconds`` of the 503 answered when the management-group scope cannot be looked up."""


def _scope_unknown(exc: ManagementGroupLookupError) -> HttpResult:
    logger.warning("HTTP request refused for now: %s", exc)
    return HttpResult(
        503,
        {
            "error": "scope-unresolved",
            "message": f"cannot tell now whether the cluster is in scope: {exc}",
            "retryAfterSeconds": SCOPE_RETRY_AFTER_S,
        },
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserInputError("request body is not valid JSON", field="body", source="request body") from exc
    if not isinstance(data, dict):
        raise UserInputError("request body must be a JSON object", field="body", source="request body")
    return data


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = str(params.get(name, "")).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UserInputError(f"must be true or false, not {params.get(name)!r}", field=name, source="query")


def _cluster_in_scope(ctx: HandlerContext, cluster: ResourceId) -> None:
    inside = scope_contains(ctx, cluster)
    if inside is None:
        raise Forbidden(
            f"{cluster.canonical} is not in a listed subscription or resource group, and this endpoint cannot"
            " resolve management-group membership (the timer sweep covers management-group scopes)"
        )
    if not inside:
        raise Forbidden(
            f"{cluster.canonical} is outside the configured scope (subscription {cluster.subscription_id}, "
            f"resource group {cluster.resource_group})"
        )


def _parse_scope(value: object) -> ResourceId:
    """A subscription or resource-group id from the ``scope`` field."""
    try:
        parsed = parse_resource_id(value, field="scope")
    except InvalidResourceIdError as exc:
        raise UserInputError(str(exc.message), field="scope", source="request body") from exc
    if parsed.resource_group is not None and parsed.provider is None:
        return parse_resource_group_id(value, field="scope")
    if parsed.resource_group is None and parsed.provider is None and parsed.subscription_id is not None:
        return parse_subscription_id(value, field="scope")
    raise UserInputError(
        "must be a subscription id (/subscriptions/<guid>) or a resource group id", field="scope"
    )


def _scope_allowed(ctx: HandlerContext, scope: ResourceId) -> None:
    """Raise :class:`Forbidden` unless every cluster below ``scope`` would be in the configured scope."""
    config_scope = ctx.config.scope
    sub_key = f"/subscriptions/{scope.subscription_id}"
    if any(ex.key == sub_key for ex in config_scope.exclude_subscriptions):
        raise Forbidden(f"subscription {scope.subscription_id} is excluded by scope.excludeSubscriptions")
    if scope.resource_group is not None:
        probe = parse_cluster_id(scope.canonical + _PROBE_CLUSTER)
        _cluster_in_scope(ctx, probe)
        return
    if any(s.key == sub_key for s in config_scope.subscriptions):
        return
    if config_scope.management_groups and ctx.management_groups_of is not None:
        probe = parse_cluster_id(f"{sub_key}/resourceGroups/probe{_PROBE_CLUSTER}")
        if config_scope.contains(probe, management_groups_of=ctx.management_groups_of):
            return
    groups = [g.canonical for g in config_scope.resource_groups if g.subscription_id == scope.subscription_id]
    hint = f"; only these resource groups of it are: {', '.join(groups)}" if groups else ""
    raise Forbidden(f"subscription {scope.subscription_id} is not in the configured scope{hint}")


# --------------------------------------------------------------------------------------------- routes


def handle_http_remediate(body: bytes, params: Mapping[str, str], *, ctx: HandlerContext) -> HttpResult:
    """``POST /api/remediate``: ``{clusterId}`` reconciles inline; ``{scope}`` enqueues the clusters below it.

    ``?dryRun=true`` plans without writing (and enqueues nothing).
    """
    subject = ""
    try:
        dry_run = _flag(params, "dryRun")
        data = _json_object(body)
        if ("clusterId" in data) == ("scope" in data):
            raise UserInputError(
                "give exactly one of clusterId and scope", field="clusterId", source="request body"
            )
        if "clusterId" in data:
            cluster = parse_cluster_id(data["clusterId"], field="clusterId")
            subject = cluster.canonical
            _cluster_in_scope(ctx, cluster)
            return _remediate_cluster(ctx, cluster, dry_run=dry_run)
        scope = _parse_scope(data["scope"])
        subject = scope.canonical
        _scope_allowed(ctx, scope)
        return _remediate_scope(ctx, scope, dry_run=dry_run)
    except UserInputError as exc:
        return _bad_request(exc)
    except Forbidden as exc:
        return _forbidden(ctx, subject, "POST /api/remediate", str(exc))
    except ManagementGroupLookupError as exc:
        return _scope_unknown(exc)


def request_id() -> str:
    """A fresh id for one HTTP request: the journaled report and any follow-up work item carry it."""
    return f"http-{uuid.uuid4()}"


HANDOVER_DELAY_S = 5.0
"""Delay of the work item that takes over a ``{clusterId}`` request whose inline reconcile ran out of time."""


def _remediate_cluster(ctx: HandlerContext, cluster: ResourceId, *, dry_run: bool) -> HttpResult:
    """Reconcile inline within ``REMEDIATOR_INLINE_BUDGET_SECONDS`` (the HTTP front end gives up after 230 s,
    and SDK timeouts times retries could exceed that). Out of time: 202 with the cluster handed over to the
    work queue (a dry run, which must not write, answers 503 instead)."""
    correlation = request_id()
    budget = ctx.settings.inline_budget_seconds
    try:
        report = run_inline(
            lambda: ctx.reconciler.reconcile(cluster.canonical, dry_run=dry_run, correlation_id=correlation),
            budget_s=budget,
        )
    except InlineUnavailable as exc:
        return _not_finished_inline(ctx, cluster, str(exc), dry_run=dry_run, correlation_id=correlation)
    body: dict[str, Any] = report.to_json()
    if report.outcome.kind is OutcomeKind.WAIT and not dry_run:
        delay = min(max(report.outcome.retry_after_s or 30.0, 1.0), ctx.settings.max_wait_seconds)
        ctx.work.enqueue_work(
            cluster.canonical,
            attempt=0,
            source="http",
            reason=report.outcome.why,
            correlation_id=correlation,
            delay_s=delay,
        )
        body["followUp"] = {"enqueued": True, "delaySeconds": delay}
        return HttpResult(202, body)
    return HttpResult(200, body)


def _not_finished_inline(
    ctx: HandlerContext, cluster: ResourceId, why: str, *, dry_run: bool, correlation_id: str
) -> HttpResult:
    logger.warning("POST /api/remediate for %s not finished inline: %s", cluster, why)
    if dry_run:
        return HttpResult(
            503,
            {
                "error": "not-finished",
                "message": f"the dry run did not finish in time ({why}); retry",
                "retryAfterSeconds": SCOPE_RETRY_AFTER_S,
                "correlationId": correlation_id,
            },
        )
    ctx.work.enqueue_work(
        cluster.canonical,
        attempt=0,
        source="http",
        reason=f"HTTP request handed over: {why}",
        correlation_id=correlation_id,
        delay_s=HANDOVER_DELAY_S,
    )
    return HttpResult(
        202,
        {
            "clusterId": cluster.canonical,
            "correlationId": correlation_id,
            "message": f"not finished inline ({why}); handed over to the work queue",
            "followUp": {"enqueued": True, "delaySeconds": HANDOVER_DELAY_S},
        },
    )


def _narrowed(ctx: HandlerContext, scope: ResourceId) -> RemediatorConfig:
    """The config with its scope narrowed to one subscription or resource group (keeps exclusions)."""
    original = ctx.config.scope
    narrowed: dict[str, Any] = {
        "excludeSubscriptions": [str(s) for s in original.exclude_subscriptions],
    }
    if original.regions is not None:
        narrowed["regions"] = list(original.regions)
    if scope.resource_group is not None:
        narrowed["resourceGroups"] = [scope.canonical]
    else:
        narrowed["subscriptions"] = [scope.canonical]
    return ctx.config.model_copy(update={"scope": Scope.model_validate(narrowed)})


ENQUEUE_RETRY_AFTER_S = 60
"""``retryAfterSeconds`` of the 503 answered when a scope sweep could not enqueue every work item."""


def _remediate_scope(ctx: HandlerContext, scope: ResourceId, *, dry_run: bool) -> HttpResult:
    """Sweep the narrowed scope: 202 with the counts, or 503 when any work item could not be enqueued (the
    caller must retry; a 202 would claim work that is not queued)."""
    summary = ctx.make_sweeper(_narrowed(ctx, scope)).run(dry_run=dry_run).to_json()
    keys = (
        "correlationId",
        "candidates",
        "enqueued",
        "wouldEnqueue",
        "enqueueFailures",
        "blocked",
        "deferred",
        "byReason",
    )
    body: dict[str, Any] = {"scope": scope.canonical, "dryRun": dry_run, **{k: summary.get(k) for k in keys}}
    failures = int(summary.get("enqueueFailures") or 0)
    if failures:
        logger.error("scope remediation of %s: %d work items could not be enqueued", scope, failures)
        body["error"] = "enqueue-failed"
        body["message"] = (
            f"{failures} of the clusters needing work could not be enqueued (the work queue is failing);"
            " retry the request"
        )
        body["retryAfterSeconds"] = ENQUEUE_RETRY_AFTER_S
        return HttpResult(503, body)
    return HttpResult(200 if dry_run else 202, body)


def handle_http_explain(body: bytes, *, ctx: HandlerContext) -> HttpResult:
    """``POST /api/explain {clusterId}``: decision, blockers and extension state, from a dry-run reconcile."""
    try:
        data = _json_object(body)
        cluster = parse_cluster_id(data.get("clusterId"), field="clusterId")
        _cluster_in_scope(ctx, cluster)
    except UserInputError as exc:
        return _bad_request(exc)
    except Forbidden as exc:
        return _forbidden(ctx, cluster.canonical, "POST /api/explain", str(exc))
    except ManagementGroupLookupError as exc:
        return _scope_unknown(exc)
    report = ctx.reconciler.reconcile(cluster.canonical, dry_run=True, correlation_id=request_id())
    decision = dict(report.decision) if report.decision is not None else None
    return HttpResult(
        200,
        {
            "clusterId": cluster.canonical,
            "decision": decision,
            "blockers": list((decision or {}).get("blockers", [])),
            "extensionState": report.extension_state,
            "mode": report.mode,
            "wouldDo": [a.to_json() for a in report.actions],
            "outcome": report.outcome.to_json(),
        },
    )


_NEEDS_WORK_FILTER = "\n| where extensionState !~ 'Succeeded'"


def _groups_of(groups: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    return lambda _subscription: groups


def report_plan(config: RemediatorConfig) -> InventoryPlan:
    """The sweep's inventory plan widened to every in-scope cluster (protected and untagged ones too)."""
    plan = plan_inventory(config, prefilter_tags=False)
    requests = []
    for request in plan.requests:
        if _NEEDS_WORK_FILTER not in request.query:
            raise RuntimeError("the inventory query changed shape; update report_plan")
        requests.append(replace(request, query=request.query.replace(_NEEDS_WORK_FILTER, "")))
    return replace(plan, requests=tuple(requests))


def handle_http_report(params: Mapping[str, str], *, ctx: HandlerContext) -> HttpResult:
    """``GET /api/report``: per subscription and region, clusters / selected / protected / pending / failed.

    ``clusters`` counts every in-scope cluster; of the ``selected`` ones, ``protected`` have the backup
    extension Succeeded, ``failed`` have it Failed, ``blocked`` cannot get it until a human lifts a blocker
    (no managed identity, no Linux amd64 pool, CSI driver or snapshot controller off), ``pending`` are the
    rest (being installed, or waiting for a stopped or provisioning cluster).
    """
    rows: dict[tuple[str, str], Counter[str]] = {}
    seen: set[str] = set()
    for row in ctx.inventory.iter_rows(report_plan(ctx.config)):
        try:
            snapshot = ClusterSnapshot.from_arm(row.body, source="resource graph")
        except UserInputError as exc:
            logger.warning("report skips unreadable inventory row %s: %s", row.cluster_id, exc)
            continue
        decision = decide(snapshot, ctx.config, management_groups_of=_groups_of(row.management_groups))
        if snapshot.id.key in seen or decision.reason is Reason.OUT_OF_SCOPE:
            continue
        seen.add(snapshot.id.key)
        counts = rows.setdefault((snapshot.subscription_id, snapshot.location), Counter())
        counts["clusters"] += 1
        if not decision.selected:
            continue
        counts["selected"] += 1
        state = (row.extension_state or "").lower()
        if state == "succeeded":
            counts["protected"] += 1
        elif state == "failed":
            counts["failed"] += 1
        elif any(b in HUMAN_BLOCKERS for b in decision.blockers):
            counts["blocked"] += 1
        else:
            counts["pending"] += 1
    keys = ("clusters", "selected", "protected", "pending", "failed", "blocked")
    summary: list[dict[str, Any]] = [
        {"subscriptionId": sub, "region": region, **{k: counts.get(k, 0) for k in keys}}
        for (sub, region), counts in sorted(rows.items())
    ]
    totals = {k: sum(counts.get(k, 0) for counts in rows.values()) for k in keys}
    return HttpResult(200, {"summary": summary, "totals": totals})


def handle_health(*, build_context: Callable[[], HandlerContext]) -> HttpResult:
    """``GET /api/health``: settings and config valid, every dependency probe answering. 503 otherwise."""
    try:
        ctx = build_context()
    except UserInputError as exc:
        return HttpResult(503, {"status": "unhealthy", "configValid": False, **exc.to_json()})
    checks = []
    for check in ctx.health_checks:
        try:
            check.probe()
            checks.append({"name": check.name, "ok": True})
        except Exception as exc:  # a probe reports any failure as data, never as a crash
            checks.append({"name": check.name, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    healthy = all(c["ok"] for c in checks)
    return HttpResult(
        200 if healthy else 503,
        {"status": "healthy" if healthy else "unhealthy", "configValid": True, "dependencies": checks},
    )
