"""The HTTP API's OpenAPI 3.1 description, built from one Python source.

Callers of ``/api/remediate``, ``/api/explain``, ``/api/report``, ``/api/health`` and ``/api/openapi.json``
(scripts, portals, API gateways, the property-based test) need a machine-readable contract. It is built here,
from the same enums and shapes the handlers use (``Reason``, ``Blocker``, ``OutcomeKind``, ``ActionKind``, the
report document's JSON Schema, the id rules of :mod:`remediator.core.ids`), so a new reason or report field
reaches the description without a hand edit. ``docs/openapi.json`` is this document as committed
(``python -m tools.openapi_doc``; a test keeps it current and validates it with openapi-spec-validator), and
``GET /api/openapi.json`` serves it.

The bodies are those of ``remediator/service/triggers/http.py`` and ``function_app.py``: 400 is a
:class:`~remediator.core.errors.UserInputError` body, 401 the host's refusal of a missing or wrong function
key (or, with App Service authentication, of a caller without a principal), 403 names the scope refusal
(:mod:`remediator.core.refusals`), 404 a cluster ARM does not know, 413 a body over the size limit, 202
carries ``followUp``, 503 has ``retryAfterSeconds`` (or, from the health route, the failed dependencies).
``tests/integration/functions/test_openapi_property.py`` sends generated requests to the running app and
checks every answer against this document. ``GET /api/report`` is described with its ``format`` parameter
and the version 1 report document (``docs/report.schema.json``) that the report use case returns.
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
from remediator.core.plan.requirement import LINK_STATES, Mode
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


def _any_case(word: str) -> str:
    """``word`` matched in any casing (ECMA-262 patterns have no inline ``(?i)``; ARM keywords compare
    case-insensitively)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


_GUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_RESOURCE_GROUP = r"[-\w.()]{0,89}[-\w()]"
"""1-90 word characters, ``-``, ``.``, ``(`` or ``)``, not ending in ``.`` (``remediator.core.ids``)."""
_CLUSTER_NAME = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9])"
_SUBSCRIPTION_PREFIX = f"/{_any_case('subscriptions')}/{_GUID}"
_RESOURCE_GROUP_PREFIX = f"{_SUBSCRIPTION_PREFIX}/{_any_case('resourceGroups')}/{_RESOURCE_GROUP}"

CLUSTER_ID_PATTERN = (
    f"^{_RESOURCE_GROUP_PREFIX}/{_any_case('providers')}/{_any_case('Microsoft.ContainerService')}"
    f"/{_any_case('managedClusters')}/{_CLUSTER_NAME}$"
)
"""A managed cluster id as ``remediator.core.ids.parse_cluster_id`` accepts it: a GUID subscription, a valid
resource group and AKS cluster name, keywords in any casing (ARM ids compare case-insensitively)."""
SCOPE_PATTERN = f"^{_SUBSCRIPTION_PREFIX}(?:/{_any_case('resourceGroups')}/{_RESOURCE_GROUP})?$"
"""A subscription or resource group id, as ``POST /api/remediate {scope}`` accepts it."""

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
                    "pattern": SCOPE_PATTERN,
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
                "link": {"type": "string", "description": "The chain link the action satisfies."},
                "target": {"type": "string"},
                "status": {"enum": [status.value for status in ActionStatus]},
                "detail": {"type": "string"},
            },
            "required": ["kind", "target", "status", "detail"],
        },
        "Link": {
            "type": "object",
            "description": "One requirement of the mode's chain and its state (the first is preflight).",
            "properties": {
                "link": {"type": "string"},
                "title": {"type": "string"},
                "state": {"enum": list(LINK_STATES)},
                "why": {"type": "string"},
                "next": {"type": "string", "description": "What happens next for the link."},
            },
            "required": ["link", "state", "why", "next"],
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
        "ReconcileReport": {
            "type": "object",
            "description": "One reconcile (remediator.core.outcomes.ReconcileReport).",
            "properties": {
                "clusterId": {"type": "string"},
                "decision": _nullable(_ref("Decision")),
                "outcome": _ref("Outcome"),
                "actions": {"type": "array", "items": _ref("Action")},
                "mode": {"enum": [mode.value for mode in Mode]},
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
                "satisfied": {"type": "integer", "minimum": 0},
                "protectedElsewhere": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Protect mode: clusters another vault's backup instance protects (left"
                    " alone).",
                },
                "byReason": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                "byNeed": {
                    "type": "object",
                    "description": "Clusters needing work by the first link not satisfied (link:state).",
                    "additionalProperties": {"type": "integer", "minimum": 0},
                },
                "clusters": {
                    "type": "array",
                    "description": (
                        "Every cluster the sweep looked at: the report's cluster row plus what the sweep did"
                        " (decision) and, for work items, their reason (workReason)."
                    ),
                    "items": _ref("SweptCluster"),
                },
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
                "mode": {"enum": [mode.value for mode in Mode]},
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
        "HostRefused": {
            "type": "object",
            "description": (
                "The Functions host's own refusal of a request without a valid function key (query `code` or"
                " header `x-functions-key`): the app never runs. Azure's host answers with an empty body;"
                " tools/local_runner answers {error: <why>}."
            ),
            "properties": {"error": {"type": "string"}},
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
            "description": "ARM has no managed cluster with this id (the CLI says the same words, exit 8).",
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
    row = copy.deepcopy(schemas["ReportClusterRow"])
    row["description"] = "A cluster the sweep looked at: the report's cluster row, and what the sweep did."
    row["properties"]["decision"] = {
        "type": "string",
        "description": "enqueued, would-enqueue (+ ' (re-verify)'), enqueue-failed, blocked, deferred,"
        " not-selected, nothing-to-do or protected-elsewhere (protect mode: another vault's backup instance"
        " protects it; left alone).",
    }
    row["properties"]["workReason"] = {"type": "string", "description": "The work item's reason."}
    row["required"] = [*row["required"], "decision"]
    schemas["SweptCluster"] = row
    return schemas


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    bodies = {
        400: _json(_ref("InvalidInput"), "Malformed body or parameter; the field is named; nothing written."),
        401: _json(
            {"anyOf": [_ref("CallerRefused"), _ref("HostRefused")]},
            "No valid function key (the Functions host refuses before the app runs), or, with App Service"
            " authentication, no Entra principal; nothing written.",
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
                        **_errors(401),
                        "503": _json(_ref("Health"), "Unhealthy: the config or a dependency failed (named)."),
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document (docs/openapi.json).",
                    "description": (
                        "Served with the function key like every route; no app role and no setting needed"
                        " (the document holds no configuration; docs/security.md, HTTP callers)."
                    ),
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "openapi": {"const": OPENAPI_VERSION},
                                    "paths": {"type": "object"},
                                },
                                "required": ["openapi", "info", "paths", "components"],
                            },
                            "The OpenAPI 3.1 description of this API.",
                        ),
                        **_errors(401, 500),
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


__all__ = [
    "CLUSTER_ID_PATTERN",
    "OPENAPI_VERSION",
    "SCOPE_PATTERN",
    "REPORT_FORMATS",
    "openapi_document",
    "operations",
]
