"""The HTTP edges of issue 15 through function_app's real functions: strict bodies, ``dryRun`` in the body,
size and depth limits, the caller journaled, Entra app roles, the ``{scope}`` rate limit and answers that do
not disclose configuration. The service ports are the recording doubles of test_direct_invocation; the same
rules against the emulator and Azurite are in tests/integration/reconciler/test_http_edges_real.py."""

# ruff: noqa: F811 (the ctx and pool fixtures are imported from test_direct_invocation and used as arguments)
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

import function_app
from remediator.core.caller import key_fingerprint
from remediator.core.config import parse_config
from remediator.core.errors import UserInputError
from remediator.core.settings import Settings
from remediator.service.ports import HandlerContext
from tests.integration.functions.test_direct_invocation import (  # noqa: F401 (fixtures)
    CLUSTER,
    CONFIG,
    KEY,
    OTHER_SUB,
    SUB,
    _calls,
    _queued,
    _recorded,
    ctx,
    http,
    keyed,
    message,
    policy_event,
    pool,
    write_event,
)

pytestmark = pytest.mark.integration

FINGERPRINT = f"function-key:{key_fingerprint(KEY)}"


def _body(resp: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resp.get_body())
    return data


# --------------------------------------------------------------------------------------------- strict bodies


def test_a_dry_run_in_the_body_writes_nothing(ctx: HandlerContext) -> None:
    resp = function_app.remediate(keyed("POST", "remediate", {"clusterId": CLUSTER, "dryRun": True}))
    assert resp.status_code == 200, _body(resp)
    assert _body(resp)["dryRun"] is True and _body(resp)["actions"][0]["status"] == "planned"
    assert _calls(ctx) == [(CLUSTER, True, 0)]  # the reconciler was asked for a dry run
    resp = function_app.remediate(
        keyed("POST", "remediate", {"scope": f"/subscriptions/{SUB}", "dryRun": True})
    )
    assert resp.status_code == 200 and _body(resp)["dryRun"] is True
    [sweeper] = ctx.extras["made_sweepers"]
    assert sweeper.runs == [True] and _queued(ctx) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"clusterId": CLUSTER, "dryrun": True}, "dryrun"),  # a misspelt dryRun must not write
        ({"clusterId": CLUSTER, "force": True}, "force"),
        ({"scope": f"/subscriptions/{SUB}", "clusters": []}, "clusters"),
    ],
)
def test_an_unknown_field_is_a_400_naming_it(ctx: HandlerContext, body: dict[str, Any], field: str) -> None:
    resp = function_app.remediate(keyed("POST", "remediate", body))
    assert resp.status_code == 400
    payload = _body(resp)
    assert payload["field"] == field and f"unknown field {field!r}" in payload["message"]
    assert _calls(ctx) == [] and _queued(ctx) == [] and ctx.extras["made_sweepers"] == []
    explain = function_app.explain(keyed("POST", "explain", {"clusterId": CLUSTER, "dryRun": True}))
    assert explain.status_code == 400 and _body(explain)["field"] == "dryRun"


@pytest.mark.parametrize(
    ("body", "params", "status"),
    [
        ({"clusterId": CLUSTER, "dryRun": True}, {"dryRun": "true"}, 200),
        ({"clusterId": CLUSTER, "dryRun": False}, {"dryRun": "false"}, 200),
        ({"clusterId": CLUSTER, "dryRun": True}, {"dryRun": "false"}, 400),
        ({"clusterId": CLUSTER, "dryRun": False}, {"dryRun": "true"}, 400),
        ({"clusterId": CLUSTER, "dryRun": "true"}, {}, 400),  # a string is not a JSON boolean
        ({"clusterId": CLUSTER, "dryRun": 1}, {}, 400),
    ],
)
def test_dry_run_in_body_and_query_must_agree(
    ctx: HandlerContext, body: dict[str, Any], params: dict[str, str], status: int
) -> None:
    resp = function_app.remediate(keyed("POST", "remediate", body, **params))
    assert resp.status_code == status, _body(resp)
    if status == 400:
        assert _body(resp)["field"] == "dryRun" and _calls(ctx) == []
    else:
        assert _calls(ctx) == [(CLUSTER, body["dryRun"], 0)]


