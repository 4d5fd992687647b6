"""The HTTP triggers (``/api/remediate``, ``/api/explain``, ``/api/report``, ``/api/health``,
``/api/openapi.json``), framework-free.

Each handler takes the raw body, query parameters and headers and returns an :class:`HttpResult`;
``function_app.py`` turns it into an ``HttpResponse``. Rules every route follows:

* bodies are strict (issue 15, item 2): parsed by :func:`remediator.core.untrusted_json.parse_untrusted_json`
  within :data:`MAX_BODY_BYTES` (413 above it) and :data:`MAX_BODY_DEPTH` (400), and a field the route does
  not know is a 400 naming it (a misspelt ``dryrun`` must not turn a dry run into a real one);
* ``dryRun`` may be given in the body (a JSON boolean) or the query (``?dryRun=true``); given in both, they
  must agree (400 otherwise);
* the caller (:mod:`remediator.core.caller`: the function key's fingerprint, or the Entra principal when
  ``REMEDIATOR_HTTP_AUTH=entra``) is journaled with every HTTP-triggered reconcile and request; in ``entra``
  mode the app roles are enforced (``reader``: explain, report; ``operator``: remediate), 401/403 otherwise;
* ``{scope}`` remediation is rate limited per caller (``REMEDIATOR_SCOPE_REMEDIATIONS_PER_HOUR``, a token
  bucket in the journal table): 429 with ``Retry-After``;
* a malformed body is a 400 naming the field, a cluster or scope outside the configured scope is a 403 with
  the reason (journaled under the id the request named), a cluster ARM does not know is a 404 (the reconcile's
  quiet "done", right for an event about a deleted cluster, is not an answer for a person who named it), and
  nothing is written to a cluster on any 4xx (the checks run before any call that could write). When the
  scope cannot be decided now (the management-group membership lookup in Resource Graph failed) the answer is
  a 503 with ``retryAfterSeconds``, and nothing is written or enqueued;
* answers do not disclose configuration (configured resource groups, storage or config names, exception text)
  unless the caller is an operator (:attr:`remediator.core.caller.Caller.is_operator`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from remediator.adapters.management_groups import ManagementGroupLookupError
from remediator.core.caller import ANONYMOUS, Caller, CallerError, HttpAuth, Role, caller_of
from remediator.core.config import RemediatorConfig, Scope
from remediator.core.errors import UserInputError
from remediator.core.explanation import explanation
from remediator.core.ids import (
    InvalidResourceIdError,
    ResourceId,
    parse_cluster_id,
    parse_resource_group_id,
    parse_resource_id,
    parse_subscription_id,
)
from remediator.core.openapi import openapi_document
from remediator.core.outcomes import Outcome, OutcomeKind, ReconcileReport
from remediator.core.refusals import (
    CLUSTER_GONE_WHY,
    NOT_FOUND_ERROR,
    cluster_not_found_message,
    out_of_scope_message,
)
from remediator.core.report_render import MEDIA_TYPES, parse_format, render
from remediator.core.report_render.html import CONTENT_SECURITY_POLICY
from remediator.core.untrusted_json import JsonTooLargeError, UntrustedJsonError, parse_untrusted_json
from remediator.service.ports import HandlerContext, Reconciles
from remediator.service.report import build_report, config_identity_in_memory
from remediator.service.triggers.delivery import (
    HANDOVER_DELAY_S,
    Delivery,
    now_iso,
    reconcile_inline,
    scope_contains,
)

logger = logging.getLogger(__name__)

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}
_BODY = "request body"

MAX_BODY_BYTES = 64 * 1024
"""The largest request body accepted (413 above it); ``{clusterId}`` or ``{scope}`` is under 1 KiB."""
MAX_BODY_DEPTH = 4
"""The deepest nesting accepted in a request body; every body the routes read is one flat object."""
REMEDIATE_FIELDS = frozenset({"clusterId", "scope", "dryRun"})
"""The fields ``POST /api/remediate`` reads; any other is a 400 naming it."""
EXPLAIN_FIELDS = frozenset({"clusterId"})
"""The fields ``POST /api/explain`` reads."""


@dataclass(frozen=True)
class HttpResult:
    """An HTTP answer: status code, JSON body and extra headers (``Retry-After``; the HTML report's
    ``Content-Security-Policy``), or, for a rendered report, ``text`` of ``media_type``."""

    status: int
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str | None = None
    """A body that is not the JSON of ``body`` (``GET /api/report?format=html``); ``body`` is then unused."""
    media_type: str = "application/json"
    """The ``Content-Type`` of the answer."""

    def encode(self) -> bytes:
        if self.text is not None:
            return self.text.encode("utf-8")
        return json.dumps(self.body, indent=2, default=str).encode("utf-8")


class Forbidden(Exception):
    """The request names a cluster or scope outside the configured scope (HTTP 403).

    :param reason: what the caller may see (it names only what the request named).
    :keyword hint: configuration that would help (the configured resource groups): operators only.
    """

    def __init__(self, reason: str, *, hint: str = "") -> None:
        super().__init__(reason)
        self.hint = hint


def _bad_request(exc: UserInputError) -> HttpResult:
    status = 413 if isinstance(exc, JsonTooLargeError) else 400
    return HttpResult(status, exc.to_json())


def _caller_refused(exc: CallerError) -> HttpResult:
    body = {"error": "unauthenticated" if exc.status == 401 else "forbidden", "message": exc.message}
    return HttpResult(exc.status, body)


def _journal(ctx: HandlerContext, key: str, outcome: Outcome, *, correlation_id: str, caller: Caller) -> None:
    """Journal what an HTTP request decided that no reconcile recorded (a 403, a scope remediation), with the
    caller. Best effort, like ``delivery.journal_decision``: the answer does not depend on it."""
    report = ReconcileReport(
        cluster_id=key,
        decision=None,
        outcome=outcome,
        mode=ctx.config.remediation.mode,
        started_at=now_iso(),
        correlation_id=correlation_id,
        caller=caller.label,
    )
    try:
        (ctx.decisions or ctx.outcomes).record(report)
    except Exception as exc:  # best effort by design
        logger.warning("journaling the HTTP decision for %s failed: %s: %s", key, type(exc).__name__, exc)


def _forbidden(
    ctx: HandlerContext, subject: str, route: str, exc: Forbidden, *, caller: Caller
) -> HttpResult:
    """403, journaled under the cluster (or scope) id the request named, with the reason and the caller."""
    correlation = request_id()
    reason = f"{exc}{exc.hint}"
    _journal(
        ctx,
        subject,
        Outcome.skipped(f"{route} by {caller.label} refused (403): {reason}"),
        correlation_id=correlation,
        caller=caller,
    )
    shown = reason if caller.is_operator else str(exc)
    return HttpResult(403, {"error": "out-of-scope", "message": shown, "correlationId": correlation})


SCOPE_RETRY_AFTER_S = 30
"""``retryAfterSeconds`` of the 503 answered when the management-group scope cannot be looked up."""


def _scope_unknown(exc: ManagementGroupLookupError, *, caller: Caller) -> HttpResult:
    logger.warning("HTTP request refused for now: %s", exc)
    detail = f": {exc}" if caller.is_operator else ""
    return HttpResult(
        503,
        {
            "error": "scope-unresolved",
            "message": f"cannot tell now whether the cluster is in scope{detail}",
            "retryAfterSeconds": SCOPE_RETRY_AFTER_S,
        },
        {"Retry-After": str(SCOPE_RETRY_AFTER_S)},
    )


def _json_object(body: bytes, *, allowed: frozenset[str]) -> dict[str, Any]:
    """The request body as a JSON object within the limits, holding only ``allowed`` fields.

    :raises JsonTooLargeError: over :data:`MAX_BODY_BYTES` (answered 413).
    :raises UserInputError: not JSON, too deep, not an object, or an unknown field (named).
    """
    try:
        data = parse_untrusted_json(
            body or b"", max_bytes=MAX_BODY_BYTES, max_depth=MAX_BODY_DEPTH, source=_BODY
        )
    except JsonTooLargeError as exc:
        raise JsonTooLargeError(exc.message, field="body", source=_BODY) from exc
    except UntrustedJsonError as exc:
        raise UserInputError(
            f"request body is not valid JSON: {exc.message}", field="body", source=_BODY
        ) from exc
    if not isinstance(data, dict):
        raise UserInputError("request body must be a JSON object", field="body", source=_BODY)
    unknown = sorted(set(data) - allowed)
    if unknown:
        shown = unknown[0] if len(unknown[0]) <= 100 else unknown[0][:100] + "..."
        raise UserInputError(
            f"unknown field {shown!r}; this route reads only {', '.join(sorted(allowed))}",
            field=shown,
            source=_BODY,
        )
    return data


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = str(params.get(name, "")).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UserInputError(
        f"must be true or false, not {str(params.get(name))[:100]!r}", field=name, source="query"
    )


def _dry_run(data: Mapping[str, Any], params: Mapping[str, str]) -> bool:
    """``dryRun`` from the body (a JSON boolean) or the query (``true``/``false``); both given must agree.

    :raises UserInputError: not a boolean, or the two disagree (field ``dryRun``).
    """
    in_body: bool | None = None
    if "dryRun" in data:
        if not isinstance(data["dryRun"], bool):
            raise UserInputError("must be true or false (a JSON boolean)", field="dryRun", source=_BODY)
        in_body = data["dryRun"]
    in_query = _flag(params, "dryRun") if "dryRun" in params else None
    if in_body is not None and in_query is not None and in_body != in_query:
        raise UserInputError(
            f"the body says dryRun={str(in_body).lower()} and the query dryRun={str(in_query).lower()};"
            " give one, or the same in both",
            field="dryRun",
            source=_BODY,
        )
    return bool(in_body if in_body is not None else in_query)


def request_caller(ctx: HandlerContext, headers: Mapping[str, str], params: Mapping[str, str]) -> Caller:
    """The caller of one request under the configured ``REMEDIATOR_HTTP_AUTH`` (:func:`caller_of`).

    :raises CallerError: 401 in ``entra`` mode without a principal.
    """
    return caller_of(headers, params, auth=ctx.settings.http_auth)


def _authorised(ctx: HandlerContext, caller: Caller, role: Role, *, route: str) -> None:
    """Enforce the app role in ``entra`` mode (function keys are checked by the host before the handler).

    :raises CallerError: 403.
    """
    if ctx.settings.http_auth is HttpAuth.ENTRA:
        caller.require(role, route=route)


@dataclass(frozen=True)
class _AsCaller:
    """The reconciler, with every reconcile journaled under one HTTP caller (the ``Reconciles`` port)."""

    reconciler: Reconciles
    caller: str

    def reconcile(
        self,
        cluster_id: ResourceId,
        *,
        dry_run: bool = False,
        attempt: int = 0,
        correlation_id: str | None = None,
        caller: str | None = None,
        trigger: str = "",
        event_time: datetime | None = None,
        take_ahead: bool = True,
    ) -> ReconcileReport:
        return self.reconciler.reconcile(
            cluster_id,
            dry_run=dry_run,
            attempt=attempt,
            correlation_id=correlation_id,
            caller=caller or self.caller,
            trigger=trigger,
            event_time=event_time,
            take_ahead=take_ahead,
        )


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
    raise Forbidden(f"subscription {scope.subscription_id} is not in the configured scope", hint=hint)


# --------------------------------------------------------------------------------------------- routes


def handle_http_remediate(
    body: bytes,
    params: Mapping[str, str],
    *,
    ctx: HandlerContext,
    headers: Mapping[str, str] | None = None,
) -> HttpResult:
    """``POST /api/remediate``: ``{clusterId}`` reconciles inline; ``{scope}`` enqueues the clusters below it.

    ``dryRun`` (body ``"dryRun": true`` or ``?dryRun=true``) plans without writing (and enqueues nothing).
    """
    subject = ""
    route = "POST /api/remediate"
    caller = ANONYMOUS
    try:
        caller = request_caller(ctx, headers or {}, params)
        _authorised(ctx, caller, Role.OPERATOR, route=route)
        data = _json_object(body, allowed=REMEDIATE_FIELDS)
        dry_run = _dry_run(data, params)
        if ("clusterId" in data) == ("scope" in data):
            raise UserInputError("give exactly one of clusterId and scope", field="clusterId", source=_BODY)
        if "clusterId" in data:
            cluster = parse_cluster_id(data["clusterId"], field="clusterId")
            subject = cluster.canonical
            _cluster_in_scope(ctx, cluster)
            return _remediate_cluster(ctx, cluster, dry_run=dry_run, caller=caller)
        scope = _parse_scope(data["scope"])
        subject = scope.canonical
        _scope_allowed(ctx, scope)
        return _remediate_scope(ctx, scope, dry_run=dry_run, caller=caller)
    except CallerError as exc:
        return _caller_refused(exc)
    except UserInputError as exc:
        return _bad_request(exc)
    except Forbidden as exc:
        return _forbidden(ctx, subject, route, exc, caller=caller)
    except ManagementGroupLookupError as exc:
        return _scope_unknown(exc, caller=caller)


def _cluster_gone(report: ReconcileReport) -> bool:
    """The reconcile found no such cluster in ARM (:data:`~remediator.core.refusals.CLUSTER_GONE_WHY`)."""
    return (
        report.outcome.kind is OutcomeKind.DONE
        and report.outcome.why == CLUSTER_GONE_WHY
        and not report.actions
    )


def _not_found(cluster: ResourceId, report: ReconcileReport) -> HttpResult:
    """404 naming the cluster, in the CLI's words (exit 8); the reconcile journaled it under this id."""
    body = {
        "error": NOT_FOUND_ERROR,
        "message": cluster_not_found_message(cluster),
        "correlationId": report.correlation_id,
    }
    return HttpResult(404, body)


