"""docs/openapi.json: generated from remediator/core/openapi.py, a valid OpenAPI 3.1 document, describing
every HTTP route of function_app.py, and the bodies today's handlers produce validate against it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from remediator.core.caller import HttpAuth
from remediator.core.decision import Blocker, Reason
from remediator.core.errors import UserInputError, UserInputErrors
from remediator.core.ids import parse_cluster_id
from remediator.core.openapi import CLUSTER_ID_PATTERN, SCOPE_PATTERN, openapi_document, operations
from remediator.core.outcomes import Action, ActionKind, ActionStatus, Outcome, ReconcileReport
from remediator.core.report_document import to_dict
from remediator.service.triggers.http import handle_http_explain, handle_http_remediate, handle_openapi
from tests.unit.test_cli_explain import OUTSIDE, _context
from tools.openapi_doc import OPENAPI_PATH, document_text
from tools.sample_report import sample_document

ROOT = Path(__file__).resolve().parents[2]
DOC = openapi_document()


def schema_validator(name: str) -> Draft202012Validator:
    """A validator for one component schema, with the whole document as the root that ``$ref`` resolves in."""
    return Draft202012Validator({**DOC, "$ref": f"#/components/schemas/{name}"})


def test_committed_document_is_current() -> None:
    assert OPENAPI_PATH.read_text(encoding="utf-8") == document_text(), "run: python -m tools.openapi_doc"


def test_it_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"].startswith("3.1")
    validate(json.loads(OPENAPI_PATH.read_text(encoding="utf-8")))


def test_the_validator_rejects_a_broken_document() -> None:
    broken = json.loads(document_text())
    broken["paths"]["/api/health"]["get"]["responses"]["200"] = {
        "content": {}
    }  # a response needs a description
    with pytest.raises(Exception, match="description"):
        validate(broken)


def _routes_of_function_app() -> set[str]:
    tree = ast.parse((ROOT / "function_app.py").read_text(encoding="utf-8"))
    routes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "route":
            for keyword in node.keywords:
                if keyword.arg == "route" and isinstance(keyword.value, ast.Constant):
                    routes.add(f"/api/{keyword.value.value}")
    return routes


def test_every_http_route_of_the_app_is_described() -> None:
    """Every route function_app.py registers is described, and the document describes nothing it does not
    serve (``/api/openapi.json`` included: served by ``function_app.openapi``)."""
    assert "/api/openapi.json" in _routes_of_function_app()
    assert {path for _, path in operations(DOC)} == _routes_of_function_app()


def test_the_served_document_is_the_committed_one() -> None:
    """``GET /api/openapi.json`` answers the committed document, without settings or a handler context."""
    served = handle_openapi()
    assert served.status == 200 and served.media_type == "application/json"
    assert json.loads(served.encode()) == json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    response = DOC["paths"]["/api/openapi.json"]["get"]["responses"]["200"]
    Draft202012Validator({**DOC, **response["content"]["application/json"]["schema"]}).validate(
        json.loads(served.encode())
    )


def test_every_operation_describes_the_hosts_401() -> None:
    """Every route needs the function key, so every operation may answer the host's 401."""
    for method, path in operations(DOC):
        assert "401" in DOC["paths"][path][method.lower()]["responses"], (method, path)
    host_refusal = {"error": "a valid function key is required (?code= or x-functions-key)"}
    Draft202012Validator(
        {
            **DOC,
            **DOC["paths"]["/api/health"]["get"]["responses"]["401"]["content"]["application/json"]["schema"],
        }
    ).validate(host_refusal)


def test_id_patterns_accept_what_the_parsers_accept() -> None:
    """The document's id patterns and ``remediator.core.ids`` agree on valid and invalid ids."""
    good = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg.(x)_1/providers/"
        "Microsoft.ContainerService/managedClusters/aks-1"
    )
    assert re.search(CLUSTER_ID_PATTERN, good) and parse_cluster_id(good)
    assert re.search(CLUSTER_ID_PATTERN, good.upper())
    for bad in (
        good.replace("00000000-0000-0000-0000-000000000000", "0"),  # not a GUID
        good.replace("rg.(x)_1", "rg."),  # a resource group name cannot end in '.'
        good.replace("aks-1", "aks-"),  # nor a cluster name in '-'
        good + "/x",
    ):
        assert not re.search(CLUSTER_ID_PATTERN, bad), bad
        with pytest.raises(UserInputError):
            parse_cluster_id(bad)
    sub = "/subscriptions/00000000-0000-0000-0000-000000000000"
    assert re.search(SCOPE_PATTERN, sub) and re.search(SCOPE_PATTERN, sub + "/resourceGroups/rg")
    assert not re.search(SCOPE_PATTERN, sub + "/resourceGroups/rg/providers/x")


