"""The emulator's run-time knobs in one object, below everything that reads them (routing, handlers, server).

Every knob is adjustable through ``PATCH /_emulator/config`` (camelCase names, see
:meth:`EmulatorConfig.to_json`).
``emulator.server`` re-exports :class:`EmulatorConfig` for code written before it moved here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from emulator.quotas import QuotaSpec, default_quotas
from emulator.throttle import ThrottleSettings

logger = logging.getLogger(__name__)


@dataclass
class EmulatorConfig:
    """Run-time knobs (all adjustable through ``PATCH /_emulator/config``). Times in seconds unless noted."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    quotas: dict[str, QuotaSpec] = field(default_factory=default_quotas)
    """Resource-provider quotas (emulator.quotas): ``policyInsights``, ``dataProtection``."""
    lro_retry_after_s: float | None = None
    """Wait asked of LRO pollers. ``None`` (default): no header, as AKS and Kubernetes Configuration answer
    their PUTs and status polls (recorded Azure traffic), so azure-core polls at its own interval. Whole
    seconds → ``Retry-After``; fractions → ``retry-after-ms`` (a test-speed knob, see
    emulator.errors.retry_after); 0 makes azure-core fall back to its 30 s polling_interval."""
    cluster_create_s: float = 2.0
    cluster_update_s: float = 1.0
    cluster_delete_s: float = 2.0
    extension_create_s: float = 1.0
    extension_delete_s: float = 1.0
    provider_register_s: float = 1.0
    require_api_version: bool = True
    check_api_versions: bool = True
    """Reject api-versions a modelled provider never published (emulator.api_versions)."""
    list_page_size: int = 1000
    """Items per page of ARM list responses (then ``nextLink`` with ``$skipToken``); our assumption."""
    call_log_max: int = 200_000
    seed: int = 0

    _TIMES = (
        "lro_retry_after_s",
        "cluster_create_s",
        "cluster_update_s",
        "cluster_delete_s",
        "extension_create_s",
        "extension_delete_s",
        "provider_register_s",
    )
    _JSON_NAMES = {
        "latencyMs": "latency_ms",
        "jitterMs": "jitter_ms",
        "lroRetryAfterS": "lro_retry_after_s",
        "clusterCreateS": "cluster_create_s",
        "clusterUpdateS": "cluster_update_s",
        "clusterDeleteS": "cluster_delete_s",
        "extensionCreateS": "extension_create_s",
        "extensionDeleteS": "extension_delete_s",
        "providerRegisterS": "provider_register_s",
        "requireApiVersion": "require_api_version",
        "checkApiVersions": "check_api_versions",
        "listPageSize": "list_page_size",
    }

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, attr) for name, attr in self._JSON_NAMES.items()}
        out["throttle"] = self.throttle.to_json()
        out["quotas"] = {name: spec.to_json() for name, spec in self.quotas.items()}
        return out

    def update(self, data: dict[str, Any]) -> None:
        """Apply a partial JSON update (camelCase names as in to_json); unknown names raise ValueError."""
        unknown = set(data) - set(self._JSON_NAMES) - {"throttle", "quotas"}
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        for name, value in data.items():
            if name == "throttle":
                if not isinstance(value, dict):
                    raise ValueError("throttle must be an object")
                self.throttle.update(value)
                continue
            if name == "quotas":
                if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                    raise ValueError("quotas must be an object of objects")
                missing = set(value) - set(self.quotas)
                if missing:
                    raise ValueError(f"unknown quotas: {sorted(missing)}")
                for quota, settings in value.items():
                    self.quotas[quota].update(settings)
                continue
            attr = self._JSON_NAMES[name]
            if attr in ("require_api_version", "check_api_versions"):
                setattr(self, attr, bool(value))
            elif attr == "lro_retry_after_s" and value is None:
                self.lro_retry_after_s = None
            elif attr == "list_page_size":
                if int(value) < 1:
                    raise ValueError("listPageSize must be >= 1")
                setattr(self, attr, int(value))
            else:
                number = float(value)
                if number < 0:
                    raise ValueError(f"{name} must be >= 0")
                setattr(self, attr, number)