def test_size_and_nesting_limits(ctx: HandlerContext) -> None:
    big = json.dumps({"clusterId": CLUSTER + "x" * 70_000}).encode()
    resp = function_app.remediate(keyed("POST", "remediate", big))
    assert resp.status_code == 413 and "max_bytes" in _body(resp)["message"]
    for deep in (b"[" * 30_000 + b"]" * 30_000, b'{"clusterId": ' + b"[" * 5 + b"]" * 5 + b"}"):
        for call in (function_app.remediate, function_app.explain):
            resp = call(keyed("POST", "x", deep))
            assert resp.status_code == 400 and _body(resp)["field"] == "body", _body(resp)
    resp = function_app.remediate(keyed("POST", "remediate", b'{"clusterId": 1e999}'))
    assert resp.status_code == 400
    dup = b'{"clusterId": "%s", "clusterId": "%s"}' % (CLUSTER.encode(), CLUSTER.encode())
    assert function_app.remediate(keyed("POST", "remediate", dup)).status_code == 400
    assert _calls(ctx) == [] and _queued(ctx) == []


# --------------------------------------------------------------------------------------------- the caller


def test_the_caller_is_journaled_with_http_reconciles_and_requests(ctx: HandlerContext) -> None:
    resp = function_app.remediate(keyed("POST", "remediate", {"clusterId": CLUSTER}))
    assert resp.status_code == 200 and _body(resp)["caller"] == FINGERPRINT
    assert ctx.reconciler.callers == [FINGERPRINT]  # type: ignore[attr-defined]
    assert KEY not in json.dumps(_body(resp))  # the key itself is never echoed
    resp = function_app.remediate(keyed("POST", "remediate", {"scope": f"/subscriptions/{SUB}"}))
    assert resp.status_code == 202
    [request] = _recorded(ctx)  # the scope request, under the scope's id, with the sweep's correlation id
    assert request.cluster_id == f"/subscriptions/{SUB}" and request.caller == FINGERPRINT
    assert request.correlation_id == "sweep-1" and "enqueued" in request.outcome.why
    forbidden = function_app.remediate(
        keyed("POST", "remediate", {"clusterId": CLUSTER.replace(SUB, OTHER_SUB)})
    )
    assert forbidden.status_code == 403 and _recorded(ctx)[-1].caller == FINGERPRINT


def _entra(settings: Settings, ctx: HandlerContext) -> None:
    env = {k: v for k, v in settings.model_dump(by_alias=True).items() if v is not None}
    ctx.settings = Settings.from_env({**{k: str(v) for k, v in env.items()}, "REMEDIATOR_HTTP_AUTH": "entra"})


