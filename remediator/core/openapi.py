"""The HTTP API's OpenAPI 3.1 description, built from one Python source.

Callers of ``/api/remediate``, ``/api/explain``, ``/api/report`` and ``/api/health`` (scripts, portals, API
gateways, a property-based test) need a machine-readable contract. It is built here, from the same enums and
shapes the handlers use (``Reason``, ``Blocker``, ``OutcomeKind``, ``ActionKind``, the report document's JSON
Schema), so a new reason or report field reaches the description without a hand edit.
``docs/openapi.json`` is this document as committed (``python -m tools.openapi_doc``; a test keeps it
current and validates it with openapi-spec-validator); the service can serve :func:`openapi_document` at
``/api/openapi.json``.

The bodies are those of ``remediator/service/http_api.py`` and ``function_app.py`` as read at the time of
writing: 400 is a :class:`~remediator.core.errors.UserInputError` body, 403 names the scope refusal
(:mod:`remediator.core.refusals`), 202 carries ``followUp``, 503 has ``retryAfterSeconds`` (or, from the
health route, the failed dependencies). Two statuses are described ahead of the handlers, as the issue asks:
404 for a cluster ARM does not know (today the handler answers 200 ``done`` "cluster not found") and 413 for
a request body over the size limit. ``GET /api/report`` is described with its ``format`` parameter and the
version 1 report document (``docs/report.schema.json``) that the report use case returns.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from remediator import __version__
from remediator.core.blockers import Blocker, BlockerKind, FindingCode
from remediator.core.decision import Reason
from remediator.core.outcomes import ActionKind, ActionStatus, OutcomeKind
from remediator.core.refusals import NOT_FOUND_ERROR, OUT_OF_SCOPE_ERROR
from remediator.core.report_document import json_schema as report_json_schema

logger = logging.getLogger(__name__)

OPENAPI_VERSION = "3.1.0"
REPORT_FORMATS: tuple[str, ...] = ("json", "table", "csv", "html")
"""``GET /api/report?format=`` values (``remediator.core.report_render.FORMATS``)."""

REPORT_MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "table": "text/plain",
    "csv": "text/csv",
    "html": "text/html",
}

CLUSTER_ID_PATTERN = (
    r"^/[sS][uU][bB][sS][cC][rR][iI][pP][tT][iI][oO][nN][sS]/[^/]+/[rR][eE][sS][oO][uU][rR][cC][eE]"
    r"[gG][rR][oO][uU][pP][sS]/[^/]+/[pP][rR][oO][vV][iI][dD][eE][rR][sS]/[mM][iI][cC][rR][oO][sS][oO][fF][tT]"
    r"\.[cC][oO][nN][tT][aA][iI][nN][eE][rR][sS][eE][rR][vV][iI][cC][eE]/[mM][aA][nN][aA][gG][eE][dD]"
    r"[cC][lL][uU][sS][tT][eE][rR][sS]/[^/]+$"
)
"""A managed cluster id; ARM ids compare case-insensitively (ECMA-262 patterns have no inline ``(?i)``)."""

_TRUE_FALSE = ("true", "false", "1", "0", "yes", "no")

_DRY_RUN_BODY: dict[str, Any] = {
    "type": "boolean",
    "description": "Plan without writing or enqueueing; the query's dryRun, if given too, must agree (400).",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _report_schemas() -> dict[str, Any]:
    """The report document's JSON Schema as OpenAPI components: its ``$defs`` become ``Report<Name>`` and
    every ``#/$defs/<Name>`` reference points there."""
    schema = report_json_schema()
    definitions = schema.pop("$defs", {})
    schema.pop("$schema", None)
    names = {name: f"Report{name}" for name in definitions}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                    out[key] = f"#/components/schemas/{names[value.removeprefix('#/$defs/')]}"
                else:
                    out[key] = rewrite(value)
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    components = {"CoverageReport": rewrite(schema)}
    components.update({names[name]: rewrite(body) for name, body in definitions.items()})
    return components


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "ClusterId": {
            "type": "string",
            "pattern": CLUSTER_ID_PATTERN,
            "description": "A managed cluster's ARM id (compared case-insensitively).",
            "examples": [
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks/providers/"
                "Microsoft.ContainerService/managedClusters/aks-prod-1"
            ],
        },
        "RemediateCluster": {
            "type": "object",
            "properties": {"clusterId": _ref("ClusterId"), "dryRun": _DRY_RUN_BODY},
            "required": ["clusterId"],
            "additionalProperties": False,
            "description": "Reconcile one cluster inline. Any other field is a 400 naming it.",
        },
        "RemediateScope": {
            "type": "object",
            "properties": {
                "scope": {
                    "type": "string",
                    "description": "A subscription id (/subscriptions/<guid>) or resource group id.",
                    "examples": ["/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks"],
                },
                "dryRun": _DRY_RUN_BODY,
            },
            "required": ["scope"],
            "additionalProperties": False,
            "description": (
                "Sweep one subscription or resource group (narrowed from the configured scope). Rate limited"
                " per caller (REMEDIATOR_SCOPE_REMEDIATIONS_PER_HOUR): 429 over it."
            ),
        },
        "ExplainRequest": {
            "type": "object",
            "properties": {"clusterId": _ref("ClusterId")},
            "required": ["clusterId"],
            "additionalProperties": False,
        },
        "MatchedRule": {
            "type": "object",
            "description": "The tag and value behind the deciding rule.",
            "properties": {
                "kind": {"enum": ["include", "exclude"]},
                "tag": {"type": "string", "description": "The tag name as the cluster spells it."},
                "value": {"type": "string", "description": "The cluster's value of the tag."},
                "pattern": _nullable({"type": "string"}),
            },
            "required": ["kind", "tag", "value", "pattern"],
        },
        "Decision": {
            "type": "object",
            "description": "The selection decision for one cluster (remediator.core.decision.Decision).",
            "properties": {
                "clusterId": {"type": "string"},
                "selected": {"type": "boolean"},
                "reason": {"enum": [reason.value for reason in Reason]},
                "rule": _nullable({"type": "string", "pattern": r"^(include|exclude)\[\d+\]$"}),
                "storageAccountId": _nullable({"type": "string"}),
                "blockers": {"type": "array", "items": {"enum": [blocker.value for blocker in Blocker]}},
                "matchedRule": _nullable(_ref("MatchedRule")),
            },
            "required": ["clusterId", "selected", "reason", "rule", "storageAccountId", "blockers"],
        },
        "Outcome": {
            "type": "object",
            "properties": {
                "kind": {"enum": [kind.value for kind in OutcomeKind]},
                "why": {"type": "string"},
                "retryAfterSeconds": _nullable({"type": "number", "minimum": 0}),
            },
            "required": ["kind", "why", "retryAfterSeconds"],
        },
        "Action": {
            "type": "object",
            "properties": {
                "kind": {"enum": [kind.value for kind in ActionKind]},
                "target": {"type": "string"},
                "status": {"enum": [status.value for status in ActionStatus]},
                "detail": {"type": "string"},
            },
            "required": ["kind", "target", "status", "detail"],
        },
        "FollowUp": {
            "type": "object",
            "description": "A work item was enqueued to finish the job.",
            "properties": {"enqueued": {"const": True}, "delaySeconds": {"type": "number", "minimum": 0}},
            "required": ["enqueued", "delaySeconds"],
        },
        "Finding": {
            "type": "object",
            "description": "What preflight found in the way of the backup extension"
            " (remediator.core.preflight.Finding): a blocker (severity block) or a warning, with its remedy.",
            "properties": {
                "code": {"enum": [code.value for code in FindingCode]},
                "severity": {"enum": ["block", "warn"]},
                "kind": {"enum": [kind.value for kind in BlockerKind]},
                "remedy": {"type": "string"},
                "evidence": {
                    "type": "object",
                    "description": "Assignment, parameter, current and suggested value.",
                },
            },
            "required": ["code", "severity", "kind", "remedy", "evidence"],
        },
        "FindingBrief": {
            "type": "object",
            "description": "A finding as explain leads with it: the assignment, the parameter and the fix.",
            "properties": {
                "code": {"enum": [code.value for code in FindingCode]},
                "kind": {"enum": [kind.value for kind in BlockerKind]},
                "assignment": _nullable({"type": "string"}),
                "assignmentId": _nullable({"type": "string"}),
                "parameter": _nullable({"type": "string"}),
                "suggested": {"description": "The parameter's suggested value (string or list), if any."},
                "remedy": {"type": "string"},
            },
            "required": ["code", "kind", "assignment", "assignmentId", "parameter", "remedy"],
        },
        "Link": {
            "type": "object",
            "description": "One requirement of the mode's chain and its state (the first is preflight).",
            "properties": {
                "link": {"type": "string"},
                "state": {
                    "enum": [
                        "satisfied",
                        "not-needed",
                        "missing",
                        "waiting",
                        "blocked",
                        "deferred",
                        "unreadable",
                    ]
                },
                "why": {"type": "string"},
            },
            "required": ["link", "state", "why"],
        },
        "ReconcileReport": {
            "type": "object",
            "description": "One reconcile (remediator.core.outcomes.ReconcileReport).",
            "properties": {
                "clusterId": {"type": "string"},
                "decision": _nullable(_ref("Decision")),
                "outcome": _ref("Outcome"),
                "actions": {"type": "array", "items": _ref("Action")},
                "mode": {"enum": ["install", "policy-task", "audit"]},
                "dryRun": {"type": "boolean"},
                "attempt": {"type": "integer", "minimum": 0},
                "extensionState": _nullable({"type": "string"}),
                "startedAt": {"type": "string"},
                "correlationId": {"type": "string"},
                "caller": {
                    "type": "string",
                    "description": "Who asked, when an HTTP request did: function-key:<12 hex of the key's"
                    " sha256>, entra:<object id> (<name>) or anonymous (remediator/core/caller.py).",
                },
                "followUp": _ref("FollowUp"),
                "links": {"type": "array", "items": _ref("Link")},
                "findings": {"type": "array", "items": _ref("Finding")},
            },
            "required": [
                "clusterId",
                "decision",
                "outcome",
                "actions",
                "mode",
                "dryRun",
                "attempt",
                "extensionState",
                "startedAt",
                "correlationId",
            ],
        },
        "HandedOver": {
            "type": "object",
            "description": "Not finished within the inline budget: handed over to the work queue.",
            "properties": {
                "clusterId": {"type": "string"},
                "correlationId": {"type": "string"},
                "message": {"type": "string"},
                "followUp": _ref("FollowUp"),
            },
            "required": ["clusterId", "correlationId", "message", "followUp"],
        },
        "ScopeRemediation": {
            "type": "object",
            "description": "The narrowed sweep's counts.",
            "properties": {
                "scope": {"type": "string"},
                "dryRun": {"type": "boolean"},
                "correlationId": {"type": "string"},
                "candidates": {"type": "integer", "minimum": 0},
                "enqueued": {"type": "integer", "minimum": 0},
                "wouldEnqueue": {"type": "integer", "minimum": 0},
                "enqueueFailures": {"type": "integer", "minimum": 0},
                "blocked": {"type": "integer", "minimum": 0},
                "deferred": {"type": "integer", "minimum": 0},
                "byReason": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
            },
            "required": [
                "scope",
                "dryRun",
                "correlationId",
                "candidates",
                "enqueued",
                "wouldEnqueue",
                "enqueueFailures",
                "blocked",
                "deferred",
                "byReason",
            ],
        },
        "Explanation": {
            "type": "object",
            "properties": {
                "clusterId": {"type": "string"},
                "decision": _nullable(_ref("Decision")),
                "blockers": {"type": "array", "items": {"type": "string"}},
                "extensionState": _nullable({"type": "string"}),
                "mode": {"enum": ["install", "policy-task", "audit"]},
                "wouldDo": {"type": "array", "items": _ref("Action")},
                "outcome": _ref("Outcome"),
                "blockedBy": {"type": "array", "items": _ref("FindingBrief")},
                "blockedByPolicy": {
                    "type": "array",
                    "description": "Names of the policy assignments (or deployment-safeguards) that block.",
                    "items": {"type": "string"},
                },
                "warnings": {"type": "array", "items": _ref("FindingBrief")},
                "links": {"type": "array", "items": _ref("Link")},
                "findings": {"type": "array", "items": _ref("Finding")},
            },
            "required": [
                "clusterId",
                "decision",
                "blockers",
                "extensionState",
                "mode",
                "wouldDo",
                "outcome",
                "blockedBy",
                "blockedByPolicy",
                "warnings",
                "links",
                "findings",
            ],
        },
        "InvalidInput": {
            "type": "object",
            "description": "Bad input, naming the field (remediator.core.errors.UserInputError.to_json).",
            "properties": {
                "error": {"const": "invalid-input"},
                "field": _nullable({"type": "string"}),
                "source": _nullable({"type": "string"}),
                "message": {"type": "string"},
                "errors": {
                    "type": "array",
                    "description": "Every error when the input has several (a config).",
                    "items": {"type": "object"},
                },
            },
            "required": ["error", "field", "source", "message"],
        },
        "Refused": {
            "type": "object",
            "description": "The cluster or scope is outside the configured scope (journaled under its id).",
            "properties": {
                "error": {"const": OUT_OF_SCOPE_ERROR},
                "message": {"type": "string"},
                "correlationId": {"type": "string"},
            },
            "required": ["error", "message", "correlationId"],
        },
        "CallerRefused": {
            "type": "object",
            "description": (
                "With App Service authentication (REMEDIATOR_HTTP_AUTH=entra): no Entra principal"
                " (unauthenticated, 401) or not the app role the route needs (forbidden, 403: reader for"
                " explain and report, operator for remediate)."
            ),
            "properties": {
                "error": {"enum": ["unauthenticated", "forbidden"]},
                "message": {"type": "string"},
            },
            "required": ["error", "message"],
        },
        "RateLimited": {
            "type": "object",
            "description": "Too many {scope} remediations by this caller; retry after retryAfterSeconds.",
            "properties": {
                "error": {"const": "rate-limited"},
                "message": {"type": "string"},
                "retryAfterSeconds": {"type": "integer", "minimum": 1},
            },
            "required": ["error", "message", "retryAfterSeconds"],
        },
        "Internal": {
            "type": "object",
            "description": (
                "An unexpected error; the log has it under correlationId (its text only for operators)."
            ),
            "properties": {
                "error": {"const": "internal"},
                "correlationId": {"type": "string"},
                "message": {"type": "string"},
            },
            "required": ["error", "correlationId"],
        },
        "NotFound": {
            "type": "object",
            "description": "ARM has no managed cluster with this id.",
            "properties": {
                "error": {"const": NOT_FOUND_ERROR},
                "message": {"type": "string"},
                "correlationId": {"type": "string"},
            },
            "required": ["error", "message"],
        },
        "Unavailable": {
            "type": "object",
            "description": (
                "Try again later: the scope cannot be resolved now (scope-unresolved), a dry run did not"
                " finish in time (not-finished), work items could not be enqueued (enqueue-failed, with the"
                " counts), or the app's settings or config are invalid (configuration errors carry the"
                " invalid-input body)."
            ),
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "retryAfterSeconds": {"type": "number", "minimum": 0},
                "correlationId": {"type": "string"},
            },
            "required": ["error", "message"],
        },
        "Health": {
            "type": "object",
            "properties": {
                "status": {"enum": ["healthy", "unhealthy"]},
                "configValid": {"type": "boolean"},
                "dependencies": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "ok": {"type": "boolean"},
                            "error": {"type": "string"},
                        },
                        "required": ["name", "ok"],
                    },
                },
                "field": _nullable({"type": "string"}),
                "source": _nullable({"type": "string"}),
                "message": {"type": "string"},
            },
            "required": ["status", "configValid"],
        },
    }
    schemas.update(_report_schemas())
    return schemas


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    bodies = {
        400: _json(_ref("InvalidInput"), "Malformed body or parameter; the field is named; nothing written."),
        401: _json(
            _ref("CallerRefused"), "No Entra principal (App Service authentication); nothing written."
        ),
        403: _json(
            {"oneOf": [_ref("Refused"), _ref("CallerRefused")]},
            "Outside the configured scope (journaled), or without the app role; nothing written.",
        ),
        404: _json(_ref("NotFound"), "No managed cluster with this id; nothing written."),
        413: _json(_ref("InvalidInput"), "The request body is larger than the limit; nothing read."),
        429: _json(
            _ref("RateLimited"), "Over the caller's {scope} rate limit; Retry-After; nothing written."
        ),
        500: _json(_ref("Internal"), "An unexpected error; nothing more is done."),
        503: _json(_ref("Unavailable"), "Try again after retryAfterSeconds; nothing written."),
    }
    return {str(status): bodies[status] for status in statuses}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the HTTP API (deterministic: no dates, sorted nothing it must not)."""
    dry_run = {
        "name": "dryRun",
        "in": "query",
        "required": False,
        "description": "Plan without writing or enqueueing (case-insensitive; empty = false).",
        "schema": {"enum": list(_TRUE_FALSE)},
    }
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "aks-backup-remediator HTTP API",
            "version": __version__,
            "description": (
                "Remediate, explain and report the Azure Backup extension on AKS clusters selected by tag"
                " rules."
                " Every route needs a function key (query `code` or header `x-functions-key`); with App"
                " Service authentication (docs/deploy.md) also an Entra bearer token, and the app roles"
                " reader/operator decide. A cluster or scope outside the configured scope is a 403, a"
                " malformed body or an unknown field a 400 naming the field; no 4xx ever writes anything."
                " Generated from remediator/core/openapi.py."
            ),
        },
        "servers": [
            {
                "url": "https://{functionApp}.azurewebsites.net",
                "variables": {"functionApp": {"default": "func-aks-backup-remediator"}},
            },
            {"url": "http://127.0.0.1:7071", "description": "tools/local_runner and func start"},
        ],
        "security": [{"functionKeyQuery": []}, {"functionKeyHeader": []}],
        "paths": {
            "/api/remediate": {
                "post": {
                    "operationId": "remediate",
                    "summary": "Reconcile one cluster inline, or sweep a subscription or resource group.",
                    "parameters": [dry_run],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"oneOf": [_ref("RemediateCluster"), _ref("RemediateScope")]}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {"oneOf": [_ref("ReconcileReport"), _ref("ScopeRemediation")]},
                            "The reconcile's report ({clusterId}), or a dry-run scope sweep's counts"
                            " ({scope}).",
                        ),
                        "202": _json(
                            {
                                "oneOf": [
                                    _ref("ReconcileReport"),
                                    _ref("HandedOver"),
                                    _ref("ScopeRemediation"),
                                ]
                            },
                            "Accepted: a wait outcome with a follow-up work item, a hand-over to the queue,"
                            " or"
                            " a scope sweep's enqueued work.",
                        ),
                        **_errors(400, 401, 403, 404, 413, 429, 500, 503),
                    },
                }
            },
            "/api/explain": {
                "post": {
                    "operationId": "explain",
                    "summary": (
                        "Decision, blockers, extension state and what a reconcile would do (a dry run)."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("ExplainRequest")}},
                    },
                    "responses": {
                        "200": _json(_ref("Explanation"), "The explanation."),
                        **_errors(400, 401, 403, 404, 413, 500, 503),
                    },
                }
            },
            "/api/report": {
                "get": {
                    "operationId": "report",
                    "summary": "The coverage report of every in-scope cluster (docs/report.schema.json).",
                    "parameters": [
                        {
                            "name": "format",
                            "in": "query",
                            "required": False,
                            "description": "json (default), table (plain text), csv (one row per cluster) or"
                            " html (one self-contained page).",
                            "schema": {"enum": list(REPORT_FORMATS), "default": "json"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The report in the requested format.",
                            "content": {
                                REPORT_MEDIA_TYPES["json"]: {"schema": _ref("CoverageReport")},
                                REPORT_MEDIA_TYPES["table"]: {"schema": {"type": "string"}},
                                REPORT_MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
                                REPORT_MEDIA_TYPES["html"]: {"schema": {"type": "string"}},
                            },
                        },
                        **_errors(400, 401, 403, 500, 503),
                    },
                }
            },
            "/api/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Settings and config valid, every dependency answering.",
                    "responses": {
                        "200": _json(_ref("Health"), "Healthy."),
                        "503": _json(_ref("Health"), "Unhealthy: the config or a dependency failed (named)."),
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {
                        "200": _json({"type": "object"}, "The OpenAPI 3.1 description of this API."),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
            },
            "schemas": _schemas(),
        },
    }
    return copy.deepcopy(document)


def operations(document: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(method, path) of every operation, e.g. ``("POST", "/api/remediate")``."""
    doc = document or openapi_document()
    return [
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if re.fullmatch(r"get|put|post|delete|patch|head|options", method)
    ]


__all__ = ["CLUSTER_ID_PATTERN", "OPENAPI_VERSION", "REPORT_FORMATS", "openapi_document", "operations"]