def request_id() -> str:
    """A fresh id for one HTTP request: the journaled report and any follow-up work item carry it."""
    return f"http-{uuid.uuid4()}"


def _remediate_cluster(
    ctx: HandlerContext, cluster: ResourceId, *, dry_run: bool, caller: Caller
) -> HttpResult:
    """Reconcile inline within ``REMEDIATOR_INLINE_BUDGET_SECONDS`` (the HTTP front end gives up after 230 s,
    and SDK timeouts times retries could exceed that). Out of time: 202 with the cluster handed over to the
    work queue (a dry run, which must not write, answers 503 instead). The reconcile is journaled with the
    caller; the follow-up work item carries the request's correlation id."""
    ctx = dataclasses.replace(ctx, reconciler=_AsCaller(ctx.reconciler, caller.label))
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
                {"Retry-After": str(SCOPE_RETRY_AFTER_S)},
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
    if _cluster_gone(inline.report):
        return _not_found(cluster, inline.report)
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


RATE_LIMIT_UNAVAILABLE_RETRY_S = 30
"""``retryAfterSeconds`` of the 503 answered when the rate limit's table cannot be read (fail closed)."""


def _rate_limited(ctx: HandlerContext, caller: Caller) -> HttpResult | None:
    """``None`` when the caller may sweep a scope now; else the 429 (or a 503 when the limit cannot be
    checked: a scope sweep is never started unmetered)."""
    limiter = ctx.scope_rate_limit
    if limiter is None:
        return None
    try:
        wait = limiter.try_acquire(caller.rate_key)
    except Exception as exc:  # the table is down: refuse for now rather than sweep unmetered
        logger.warning("scope rate limit unavailable: %s: %s", type(exc).__name__, exc)
        return HttpResult(
            503,
            {
                "error": "rate-limit-unavailable",
                "message": "the scope rate limit cannot be checked now; retry",
                "retryAfterSeconds": RATE_LIMIT_UNAVAILABLE_RETRY_S,
            },
            {"Retry-After": str(RATE_LIMIT_UNAVAILABLE_RETRY_S)},
        )
    if wait is None:
        return None
    seconds = max(1, int(wait + 0.999))
    per_hour = ctx.settings.scope_remediations_per_hour
    return HttpResult(
        429,
        {
            "error": "rate-limited",
            "message": f"{caller.label} may remediate a scope {per_hour} times an hour; retry later",
            "retryAfterSeconds": seconds,
        },
        {"Retry-After": str(seconds)},
    )


