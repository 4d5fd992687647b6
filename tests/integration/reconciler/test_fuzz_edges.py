"""Bounded fuzz of every untrusted edge (issue 15, item 9), through the REAL trigger functions of
function_app.py, the product's own handler context, the HTTPS ARM emulator and Azurite.

Six edges, a fixed budget of :data:`EXAMPLES` inputs each, derandomized (the same inputs every run):
cluster-write events, policy-state events, queue work items, poison items, ``POST /api/remediate`` and
``POST /api/explain`` bodies. Every input is invalid for writing: either random JSON/bytes, or a valid
template (which WOULD write: the control at the end shows it) with one to three mutations, each of which alone
makes the input malformed, out of scope, of the wrong provenance, a dry run, or otherwise not a write request.
Poison items and explain requests may be anything, since neither ever writes.

Asserted, per edge: no unhandled exception (the queue worker's ``UserInputError`` on a malformed item is its
documented contract: the host retries it, then the poison handler journals it), zero ARM writes in the
emulator's call log and zero work items enqueued. Events go through the worker's own converter
(``EventGridEventInConverter.decode``) exactly as the Functions worker passes them; an input that converter
refuses never reaches the product (in Azure the invocation fails and Event Grid retries and dead-letters it)
and is counted apart. The figures are printed in the terminal summary of ``make test``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.queue import QueueMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import function_app
from remediator.core.errors import UserInputError
from remediator.core.untrusted_json import nesting_depth
from remediator.service.ports import HandlerContext
from remediator.service.runtime import build_handler_context
from tests.fixtures.emulator import OTHER_SUB, TEST_SUB, TEST_TENANT
from tests.integration.reconciler.conftest import arm_writes, cluster_id

pytestmark = pytest.mark.integration

EXAMPLES = 300
"""Inputs per edge (the fixed budget)."""
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
HOST_MAX_DEPTH = 64
"""The Functions host parses each Event Grid delivery with Newtonsoft's JToken.Parse (MaxDepth 64 since
Json.NET 13.0.1) before the worker sees it; deeper deliveries never reach Python (see the docstring of
remediator/service/triggers/events.py)."""

AKS_OK = cluster_id("aks-ok")
AKS_OK_2 = cluster_id("aks-ok-2")
FOREIGN = cluster_id("aks-x", sub=OTHER_SUB, rg="rg")
P3 = "/providers/Microsoft.Authorization/policyDefinitions/bdff5235-9f40-4a32-893f-38a03d5d607c"
ASSIGNMENT = f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/policyAssignments/p3"
KEY = "fuzz-operator-key"

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6)
NOT_AN_ID = st.sampled_from(["not-an-id", "/subscriptions/not-a-guid", "aks1", "/", "\u212a", "a" * 300])


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


# --------------------------------------------------------------------------------------------- templates


def cluster_write() -> dict[str, Any]:
    """A valid ResourceWriteSuccess for an in-scope, selected cluster: it WOULD install."""
    return {
        "id": "fuzz-evt",
        "topic": f"/subscriptions/{TEST_SUB}",
        "subject": AKS_OK,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": now_iso(-timedelta(seconds=10)),
        "dataVersion": "2",
        "data": {
            "operationName": "Microsoft.ContainerService/managedClusters/write",
            "resourceUri": AKS_OK,
            "subscriptionId": TEST_SUB,
            "tenantId": TEST_TENANT,
            "status": "Succeeded",
        },
    }


def policy_state() -> dict[str, Any]:
    """A valid NonCompliant PolicyStateChanged of Policy 3 for an in-scope cluster: it WOULD install."""
    return {
        "id": "fuzz-policy",
        "topic": f"/subscriptions/{TEST_SUB}",
        "subject": AKS_OK,
        "eventType": "Microsoft.PolicyInsights.PolicyStateChanged",
        "eventTime": now_iso(-timedelta(seconds=10)),
        "dataVersion": "1",
        "data": {
            "timestamp": now_iso(-timedelta(seconds=20)),
            "policyAssignmentId": ASSIGNMENT,
            "policyDefinitionId": P3,
            "complianceState": "NonCompliant",
            "subscriptionId": TEST_SUB,
        },
    }


def work_item() -> dict[str, Any]:
    return {"clusterId": AKS_OK, "attempt": 0, "source": "event", "reason": "fuzz", "correlationId": "c"}


# --------------------------------------------------------------------------------------------- mutations
# Each mutation ALONE makes the input one that must not write; they never combine into a valid one (every
# replacement value is itself invalid, and none restores a field another mutation broke).

Mutation = Callable[[dict[str, Any], st.DrawFn], None]


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    return data if isinstance(data, dict) else {}


def _set_or_pop(target: dict[str, Any], key: str, values: list[Any], draw: st.DrawFn) -> None:
    choice = draw(st.sampled_from([*values, "<pop>"]))
    if choice == "<pop>":
        target.pop(key, None)
    else:
        target[key] = choice


ENVELOPE: dict[str, Mutation] = {
    "id": lambda e, d: _set_or_pop(e, "id", [None, "", 5, [], {}], d),
    "eventType": lambda e, d: _set_or_pop(
        e, "eventType", [None, "", 7, "Microsoft.Resources.ResourceDeleteSuccess"], d
    ),
    "eventTime": lambda e, d: _set_or_pop(
        e,
        "eventTime",
        [
            None,
            "",
            "yesterday",
            12345,
            "2026-13-45T00:00:00Z",
            now_iso(-timedelta(days=3)),
            now_iso(timedelta(hours=2)),
        ],
        d,
    ),
    "topic": lambda e, d: _set_or_pop(
        e, "topic", [None, f"/subscriptions/{OTHER_SUB}", "garbage", 5, "/providers/x"], d
    ),
    "subject": lambda e, d: e.__setitem__(
        "subject", d(st.sampled_from([AKS_OK_2, FOREIGN, "not-an-id", 5, []]))
    ),
    "data": lambda e, d: e.__setitem__("data", d(st.sampled_from([[], "x", 3, True]))),
    "dataSubscription": lambda e, d: _data(e).__setitem__(
        "subscriptionId", d(st.sampled_from([OTHER_SUB, 5, ""]))
    ),
    "dataTenant": lambda e, d: _data(e).__setitem__(
        "tenantId", d(st.sampled_from(["99999999-9999-9999-9999-999999999999", 5]))
    ),
    "deep": lambda e, d: _data(e).__setitem__("extra", deep(d(st.integers(min_value=33, max_value=58)))),
    "cloudVersion": lambda e, d: e.__setitem__("specversion", d(st.sampled_from(["0.3", "2.0", 1]))),
}
CLUSTER_WRITE: dict[str, Mutation] = {
    **ENVELOPE,
    "resourceUri": lambda e, d: _data(e).__setitem__(
        "resourceUri", d(st.sampled_from(["", 5, "not-an-id", AKS_OK_2]))
    ),
    "operation": lambda e, d: _set_or_pop(
        _data(e),
        "operationName",
        [None, "", 5, "Microsoft.ContainerService/managedClusters/agentPools/write"],
        d,
    ),
}
POLICY_STATE: dict[str, Mutation] = {
    **ENVELOPE,
    "subject": lambda e, d: e.__setitem__("subject", d(st.sampled_from([FOREIGN, "not-an-id", 5, [], ""]))),
    "timestamp": lambda e, d: _set_or_pop(
        _data(e), "timestamp", [None, "9999-12-31T23:59:59Z", "not a time", 5, now_iso(timedelta(days=1))], d
    ),
    "compliance": lambda e, d: _set_or_pop(
        _data(e), "complianceState", [None, "", 5, "Compliant", "Unknown"], d
    ),
    "assignment": lambda e, d: _set_or_pop(_data(e), "policyAssignmentId", [None, "", 5, "not-an-id"], d),
    "definition": lambda e, d: _set_or_pop(
        _data(e),
        "policyDefinitionId",
        [None, "", "not-an-id", "/providers/Microsoft.Authorization/policyDefinitions/other"],
        d,
    ),
}
WORK_ITEM: dict[str, Mutation] = {
    "clusterId": lambda w, d: _set_or_pop(
        w, "clusterId", [None, "", 5, "not-an-id", [AKS_OK], {"id": AKS_OK}], d
    ),
    "attempt": lambda w, d: w.__setitem__("attempt", d(st.sampled_from([-1, "1", 1.5, True, None, [0]]))),
    "source": lambda w, d: w.__setitem__("source", d(st.sampled_from(["elsewhere", 5, ["event"]]))),
    "enqueuedAt": lambda w, d: w.__setitem__(
        "enqueuedAt", d(st.sampled_from(["yesterday", 5, ["2026"], {}]))
    ),
    "deep": lambda w, d: w.__setitem__("reason", deep(d(st.integers(min_value=9, max_value=900)))),
    "huge": lambda w, d: w.__setitem__("reason", "x" * d(st.integers(min_value=70_000, max_value=90_000))),
}


def mutated(template: Callable[[], dict[str, Any]], mutations: dict[str, Mutation]) -> st.SearchStrategy[Any]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        value = template()
        for name in draw(st.lists(st.sampled_from(sorted(mutations)), min_size=1, max_size=3, unique=True)):
            mutations[name](value, draw)
        return value

    return build()


def events(template: Callable[[], dict[str, Any]], mutations: dict[str, Mutation]) -> st.SearchStrategy[str]:
    """Event JSON text: a mutated template (mostly) or a random object, as the host hands it to the worker."""
    return st.one_of(mutated(template, mutations), mutated(template, mutations), JSON_OBJECTS).map(json.dumps)


WORK_BODIES = st.one_of(
    mutated(work_item, WORK_ITEM).map(lambda w: json.dumps(w).encode()),
    mutated(work_item, WORK_ITEM).map(lambda w: json.dumps(w).encode()),
    st.binary(max_size=300),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1_000, max_value=300_000).map(lambda n: b"[" * n + b"]" * n),
)
POISON_BODIES = st.one_of(WORK_BODIES, st.just(json.dumps(work_item()).encode()))


@st.composite
def remediate_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """(body, query) of a POST /api/remediate that must not write."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "random", "bytes", "deep", "large"]))
    if kind == "random":
        return json.dumps(draw(JSON_VALUES)).encode(), {}
    if kind == "bytes":
        return draw(st.binary(max_size=200)), {}
    if kind == "deep":  # built as text: json.dumps itself recurses
        levels = draw(st.integers(min_value=4, max_value=30_000))
        return b'{"clusterId": ' + b"[" * levels + b'"x"' + b"]" * levels + b"}", {}
    if kind == "large":
        return json.dumps({"clusterId": AKS_OK, "pad": "x" * 70_000}).encode(), {}
    body: dict[str, Any] = {"clusterId": AKS_OK}
    query: dict[str, str] = {}
    allowed = {"clusterId", "scope", "dryRun"}
    for name in draw(
        st.lists(
            st.sampled_from(
                ["unknown", "clusterId", "both", "dryRunType", "dryRun", "disagree", "query", "scope"]
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    ):
        if name == "unknown":
            body[draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in allowed))] = draw(
                JSON_VALUES
            )
        elif name == "clusterId":
            body["clusterId"] = draw(
                st.one_of(NOT_AN_ID, st.sampled_from([FOREIGN, None, 5, [], {}]), st.just(""))
            )
        elif (
            name == "both"
        ):  # both given: 400 (clusterId set again, so a later "scope" cannot leave scope alone)
            body["scope"] = f"/subscriptions/{TEST_SUB}"
            body.setdefault("clusterId", AKS_OK)
        elif name == "dryRunType":
            body["dryRun"] = draw(st.sampled_from(["true", 1, 0, None, [], "false"]))
        elif name == "dryRun":
            body["dryRun"] = True  # a valid dry run: plans, writes nothing
        elif name == "disagree":
            body["dryRun"] = draw(st.booleans())
            query["dryRun"] = "false" if body["dryRun"] else "true"
        elif name == "query":
            query["dryRun"] = draw(
                st.text(max_size=8).filter(lambda v: v.strip().lower() not in {"", "0", "false", "no"})
            )
        else:  # a scope that is malformed or outside the configured scope (or, after "both", two fields: 400)
            if "scope" not in body:
                body.pop("clusterId", None)
            body["scope"] = draw(
                st.sampled_from([f"/subscriptions/{OTHER_SUB}", "not-a-scope", AKS_OK, 5, None])
            )
    return json.dumps(body).encode(), query


