"""Azure Functions entry point (v2 programming model): trigger glue only.

Each function decodes its trigger input into plain values, calls one handler in
``remediator.service.triggers`` (one module per kind of trigger) and encodes the result. Behaviour (budgets,
retries, give-ups, HTTP status codes) lives in the handlers; see docs/operations.md for settings and the
runbook. The handler context (SDK clients, queues, journal) is built lazily on first use, so indexing the app
needs no settings and a bad setting surfaces as a clear error.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import azure.functions as func

from remediator.core.caller import ANONYMOUS, Caller, caller_of
from remediator.core.errors import UserInputError
from remediator.core.settings import http_auth_from_env
from remediator.service.ports import HandlerContext
from remediator.service.runtime import build_handler_context
from remediator.service.triggers import events, http, queue
from remediator.service.triggers import timer as timer_trigger

logger = logging.getLogger(__name__)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@functools.cache
def context() -> HandlerContext:
    """The process-wide handler context (built once; a failure is not cached, so it is retried)."""
    return build_handler_context(os.environ)


def event_json(event: func.EventGridEvent | func.CloudEvent) -> dict[str, Any]:
    """The event as the JSON the handlers parse (Event Grid schema, or CloudEvents 1.0 when delivered so)."""
    if isinstance(event, func.CloudEvent):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "time": event.time.isoformat() if event.time else None,
            "subject": event.subject,
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def http_response(result: http.HttpResult) -> func.HttpResponse:
    headers = {"Content-Type": result.media_type, **result.headers}
    mimetype = result.media_type.split(";")[0].strip()
    return func.HttpResponse(result.encode(), status_code=result.status, mimetype=mimetype, headers=headers)


def _caller(req: func.HttpRequest, ctx: HandlerContext | None) -> Caller:
    """The request's caller; without a context (invalid settings), under the ``REMEDIATOR_HTTP_AUTH`` setting
    alone (anonymous when even that is unreadable)."""
    auth = ctx.settings.http_auth if ctx is not None else http_auth_from_env(os.environ)
    if auth is None:
        return ANONYMOUS
    try:
        return caller_of(dict(req.headers), dict(req.params), auth=auth)
    except UserInputError:
        return ANONYMOUS


def _http(req: func.HttpRequest, call: Callable[[HandlerContext], http.HttpResult]) -> func.HttpResponse:
    """Build the context and run the handler. An invalid setting is a 503 that names the setting only to an
    operator; an unexpected error is a 500 with a correlation id (exception text only to an operator), never
    the host's own error page."""
    try:
        ctx = context()
    except UserInputError as exc:  # settings or config invalid: the operator must fix them
        logger.error("cannot serve the request: %s", exc)
        detail: Mapping[str, Any] = (
            exc.to_json()
            if _caller(req, None).is_operator
            else {"message": "the app's settings or config are invalid; the app's log names the setting"}
        )
        return http_response(http.HttpResult(503, {**detail, "error": "configuration"}))
    try:
        return http_response(call(ctx))
    except Exception as exc:
        correlation = f"http-{uuid.uuid4()}"
        logger.exception("HTTP %s failed (%s)", req.url, correlation)
        body: dict[str, Any] = {"error": "internal", "correlationId": correlation}
        if _caller(req, ctx).is_operator:
            body["message"] = f"{type(exc).__name__}: {exc}"
        return http_response(http.HttpResult(500, body))


@app.function_name("on_cluster_write")
@app.event_grid_trigger(arg_name="event")
def on_cluster_write(event: func.EventGridEvent) -> None:
    """ResourceWriteSuccess for a managed cluster -> reconcile inline within the budget, else enqueue."""
    events.handle_cluster_write_event(event_json(event), ctx=context())


@app.function_name("on_policy_state")
@app.event_grid_trigger(arg_name="event")
def on_policy_state(event: func.EventGridEvent) -> None:
    """PolicyStateCreated/Changed NonCompliant for a managed cluster -> reconcile (or remediation task)."""
    events.handle_policy_state_event(event_json(event), ctx=context())


@app.function_name("reconcile_worker")
@app.queue_trigger(arg_name="msg", queue_name="%REMEDIATOR_WORK_QUEUE%", connection="AzureWebJobsStorage")
def reconcile_worker(msg: func.QueueMessage) -> None:
    """One durable work item -> reconcile; a wait re-enqueues with a delay, the bound journals a give-up."""
    queue.handle_work_item(msg.get_body(), dequeue_count=_dequeue_count(msg), ctx=context())


@app.function_name("reconcile_poison")
@app.queue_trigger(
    arg_name="msg", queue_name="%REMEDIATOR_WORK_QUEUE%-poison", connection="AzureWebJobsStorage"
)
def reconcile_poison(msg: func.QueueMessage) -> None:
    """A work item the host moved to the poison queue after 5 dequeues -> journal and publish a give-up."""
    queue.handle_poison_item(msg.get_body(), dequeue_count=_dequeue_count(msg), ctx=context())


@app.function_name("sweep")
@app.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def sweep(timer: func.TimerRequest) -> None:
    """Timer: enumerate in-scope clusters and enqueue those needing work."""
    timer_trigger.handle_sweep(past_due=bool(timer.past_due), ctx=context())


@app.function_name("remediate")
@app.route(route="remediate", methods=["POST"])
def remediate(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/remediate {clusterId, dryRun?} | {scope, dryRun?} [?dryRun=true]."""
    body, params, headers = req.get_body(), dict(req.params), dict(req.headers)
    return _http(req, lambda ctx: http.handle_http_remediate(body, params, ctx=ctx, headers=headers))


@app.function_name("explain")
@app.route(route="explain", methods=["POST"])
def explain(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/explain {clusterId}: decision, blockers, extension state."""
    body, params, headers = req.get_body(), dict(req.params), dict(req.headers)
    return _http(req, lambda ctx: http.handle_http_explain(body, ctx=ctx, params=params, headers=headers))


@app.function_name("report")
@app.route(route="report", methods=["GET"])
def report(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/report: compliance summary per subscription and region."""
    params, headers = dict(req.params), dict(req.headers)
    return _http(req, lambda ctx: http.handle_http_report(params, ctx=ctx, headers=headers))


@app.function_name("health")
@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/health: settings/config valid and dependencies reachable (503 otherwise)."""
    return http_response(
        http.handle_health(build_context=context, caller_of_request=lambda ctx: _caller(req, ctx))
    )


@app.function_name("openapi")
@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/openapi.json: the OpenAPI 3.1 description of these routes (docs/openapi.json). Function key
    like every route, no app role and no settings needed (docs/security.md, "HTTP callers")."""
    return http_response(http.handle_openapi())


def _dequeue_count(msg: func.QueueMessage) -> int:
    return int(getattr(msg, "dequeue_count", None) or 1)