def _remediate_scope(ctx: HandlerContext, scope: ResourceId, *, dry_run: bool, caller: Caller) -> HttpResult:
    """Sweep the narrowed scope: 202 with the counts, or 503 when any work item could not be enqueued (the
    caller must retry; a 202 would claim work that is not queued). Rate limited per caller; the request is
    journaled under the scope's id with the caller and the sweep's correlation id (its work items carry
    it). The answer names every cluster the sweep looked at (``clusters``)."""
    limited = _rate_limited(ctx, caller)
    if limited is not None:
        return limited
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
        "protectedElsewhere",
        "byReason",
        "byNeed",
        "clusters",
    )
    body: dict[str, Any] = {"scope": scope.canonical, "dryRun": dry_run, **{k: summary.get(k) for k in keys}}
    failures = int(summary.get("enqueueFailures") or 0)
    if not dry_run:
        _journal(
            ctx,
            scope.canonical,
            Outcome.done(
                f"POST /api/remediate {{scope}} by {caller.label}: {summary.get('enqueued')} work items"
                f" enqueued, {failures} failed (sweep {summary.get('correlationId')})"
            ),
            correlation_id=str(summary.get("correlationId") or request_id()),
            caller=caller,
        )
    if failures:
        logger.error("scope remediation of %s: %d work items could not be enqueued", scope, failures)
        body["error"] = "enqueue-failed"
        body["message"] = (
            f"{failures} of the clusters needing work could not be enqueued (the work queue is failing);"
            " retry the request"
        )
        body["retryAfterSeconds"] = ENQUEUE_RETRY_AFTER_S
        return HttpResult(503, body, {"Retry-After": str(ENQUEUE_RETRY_AFTER_S)})
    return HttpResult(200 if dry_run else 202, body)


