"""The outcome publisher is the PUBLIC azure-eventgrid client, and it still gets the shared transport knobs.

azure-eventgrid 4.22.1's ``EventGridPublisherClient`` drops its constructor keywords for Basic topics, so
``AzureClients.event_grid_publisher`` passes the CA bundle, timeouts and retry knobs on every ``send``.
Against the HTTPS emulator's custom topic (its own CA) this shows both reach the pipeline: without the CA
bundle no request would be answered at all; without the retry knob azure-core's default (10 retries) would
outlast the injected faults and the send would succeed.
"""

from __future__ import annotations

from typing import Any

import pytest

from remediator.adapters.clients import AzureClients, ClientOptions, TopicSender
from remediator.adapters.publisher import OutcomePublisher

pytestmark = pytest.mark.integration

FEW_RETRIES = ClientOptions(retry_total=1, retry_backoff_factor=0.01, retry_backoff_max=0.05, read_timeout=10)


def test_the_public_publisher_client_gets_the_ca_bundle_and_the_retry_knobs(emulator: Any) -> None:
    clients = AzureClients(
        emulator.credential(),
        arm_endpoint=emulator.base_url,
        ca_bundle=str(emulator.ca_bundle),
        options=FEW_RETRIES,
    )
    sender = clients.event_grid_publisher(emulator.base_url + "/api/events", key="emulator-topic-key")
    assert isinstance(sender, TopicSender)
    assert type(sender.client).__module__.split(".")[:2] == ["azure", "eventgrid"]
    assert "_legacy" not in type(sender.client).__module__  # the public class, not the private one
    publisher = OutcomePublisher(sender)
    emulator.admin.request("POST", "/eventgrid/reset")
    emulator.admin.add_fault(method="POST", path="/api/events", status=503, code="ServerBusy", count=5)
    try:
        assert (
            publisher.publish_event(event_type="AksBackupRemediator.Skipped", subject="/x", data={}) is False
        )
        [rule] = emulator.admin.faults()
        assert (
            rule["fired"] == 2
        )  # the first attempt and retry_total=1 retry, over TLS with the emulator's CA
    finally:
        emulator.admin.clear_faults()
    assert publisher.publish_event(event_type="AksBackupRemediator.Installed", subject="/y", data={"a": 1})
    received = emulator.admin.request("GET", "/eventgrid/topic/events")["value"]
    assert [(r["schema"], r["event"]["eventType"]) for r in received] == [
        ("EventGridSchema", "AksBackupRemediator.Installed")
    ]
    clients.close()
