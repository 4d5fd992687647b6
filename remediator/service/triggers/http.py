"""The HTTP triggers (``/api/remediate``, ``/api/explain``, ``/api/report``, ``/api/health``), framework-free.

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
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from remediator.adapters.management_groups import ManagementGroupLookupError
from remediator.core.config import RemediatorConfig, Scope
from remediator.core.errors import UserInputError
from remediator.core.ids import (
    InvalidResourceIdError,
    ResourceId,
    parse_cluster_id,
    parse_resource_group_id,
    parse_resource_id,
    parse_subscription_id,
)
from remediator.core.refusals import out_of_scope_message
from remediator.core.report_render import MEDIA_TYPES, parse_format, render
from remediator.core.report_render.html import CONTENT_SECURITY_POLICY
from remediator.service.ports import HandlerContext
from remediator.service.report import build_report, config_identity_in_memory
from remediator.service.triggers.delivery import (
    HANDOVER_DELAY_S,
    Delivery,
    journal_decision,
    reconcile_inline,
    scope_contains,
)

logger = logging.getLogger(__name__)

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


@dataclass(frozen=True)
class HttpResult:
    """An HTTP answer: status code and JSON body (or, for a rendered report, ``text`` of ``media_type``)."""

    status: int
    body: Mapping[str, Any] = field(default_factory=dict)
    text: str | None = None
    """A body that is not the JSON of ``body`` (``GET /api/report?format=html``); ``body`` is then unused."""
    media_type: str = "application/json"
    """The ``Content-Type`` of the answer."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra response headers (the HTML report's ``Content-Security-Policy``)."""

    def encode(self) -> bytes:
        if self.text is not None:
            return self.text.encode("utf-8")
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
    """Raise :class:`Forbidden` unless the configured scope contains ``cluster`` (a cluster, subscription or
    resource-group id)."""
    inside = scope_contains(ctx, cluster)
    if inside is None:
        raise Forbidden(
            f"{cluster.canonical} is not in a listed subscription or resource group, and this endpoint cannot"
            " resolve management-group membership (the timer sweep covers management-group scopes)"
        )
    if not inside:
        if cluster.resource_group is not None:
            raise Forbidden(out_of_scope_message(cluster))
        raise Forbidden(
            f"{cluster.canonical} is outside the configured scope (subscription {cluster.subscription_id})"
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
    subscription = parse_subscription_id(str(scope.subscription_id))
    if any(ex == subscription for ex in config_scope.exclude_subscriptions):
        raise Forbidden(f"subscription {scope.subscription_id} is excluded by scope.excludeSubscriptions")
    if scope.resource_group is not None:
        _cluster_in_scope(ctx, scope)
        return
    if config_scope.management_groups and ctx.management_groups_of is None:
        if subscription in config_scope.subscriptions:
            return
    elif scope_contains(ctx, scope):
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


def _remediate_cluster(ctx: HandlerContext, cluster: ResourceId, *, dry_run: bool) -> HttpResult:
    """Reconcile inline within ``REMEDIATOR_INLINE_BUDGET_SECONDS`` (the HTTP front end gives up after 230 s,
    and SDK timeouts times retries could exceed that). Out of time: 202 with the cluster handed over to the
    work queue (a dry run, which must not write, answers 503 instead)."""
    delivery = Delivery(cluster, "http", request_id(), time.monotonic(), bounded=False)
    unfinished: list[str] = []
    inline = reconcile_inline(ctx, delivery, dry_run=dry_run, on_unavailable=unfinished.append)
    if inline.report is None:
        logger.warning("POST /api/remediate for %s not finished inline: %s", cluster, inline.why)
        if dry_run:
            return HttpResult(
                503,
                {
                    "error": "not-finished",
                    "message": f"the dry run did not finish in time ({inline.why}); retry",
                    "retryAfterSeconds": SCOPE_RETRY_AFTER_S,
                    "correlationId": delivery.correlation_id,
                },
            )
        delivery.hand_over(ctx, reason=f"HTTP request handed over: {inline.why}", delay_s=HANDOVER_DELAY_S)
        return HttpResult(
            202,
            {
                "clusterId": cluster.canonical,
                "correlationId": delivery.correlation_id,
                "message": f"not finished inline ({inline.why}); handed over to the work queue",
                "followUp": {"enqueued": True, "delaySeconds": HANDOVER_DELAY_S},
            },
        )
    body: dict[str, Any] = inline.report.to_json()
    if inline.handed_over is not None:
        body["followUp"] = {"enqueued": True, "delaySeconds": inline.handed_over}
        return HttpResult(202, body)
    return HttpResult(200, body)


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
    summary = ctx.make_sweeper(_narrowed(ctx, scope)).run(dry_run=dry_run, list_clusters=True)
    summary = summary.to_json(clusters=True)
    keys = (
        "correlationId",
        "candidates",
        "enqueued",
        "wouldEnqueue",
        "enqueueFailures",
        "blocked",
        "deferred",
        "satisfied",
        "byReason",
        "byNeed",
        "clusters",
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
    report = ctx.reconciler.reconcile(cluster, dry_run=True, correlation_id=request_id())
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
            "links": [dict(link) for link in report.links],
            "outcome": report.outcome.to_json(),
        },
    )


def handle_http_report(params: Mapping[str, str], *, ctx: HandlerContext) -> HttpResult:
    """``GET /api/report[?format=json|table|csv|html]``: the coverage report document (version 1; the use case
    is :func:`remediator.service.report.build_report`), rendered; the HTML page is served with its own
    ``Content-Security-Policy`` (it fetches nothing)."""
    try:
        fmt = parse_format(str(params.get("format") or "json"), field="format")
    except UserInputError as exc:
        return _bad_request(exc)
    identity = ctx.config_identity or config_identity_in_memory(ctx.config)
    document = build_report(
        ctx.config, inventory=ctx.inventory, identity=identity, outcomes=ctx.outcomes_index
    )
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY} if fmt == "html" else {}
    return HttpResult(200, text=render(document, fmt), media_type=MEDIA_TYPES[fmt], headers=headers)


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