EXPLAIN_BODIES = st.one_of(
    remediate_requests().map(lambda request: request[0]),
    st.just(json.dumps({"clusterId": AKS_OK}).encode()),  # a valid explain: a dry run, never a write
    st.binary(max_size=200),
)


# --------------------------------------------------------------------------------------------- harness


@pytest.fixture
def ctx(world: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[HandlerContext]:
    context = build_handler_context(world.env)
    context.extras["runtime"].work_queue.ensure_queue()  # so an empty queue counts 0 (it exists)
    monkeypatch.setattr(function_app, "context", lambda: context)
    yield context
    context.extras["runtime"].close()


class Tally:
    """What one edge's inputs did."""

    def __init__(self, edge: str) -> None:
        self.edge = edge
        self.outcomes: Counter[str] = Counter()
        self.unhandled: list[str] = []

    @property
    def tried(self) -> int:
        return sum(self.outcomes.values())

    def run(
        self,
        call: Callable[[], Any],
        *,
        label: Callable[[Any], str] = lambda _result: "handled",
        expected: tuple[type[BaseException], ...] = (),
    ) -> Any:
        """Call the trigger; count what it did under ``label(result)``, an expected exception as refused, and
        any other exception as unhandled."""
        try:
            result = call()
        except expected as exc:
            self.outcomes[f"refused:{type(exc).__name__}"] += 1
            return None
        except Exception as exc:  # the figure the test exists for
            self.outcomes["unhandled"] += 1
            self.unhandled.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            return None
        self.outcomes[label(result)] += 1
        return result


def _queued(ctx: HandlerContext) -> int:
    props = ctx.extras["runtime"].work_queue.queue.get_queue_properties()
    return int(props.approximate_message_count)


def _report(world: Any, ctx: HandlerContext, tally: Tally, figures: list[str]) -> None:
    writes = len(arm_writes(world)) + _queued(ctx)
    details = ", ".join(f"{k} {v}" for k, v in sorted(tally.outcomes.items()))
    figures.append(
        f"fuzz {tally.edge}: inputs tried {tally.tried}, unhandled {len(tally.unhandled)}, writes {writes}"
        f" ({details})"
    )
    assert tally.tried >= EXAMPLES, tally.outcomes
    assert tally.unhandled == [], tally.unhandled[:5]
    assert arm_writes(world) == [], arm_writes(world)[:3]
    assert _queued(ctx) == 0


def _event(text: str, tally: Tally) -> Any:
    """The worker's own conversion of one delivered event (None: it refused, before any product code)."""
    if nesting_depth(text, stop_above=HOST_MAX_DEPTH) > HOST_MAX_DEPTH:
        tally.outcomes["refused-by-host:depth>64"] += 1
        return None
    try:
        return EventGridEventInConverter.decode(meta.Datum(text, "json"), trigger_metadata=None)
    except Exception as exc:  # the worker's converter, not the product: counted apart
        tally.outcomes[f"refused-by-worker-converter:{type(exc).__name__}"] += 1
        return None


# --------------------------------------------------------------------------------------------- the edges


def test_fuzz_cluster_write_events(world: Any, ctx: HandlerContext, fuzz_figures: list[str]) -> None:
    tally = Tally("cluster-write events")

    @FUZZ
    @given(events(cluster_write, CLUSTER_WRITE))
    def one(text: str) -> None:
        event = _event(text, tally)
        if event is not None:
            tally.run(lambda: function_app.on_cluster_write(event))

    one()
    _report(world, ctx, tally, fuzz_figures)


def test_fuzz_policy_state_events(world: Any, ctx: HandlerContext, fuzz_figures: list[str]) -> None:
    tally = Tally("policy-state events")

    @FUZZ
    @given(events(policy_state, POLICY_STATE))
    def one(text: str) -> None:
        event = _event(text, tally)
        if event is not None:
            tally.run(lambda: function_app.on_policy_state(event))

    one()
    _report(world, ctx, tally, fuzz_figures)


def test_fuzz_queue_work_items(world: Any, ctx: HandlerContext, fuzz_figures: list[str]) -> None:
    tally = Tally("queue work items")

    @FUZZ
    @given(WORK_BODIES)
    def one(body: bytes) -> None:
        message = QueueMessage(id="fuzz", body=body, dequeue_count=1, pop_receipt="p")
        # "accepted": the worker took it as a valid work item, which the generator must never produce
        tally.run(
            lambda: function_app.reconcile_worker(message),
            label=lambda _result: "accepted",
            expected=(UserInputError,),
        )

    one()
    assert tally.outcomes["accepted"] == 0, "a fuzzed work item was valid: the generator is wrong"
    _report(world, ctx, tally, fuzz_figures)


def test_fuzz_poison_items(world: Any, ctx: HandlerContext, fuzz_figures: list[str]) -> None:
    tally = Tally("poison items")

    @FUZZ
    @given(POISON_BODIES)
    def one(body: bytes) -> None:
        message = QueueMessage(id="fuzz", body=body, dequeue_count=1, pop_receipt="p")
        tally.run(lambda: function_app.reconcile_poison(message), label=lambda _result: "journaled")

    one()
    _report(world, ctx, tally, fuzz_figures)


def _http(route: str, body: bytes, params: dict[str, str]) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST",
        url=f"http://localhost/api/{route}",
        params=params,
        body=body,
        headers={"x-functions-key": KEY},
    )


