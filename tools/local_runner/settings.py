"""Settings and host.json for the local runner, resolved the way the Functions host resolves them.

``local.settings.json`` ``Values`` become environment variables (variables already set in the environment
win, so a test or the demo can override one), and binding properties written as ``%NAME%`` are replaced by
the setting's value anywhere in the string, as the host's name resolver does.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_SETTING_REF = re.compile(r"%([^%]+)%")


def load_local_settings(path: Path) -> dict[str, str]:
    """The ``Values`` of a local.settings.json file, as strings."""
    data = json.loads(path.read_text(encoding="utf-8"))
    values = data.get("Values", {})
    if not isinstance(values, dict):
        raise ValueError(f"{path}: Values must be an object")
    return {str(k): str(v) for k, v in values.items()}


def apply_settings(values: Mapping[str, str], environ: MutableMapping[str, str]) -> None:
    """Put ``values`` into ``environ`` without overriding variables that are already set."""
    for name, value in values.items():
        environ.setdefault(name, value)


def resolve_setting_refs(text: str, environ: Mapping[str, str]) -> str:
    """Replace each ``%NAME%`` in ``text`` by the setting's value; a missing one is an error."""

    def _sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise KeyError(f"binding refers to app setting %{name}% which is not set")
        return environ[name]

    return _SETTING_REF.sub(_sub, text)


def _timespan(value: Any, default: timedelta) -> timedelta:
    if value is None:
        return default
    hours, minutes, seconds = (float(part) for part in str(value).split(":"))
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


@dataclass(frozen=True)
class HostConfig:
    """The host.json settings the runner honours (``extensions.queues``, ``extensions.http.routePrefix``)."""

    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    batch_size: int = 16
    new_batch_threshold: int = 0
    """0: the host's default, ``batchSize / 2``."""
    route_prefix: str = "api"

    @classmethod
    def from_host_json(cls, path: Path) -> HostConfig:
        if not path.is_file():
            return cls()
        extensions = json.loads(path.read_text(encoding="utf-8")).get("extensions", {})
        queues = extensions.get("queues", {})
        return cls(
            route_prefix=str(extensions.get("http", {}).get("routePrefix", "api")).strip("/"),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            visibility_timeout=_timespan(queues.get("visibilityTimeout"), timedelta(0)),
            max_polling_interval=_timespan(queues.get("maxPollingInterval"), timedelta(minutes=1)),
            batch_size=int(queues.get("batchSize", 16)),
            new_batch_threshold=int(queues.get("newBatchThreshold", 0)),
        )
