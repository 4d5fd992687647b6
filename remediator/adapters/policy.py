"""Azure Policy remediation tasks at one cluster's resource scope (mode ``policy-task``).

Some operators want the built-in DeployIfNotExists policy (Policy 3/4) to stay the thing that deploys, and
only want it to act in seconds instead of waiting for its own evaluation cycle. For them the reconciler
creates a remediation task scoped to the one cluster, with a deterministic name per cluster and assignment
so that repeats find the existing task instead of piling up new ones. ``resourceDiscoveryMode`` is
``ReEvaluateCompliance``: a freshly tagged cluster may not be known as non-compliant yet, and re-evaluation
is allowed at resource scope.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from remediator.adapters.arm import NotFound, call_arm, throttle_feedback
from remediator.adapters.clients import AzureClients
from remediator.core.ids import ResourceId
from remediator.core.pacing import Pacer


@dataclass(frozen=True)
class RemediationInfo:
    """A remediation task as ARM reports it."""

    id: str
    name: str
    provisioning_state: str
    policy_assignment_id: str
    total_deployments: int | None = None
    """``deploymentStatus.totalDeployments`` (``None`` when not reported)."""


class PolicyGateway:
    """Create and read remediation tasks at resource scope.

    :param clients: the SDK client factory.
    :keyword pacer: the process's write pacer, told about every 429 the task PUT receives.
    """

    def __init__(self, clients: AzureClients, *, pacer: Pacer | None = None) -> None:
        self.clients = clients
        self.pacer = pacer

    def create_remediation_at_resource(
        self, *, resource_id: ResourceId, name: str, policy_assignment_id: str
    ) -> RemediationInfo:
        """PUT the remediation task (ARM answers synchronously; the task then runs on its own)."""
        client = self.clients.policy_insights(str(resource_id.subscription_id))
        body = {
            "properties": {
                "policyAssignmentId": policy_assignment_id,
                "resourceDiscoveryMode": "ReEvaluateCompliance",
            }
        }
        result = call_arm(
            "PUT remediation",
            lambda: client.remediations.create_or_update_at_resource(
                str(resource_id).lstrip("/"),
                name,
                io.BytesIO(json.dumps(body).encode("utf-8")),
                content_type="application/json",
                **throttle_feedback(self.pacer, str(resource_id.subscription_id)),
            ),
        )
        return _info(result, name)

    def get_remediation_at_resource(self, *, resource_id: ResourceId, name: str) -> RemediationInfo | None:
        """The remediation task, or ``None`` if it does not exist."""
        client = self.clients.policy_insights(str(resource_id.subscription_id))
        try:
            result = call_arm(
                "GET remediation",
                lambda: client.remediations.get_at_resource(str(resource_id).lstrip("/"), name),
            )
        except NotFound:
            return None
        return _info(result, name)


def _info(model: object, name: str) -> RemediationInfo:
    status = getattr(model, "deployment_status", None)
    total = getattr(status, "total_deployments", None)
    return RemediationInfo(
        id=str(getattr(model, "id", "") or ""),
        name=str(getattr(model, "name", "") or name),
        provisioning_state=str(getattr(model, "provisioning_state", "") or ""),
        policy_assignment_id=str(getattr(model, "policy_assignment_id", "") or ""),
        total_deployments=int(total) if isinstance(total, int) else None,
    )
