"""The HTTP API, property-tested against its own OpenAPI document (issue 14, item 6).

Schemathesis generates requests from ``remediator.core.openapi.openapi_document()`` for every operation of
``/api/*``: the document's examples, its coverage scenarios (boundaries, missing or wrong-typed fields and
parameters) and fuzzed cases, valid and invalid (generation mode ``all``: bodies, query strings, headers,
the ``code`` key parameter). They are sent to the REAL app: ``function_app.py`` under ``tools/local_runner``
(loaded through the Functions worker's own indexer), whose SDK clients talk HTTPS to the ARM emulator and
whose queue, journal and rate limit live in Azurite. The function key is sent in ``x-functions-key``;
Schemathesis' ``ignored_auth`` check re-sends accepted requests without a key and with a wrong one (both must
be refused); a generated ``code`` query parameter is a wrong key: 401, from the runner as from the host.

Asserted for every request: no 5xx; the status code is documented for the operation; the body and the
``Content-Type`` conform to the documented schema; a request the document calls valid is not refused as
malformed (``positive_data_acceptance``) and an invalid one is (``negative_data_rejection``); NO write: no
PUT/PATCH/DELETE and no write action (POST) in the emulator's ARM call log, and nothing enqueued (the work
queue and its poison queue stay empty and the queue worker never runs).

Why any write is a bug here (:data:`CONFIG`): the scope is the test subscription and the selection rules
pick nothing. ``include`` matches ``Backup=Yes`` but ``exclude`` matches any ``Backup`` tag (exclude wins), so
the cluster the include rule matches (the document's own example cluster, added to the estate so that the
examples reach a real cluster) is excluded, and every other cluster in scope is not included. So no request
may write to ARM or enqueue work, whatever it says (``dryRun`` false included); clusters of the other
subscription are out of scope (403). The ``{scope}`` rate limit is raised to its maximum so that generated
scope remediations reach the sweep instead of stopping at 429.

Bounded and deterministic: derandomized generation with a fixed budget per operation (:data:`MAX_EXAMPLES`),
no feedback from the answers, so the same test selection sends the same requests every run (measured: equal
figures in repeated runs). Hypothesis also mixes in constants it finds in the project modules the session has
imported, so ``make test`` and a run of this file alone send slightly different (each stable) sets. The
figures (requests per operation and status, writes found) are printed in the terminal summary.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from remediator.core.openapi import openapi_document
from tests.fixtures.azurite import Azurite
from tests.fixtures.emulator import STORAGE_ID, TEST_ESTATE, TEST_SUB, TEST_TENANT
from tests.fixtures.fuzz import FIGURES as FUZZ_FIGURES
from tests.fixtures.runner import E2E_SETTINGS, FunctionsApp, e2e_app_dir, start_runner

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 100
"""Fuzzed cases per operation, valid and invalid mixed (the examples and coverage phases add their own)."""

EXAMPLE_CLUSTER = (
    f"/subscriptions/{TEST_SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/"
    "aks-prod-1"
)
"""The ``ClusterId`` example of the document: a real cluster of the estate here, matched by ``include`` and
excluded by ``exclude``."""

CONFIG: dict[str, Any] = {
    "scope": {"subscriptions": [TEST_SUB]},
    "storage": {"eastus": ""},  # filled in with the estate's storage account id
    "selection": {
        "include": [{"tag": "Backup", "values": ["Yes"]}],
        "exclude": [{"tag": "Backup"}],
    },
}

WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})
READ_ACTIONS = ("/providers/microsoft.resourcegraph/resources", "/querystates", "/queryresults")
"""POSTs that only read: Resource Graph queries and Policy Insights state queries."""


STATUSES: Counter[str] = Counter()
"""Requests sent, by operation and status (printed in the terminal summary)."""
SECONDS: Counter[str] = Counter()
"""Seconds spent per operation (requests, checks and the write probes)."""


def _estate() -> dict[str, Any]:
    estate = copy.deepcopy(TEST_ESTATE)
    [sub] = [s for s in estate["subscriptions"] if s["subscriptionId"] == TEST_SUB]
    sub["resourceGroups"].append({"name": "rg-aks", "location": "eastus"})
    estate["clusters"].append({"id": EXAMPLE_CLUSTER, "location": "eastus", "tags": {"Backup": "Yes"}})
    return estate


@dataclass
class WriteWatch:
    """What the app wrote since the start: ARM write calls and work items."""

    app: FunctionsApp
    queues: list[QueueClient]
    seen: int = 0
    writes: list[str] = field(default_factory=list)
    """Every ARM write and work item found (the figures report them)."""

    def arm_writes(self) -> list[str]:
        calls = self.app.emulator.admin.calls(since=self.seen)
        if calls:
            self.seen = max(c["seq"] for c in calls)
        found = [
            f"{c['method']} {c['path']}"
            for c in calls
            if c["method"].upper() in WRITE_METHODS
            and not any(action in c["path"].lower() for action in READ_ACTIONS)
        ]
        self.writes += found
        return found

    def enqueued(self) -> list[str]:
        found = [f"{q.queue_name}: {m.content}" for q in self.queues for m in q.peek_messages(max_messages=5)]
        worked = self.app.runner.invocations("reconcile_worker") + self.app.runner.invocations(
            "reconcile_poison"
        )
        found += [f"queue worker ran: {w}" for w in worked]
        self.writes += found
        return found


@pytest.fixture(scope="module")
def api(
    emulator_server: Any, azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WriteWatch]:
    """The real app under the local runner, on the estate of :func:`_estate` and the config of :data:`CONFIG`
    (one runner for every operation; each request is checked on its own)."""
    emulator_server.reset(_estate())
    # Resource Graph's per-user quota (15 queries per 5 s, emulator/graph) would make the burst of generated
    # report requests wait out 429s (17 of them, ~45 s, measured); the app waits and answers 200, and
    # tests/integration/sweep/test_inventory.py covers that path. Off here; the next reset restores it.
    emulator_server.admin.request("PATCH", "/graph", {"quota": {"enabled": False}})
    config = {**CONFIG, "storage": {"eastus": STORAGE_ID}}
    queue = Azurite.unique_name("openapi")
    env = {
        **E2E_SETTINGS,
        "AzureWebJobsStorage": azurite.connection_string,
        "REMEDIATOR_WORK_QUEUE": queue,
        "REMEDIATOR_JOURNAL_TABLE": "journal" + uuid.uuid4().hex[:12],
        "REMEDIATOR_TENANT_ID": TEST_TENANT,
        "REMEDIATOR_CONFIG_JSON": json.dumps(config),
        "REMEDIATOR_ARM_ENDPOINT": emulator_server.base_url,
        "REMEDIATOR_CA_BUNDLE": str(emulator_server.ca_bundle),
        "REMEDIATOR_SCOPE_REMEDIATIONS_PER_HOUR": "3600",
    }
    runner = start_runner(env, app_dir=e2e_app_dir(tmp_path_factory.mktemp("openapi")))
    queues = [
        QueueClient.from_connection_string(azurite.connection_string, name)
        for name in (queue, f"{queue}-poison")
    ]
    for client in queues:
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
    try:
        watch = WriteWatch(FunctionsApp(runner=runner, emulator=emulator_server, env=env), queues)
        yield watch
        by_operation: dict[str, list[str]] = {}
        for label, count in sorted(STATUSES.items()):
            operation, status = label.rsplit(" -> ", 1)
            by_operation.setdefault(operation, []).append(f"{status}: {count}")
        for operation, counts in by_operation.items():
            total = sum(int(c.split(": ")[1]) for c in counts)
            FUZZ_FIGURES.append(
                f"OpenAPI property test, {operation}: {total} requests ({', '.join(counts)})"
                f" in {SECONDS[operation]:.1f} s"
            )
        FUZZ_FIGURES.append(f"OpenAPI property test: {len(watch.writes)} writes or work items")
    finally:
        emulator_server.admin.request("PATCH", "/graph", {"quota": {"enabled": True}})
        runner.stop()
        for client in queues:
            client.close()


schema = schemathesis.openapi.from_dict(
    openapi_document(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
            # Nor on Schemathesis' mining of constants from the imported modules.
            "analysis": {"constants": {"enabled": False}},
            # Generation must not depend on the answers (their correlation ids and timings differ per run):
            # no error feedback and no values harvested from responses, so every run sends the same requests.
            "phases": {
                "examples": {"enabled": True, "extra-data-sources": {"responses": False}},
                # A method a route does not list never reaches the app: the Functions host answers 404 (the
                # runner does the same, tests/integration/functions/test_local_runner.py), so Schemathesis'
                # unexpected-method probes (which expect 405) would test the host, not the app.
                "coverage": {
                    "enabled": True,
                    "unexpected-methods": [],
                    "extra-data-sources": {"responses": False},
                },
                "fuzzing": {
                    "enabled": True,
                    "error-feedback": {"enabled": False},
                    "extra-data-sources": {"responses": False},
                },
                "stateful": {"enabled": False},
            },
        }
    ),
)


def _dry_run_disagrees(case: schemathesis.Case) -> bool:
    """The body's ``dryRun`` and the query's differ: a documented 400 that JSON Schema cannot state (one
    value in two places)."""
    body, query = case.body, case.query or {}
    if not isinstance(body, dict) or not isinstance(body.get("dryRun"), bool) or "dryRun" not in query:
        return False
    in_query = str(query["dryRun"]).strip().lower() in ("true", "1", "yes")
    return in_query != body["dryRun"]


def schema_valid_data_accepted(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Schemathesis' ``positive_data_acceptance`` (a request the document calls valid is not refused as
    malformed), except for the one rule the document states in words only: body and query ``dryRun`` must
    agree."""
    if response.status_code == 400 and _dry_run_disagrees(case):
        return None
    return positive_data_acceptance(ctx, response, case)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_generated_request_conforms_and_writes_nothing(
    case: schemathesis.Case, api: WriteWatch
) -> None:
    started = time.monotonic()
    key = {"x-functions-key": api.app.runner.function_key}
    response = case.call(base_url=api.app.runner.url, headers=key)
    STATUSES[f"{case.operation.label} -> {response.status_code}"] += 1
    assert response.status_code < 500, response.text
    case.validate_response(
        response,
        headers=key,
        excluded_checks=[positive_data_acceptance],
        additional_checks=[schema_valid_data_accepted],
    )
    assert api.arm_writes() == [], f"{case.operation.label} wrote to ARM for {case.body!r}"
    assert api.enqueued() == [], f"{case.operation.label} enqueued work for {case.body!r}"
    SECONDS[case.operation.label] += time.monotonic() - started


GONE = EXAMPLE_CLUSTER.replace("aks-prod-1", "aks-gone")
"""In scope, well formed, and not in the estate."""


@pytest.mark.parametrize("route", ["remediate", "explain"])
def test_a_cluster_arm_does_not_know_is_a_404_naming_it(api: WriteWatch, route: str) -> None:
    """Was: 200 with outcome ``done`` "cluster not found (deleted); nothing to do" for a misspelt cluster
    id, while the document (and the CLI, exit 8) said 404. Now the document's 404 in the CLI's words, and
    nothing written."""
    from remediator.core.ids import parse_cluster_id
    from remediator.core.refusals import cluster_not_found_message

    body = {"clusterId": GONE} if route == "explain" else {"clusterId": GONE, "dryRun": False}
    response = requests.post(
        f"{api.app.runner.url}/api/{route}",
        json=body,
        headers={"x-functions-key": api.app.runner.function_key},
        timeout=60,
    )
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not-found"
    assert response.json()["message"] == cluster_not_found_message(parse_cluster_id(GONE))
    schema[f"/api/{route}"]["POST"].validate_response(response)  # the document's 404
    assert api.arm_writes() == [] and api.enqueued() == []
