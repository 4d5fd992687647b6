"""The runtime wiring the Functions handlers use: settings -> real adapters -> handlers, against the emulator
and Azurite (no fakes)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from azure.storage.queue import QueueClient

from remediator.core.errors import UserInputError
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import OutcomeKind
from remediator.core.settings import Settings
from remediator.core.work_item import WorkItem
from remediator.service.runtime import Runtime, build_handler_context, load_config_from_settings
from remediator.service.triggers import queue as queue_triggers
from tests.integration.reconciler.conftest import CONFIG, arm_writes, cluster_id

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")


def test_handler_context_runs_a_work_item_and_requeues_the_wait(world, azurite):
    ctx = build_handler_context(world.env)
    try:
        body = json.dumps(
            WorkItem(cluster_id=parse_cluster_id(AKS_OK), source="event", correlation_id="c-7").to_json()
        )
        result = queue_triggers.handle_work_item(body, dequeue_count=1, ctx=ctx)
        assert result.status == "requeued" and result.next_attempt == 1
        assert result.report.outcome.kind is OutcomeKind.WAIT
        assert len(arm_writes(world, path_contains="/extensions/")) == 1
        queue = QueueClient.from_connection_string(
            azurite.connection_string, world.env["REMEDIATOR_WORK_QUEUE"]
        )
        # hidden for the wait's delay: the chain's next item and its guard copy (core.chains)
        assert queue.get_queue_properties().approximate_message_count == 2
        runtime = ctx.extras["runtime"]
        assert runtime.journal.latest(AKS_OK).correlation_id == "c-7"  # the work item's
        names = [c.name for c in ctx.health_checks]
        assert {"config", "journal", "work-queue"} <= set(names)
        for check in ctx.health_checks:
            check.probe()  # every dependency answers
        # durable policy-state ordering lives in the same journal table
        newer, older = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
        assert ctx.policy_order.advance(AKS_OK, "/a", newer) is True
        assert ctx.policy_order.advance(AKS_OK, "/a", older) is False
    finally:
        ctx.extras["runtime"].close()


def test_enqueued_items_are_what_the_functions_host_decodes(world, azurite):
    runtime = Runtime.from_env(world.env)
    runtime.work_queue.enqueue_work(
        parse_cluster_id(AKS_OK), attempt=2, source="sweep", reason="r", correlation_id="c", delay_s=0
    )
    raw = QueueClient.from_connection_string(azurite.connection_string, world.env["REMEDIATOR_WORK_QUEUE"])
    (message,) = list(raw.receive_messages())
    parsed = WorkItem.from_message(base64.b64decode(message.content))
    assert (parsed.cluster_id, parsed.attempt, parsed.source) == (parse_cluster_id(AKS_OK), 2, "sweep")


def test_config_comes_from_the_file_or_inline_json(world):
    inline = Settings.from_env(
        {**{k: v for k, v in world.env.items() if k != "REMEDIATOR_CONFIG_FILE"},
         "REMEDIATOR_CONFIG_JSON": json.dumps(CONFIG)}
    )  # fmt: skip
    assert load_config_from_settings(inline).remediation.max_reinstalls == 2
    broken = Settings.from_env(
        {**{k: v for k, v in world.env.items() if k != "REMEDIATOR_CONFIG_FILE"},
         "REMEDIATOR_CONFIG_JSON": json.dumps({**CONFIG, "remediation": {"maxReinstalls": 99}})}
    )  # fmt: skip
    with pytest.raises(UserInputError) as err:
        load_config_from_settings(broken)
    assert err.value.field == "remediation.maxReinstalls" and err.value.source == "REMEDIATOR_CONFIG_JSON"


def test_parts_are_built_lazily_and_once(world):
    runtime = Runtime.from_env(world.env)
    assert runtime._parts == {}
    assert runtime.reconciler is runtime.reconciler
    assert set(runtime._parts) >= {"config", "clients", "gateway", "journal", "reconciler"}
    assert "work_queue" not in runtime._parts
    runtime.close()


def test_without_storage_the_reconciler_still_works_but_journals_nothing(world):
    env = {k: v for k, v in world.env.items() if k != "AzureWebJobsStorage"}
    runtime = Runtime.from_env(env)
    try:
        assert runtime.journal is None
        report = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    finally:
        runtime.close()
    assert report.outcome.kind is OutcomeKind.WAIT
    assert [a.kind.value for a in report.actions] == ["create-container", "create-extension"]
    assert len(arm_writes(world, path_contains="/extensions/")) == 1