def test_fuzz_remediate_bodies(world: Any, ctx: HandlerContext, fuzz_figures: list[str]) -> None:
    tally = Tally("POST /api/remediate")

    @FUZZ
    @given(remediate_requests())
    def one(request: tuple[bytes, dict[str, str]]) -> None:
        body, params = request
        resp = tally.run(
            lambda: function_app.remediate(_http("remediate", body, params)),
            label=lambda r: f"http {r.status_code}",
        )
        if resp is not None:
            assert resp.status_code in (200, 400, 403, 413), resp.get_body()[:300]
            if resp.status_code == 200:
                assert json.loads(resp.get_body())["dryRun"] is True

    one()
    _report(world, ctx, tally, fuzz_figures)


def test_fuzz_explain_bodies(world: Any, ctx: HandlerContext, fuzz_figures: list[str]) -> None:
    tally = Tally("POST /api/explain")

    @FUZZ
    @given(EXPLAIN_BODIES)
    def one(body: bytes) -> None:
        resp = tally.run(
            lambda: function_app.explain(_http("explain", body, {})), label=lambda r: f"http {r.status_code}"
        )
        if resp is not None:
            assert resp.status_code in (200, 400, 403, 413), resp.get_body()[:300]

    one()
    _report(world, ctx, tally, fuzz_figures)


def test_the_templates_do_write_so_the_zero_above_can_fail(world: Any, ctx: HandlerContext) -> None:
    """Control: the unmutated event template, through the same path, writes (the fuzz figures measure it)."""
    event = EventGridEventInConverter.decode(
        meta.Datum(json.dumps(cluster_write()), "json"), trigger_metadata=None
    )
    function_app.on_cluster_write(event)
    assert arm_writes(world, path_contains="/extensions/azure-aks-backup")
    before = len(arm_writes(world))
    resp = function_app.remediate(_http("remediate", json.dumps({"clusterId": AKS_OK_2}).encode(), {}))
    assert resp.status_code in (200, 202) and len(arm_writes(world)) > before
