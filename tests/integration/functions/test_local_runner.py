"""The local runner dispatches like the Functions host (tooling behind the e2e tests and the demo).

A small throwaway app records every invocation in a file, so these tests see exactly what the runner passed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from tests.fixtures.azurite import Azurite
from tests.fixtures.runner import Runner, start_runner

pytestmark = pytest.mark.integration

APP = """
import json, os
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
LOG = os.environ["PROBE_LOG"]

def record(**row):
    with open(LOG, "a") as f:
        f.write(json.dumps(row) + "\\n")

@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    data = event.get_json()
    record(fn="on_event", id=event.id, type=event.event_type, subject=event.subject, data=data)
    if data.get("fail"):
        raise RuntimeError("asked to fail")

@app.route(route="echo/{name}", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"name": req.route_params["name"], "body": req.get_json(),
                                         "dry": req.params.get("dryRun")}), status_code=201,
                             mimetype="application/json")

@app.route(route="open", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def open_route(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hi")

@app.timer_trigger(arg_name="timer", schedule="%PROBE_SCHEDULE%")
def tick(timer: func.TimerRequest) -> None:
    record(fn="tick", past_due=timer.past_due)

@app.queue_trigger(arg_name="msg", queue_name="%PROBE_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode()
    record(fn="work", body=body, dequeue_count=msg.dequeue_count)
    if body == "fail":
        raise RuntimeError("poison me")

@app.queue_trigger(arg_name="msg", queue_name="%PROBE_QUEUE%-poison", connection="AzureWebJobsStorage")
def poisoned(msg: func.QueueMessage) -> None:
    record(fn="poisoned", body=msg.get_body().decode())
"""

HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "queues": {"maxDequeueCount": 5, "visibilityTimeout": "00:00:00", "maxPollingInterval": "00:00:01"}
    },
}


def _rows(log: Path, fn: str) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["fn"] == fn]


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory, azurite: Azurite) -> Any:
    app_dir = tmp_path_factory.mktemp("probe_app")
    (app_dir / "function_app.py").write_text(APP)
    (app_dir / "host.json").write_text(json.dumps(HOST_JSON))
    log = app_dir / "invocations.jsonl"
    queue = Azurite.unique_name("probe")
    env = {
        "PROBE_LOG": str(log),
        "PROBE_SCHEDULE": "0 */5 * * * *",
        "PROBE_QUEUE": queue,
        "AzureWebJobsStorage": azurite.connection_string,
    }
    runner = start_runner(env, app_dir=app_dir, max_poll_seconds=0.1)
    yield runner, log, queue, azurite
    runner.stop()


def _event(**data: Any) -> dict[str, Any]:
    return {
        "id": "e-1",
        "topic": "/subscriptions/s",
        "subject": "/subscriptions/s/resourceGroups/rg",
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-11-22T00:00:00Z",
        "dataVersion": "2",
        "data": data,
    }


def test_functions_are_indexed_from_the_app(probe: Any) -> None:
    runner: Runner = probe[0]
    assert runner.functions == {
        "echo": "httpTrigger",
        "on_event": "eventGridTrigger",
        "open_route": "httpTrigger",
        "poisoned": "queueTrigger",
        "tick": "timerTrigger",
        "work": "queueTrigger",
    }


def test_event_grid_notification_runs_the_function(probe: Any) -> None:
    runner, log, _, _ = probe
    resp = runner.post_events("on_event", [_event(n=1), _event(n=2)])
    assert resp.status == 202
    rows = [r for r in _rows(log, "on_event") if r["data"].get("n") in (1, 2)]
    assert [r["data"]["n"] for r in rows] == [1, 2]
    assert rows[0]["type"] == "Microsoft.Resources.ResourceWriteSuccess"


def test_event_grid_header_rules(probe: Any) -> None:
    runner, log, _, _ = probe
    before = len(_rows(log, "on_event"))
    assert runner.post_events("on_event", [_event(n=3)], event_type=None).status == 400
    assert runner.post_events("on_event", [_event(n=3)], event_type="Bogus").status == 400
    assert runner.post_events("nope", [_event(n=3)]).status == 404
    assert len(_rows(log, "on_event")) == before
    validation = {
        "id": "v",
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "subject": "",
        "data": {"validationCode": "abc-123", "validationUrl": "https://x"},
        "dataVersion": "1",
        "eventTime": "2026-11-22T00:00:00Z",
    }
    resp = runner.post_events("on_event", [validation], event_type="SubscriptionValidation")
    assert resp.status == 200 and resp.json() == {"validationResponse": "abc-123"}
    assert len(_rows(log, "on_event")) == before


def test_a_delivery_deeper_than_the_hosts_reader_is_refused(probe: Any) -> None:
    """Like the host (Newtonsoft JToken.Parse, MaxDepth 64): deeper deliveries never reach the function."""
    runner, log, _, _ = probe
    before = len(_rows(log, "on_event"))
    nested: Any = 1
    for _ in range(70):
        nested = [nested]
    resp = runner.post_events("on_event", [_event(n=nested)])
    assert resp.status == 400 and "MaxDepth of 64" in resp.json()["error"]
    assert runner.post_events("on_event", [_event(n=[[[[1]]]])]).status == 202  # shallow: delivered
    assert len(_rows(log, "on_event")) == before + 1


def test_a_failing_event_function_answers_500(probe: Any) -> None:
    runner = probe[0]
    assert runner.post_events("on_event", [_event(fail=True)]).status == 500


def test_http_routes_need_the_function_key(probe: Any) -> None:
    runner = probe[0]
    assert runner.call("POST", "echo/x", body={"a": 1}, key=None).status == 401
    assert runner.call("POST", "echo/x", body={"a": 1}, key="wrong").status == 401
    ok = runner.request("POST", f"/api/echo/abc?code={runner.function_key}&dryRun=true", body={"a": 1})
    assert ok.status == 201 and ok.json() == {"name": "abc", "body": {"a": 1}, "dry": "true"}
    assert runner.call("POST", "echo/x", body={"a": 1}).status == 201
    assert runner.call("GET", "echo/x").status == 404  # method not allowed for the route
    assert runner.call("GET", "open", key=None).status == 200
    # a non-ASCII key is a wrong key (401), not a crash (hmac.compare_digest refuses non-ASCII str: was 500)
    assert runner.request("POST", "/api/echo/x?code=%C2%80", body={"a": 1}).status == 401


def test_timer_runs_through_the_admin_api_with_the_master_key(probe: Any) -> None:
    runner, log, _, _ = probe
    denied = runner.request("POST", "/admin/functions/tick", body={}, headers={"x-functions-key": "x"})
    assert denied.status == 401
    assert runner.run_timer("tick").status == 202
    assert _rows(log, "tick") == [{"fn": "tick", "past_due": False}]


def test_queue_messages_are_base64_and_poison_after_five_dequeues(probe: Any) -> None:
    runner, log, queue, azurite = probe
    client = QueueClient.from_connection_string(azurite.connection_string, queue)
    client.send_message(base64.b64encode(b"hello").decode())
    client.send_message(base64.b64encode(b"fail").decode())
    runner.wait_for(lambda: _rows(log, "poisoned"), timeout_s=30, what="the poison function")
    work = _rows(log, "work")
    assert [r["dequeue_count"] for r in work if r["body"] == "hello"] == [1]
    assert [r["dequeue_count"] for r in work if r["body"] == "fail"] == [1, 2, 3, 4, 5]
    assert _rows(log, "poisoned") == [{"fn": "poisoned", "body": "fail"}]
    assert client.get_queue_properties().approximate_message_count == 0


def test_settings_resolution_like_the_host(tmp_path: Path) -> None:
    from datetime import timedelta

    from tools.local_runner.settings import (
        HostConfig,
        apply_settings,
        load_local_settings,
        resolve_setting_refs,
    )

    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {"Q": "work", "N": 5, "KEEP": "file"}}))
    environ = {"KEEP": "env"}
    apply_settings(load_local_settings(settings), environ)
    assert environ == {"Q": "work", "N": "5", "KEEP": "env"}  # the environment wins, values become strings
    assert resolve_setting_refs("%Q%-poison", environ) == "work-poison"
    with pytest.raises(KeyError, match="MISSING"):
        resolve_setting_refs("%MISSING%", environ)
    shipped = HostConfig.from_host_json(Path(__file__).resolve().parents[3] / "host.json")
    assert shipped.max_dequeue_count == 5 and shipped.visibility_timeout == timedelta(seconds=30)
    assert shipped.route_prefix == "api"
    assert HostConfig.from_host_json(tmp_path / "absent.json") == HostConfig()
