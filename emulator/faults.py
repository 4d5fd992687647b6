"""Fault-injection rules: make chosen calls fail the way Azure can (status + ARM code, delay, dropped
connection, or an extension whose provisioning ends Failed), by probability or for the next N matches; or
answer with fields of the real answer replaced (``rewrite``: a response naming another resource than the one
asked for, which clients must not trust blindly).

Rules are added at run time through ``POST /_emulator/faults``; see README.md for the JSON shape.
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

ACTIONS = ("respond", "drop", "delay", "fail-provisioning", "rewrite")


@dataclass
class FaultRule:
    """One rule. ``path`` is a glob (``*`` matches within and across segments), case-insensitive,
    or a regex when it starts with ``re:``. ``count`` = how many matches fire (None = unlimited);
    ``probability`` in [0, 1] applies to each match."""

    id: str
    method: str = "*"
    path: str = "*"
    action: str = "respond"
    status: int = 500
    code: str = "InternalServerError"
    message: str = "Injected fault."
    probability: float = 1.0
    count: int | None = None
    delay_ms: float = 0.0
    retry_after_s: float | None = None
    set: dict[str, Any] = field(default_factory=dict)
    """``rewrite``: top-level fields of the JSON answer replaced (the call itself runs normally)."""
    fired: int = 0
    _regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        if (self.action == "rewrite") != bool(self.set):
            raise ValueError("'set' (the fields to replace) goes with action 'rewrite', and only with it")
        pattern = self.path[3:] if self.path.startswith("re:") else fnmatch.translate(self.path)
        self._regex = re.compile(pattern, re.IGNORECASE)

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return self._regex.fullmatch(path) is not None or self._regex.match(path.rstrip("/")) is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "action": self.action,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "probability": self.probability,
            "count": self.count,
            "delayMs": self.delay_ms,
            "retryAfterS": self.retry_after_s,
            "set": dict(self.set),
            "fired": self.fired,
        }

    @classmethod
    def from_json(cls, rule_id: str, data: dict[str, Any]) -> FaultRule:
        known = {
            "method",
            "path",
            "action",
            "status",
            "code",
            "message",
            "probability",
            "count",
            "delayMs",
            "retryAfterS",
            "set",
        }
        unknown = set(data) - known - {"id"}
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        return cls(
            id=str(data.get("id") or rule_id),
            method=str(data.get("method", "*")),
            path=str(data.get("path", "*")),
            action=str(data.get("action", "respond")),
            status=int(data.get("status", 500)),
            code=str(data.get("code", "InternalServerError")),
            message=str(data.get("message", "Injected fault.")),
            probability=float(data.get("probability", 1.0)),
            count=None if data.get("count") is None else int(data["count"]),
            delay_ms=float(data.get("delayMs", 0.0)),
            retry_after_s=None if data.get("retryAfterS") is None else float(data["retryAfterS"]),
            set=dict(data.get("set") or {}),
        )


class FaultRules:
    """Ordered rules; the first matching rule that fires wins."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._random = random.Random(seed)

    def add(self, data: dict[str, Any]) -> FaultRule:
        with self._lock:
            rule = FaultRule.from_json(f"fault-{next(self._ids)}", data)
            self._rules.append(rule)
            return rule

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def pick(self, method: str, path: str, *, actions: tuple[str, ...] = ACTIONS) -> FaultRule | None:
        """The rule that fires for this call (consuming one of its ``count``), or None."""
        if not self._rules:
            return None
        with self._lock:
            for rule in self._rules:
                if rule.action not in actions or not rule.matches(method, path):
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule
        return None
