"""The Azure Backup model's state machine: async operations, backup-instance protection, backup ticks.

Everything time-based goes through ``state.schedule`` with the state's clock, so tests with a ManualClock are
deterministic and a running server advances on its own ticker. One :class:`DataProtectionService` per
emulator (``ctx.extras["dataprotection"]``); its knobs and operations are reset with every estate load.
"""

from __future__ import annotations

import base64
import copy
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.clock import iso
from emulator.dataprotection.model import (
    BI_TYPE,
    backup_instance_body,
    cloud_error,
    datasource_id,
    user_facing_error,
    vault_id_of,
)
from emulator.dataprotection.prerequisites import Missing, Visibility, check
from emulator.dataprotection.settings import DataProtectionSettings
from emulator.state import EmulatorState, key_of

logger = logging.getLogger(__name__)

Notification = tuple[str, str, Any, Any]


def operation_id() -> str:
    """DataProtection operation ids look like base64 of two GUIDs joined by ';' (recordings)."""
    raw = f"{uuid.uuid4()};{uuid.uuid4()}".encode()
    return base64.b64encode(raw).decode()


@dataclass
class Operation:
    """An async operation DataProtection tracks under ``{vault}/operationStatus/{id}``."""

    id: str
    kind: str
    """vault-put | bi-put | bi-delete | bi-sync | validate"""
    resource_id: str
    vault_id: str
    location: str
    start: float
    principal: str | None
    done_at: float | None = None
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = field(default=None)


