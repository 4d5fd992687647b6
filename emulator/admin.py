"""The admin API under ``/_emulator/`` (plain HTTPS JSON, no auth): reset, snapshot, call log, counters,
run-time knobs, fault rules, clock, and direct state edits for demos (create/retag/flip a cluster)."""

from __future__ import annotations

import copy
import logging
from typing import Any

from emulator.clock import ManualClock
from emulator.errors import ArmError, bad_request
from emulator.estate import apply_estate
from emulator.lifecycle import schedule_cluster_completion
from emulator.model.hierarchy import normalize_groups
from emulator.model.ids import fold
from emulator.routing import PluginContext, Request, Response, Router
from emulator.state import COLLECTIONS, key_of, provider_registration

logger = logging.getLogger(__name__)

P = "/_emulator"


def register(router: Router, ctx: PluginContext) -> None:
    runtime = ctx.runtime
    state = ctx.state

    def health(request: Request) -> Response:
        return Response(200, {}, {"status": "ok", "baseUrl": ctx.base_url(), "counts": state.counts()})

    def reset(request: Request) -> Response:
        data = request.json_object(required=False)
        ctx.extras["emulator_reset"](data.get("estate"))
        return Response(200, {}, {"status": "reset", "counts": state.counts()})

    def snapshot(request: Request) -> Response:
        names = request.query.get("collections")
        limit = request.query.get("limit")
        cols = tuple(n.strip() for n in names.split(",")) if names else None
        if cols:
            bad = [c for c in cols if c not in COLLECTIONS and c != "subscriptions"]
            if bad:
                raise bad_request(
                    "InvalidCollection", f"unknown collections {bad}; known: {list(COLLECTIONS)}"
                )
        return Response(200, {}, state.snapshot(collections=cols, limit=int(limit) if limit else None))

    def calls(request: Request) -> Response:
        since = int(request.query.get("since") or 0)
        limit = request.query.get("limit")
        return Response(
            200, {}, {"calls": runtime.calls.calls(since=since, limit=int(limit) if limit else None)}
        )

    def clear_calls(request: Request) -> Response:
        runtime.calls.clear()
        return Response(204, {}, None)

    def counters(request: Request) -> Response:
        return Response(200, {}, runtime.calls.counters())

    def get_config(request: Request) -> Response:
        return Response(200, {}, runtime.config.to_json())

    def patch_config(request: Request) -> Response:
        try:
            runtime.config.update(request.json_object())
        except (ValueError, TypeError) as exc:
            raise bad_request("InvalidConfig", str(exc)) from exc
        if "throttle" in request.json_object():
            runtime.throttler.reset()
        if "quotas" in request.json_object():
            runtime.quotas.reset()  # new sizes start from full buckets
        return Response(200, {}, runtime.config.to_json())

    def list_faults(request: Request) -> Response:
        return Response(200, {}, {"rules": runtime.faults.list()})

    def add_fault(request: Request) -> Response:
        try:
            rule = runtime.faults.add(request.json_object())
        except (ValueError, TypeError) as exc:
            raise bad_request("InvalidFaultRule", str(exc)) from exc
        return Response(201, {}, rule.to_json())

    def clear_faults(request: Request) -> Response:
        runtime.faults.clear()
        return Response(204, {}, None)

    def delete_fault(request: Request) -> Response:
        if not runtime.faults.remove(request.params["ruleId"]):
            raise ArmError(404, "FaultRuleNotFound", f"no fault rule {request.params['ruleId']}")
        return Response(204, {}, None)

    def advance_clock(request: Request) -> Response:
        data = request.json_object()
        if not isinstance(state.clock, ManualClock):
            raise bad_request(
                "ClockNotManual", "the emulator runs on the system clock; start it with a ManualClock"
            )
        state.clock.advance(float(data.get("seconds", 0)))
        ran = state.advance()
        return Response(200, {}, {"now": state.clock.now(), "transitionsApplied": ran})

    def get_clock(request: Request) -> Response:
        return Response(200, {}, {"now": state.clock.now(), "manual": isinstance(state.clock, ManualClock)})

    def put_resources(request: Request) -> Response:
        """Upsert resources in estate format (``{"clusters": [...], "storageAccounts": [...], ...}``).

        ``subscriptions`` adds subscriptions; ``managementGroups`` (any estate form) adds groups and moves
        the subscriptions it lists under them (a subscription has one parent in Azure, so it leaves the group
        it was in): a subscription that joins a management group at run time."""
        data = request.json_object()
        notes: list[tuple[str, dict[str, Any]]] = []
        if "managementGroups" in data:
            try:
                moved = normalize_groups(data.get("managementGroups"))
                groups = normalize_groups(state.estate.get("managementGroups"))
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request("InvalidRequestContent", f"managementGroups: {exc}") from exc
            joining = {fold(sub) for entry in moved.values() for sub in entry.subscriptions}
            merged: dict[str, Any] = {}
            for name, entry in {**groups, **moved}.items():
                old = groups.get(name)
                kept = [s for s in (old.subscriptions if old else ()) if fold(s) not in joining]
                new = moved[name].subscriptions if name in moved else ()
                parent = entry.parent or (old.parent if old else None)
                merged[name] = {
                    "subscriptions": [*kept, *new],
                    **({"parent": parent} if parent else {}),
                    **({"displayName": entry.display_name} if entry.display_name else {}),
                }
            with state.lock:
                state.estate = {**state.estate, "managementGroups": merged}
        with state.lock:
            before = {name: set(state.collection(name)) for name in COLLECTIONS}
            apply_estate(state, data)
            for name in COLLECTIONS:
                for key in set(state.collection(name)) - before[name]:
                    notes.append((name, state.collection(name)[key]))
            for name, items in (("clusters", data.get("clusters")), ("extensions", data.get("extensions"))):
                for item in items or []:
                    rid = item.get("id")
                    if rid and key_of(rid) in before[name]:
                        notes.append((name, state.collection(name)[key_of(rid)]))
        for _, body in notes:
            state.notify("write", body["id"], body, "emulator-admin")
        return Response(200, {}, {"written": [b["id"] for _, b in notes], "counts": state.counts()})

    def patch_cluster(request: Request) -> Response:
        """Change a cluster in place: tags, provisioningState, powerState (for demos; fires observers)."""
        data = request.json_object()
        rid = data.get("id")
        if not isinstance(rid, str):
            raise bad_request("InvalidRequestContent", "body needs 'id' (the cluster's ARM id)")
        unknown = set(data) - {"id", "tags", "provisioningState", "powerState", "readyInS"}
        if unknown:
            raise bad_request("InvalidRequestContent", f"unknown fields {sorted(unknown)}")
        with state.lock:
            body = state.clusters.get(key_of(rid))
            if body is None:
                raise ArmError(404, "ResourceNotFound", f"cluster {rid} not found")
            new = copy.copy(body)
            props = dict(body["properties"])
            if "tags" in data:
                new["tags"] = dict(data["tags"] or {})
            if "provisioningState" in data:
                props["provisioningState"] = data["provisioningState"]
                state.new_lifecycle_token(rid)
            if "powerState" in data:
                props["powerState"] = {"code": data["powerState"]}
            props["agentPoolProfiles"] = [
                {**p, "provisioningState": props["provisioningState"], "powerState": props["powerState"]}
                for p in props.get("agentPoolProfiles", [])
            ]
            new["properties"] = props
            state.clusters[key_of(rid)] = new
            if data.get("readyInS") is not None:
                schedule_cluster_completion(state, rid, float(data["readyInS"]), principal="emulator-admin")
        state.notify("write", new["id"], new, "emulator-admin")
        return Response(200, {}, new)

    def set_provider(request: Request) -> Response:
        data = request.json_object()
        try:
            sub_id, namespace = data["subscriptionId"], data["namespace"]
        except KeyError as exc:
            raise bad_request("InvalidRequestContent", f"missing {exc}") from exc
        with state.lock:
            sub = state.subscriptions.get(fold(sub_id))
            if sub is None:
                raise ArmError(404, "SubscriptionNotFound", sub_id)
            sub["providers"][fold(namespace)] = provider_registration(
                namespace,
                {
                    "registrationState": data.get("registrationState", "Registered"),
                    "registerCompletes": data.get("registerCompletes", True),
                },
            )
            state.new_lifecycle_token(f"/subscriptions/{sub_id}/providers/{namespace}")
            reg = dict(sub["providers"][fold(namespace)])
        return Response(200, {}, reg)

    add = router.add
    add("GET", P + "/health", health, operation="admin:health", admin=True)
    add("POST", P + "/reset", reset, operation="admin:reset", admin=True)
    add("GET", P + "/state", snapshot, operation="admin:state", admin=True)
    add("GET", P + "/calls", calls, operation="admin:calls", admin=True)
    add("DELETE", P + "/calls", clear_calls, operation="admin:calls-clear", admin=True)
    add("GET", P + "/counters", counters, operation="admin:counters", admin=True)
    add("GET", P + "/config", get_config, operation="admin:config", admin=True)
    add("PATCH", P + "/config", patch_config, operation="admin:config-set", admin=True)
    add("GET", P + "/faults", list_faults, operation="admin:faults", admin=True)
    add("POST", P + "/faults", add_fault, operation="admin:faults-add", admin=True)
    add("DELETE", P + "/faults", clear_faults, operation="admin:faults-clear", admin=True)
    add("DELETE", P + "/faults/{ruleId}", delete_fault, operation="admin:faults-delete", admin=True)
    add("GET", P + "/clock", get_clock, operation="admin:clock", admin=True)
    add("POST", P + "/clock/advance", advance_clock, operation="admin:clock-advance", admin=True)
    add("POST", P + "/resources", put_resources, operation="admin:resources", admin=True)
    add("PATCH", P + "/clusters", patch_cluster, operation="admin:cluster-patch", admin=True)
    add("PUT", P + "/providers", set_provider, operation="admin:provider", admin=True)
