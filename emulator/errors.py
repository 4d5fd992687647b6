"""ARM's error envelope in one place, so every handler fails the way Azure Resource Manager does.

Handlers raise :class:`ArmError`; the server turns it into ``{"error": {"code", "message"}}`` with the status.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


class ArmError(Exception):
    """An ARM error response: HTTP status, ARM error code, message, optional extra headers and details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.target = target
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}


class RpError(ArmError):
    """An error a resource provider answers in its own top-level shape ``{"code", "message", "subcode"}``
    instead of ARM's envelope — AKS does for its sub-resources (recorded: a trustedAccessRoleBinding GET 404,
    azure-cli-extensions aks-preview cassette 2022)."""

    def __init__(self, status: int, code: str, message: str, *, subcode: str | None = None) -> None:
        super().__init__(status, code, message)
        self.subcode = subcode

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.subcode:
            out["subcode"] = self.subcode
        return out


def not_found(resource_type: str, name: str, resource_group: str | None = None) -> ArmError:
    """ARM's 404 for a tracked resource (code ResourceNotFound, message in ARM's wording)."""
    where = f" under resource group '{resource_group}'" if resource_group else ""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}'{where} was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def resource_group_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def subscription_not_found(subscription_id: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


def bad_request(code: str, message: str, *, target: str | None = None) -> ArmError:
    return ArmError(400, code, message, target=target)


def invalid_body(message: str) -> ArmError:
    """400 for a body that is not the JSON object the operation needs (ARM code InvalidRequestContent)."""
    return ArmError(400, "InvalidRequestContent", message)


def retry_after(seconds: float) -> dict[str, str]:
    """Headers asking the client to wait ``seconds``.

    Whole seconds → ``Retry-After: N`` (what ARM sends; generated SDKs parse it as an int). Fractions are a
    test-speed knob → ``retry-after-ms`` only: azure-core honours it, while a fractional ``Retry-After`` would
    crash azure-mgmt-containerservice's int parsing and ``Retry-After: 0`` makes azure-core fall back to its
    30 s polling_interval.
    """
    if float(seconds).is_integer():
        return {"Retry-After": str(int(seconds))}
    return {"retry-after-ms": str(max(1, round(seconds * 1000)))}
