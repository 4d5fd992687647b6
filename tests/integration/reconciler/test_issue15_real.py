"""Issue 15 (part 2) against the real product runtime, the HTTPS ARM emulator and Azurite:

* a dry run asked for in the request BODY writes nothing (and the same body without it does write);
* an unknown field is a 400 and writes nothing;
* the HTTP caller reaches the journal row of the write it caused;
* U+212A KELVIN SIGN: with a config naming ``rg-aks-prod``, the cluster in ``rg-a\\u212as-prod`` is out of
  scope through the reconciler and the event trigger, and gets zero writes while its ASCII twin is installed;
* the reconciler writes only to the id the cluster GET returned, after checking it is the one requested;
* the ``{scope}`` rate limit holds across two limiter instances sharing the journal table (two Functions
  instances), including under a race for the last token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

import function_app
from remediator.adapters.rate_limit import TableRateLimiter
from remediator.core.caller import key_fingerprint
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import OutcomeKind
from remediator.core.settings import Settings
from remediator.core.text import ignore_case_key
from remediator.service.ports import HandlerContext
from remediator.service.runtime import Runtime, build_handler_context
from tests.fixtures.emulator import TEST_SUB, TEST_TENANT
from tests.integration.reconciler.conftest import (
    CONFIG,
    ESTATE,
    FAST,
    STORAGE_EASTUS,
    arm_writes,
    cluster_id,
    extensions_of,
)

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")
KEY = "an-operator-function-key"
ASCII_RG = "rg-aks-prod"
KELVIN_RG = "rg-a\u212as-prod"
ASCII_CLUSTER = cluster_id("aks-prod", rg=ASCII_RG)
KELVIN_CLUSTER = cluster_id("aks-prod", rg=KELVIN_RG)


@pytest.fixture
def ctx(world: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[HandlerContext]:
    """The Functions app's own context (build_handler_context), behind function_app's real functions."""
    context = build_handler_context(world.env)
    monkeypatch.setattr(function_app, "context", lambda: context)
    yield context
    context.extras["runtime"].close()


def _request(body: Any, **params: str) -> func.HttpRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return func.HttpRequest(
        method="POST",
        url="http://localhost/api/remediate",
        params=params,
        body=raw,
        headers={"x-functions-key": KEY},
    )


def _payload(resp: func.HttpResponse) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resp.get_body())
    return data


# --------------------------------------------------------------------------------------------- item 2


def test_a_dry_run_in_the_body_writes_nothing_and_an_unknown_field_gets_400(world: Any, ctx: Any) -> None:
    resp = function_app.remediate(_request({"clusterId": AKS_OK, "dryRun": True}))
    assert resp.status_code == 200, _payload(resp)
    planned = _payload(resp)
    assert planned["dryRun"] is True and planned["actions"]
    assert {a["status"] for a in planned["actions"]} == {"planned"}
    assert arm_writes(world) == [] and extensions_of(world, AKS_OK) == []

    for body in ({"clusterId": AKS_OK, "dryrun": True}, {"clusterId": AKS_OK, "dryRun": True, "force": 1}):
        resp = function_app.remediate(_request(body))
        assert resp.status_code == 400, _payload(resp)
        unknown = next(k for k in body if k not in ("clusterId", "dryRun"))
        assert _payload(resp)["field"] == unknown
    assert arm_writes(world) == []

    # the same request without the dry run does write: the assertions above can fail
    resp = function_app.remediate(_request({"clusterId": AKS_OK}))
    assert resp.status_code in (200, 202), _payload(resp)
    assert arm_writes(world, path_contains="/extensions/azure-aks-backup")
    caller = f"function-key:{key_fingerprint(KEY)}"
    assert _payload(resp)["caller"] == caller
    latest = ctx.extras["runtime"].journal.latest(AKS_OK)
    assert latest is not None and latest.caller == caller and not latest.dry_run


# --------------------------------------------------------------------------------------------- item 1


def _kelvin_world(world: Any, emulator: Any) -> Runtime:
    estate = json.loads(json.dumps(ESTATE))
    for sub in estate["subscriptions"]:
        if sub["subscriptionId"] == TEST_SUB:
            sub["resourceGroups"] += [
                {"name": ASCII_RG, "location": "eastus"},
                {"name": KELVIN_RG, "location": "eastus"},
            ]
    tags = {"backup": "yes"}
    estate["clusters"] += [
        {"id": ASCII_CLUSTER, "location": "eastus", "tags": tags},
        {"id": KELVIN_CLUSTER, "location": "eastus", "tags": tags},
    ]
    emulator.reset(estate)
    config = {
        **json.loads(json.dumps(CONFIG)),
        "scope": {"resourceGroups": [f"/subscriptions/{TEST_SUB}/resourceGroups/{ASCII_RG}"]},
    }
    env = {k: v for k, v in world.env.items() if k != "REMEDIATOR_CONFIG_FILE"}
    env["REMEDIATOR_CONFIG_JSON"] = json.dumps(config)
    world.env = env
    emulator.admin.clear_calls()
    return Runtime(Settings.from_env(env), client_options=FAST)


def _kelvin_writes(world: Any) -> list[dict[str, Any]]:
    """Writes whose path names the Kelvin group (decoded or percent-encoded)."""
    return [
        c
        for c in arm_writes(world)
        if KELVIN_RG in c["path"] or "%E2%84%AA" in c["path"].upper() or "\u212a" in c["path"]
    ]


def test_the_kelvin_spelled_group_is_out_of_scope_through_the_reconciler(world: Any, emulator: Any) -> None:
    runtime = _kelvin_world(world, emulator)
    try:
        spoof = runtime.reconciler.reconcile(parse_cluster_id(KELVIN_CLUSTER))
        assert spoof.outcome.kind is OutcomeKind.SKIPPED, spoof.outcome
        assert spoof.actions == () and _kelvin_writes(world) == [] and arm_writes(world) == []
        assert extensions_of(world, KELVIN_CLUSTER) == []

        real = runtime.reconciler.reconcile(parse_cluster_id(ASCII_CLUSTER))
        assert real.actions, real.outcome  # the ASCII twin is in scope and gets its install
        assert [e["id"] for e in extensions_of(world, ASCII_CLUSTER)]
        assert _kelvin_writes(world) == [] and extensions_of(world, KELVIN_CLUSTER) == []
        # no grant on the shared account reached the Kelvin cluster's identity either
        grants = [c for c in arm_writes(world) if "roleassignments" in c["path"].lower()]
        assert all(STORAGE_EASTUS.lower() in c["path"].lower() for c in grants)
        # the emulator keeps the two groups apart: both clusters exist, only the ASCII one was written to
        ids = {ignore_case_key(c["id"]) for c in world.state("clusters")}
        assert ignore_case_key(KELVIN_CLUSTER) in ids and ignore_case_key(ASCII_CLUSTER) in ids
        assert ignore_case_key(KELVIN_CLUSTER) != ignore_case_key(ASCII_CLUSTER)
    finally:
        runtime.close()


def test_the_kelvin_spelled_group_is_out_of_scope_through_the_event_trigger(
    world: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = _kelvin_world(world, emulator)
    runtime.close()
    context = build_handler_context(world.env)
    monkeypatch.setattr(function_app, "context", lambda: context)
    try:
        raw = {
            "id": "kelvin-1",
            "topic": f"/subscriptions/{TEST_SUB}",
            "subject": KELVIN_CLUSTER,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "eventTime": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
            "dataVersion": "2",
            "data": {
                "operationName": "Microsoft.ContainerService/managedClusters/write",
                "resourceUri": KELVIN_CLUSTER,
                "subscriptionId": TEST_SUB,
                "tenantId": TEST_TENANT,
                "status": "Succeeded",
            },
        }
        function_app.on_cluster_write(
            EventGridEventInConverter.decode(meta.Datum(json.dumps(raw), "json"), trigger_metadata=None)
        )
        assert arm_writes(world) == [] and extensions_of(world, KELVIN_CLUSTER) == []
        journal = context.extras["runtime"].journal
        refused = journal.latest(KELVIN_CLUSTER)  # journaled under its own id, apart from the ASCII twin
        assert refused is not None and "outside the configured scope" in refused.outcome.why
        assert journal.latest(ASCII_CLUSTER) is None
    finally:
        context.extras["runtime"].close()


# --------------------------------------------------------------------------------------------- item 5


def test_a_get_that_answers_another_id_gets_zero_writes(world: Any, emulator: Any) -> None:
    other = cluster_id("aks-ok", rg="rg-other")
    emulator.admin.add_fault(method="GET", path=f"{AKS_OK}", action="rewrite", set={"id": other}, count=1)
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is OutcomeKind.GAVE_UP
    assert AKS_OK in report.outcome.why and other in report.outcome.why
    assert report.actions == () and arm_writes(world) == []

    # another casing of the same id is the same resource (ResourceId equality is OrdinalIgnoreCase)
    emulator.admin.add_fault(
        method="GET", path=f"{AKS_OK}", action="rewrite", set={"id": AKS_OK.upper()}, count=1
    )
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is not OutcomeKind.GAVE_UP, report.outcome
    assert arm_writes(world, path_contains="/managedClusters/aks-ok/providers/")


# --------------------------------------------------------------------------------------------- rate limit


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_scope_rate_limit_holds_across_instances(world: Any) -> None:
    journal = world.runtime.journal
    clock = ManualClock()
    instances = [
        TableRateLimiter(
            journal.table,
            per_hour=3,
            name="scope-remediation",
            ensure_table=journal.ensure_table,
            clock=clock,
        )
        for _ in range(2)
    ]
    answers = [instances[i % 2].try_acquire("function-key:abc") for i in range(4)]
    assert answers[:3] == [None, None, None] and answers[3] == 1200  # 3 an hour: the next token in 20 min
    assert instances[0].try_acquire("function-key:other") is None  # per caller
    clock.now += 1200
    assert instances[1].try_acquire("function-key:abc") is None
    assert instances[0].try_acquire("function-key:abc") == 1200


def test_a_race_for_the_last_tokens_lets_exactly_the_capacity_through(world: Any) -> None:
    journal = world.runtime.journal
    clock = ManualClock()
    limiters = [
        TableRateLimiter(
            journal.table, per_hour=5, name="race", ensure_table=journal.ensure_table, clock=clock
        )
        for _ in range(8)
    ]
    barrier = threading.Barrier(len(limiters))
    results: list[float | None] = []
    lock = threading.Lock()

    def take(limiter: TableRateLimiter) -> None:
        barrier.wait()
        answer = limiter.try_acquire("caller")
        with lock:
            results.append(answer)

    threads = [threading.Thread(target=take, args=(limiter,)) for limiter in limiters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # ETag conditions: never more than the capacity allowed, whatever the interleaving
    assert 1 <= results.count(None) <= 5 and len(results) == 8
    assert sum(1 for _ in range(3) if limiters[0].try_acquire("caller") is None) + results.count(None) <= 5
