"""A small HTTPS client for the admin API, usable in-process (``emu.admin``) or against a subprocess
server."""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

logger = logging.getLogger(__name__)


class AdminError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"admin call failed: {status} {body}")
        self.status = status
        self.body = body


class AdminClient:
    """``AdminClient(base_url, ca_bundle)``; every method is one call to ``/_emulator/...``."""

    def __init__(self, base_url: str, ca_bundle: Path | str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 443
        self.context = ssl.create_default_context(cafile=str(ca_bundle))
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPSConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=60)
            self._local.conn = conn
        return conn

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        url = "/_emulator" + path + (f"?{urlencode(query)}" if query else "")
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, url, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        data = json.loads(raw) if raw else None
        if response.status >= 400:
            raise AdminError(response.status, data)
        return data

    # convenience wrappers ------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health")

    def reset(self, estate: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("POST", "/reset", {"estate": estate} if estate is not None else {})

    def state(self, *, collections: list[str] | None = None, limit: int | None = None) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if collections:
            query["collections"] = ",".join(collections)
        if limit is not None:
            query["limit"] = limit
        return self.request("GET", "/state", query=query or None)

    def calls(self, *, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"since": since}
        if limit:
            query["limit"] = limit
        return self.request("GET", "/calls", query=query)["calls"]

    def clear_calls(self) -> None:
        self.request("DELETE", "/calls")

    def counters(self) -> dict[str, Any]:
        return self.request("GET", "/counters")

    def config(self) -> dict[str, Any]:
        return self.request("GET", "/config")

    def set_config(self, **changes: Any) -> dict[str, Any]:
        """camelCase knobs, e.g. ``set_config(latencyMs=20, throttle={"enabled": True, "reads": {"burst":
        5}})``."""
        return self.request("PATCH", "/config", changes)

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """e.g. ``add_fault(method="PUT", path="*/extensions/*", status=500, code="InternalServerError",
        count=1)``."""
        return self.request("POST", "/faults", rule)

    def faults(self) -> list[dict[str, Any]]:
        return self.request("GET", "/faults")["rules"]

    def clear_faults(self) -> None:
        self.request("DELETE", "/faults")

    def put_resources(self, estate_fragment: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/resources", estate_fragment)

    def patch_cluster(self, cluster_id: str, **changes: Any) -> dict[str, Any]:
        """Set ``tags``, ``provisioningState``, ``powerState`` and/or ``readyInS`` on a cluster directly."""
        return self.request("PATCH", "/clusters", {"id": cluster_id, **changes})

    def set_provider(
        self,
        subscription_id: str,
        namespace: str,
        registration_state: str,
        *,
        register_completes: bool = True,
    ) -> dict[str, Any]:
        return self.request(
            "PUT",
            "/providers",
            {
                "subscriptionId": subscription_id,
                "namespace": namespace,
                "registrationState": registration_state,
                "registerCompletes": register_completes,
            },
        )

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self.request("POST", "/clock/advance", {"seconds": seconds})

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
