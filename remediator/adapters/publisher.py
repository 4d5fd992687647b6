"""Outcome events to an Event Grid custom topic, when one is configured.

Other automation (ticketing, chat, dashboards) reacts to what the remediator did without polling the journal:
``AksBackupRemediator.Installed``, ``.InstallStarted``, ``.RemediationTaskCreated``, ``.Skipped``, ``.GaveUp``
(and ``.SweepCompleted`` from the sweep). Events use the Event Grid schema, subject = the cluster id, data =
the reconcile report. Publishing is best effort: a topic outage is logged and never fails a reconcile (the
journal is the record of truth).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError
from azure.eventgrid import EventGridEvent

from remediator.adapters.clients import AzureClients
from remediator.core.outcomes import EventType, ReconcileReport
from remediator.core.settings import Settings

logger = logging.getLogger(__name__)

DATA_VERSION = "1.0"


class OutcomePublisher:
    """Publishes report outcome events; a no-op when ``client`` is ``None`` (no topic configured).

    :param client: a ``TopicSender`` (``AzureClients.event_grid_publisher``: the public
        ``azure.eventgrid.EventGridPublisherClient`` with the shared transport knobs) or ``None``.
    """

    def __init__(self, client: Any | None) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings, clients: AzureClients) -> OutcomePublisher:
        if not settings.outcome_topic_endpoint:
            return cls(None)
        client = clients.event_grid_publisher(settings.outcome_topic_endpoint, key=settings.outcome_topic_key)
        return cls(client)

    def publish_event(self, *, event_type: str, subject: str, data: Mapping[str, Any]) -> bool:
        """Send one Event Grid event; ``False`` (logged) when disabled or the topic refused it."""
        if self.client is None:
            return False
        event = EventGridEvent(
            subject=subject,
            event_type=event_type,
            data=dict(data),
            data_version=DATA_VERSION,
            id=str(uuid.uuid4()),
            event_time=datetime.now(UTC),
        )
        try:
            self.client.send([event])
        except AzureError:
            logger.warning("publishing %s for %s failed", event_type, subject, exc_info=True)
            return False
        return True

    def record_sweep(self, summary: Mapping[str, Any]) -> None:
        """Publish ``AksBackupRemediator.SweepCompleted`` (the sweep's ``RecordsSweeps`` port)."""
        subject = "/sweeps/" + str(summary.get("correlationId", "") or uuid.uuid4())
        self.publish_event(event_type=EventType.SWEEP_COMPLETED.value, subject=subject, data=summary)

    def publish(self, report: ReconcileReport) -> bool:
        """Publish the event the report warrants (``ReconcileReport.event_type``); ``False`` if none was
        sent."""
        event_type = report.event_type()
        if event_type is None:
            return False
        return self.publish_event(
            event_type=event_type.value, subject=report.cluster_id, data=report.to_json()
        )