def test_enums_come_from_the_code() -> None:
    schemas = DOC["components"]["schemas"]
    assert schemas["Decision"]["properties"]["reason"]["enum"] == [r.value for r in Reason]
    assert schemas["Decision"]["properties"]["blockers"]["items"]["enum"] == [b.value for b in Blocker]
    assert {"json", "table", "csv", "html"} == set(
        DOC["paths"]["/api/report"]["get"]["parameters"][0]["schema"]["enum"]
    )


def test_handler_bodies_validate() -> None:
    """400 and 403 from the real handlers; a reconcile report and a sample coverage report."""
    bad = handle_http_remediate(b"{not json", {}, ctx=_context())
    assert bad.status == 400
    schema_validator("InvalidInput").validate(dict(bad.body))
    both = handle_http_remediate(
        json.dumps({"clusterId": OUTSIDE, "scope": "/x"}).encode(), {}, ctx=_context()
    )
    assert both.status == 400
    schema_validator("InvalidInput").validate(dict(both.body))
    refused = handle_http_explain(json.dumps({"clusterId": OUTSIDE}).encode(), ctx=_context())
    assert refused.status == 403
    schema_validator("Refused").validate(dict(refused.body))
    unknown = handle_http_remediate(
        json.dumps({"clusterId": OUTSIDE, "dryrun": True}).encode(), {}, ctx=_context()
    )
    assert unknown.status == 400 and unknown.body["field"] == "dryrun"
    schema_validator("InvalidInput").validate(dict(unknown.body))
    large = handle_http_remediate(b'{"clusterId": "' + b"x" * 70_000 + b'"}', {}, ctx=_context())
    assert large.status == 413
    schema_validator("InvalidInput").validate(dict(large.body))
    entra = _context()
    entra.settings = entra.settings.model_copy(update={"http_auth": HttpAuth.ENTRA})
    unauthenticated = handle_http_explain(json.dumps({"clusterId": OUTSIDE}).encode(), ctx=entra)
    assert unauthenticated.status == 401
    schema_validator("CallerRefused").validate(dict(unauthenticated.body))
    schema_validator("RateLimited").validate(
        {"error": "rate-limited", "message": "m", "retryAfterSeconds": 600}
    )
    schema_validator("Internal").validate({"error": "internal", "correlationId": "http-1"})
    # the strict request schemas refuse what the handler refuses
    with pytest.raises(Exception, match="Additional properties"):
        schema_validator("RemediateCluster").validate({"clusterId": OUTSIDE, "dryrun": True})
    schema_validator("RemediateCluster").validate({"clusterId": OUTSIDE, "dryRun": True})
    several = UserInputErrors([UserInputError("a", field="x"), UserInputError("b", field="y")]).to_json()
    schema_validator("InvalidInput").validate(several)
    report = ReconcileReport(
        cluster_id=OUTSIDE,
        decision={
            "clusterId": OUTSIDE,
            "selected": True,
            "reason": "selected",
            "rule": "include[0]",
            "storageAccountId": None,
            "blockers": ["cluster-stopped"],
            "matchedRule": {"kind": "include", "tag": "Backup", "value": "yes", "pattern": "yes"},
        },
        outcome=Outcome.wait(30.0, "install started"),
        actions=(Action(ActionKind.CREATE_EXTENSION, OUTSIDE + "/x", ActionStatus.DONE, "azure-aks-backup"),),
        started_at="2026-01-01T00:00:00Z",
        correlation_id="c",
    )
    body: dict[str, Any] = {**report.to_json(), "followUp": {"enqueued": True, "delaySeconds": 30.0}}
    body["caller"] = "function-key:0123456789ab"
    schema_validator("ReconcileReport").validate(body)
    schema_validator("CoverageReport").validate(to_dict(sample_document(clusters=20, seed=3)))


def test_schemas_reject_what_handlers_never_send() -> None:
    with pytest.raises(Exception, match="is not one of"):
        schema_validator("Outcome").validate({"kind": "finished", "why": "x", "retryAfterSeconds": None})
    with pytest.raises(Exception, match="required"):
        schema_validator("Refused").validate({"error": "out-of-scope"})