def principal(*roles: str, oid: str = "11111111-2222-3333-4444-555555555555") -> dict[str, str]:
    """The headers App Service authentication injects for a signed-in Entra caller."""
    claims = [{"typ": "roles", "val": role} for role in roles]
    claims.append({"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid})
    claims.append({"typ": "name", "val": "ops@example.com"})
    encoded = base64.b64encode(
        json.dumps({"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}).encode()
    ).decode()
    return {"X-MS-CLIENT-PRINCIPAL": encoded, "X-MS-CLIENT-PRINCIPAL-ID": oid}


def test_entra_app_roles_are_enforced(ctx: HandlerContext) -> None:
    _entra(ctx.settings, ctx)
    body = {"clusterId": CLUSTER}
    # no principal: 401 (even with a function key: in entra mode App Service must have signed the caller in)
    assert function_app.remediate(keyed("POST", "remediate", body)).status_code == 401
    # a reader may explain and report, not remediate
    reader = principal("reader")
    assert function_app.remediate(http("POST", "remediate", body, headers=reader)).status_code == 403
    assert function_app.explain(http("POST", "explain", body, headers=reader)).status_code == 200
    assert function_app.report(http("GET", "report", headers=reader)).status_code == 200
    # no role at all: 403 everywhere
    nobody = principal()
    assert function_app.explain(http("POST", "explain", body, headers=nobody)).status_code == 403
    assert function_app.report(http("GET", "report", headers=nobody)).status_code == 403
    assert _calls(ctx) == [(CLUSTER, True, 0)]  # only the reader's explain (a dry run) reached the reconciler
    # an operator remediates, and is journaled by object id and name
    resp = function_app.remediate(http("POST", "remediate", body, headers=principal("operator")))
    assert resp.status_code == 200
    assert _body(resp)["caller"] == "entra:11111111-2222-3333-4444-555555555555 (ops@example.com)"
    # a forged, unreadable principal is refused, not trusted
    forged = {"X-MS-CLIENT-PRINCIPAL": "not base64!", "X-MS-CLIENT-PRINCIPAL-ID": "x"}
    assert function_app.remediate(http("POST", "remediate", body, headers=forged)).status_code == 401


def test_principal_headers_are_ignored_without_entra_mode(ctx: HandlerContext) -> None:
    """Without App Service authentication anyone can send X-MS-CLIENT-PRINCIPAL: it must not count."""
    resp = function_app.remediate(
        http("POST", "remediate", {"clusterId": CLUSTER}, headers=principal("operator"))
    )
    assert resp.status_code == 200 and _body(resp)["caller"] == "anonymous"


# --------------------------------------------------------------------------------------------- rate limit


class CountingLimiter:
    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.keys: list[str] = []
        self.fail = False

    def try_acquire(self, key: str) -> float | None:
        if self.fail:
            raise ConnectionError("table down")
        self.keys.append(key)
        return None if len(self.keys) <= self.allowed else 599.2


@pytest.fixture
def limited(ctx: HandlerContext) -> Iterator[CountingLimiter]:
    limiter = CountingLimiter(allowed=2)
    ctx.scope_rate_limit = limiter
    yield limiter


def test_scope_remediation_is_rate_limited_per_caller(ctx: HandlerContext, limited: CountingLimiter) -> None:
    scope = {"scope": f"/subscriptions/{SUB}"}
    assert [function_app.remediate(keyed("POST", "remediate", scope)).status_code for _ in range(2)] == [
        202
    ] * 2
    resp = function_app.remediate(keyed("POST", "remediate", scope))
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "600"
    assert _body(resp)["retryAfterSeconds"] == 600 and _body(resp)["error"] == "rate-limited"
    assert len(ctx.extras["made_sweepers"]) == 2  # the third request swept nothing
    assert set(limited.keys) == {FINGERPRINT}
    # {clusterId} is not metered
    assert function_app.remediate(keyed("POST", "remediate", {"clusterId": CLUSTER})).status_code == 200
    # a limit that cannot be checked refuses (503), it never sweeps unmetered
    limited.fail = True
    resp = function_app.remediate(keyed("POST", "remediate", scope))
    assert resp.status_code == 503 and "Retry-After" in resp.headers
    assert len(ctx.extras["made_sweepers"]) == 2


# --------------------------------------------------------------------------------------------- disclosure


def test_forbidden_and_error_answers_hide_configuration_from_non_operators(ctx: HandlerContext) -> None:
    ctx.config = parse_config(
        {**CONFIG, "scope": {"resourceGroups": [f"/subscriptions/{SUB}/resourceGroups/rg-secret"]}}
    )
    scope = {"scope": f"/subscriptions/{SUB}"}
    operator = _body(function_app.remediate(keyed("POST", "remediate", scope)))
    assert "rg-secret" in operator["message"]
    anonymous = function_app.remediate(http("POST", "remediate", scope))
    assert anonymous.status_code == 403 and "rg-secret" not in anonymous.get_body().decode()

    ctx.reconciler.error = RuntimeError("storage stsecret01 refused")  # type: ignore[attr-defined]
    ctx.config = parse_config(CONFIG)
    ctx.settings = ctx.settings.model_copy(update={"inline_budget_seconds": 5.0})
    unexpected = function_app.explain(http("POST", "explain", {"clusterId": CLUSTER}))
    assert unexpected.status_code == 500 and _body(unexpected)["correlationId"].startswith("http-")
    assert "stsecret01" not in unexpected.get_body().decode()
    operator_500 = function_app.explain(keyed("POST", "explain", {"clusterId": CLUSTER}))
    assert operator_500.status_code == 500 and "stsecret01" in _body(operator_500)["message"]


# --------------------------------------------------------------------------------------------- queue, events


def test_deep_queue_and_poison_messages_never_raise_a_recursion_error(ctx: HandlerContext) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000  # json.loads raises RecursionError on this
    with pytest.raises(UserInputError) as err:  # the documented contract: the host retries, then poisons it
        function_app.reconcile_worker(message(deep))
    assert err.value.field == "body" and "max_" in err.value.message
    function_app.reconcile_poison(message(deep))  # journaled, not raised (no -poison-poison)
    [report] = _recorded(ctx)
    assert report.cluster_id == "(unreadable work item)" and report.outcome.kind.value == "gave_up"
    assert _calls(ctx) == []


def test_events_deeper_than_any_real_one_are_dropped(ctx: HandlerContext) -> None:
    nested: Any = "x"
    for _ in range(60):  # what the host's JToken.Parse (MaxDepth 64) still lets through
        nested = {"n": nested}
    event = write_event()
    raw = {
        "id": "deep-1",
        "topic": f"/subscriptions/{SUB}",
        "subject": CLUSTER,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": event.event_time.isoformat(),
        "dataVersion": "2",
        "data": {**event.get_json(), "extra": nested},
    }
    decoded = EventGridEventInConverter.decode(meta.Datum(json.dumps(raw), "json"), trigger_metadata=None)
    function_app.on_cluster_write(decoded)
    assert _calls(ctx) == [] and _queued(ctx) == []
    [journaled] = _recorded(ctx)
    assert journaled.cluster_id == "(malformed event)" and "max_depth" in journaled.outcome.why


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"topic": f"/subscriptions/{OTHER_SUB}"}, "topic"),
        ({"eventTime": "2020-01-01T00:00:00Z"}, "eventTime"),
        ({"data.subscriptionId": OTHER_SUB}, "data.subscriptionId"),
        ({"data.tenantId": "99999999-9999-9999-9999-999999999999"}, "data.tenantId"),
        ({"subject": CLUSTER.replace("aks1", "aks2")}, "subject"),
        ({"topic": None}, "topic"),
    ],
)
def test_event_provenance_is_checked_before_anything_happens(
    ctx: HandlerContext, change: dict[str, Any], field: str
) -> None:
    event = write_event()
    raw: dict[str, Any] = {
        "id": "prov-1",
        "topic": f"/subscriptions/{SUB}",
        "subject": CLUSTER,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": event.event_time.isoformat(),
        "dataVersion": "2",
        "data": {**event.get_json(), "subscriptionId": SUB, "tenantId": ctx.settings.tenant_id},
    }
    for key, value in change.items():
        if key.startswith("data."):
            raw["data"][key[5:]] = value
        elif value is None:
            raw.pop(key)
        else:
            raw[key] = value
    function_app.on_cluster_write(
        EventGridEventInConverter.decode(meta.Datum(json.dumps(raw), "json"), trigger_metadata=None)
    )
    assert _calls(ctx) == [] and _queued(ctx) == []
    [journaled] = _recorded(ctx)
    assert journaled.cluster_id == "(malformed event)" and f": {field}:" in journaled.outcome.why, (
        journaled.outcome.why
    )


def test_a_forged_policy_state_cannot_move_the_policy_order_mark(ctx: HandlerContext) -> None:
    """Provenance is checked before the durable policy-order mark: a forged state from another subscription's
    topic, dated later than the real one, must not make the real one stale."""
    forged = policy_event(timestamp=datetime.now(UTC).isoformat())
    forged_json = {
        "id": "forged",
        "topic": f"/subscriptions/{OTHER_SUB}",
        "subject": CLUSTER,
        "eventType": "Microsoft.PolicyInsights.PolicyStateChanged",
        "eventTime": forged.event_time.isoformat(),
        "dataVersion": "1",
        "data": forged.get_json(),
    }
    function_app.on_policy_state(
        EventGridEventInConverter.decode(meta.Datum(json.dumps(forged_json), "json"), trigger_metadata=None)
    )
    assert ctx.policy_order.seen == {}  # type: ignore[attr-defined]
    function_app.on_policy_state(policy_event(timestamp="2026-12-01T00:00:00Z"))
    assert _calls(ctx) == [(CLUSTER, False, 0)]