class DataProtectionService:
    """Knobs, visibility (propagation) and the async operations of the Azure Backup model (its quota is the
    generic provider quota ``dataProtection``, emulator.quotas)."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.settings = DataProtectionSettings()
        self.visibility = Visibility()
        self.operations: dict[str, Operation] = {}
        self.role_assignment_counts: dict[str, int] = {}
        self._lock = threading.RLock()

    # ---- knobs ----------------------------------------------------------------------------------
    def reset(self, settings: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.settings = DataProtectionSettings()
            if settings:
                self.settings.update(settings)
            self.visibility.clear()
            self.operations.clear()
            self.role_assignment_counts.clear()

    # ---- operations -----------------------------------------------------------------------------
    def new_operation(
        self, kind: str, resource_id: str, *, vault_id: str, location: str, principal: str | None
    ) -> Operation:
        op = Operation(
            id=operation_id(),
            kind=kind,
            resource_id=resource_id,
            vault_id=vault_id,
            location=location,
            start=self.state.now(),
            principal=principal,
        )
        with self._lock:
            self.operations[op.id] = op
        return op

    def operation(self, op_id: str) -> Operation | None:
        with self._lock:
            return self.operations.get(op_id)

    def status(self, op: Operation) -> str:
        """Inprogress (the recorded RP spelling) / Succeeded / Failed, derived from what the op acts on."""
        self.state.advance()
        if op.kind in ("validate",):
            if op.done_at is None:
                return "Inprogress"
            return "Failed" if op.error else "Succeeded"
        body = self.state.get("resources", op.resource_id)
        if op.kind == "bi-delete":
            return "Succeeded" if body is None else "Inprogress"
        if body is None:
            return "Failed"
        prov = (body.get("properties") or {}).get("provisioningState")
        if prov in ("Succeeded",):
            return "Succeeded"
        if prov == "Failed":
            return "Failed"
        return "Inprogress"

    def status_body(self, op: Operation, path: str) -> dict[str, Any]:
        status = self.status(op)
        out: dict[str, Any] = {
            "id": path,
            "name": op.id,
            "status": status,
            "startTime": iso(op.start),
            "endTime": iso(op.done_at or self.state.now())
            if status != "Inprogress"
            else "0001-01-01T00:00:00Z",
        }
        if status == "Failed":
            out["error"] = op.error or cloud_error("UserErrorDatasourceNotFound")
        return out

    # ---- validateForBackup ----------------------------------------------------------------------
    def start_validation(self, op: Operation, vault: dict[str, Any], bi_props: dict[str, Any]) -> None:
        """The prerequisites are checked when the operation ends (``validateS`` later)."""
        state = self.state
        token_key = f"dataprotection-op:{op.id}"
        token = state.new_lifecycle_token(token_key)
        props = copy.deepcopy(bi_props)

        def finish() -> list[Notification]:
            current_vault = state.resources.get(key_of(vault["id"])) or vault
            missing = check(
                state, self.settings, self.visibility, vault=current_vault, bi_props=props, now=state.now()
            )
            op.done_at = state.now()
            if missing is not None:
                op.error = cloud_error(missing.code, missing.detail)
            else:
                op.result = {"objectType": "OperationJobExtendedInfo"}
            return []

        state.schedule(state.now() + self.settings.validate_s, token_key, token, finish)

    # ---- backup instances -----------------------------------------------------------------------
    def start_protection(self, bi_id: str, principal: str | None) -> None:
        """After a PUT / sync: provisioning ends after ``backupInstanceProvisionS``; protection is decided
        after ``backupInstanceConfigureS`` (never before provisioning ends)."""
        state = self.state
        settings = self.settings
        token = state.new_lifecycle_token(bi_id)
        now = state.now()
        provision_at = now + settings.bi_provision_s
        configure_at = max(provision_at, now + settings.bi_configure_s)

        def provisioned() -> list[Notification]:
            body = state.resources.get(key_of(bi_id))
            if body is None:
                return []
            new = copy.deepcopy(body)
            new["properties"]["provisioningState"] = "Succeeded"
            state.resources[key_of(bi_id)] = new
            return [("provisioned", new["id"], new, principal)]

        def configured() -> list[Notification]:
            return self._evaluate(bi_id, principal, initial=True, token=token)

        state.schedule(provision_at, bi_id, token, provisioned)
        state.schedule(configure_at, bi_id, token, configured)

    def _evaluate(
        self, bi_id: str, principal: str | None, *, initial: bool, token: int
    ) -> list[Notification]:
        """Decide the protection state now (caller holds the state lock); schedule the next backup tick."""
        state = self.state
        body = state.resources.get(key_of(bi_id))
        if body is None:
            return []
        props = body.get("properties") or {}
        current = str(props.get("currentProtectionState") or "")
        vault = state.resources.get(key_of(vault_id_of(bi_id)))
        missing: Missing | None
        if vault is None:
            missing = Missing("UserErrorDatasourceNotFound", "The Backup vault no longer exists.")
        else:
            missing = check(
                state, self.settings, self.visibility, vault=vault, bi_props=props, now=state.now()
            )
        if initial:
            new_state = "ProtectionConfigured" if missing is None else self.settings.initial_failure_state
        elif current == "ProtectionConfigured":
            new_state = (
                "ProtectionError" if (missing is not None and self.settings.recheck_on_backup) else current
            )
        elif current in ("ProtectionError", "ConfiguringProtectionFailed"):
            new_state = (
                "ProtectionConfigured" if (missing is None and self.settings.recover_on_backup) else current
            )
        else:
            new_state = current
        notifications: list[Notification] = []
        if new_state != current or initial:
            error = None
            if new_state in ("ProtectionError", "ConfiguringProtectionFailed") and missing is not None:
                error = user_facing_error(missing.code, missing.detail)
            elif new_state in ("ProtectionError", "ConfiguringProtectionFailed"):
                error = props.get("protectionErrorDetails")
            new = backup_instance_body(
                str(body["id"]),
                props,
                provisioning_state=props.get("provisioningState", "Succeeded"),
                protection_state=new_state,
                error=error,
            )
            state.resources[key_of(bi_id)] = new
            notifications.append(("provisioned", new["id"], new, principal))
        tick = self.settings.backup_tick_s
        if tick > 0:
            state.schedule(
                state.now() + tick,
                bi_id,
                token,
                lambda: self._evaluate(bi_id, principal, initial=False, token=token),
            )
        return notifications

    def backup_tick_now(self) -> int:
        """Run the scheduled-backup check for every instance at once (admin ``POST …/tick``)."""
        state = self.state
        fired: list[Notification] = []
        with state.lock:
            ids = [
                str(b["id"])
                for b in state.resources.values()
                if str(b.get("type", "")).lower() == BI_TYPE.lower()
                and (b.get("properties") or {}).get("currentProtectionState")
                in ("ProtectionConfigured", "ProtectionError", "ConfiguringProtectionFailed")
            ]
            for bi_id in ids:
                token = state.new_lifecycle_token(bi_id)
                fired.extend(self._evaluate(bi_id, None, initial=False, token=token))
        for notification in fired:
            state.notify(*notification)
        return len(ids)

    def schedule_delete(self, bi_id: str, principal: str | None) -> None:
        state = self.state
        token = state.new_lifecycle_token(bi_id)

        def remove() -> list[Notification]:
            gone = state.resources.pop(key_of(bi_id), None)
            state.meta.pop(key_of(bi_id), None)
            return [("deleted", gone["id"], gone, principal)] if gone is not None else []

        state.schedule(state.now() + self.settings.bi_delete_s, bi_id, token, remove)

    def schedule_tick_for_loaded(self, bi_id: str) -> None:
        """Estate instances declared with ``recheck: true`` get backup ticks like API-created ones."""
        if self.settings.backup_tick_s <= 0:
            return
        state = self.state
        token = state.new_lifecycle_token(bi_id)
        state.schedule(
            state.now() + self.settings.backup_tick_s,
            bi_id,
            token,
            lambda: self._evaluate(bi_id, None, initial=False, token=token),
        )

    # ---- queries --------------------------------------------------------------------------------
    def instances_for(self, resource_id: str) -> list[dict[str, Any]]:
        target = key_of(resource_id)
        with self.state.lock:
            return [
                b
                for b in self.state.resources.values()
                if str(b.get("type", "")).lower() == BI_TYPE.lower()
                and key_of(datasource_id(b.get("properties") or {})) == target
            ]

    def schedule(self, due: float, key: str, fn: Callable[[], list[Notification]]) -> None:
        token = self.state.new_lifecycle_token(key)
        self.state.schedule(due, key, token, fn)
