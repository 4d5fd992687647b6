"""The emulator's whole world in one thread-safe object: subscriptions, resource groups and ARM resources.

Every handler (core and plug-ins) reads and writes through :class:`EmulatorState`:
- ``state.lock`` (an RLock) guards every collection; hold it for read-modify-write.
- Resource bodies are stored as the ARM JSON the API returns. Treat bodies you read as read-only and write
  with ``put`` / ``delete`` (copy-on-write), so snapshots and observers see consistent objects.
- Lifecycles are time-based through an injectable clock: ``schedule(due, fn)`` queues a transition that
  ``advance()`` applies once due. The server calls ``advance()`` before every request and from a ticker,
  so results depend only on the clock.
- Observers: ``state.subscribe(cb)``; ``cb(operation, resource_id, resource, principal)`` runs after each
  write, outside the lock, in the thread that made the change. Operations: ``write`` (PUT/PATCH accepted),
  ``delete`` (DELETE accepted), ``provisioned`` (a lifecycle reached Succeeded/Failed/Canceled),
  ``deleted`` (the resource is gone), ``action`` (POSTs such as provider register).
- ``on_load(cb)`` runs ``cb(state, estate_dict)`` after each estate load and reset; plug-ins read their own
  estate keys (unknown top-level keys are kept in ``state.estate``) and rebuild ``plugin_state`` there.
- Keys: every collection is keyed by :func:`emulator.model.ids.key_of` (Azure's OrdinalIgnoreCase rule, not
  ``str.lower``), so ids that Azure keeps apart stay apart here.

The state knows nothing about estate formats: whoever builds it passes ``estate_loader`` (the server passes
:func:`emulator.estate.apply_estate`), which keeps this module below the estate loader and the handlers.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from emulator.clock import Clock, SystemClock
from emulator.model.ids import KUBERNETES_CONFIGURATION, fold, key_of

__all__ = [
    "COLLECTIONS",
    "DEFAULT_PROVIDERS",
    "KUBERNETES_CONFIGURATION",
    "EmulatorState",
    "EstateLoader",
    "key_of",
    "provider_registration",
]

logger = logging.getLogger(__name__)

Observer = Callable[[str, str, "dict[str, Any] | None", "str | None"], None]
EstateLoader = Callable[["EmulatorState", "dict[str, Any]"], None]
"""Fills a cleared state from an estate dict (lock held by the caller)."""

COLLECTIONS = (
    "resource_groups",
    "clusters",
    "extensions",
    "storage_accounts",
    "containers",
    "role_assignments",
    "resources",
)
"""Resource collections keyed by ``key_of(resource id)``. ``resources`` holds any other ARM resource."""

DEFAULT_PROVIDERS = (
    "Microsoft.ContainerService",
    "Microsoft.KubernetesConfiguration",
    "Microsoft.Storage",
    "Microsoft.Authorization",
    "Microsoft.PolicyInsights",
    "Microsoft.ResourceGraph",
    "Microsoft.DataProtection",
    "Microsoft.EventGrid",
)


class EmulatorState:
    """Subscriptions, resource groups and resources; thread-safe, snapshot-able, resettable."""

    def __init__(self, *, clock: Clock | None = None, estate_loader: EstateLoader | None = None) -> None:
        self.lock = threading.RLock()
        self.clock: Clock = clock or SystemClock()
        self.estate_loader = estate_loader
        """What :meth:`load_estate` runs (``emulator.estate.apply_estate`` for the server)."""
        self.subscriptions: dict[str, dict[str, Any]] = {}
        """Folded subscription id → {subscriptionId, tenantId, displayName, state, providers}.
        ``providers`` maps the folded namespace → {namespace, registrationState, registerCompletes}."""
        self.resource_groups: dict[str, dict[str, Any]] = {}
        self.clusters: dict[str, dict[str, Any]] = {}
        self.extensions: dict[str, dict[str, Any]] = {}
        self.storage_accounts: dict[str, dict[str, Any]] = {}
        self.containers: dict[str, dict[str, Any]] = {}
        self.role_assignments: dict[str, dict[str, Any]] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        """Async operation id → {id, resourceId, kind ('create'|'update'|'delete'), startTime, ...}."""
        self.meta: dict[str, dict[str, Any]] = {}
        """``key_of(resource id)`` → emulator bookkeeping (creator principal, lifecycle token)."""
        self.estate: dict[str, Any] = {}
        """The raw estate last loaded (plug-ins read their own top-level keys from here)."""
        self.plugin_state: dict[str, Any] = {}
        """Per-plug-in state objects; cleared on reset (rebuild them in an ``on_load`` hook)."""
        self._observers: list[Observer] = []
        self._load_hooks: list[Callable[[EmulatorState, dict[str, Any]], None]] = []
        self._pending: list[tuple[float, int, int, str, Callable[[], list[tuple[str, str, Any, Any]]]]] = []
        self._seq = itertools.count()
        self._tokens: dict[str, int] = {}
        self._local = threading.local()

    # ----- collections -------------------------------------------------------------------------
    def collection(self, name: str) -> dict[str, dict[str, Any]]:
        if name not in COLLECTIONS:
            raise KeyError(name)
        coll: dict[str, dict[str, Any]] = getattr(self, name)
        return coll

    def get(self, collection: str, resource_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.collection(collection).get(key_of(resource_id))

    def put(
        self,
        collection: str,
        resource_id: str,
        body: dict[str, Any],
        *,
        principal: str | None = None,
        operation: str = "write",
        notify: bool = True,
    ) -> dict[str, Any]:
        """Store ``body`` (replacing any previous object) and queue an observer notification."""
        key = key_of(resource_id)
        with self.lock:
            self.collection(collection)[key] = body
            meta = self.meta.setdefault(key, {})
            meta.setdefault("createdBy", principal)
            meta["lastWriter"] = principal
        if notify:
            self.notify(operation, body.get("id", resource_id), body, principal)
        return body

    def remove(
        self, collection: str, resource_id: str, *, principal: str | None = None, notify: bool = True
    ) -> dict[str, Any] | None:
        key = key_of(resource_id)
        with self.lock:
            body = self.collection(collection).pop(key, None)
            self.meta.pop(key, None)
            self._tokens.pop(key, None)
        if body is not None and notify:
            self.notify("deleted", body.get("id", resource_id), body, principal)
        return body

    def children(self, collection: str, parent_id: str) -> Iterator[dict[str, Any]]:
        """Resources in ``collection`` whose id starts with ``parent_id/`` (case-insensitive)."""
        prefix = key_of(parent_id) + "/"
        with self.lock:
            items = [body for key, body in self.collection(collection).items() if key.startswith(prefix)]
        return iter(items)

    # ----- subscriptions and providers ---------------------------------------------------------
    def subscription(self, subscription_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.subscriptions.get(fold(subscription_id))

    def add_subscription(
        self,
        subscription_id: str,
        *,
        tenant_id: str,
        display_name: str | None = None,
        providers: dict[str, str] | None = None,
        state: str = "Enabled",
    ) -> dict[str, Any]:
        """Add (or replace) a subscription; providers default to every known namespace Registered."""
        registrations: dict[str, dict[str, Any]] = {}
        for ns in DEFAULT_PROVIDERS:
            registrations[fold(ns)] = {
                "namespace": ns,
                "registrationState": "Registered",
                "completes": True,
            }
        for ns, setting in (providers or {}).items():
            registrations[fold(ns)] = provider_registration(ns, setting)
        sub = {
            "subscriptionId": subscription_id,
            "tenantId": tenant_id,
            "displayName": display_name or f"sub-{subscription_id[:8]}",
            "state": state,
            "providers": registrations,
        }
        with self.lock:
            self.subscriptions[fold(subscription_id)] = sub
        return sub

    def provider_state(self, subscription_id: str, namespace: str) -> str:
        """registrationState of ``namespace`` in the subscription ('NotRegistered' when unknown)."""
        with self.lock:
            sub = self.subscriptions.get(fold(subscription_id))
            if sub is None:
                return "NotRegistered"
            reg = sub["providers"].get(fold(namespace))
            return reg["registrationState"] if reg else "NotRegistered"

    # ----- lifecycle -----------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    def new_lifecycle_token(self, resource_id: str) -> int:
        """Invalidate earlier scheduled transitions of this resource; returns the token new ones must
        carry."""
        key = key_of(resource_id)
        with self.lock:
            token = self._tokens.get(key, 0) + 1
            self._tokens[key] = token
            return token

    def schedule(
        self,
        due: float,
        resource_id: str,
        token: int,
        transition: Callable[[], list[tuple[str, str, Any, Any]]],
    ) -> None:
        """Run ``transition`` (under the lock) once the clock reaches ``due`` unless the token went stale.

        The transition returns observer notifications ``[(operation, resource_id, body, principal)]``.
        """
        with self.lock:
            heapq.heappush(self._pending, (due, next(self._seq), token, key_of(resource_id), transition))

    def advance(self) -> int:
        """Apply every due transition; returns how many ran. Cheap when nothing is due."""
        if not self._pending:
            return 0
        now = self.clock.now()
        fired: list[tuple[str, str, Any, Any]] = []
        ran = 0
        with self.lock:
            while self._pending and self._pending[0][0] <= now:
                _, _, token, key, transition = heapq.heappop(self._pending)
                if self._tokens.get(key) != token:
                    continue
                fired.extend(transition())
                ran += 1
        for operation, resource_id, body, principal in fired:
            self.notify(operation, resource_id, body, principal)
        return ran

    def next_due(self) -> float | None:
        with self.lock:
            return self._pending[0][0] if self._pending else None

    # ----- observers -----------------------------------------------------------------------------
    def subscribe(self, callback: Observer) -> Callable[[], None]:
        """Register ``callback(operation, resource_id, resource, principal)``; returns an unsubscribe
        function."""
        with self.lock:
            self._observers.append(callback)

        def unsubscribe() -> None:
            with self.lock:
                if callback in self._observers:
                    self._observers.remove(callback)

        return unsubscribe

    def notify(
        self, operation: str, resource_id: str, resource: dict[str, Any] | None, principal: str | None
    ) -> None:
        with self.lock:
            observers = list(self._observers)
        for callback in observers:
            try:
                callback(operation, resource_id, resource, principal)
            except Exception:
                logger.exception("state observer %r failed on %s %s", callback, operation, resource_id)

    def on_load(self, callback: Callable[[EmulatorState, dict[str, Any]], None]) -> None:
        """Run ``callback(state, estate)`` after every estate load / reset (plug-ins rebuild their state)."""
        with self.lock:
            self._load_hooks.append(callback)

    # ----- estate, reset, snapshot ---------------------------------------------------------------
    def clear(self) -> None:
        with self.lock:
            self.subscriptions.clear()
            for name in COLLECTIONS:
                self.collection(name).clear()
            self.operations.clear()
            self.meta.clear()
            self.plugin_state.clear()
            self._pending.clear()
            self._tokens.clear()
            self.estate = {}

    def load_estate(self, estate: dict[str, Any]) -> None:
        """Replace everything with ``estate`` (see emulator.estate for the format) and run load hooks."""
        import gc

        if self.estate_loader is None:
            raise RuntimeError("EmulatorState(estate_loader=...) is needed to load an estate")
        apply_estate = self.estate_loader
        with self.lock:
            self.clear()
            # Loading builds millions of small dicts; the cyclic GC would rescan the growing heap again and
            # again (100k clusters: ~7 s → ~2 s without it). Nothing built here forms reference cycles.
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                apply_estate(self, estate)
            finally:
                if gc_was_enabled:
                    gc.enable()
            self.estate = estate
            hooks = list(self._load_hooks)
        for hook in hooks:
            hook(self, estate)

    def reset(self, estate: dict[str, Any] | None = None) -> None:
        """Back to ``estate`` (default: the estate loaded last)."""
        self.load_estate(self.estate if estate is None else estate)

    def counts(self) -> dict[str, int]:
        with self.lock:
            out = {"subscriptions": len(self.subscriptions)}
            out.update({name: len(self.collection(name)) for name in COLLECTIONS})
            out["pendingTransitions"] = len(self._pending)
            return out

    def snapshot(
        self, *, collections: tuple[str, ...] | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """A deep copy of the state as JSON-able data (optionally some collections / the first ``limit``)."""
        self.advance()
        with self.lock:
            names = collections or COLLECTIONS
            out: dict[str, Any] = {"time": self.clock.now(), "counts": self.counts()}
            if collections is None or "subscriptions" in collections:
                out["subscriptions"] = copy.deepcopy(list(self.subscriptions.values())[:limit])
            for name in names:
                if name == "subscriptions":
                    continue
                values = list(self.collection(name).values())
                out[name] = copy.deepcopy(values[:limit] if limit is not None else values)
            return out


def provider_registration(namespace: str, setting: str | dict[str, Any]) -> dict[str, Any]:
    """Estate provider setting → registration record.

    ``"Registered"`` / ``"NotRegistered"`` / ``"Registering"`` (a register POST then completes at once), or
    ``{"registrationState": "NotRegistered", "registerCompletes": false}`` to keep it "Registering" forever
    after a register POST (tests the product's guard against azure-mgmt-core's endless poll).
    """
    if isinstance(setting, str):
        return {"namespace": namespace, "registrationState": setting, "completes": True}
    return {
        "namespace": namespace,
        "registrationState": setting.get("registrationState", "NotRegistered"),
        "completes": bool(setting.get("registerCompletes", True)),
    }