def handle_http_explain(
    body: bytes,
    *,
    ctx: HandlerContext,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResult:
    """``POST /api/explain {clusterId}``: decision, blockers and extension state, from a dry-run reconcile;
    ``blockedBy`` names each blocking policy assignment (or Safeguards, storage, provider) with the exact fix
    (:func:`remediator.core.explanation.explanation`)."""
    route = "POST /api/explain"
    caller = ANONYMOUS
    subject = ""
    try:
        caller = request_caller(ctx, headers or {}, params or {})
        _authorised(ctx, caller, Role.READER, route=route)
        data = _json_object(body, allowed=EXPLAIN_FIELDS)
        cluster = parse_cluster_id(data.get("clusterId"), field="clusterId")
        subject = cluster.canonical
        _cluster_in_scope(ctx, cluster)
    except CallerError as exc:
        return _caller_refused(exc)
    except UserInputError as exc:
        return _bad_request(exc)
    except Forbidden as exc:
        return _forbidden(ctx, subject, route, exc, caller=caller)
    except ManagementGroupLookupError as exc:
        return _scope_unknown(exc, caller=caller)
    report = ctx.reconciler.reconcile(cluster, dry_run=True, correlation_id=request_id())
    if _cluster_gone(report):
        return _not_found(cluster, report)
    return HttpResult(200, {**explanation(report), "clusterId": cluster.canonical})


def handle_http_report(
    params: Mapping[str, str], *, ctx: HandlerContext, headers: Mapping[str, str] | None = None
) -> HttpResult:
    """``GET /api/report[?format=json|table|csv|html]``: the coverage report document (version 1; the use case
    is :func:`remediator.service.report.build_report`), rendered; the HTML page is served with its own
    ``Content-Security-Policy`` (it fetches nothing)."""
    try:
        caller = request_caller(ctx, headers or {}, params)
        _authorised(ctx, caller, Role.READER, route="GET /api/report")
    except CallerError as exc:
        return _caller_refused(exc)
    try:
        fmt = parse_format(str(params.get("format") or "json"), field="format")
    except UserInputError as exc:
        return _bad_request(exc)
    identity = ctx.config_identity or config_identity_in_memory(ctx.config)
    document = build_report(
        ctx.config, inventory=ctx.inventory, identity=identity, outcomes=ctx.outcomes_index
    )
    extra = {"Content-Security-Policy": CONTENT_SECURITY_POLICY} if fmt == "html" else {}
    return HttpResult(200, headers=extra, text=render(document, fmt), media_type=MEDIA_TYPES[fmt])


def handle_health(
    *,
    build_context: Callable[[], HandlerContext],
    caller_of_request: Callable[[HandlerContext | None], Caller] = lambda _ctx: ANONYMOUS,
) -> HttpResult:
    """``GET /api/health``: settings and config valid, every dependency probe answering. 503 otherwise.

    Only an operator sees which setting is invalid and each failed probe's error text; anyone else sees the
    verdict and the names of the dependencies (storage names, config paths and exception text can tell an
    attacker where to aim).

    :keyword caller_of_request: the caller, given the context (``None`` when it could not be built).
    """
    try:
        ctx = build_context()
    except UserInputError as exc:
        operator = _safe_caller(caller_of_request, None).is_operator
        detail = exc.to_json() if operator else {"message": "settings or config invalid (see the app's log)"}
        return HttpResult(503, {"status": "unhealthy", "configValid": False, **detail})
    operator = _safe_caller(caller_of_request, ctx).is_operator
    checks = []
    for check in ctx.health_checks:
        try:
            check.probe()
            checks.append({"name": check.name, "ok": True})
        except Exception as exc:  # a probe reports any failure as data, never as a crash
            logger.warning("health probe %s failed: %s: %s", check.name, type(exc).__name__, exc)
            entry: dict[str, Any] = {"name": check.name, "ok": False}
            if operator:
                entry["error"] = f"{type(exc).__name__}: {exc}"
            checks.append(entry)
    healthy = all(c["ok"] for c in checks)
    return HttpResult(
        200 if healthy else 503,
        {"status": "healthy" if healthy else "unhealthy", "configValid": True, "dependencies": checks},
    )


def _safe_caller(find: Callable[[HandlerContext | None], Caller], ctx: HandlerContext | None) -> Caller:
    """The caller, or anonymous when it cannot be told (the health route answers whoever asks)."""
    try:
        return find(ctx)
    except Exception:  # no readable principal: not an operator
        return ANONYMOUS


def handle_openapi() -> HttpResult:
    """``GET /api/openapi.json``: the OpenAPI 3.1 description of these routes
    (:func:`remediator.core.openapi.openapi_document`, committed as ``docs/openapi.json``).

    It needs no handler context: the document holds no setting, config or key (it is the repository's file),
    so it is served even when the settings are invalid and tells nothing a deployment's config would.
    The route's auth level and why: docs/security.md, "HTTP callers".
    """
    return HttpResult(200, openapi_document())
