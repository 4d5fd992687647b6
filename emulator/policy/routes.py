"""HTTP surface of Policy Insights: policy-state queries, triggerEvaluation and remediation tasks.

Routes (any scope: subscription, resource group or resource id):
- `POST {scope}/providers/Microsoft.PolicyInsights/policyStates/{latest|default}/queryResults` ($filter, $top)
- `POST {sub}[/resourceGroups/{rg}]/providers/Microsoft.PolicyInsights/policyStates/latest/triggerEvaluation`
  → 202 + Location; `GET .../asyncOperationResults/{id}` → 202 while running, then 200.
- `PUT|GET|DELETE {scope}/providers/Microsoft.PolicyInsights/remediations/{name}`, `GET .../remediations`,
  `POST .../remediations/{name}/cancel`, `POST .../remediations/{name}/listDeployments`.
Admin (under /_emulator/policy): `GET /` (assignments, settings), `POST /assignments`, `GET /states`,
`POST /backupInstances` ({clusterId}), `DELETE /backupInstances` ({clusterId}), `PATCH /settings`
({evaluationDelayS, evaluationS, remediation: {acceptS, pollS}}).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from emulator.errors import ArmError
from emulator.policy.engine import BACKUP_INSTANCE_TYPE, PolicyEngine, cluster_key_of
from emulator.policy.odata import ODataFilterError, parse_apply, parse_filter, parse_orderby, parse_select
from emulator.policy.remediation import RemediationError, RemediationManager
from emulator.quotas import POLICY_INSIGHTS
from emulator.routing import PluginContext, Request, Response, Router

logger = logging.getLogger(__name__)

EXTRAS_ENGINE = "policy"
EXTRAS_REMEDIATION = "remediation"
PI = "/providers/Microsoft.PolicyInsights"
FILTER_FIELDS = {
    "timestamp",
    "resourceId",
    "policyAssignmentId",
    "policyDefinitionId",
    "effectiveParameters",
    "isCompliant",
    "subscriptionId",
    "resourceType",
    "resourceLocation",
    "resourceGroup",
    "resourceTags",
    "policyAssignmentName",
    "policyAssignmentOwner",
    "policyAssignmentParameters",
    "policyAssignmentScope",
    "policyDefinitionName",
    "policyDefinitionAction",
    "policyDefinitionCategory",
    "policySetDefinitionId",
    "policySetDefinitionName",
    "policySetDefinitionOwner",
    "policySetDefinitionCategory",
    "policySetDefinitionParameters",
    "managementGroupIds",
    "policyDefinitionReferenceId",
    "complianceState",
    "policyDefinitionGroupNames",
    "policyDefinitionVersion",
    "policySetDefinitionVersion",
    "policyAssignmentVersion",
}
"""Policy-state record properties usable in $filter / $apply / $orderby / $select (names case-insensitive)."""


class _Settings:
    evaluation_delay_s = 0.0
    evaluation_s = 1.0
    """How long a triggerEvaluation scan takes (clock seconds)."""


def engine_for(ctx: PluginContext) -> PolicyEngine:
    engine = ctx.extras.get(EXTRAS_ENGINE)
    if engine is None:
        from emulator.eventgrid.routes import eventgrid_for

        events = eventgrid_for(ctx)
        engine = PolicyEngine(ctx.state, emit=events.publish_policy_event)
        ctx.extras[EXTRAS_ENGINE] = engine
    assert isinstance(engine, PolicyEngine)
    return engine


def _arm(exc: RemediationError) -> ArmError:
    return ArmError(exc.status, exc.code, exc.message)


def _scope_of(request: Request) -> str:
    params = request.params
    if "scope" in params:
        return "/" + params["scope"].strip("/")
    if "resourceGroupName" in params:
        return f"/subscriptions/{params['subscriptionId']}/resourceGroups/{params['resourceGroupName']}"
    return f"/subscriptions/{params['subscriptionId']}"


SCOPE_PREFIXES = (
    "/{scope:path}",
    "/subscriptions/{subscriptionId}",
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}",
)
"""Every Policy Insights route is registered at any scope and, explicitly, at subscription and resource
group scope, so those win over the ARM core's generic `/subscriptions/{}/resourceGroups/{}/providers/...`."""


def _add_scoped(router: Router, method: str, suffix: str, handler: Any, operation: str) -> None:
    for prefix in SCOPE_PREFIXES:
        router.add(method, prefix + suffix, handler, operation=operation)


def _protected_cluster(resource: Any) -> str | None:
    """A backup instance (emulator/dataprotection) changes Policy 2 for the cluster it protects."""
    if not isinstance(resource, dict) or str(resource.get("type", "")).lower() != BACKUP_INSTANCE_TYPE:
        return None
    info = (resource.get("properties") or {}).get("dataSourceInfo") or {}
    return cluster_key_of(str(info.get("resourceID") or info.get("resourceUri") or ""))


def register(router: Router, ctx: PluginContext) -> None:
    engine = engine_for(ctx)
    manager = RemediationManager(ctx.state, engine, runtime=ctx.runtime, config=ctx.config)
    ctx.extras[EXTRAS_REMEDIATION] = manager
    settings = _Settings()
    scans: dict[str, float] = {}

    def on_load(_state: Any, estate: dict[str, Any]) -> None:
        manager.reset()
        scans.clear()
        settings.evaluation_delay_s = 0.0
        engine.load(estate)

    ctx.state.on_load(on_load)
    from emulator.policy import arm_routes

    arm_routes.register(router, ctx, engine)  # sets engine.groups_of before the first load below
    if ctx.state.estate:
        engine.load(ctx.state.estate)

    def on_change(operation: str, resource_id: str, resource: Any, principal: str | None) -> None:
        ckey = cluster_key_of(resource_id) or _protected_cluster(resource)
        if ckey is None or operation == "action":
            return
        if settings.evaluation_delay_s <= 0:
            engine.evaluate_cluster(ckey)
            return
        token_key = f"policy-eval:{ckey}"
        token = ctx.state.new_lifecycle_token(token_key)

        def transition() -> list[Any]:
            engine.evaluate_cluster(ckey)
            return []

        ctx.state.schedule(ctx.state.now() + settings.evaluation_delay_s, token_key, token, transition)

    ctx.state.subscribe(on_change)

    # ---- policy states --------------------------------------------------------------------------
    def query_results(request: Request) -> Response:
        scope = _scope_of(request)
        resource = request.params["policyStatesResource"]
        if resource.lower() not in ("latest", "default"):
            raise ArmError(400, "InvalidPolicyStatesResource", f"'{resource}' is not 'latest' or 'default'.")
        try:
            predicate = parse_filter(request.query.get("$filter"), fields=FILTER_FIELDS)
            apply = parse_apply(request.query.get("$apply"), fields=FILTER_FIELDS)
            out_fields = getattr(apply, "output_fields", None) or FILTER_FIELDS
            orderby = parse_orderby(request.query.get("$orderby"), fields=out_fields)
            select = parse_select(request.query.get("$select"), fields=FILTER_FIELDS)
        except ODataFilterError as exc:
            raise ArmError(400, "InvalidFilterInQueryString", str(exc)) from exc
        rows = orderby(apply(engine.query(scope, predicate)))
        if request.query.get("$select"):
            rows = [select(r) for r in rows]
        top = request.query.get("$top")
        if top is not None:
            if not str(top).isdigit():
                raise ArmError(400, "InvalidTopValue", f"$top '{top}' must be a non-negative integer.")
            rows = rows[: int(top)]
        context = f"{request.base_url}{scope}{PI}/policyStates/$metadata#{resource.lower()}"
        value = [{"@odata.id": None, "@odata.context": context + "/$entity", **r} for r in rows]
        return Response(
            200,
            {},
            {"@odata.nextLink": None, "@odata.context": context, "@odata.count": len(value), "value": value},
        )

    _add_scoped(
        router,
        "POST",
        f"{PI}/policyStates/{{policyStatesResource}}/queryResults",
        query_results,
        operation="PolicyStates_ListQueryResults",
    )

    def trigger(request: Request) -> Response:
        scope = _scope_of(request)
        parts = scope.strip("/").split("/")
        if not (len(parts) == 2 or (len(parts) == 4 and parts[2].lower() == "resourcegroups")):
            raise ArmError(
                400,
                "InvalidScope",
                "triggerEvaluation is available at subscription and resource group scope only.",
            )
        if ctx.state.subscription(parts[1]) is None:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{parts[1]}' could not be found.")
        op_id = str(uuid.uuid5(uuid.NAMESPACE_URL, scope.lower()))
        if op_id not in scans or scans[op_id] <= ctx.state.now():
            due = ctx.state.now() + settings.evaluation_s
            scans[op_id] = due
            token = ctx.state.new_lifecycle_token(f"policy-scan:{op_id}")

            def transition() -> list[Any]:
                engine.evaluate_all(emit=True, scope=scope)
                return []

            ctx.state.schedule(due, f"policy-scan:{op_id}", token, transition)
        location = (
            f"{request.base_url}/subscriptions/{parts[1]}{PI}/asyncOperationResults/{op_id}"
            f"?api-version={request.api_version or '2019-10-01'}"
        )
        return Response(202, {"Location": location, "Retry-After": "1"}, None)

    _add_scoped(
        router,
        "POST",
        f"{PI}/policyStates/latest/triggerEvaluation",
        trigger,
        operation="PolicyStates_TriggerEvaluation",
    )

    def async_result(request: Request) -> Response:
        op_id = request.params["operationId"]
        due = scans.get(op_id)
        if due is None:
            raise ArmError(404, "NotFound", f"The async operation '{op_id}' was not found.")
        if ctx.state.now() < due:
            location = (
                f"{request.base_url}/subscriptions/{request.params['subscriptionId']}{PI}/"
                f"asyncOperationResults/{op_id}?api-version={request.api_version or '2019-10-01'}"
            )
            return Response(202, {"Location": location, "Retry-After": "1"}, None)
        return Response(200, {}, {"status": "Succeeded"})

    router.add(
        "GET",
        f"/subscriptions/{{subscriptionId}}{PI}/asyncOperationResults/{{operationId}}",
        async_result,
        operation="PolicyStates_AsyncOperationResult",
    )

    # ---- remediations ---------------------------------------------------------------------------
    rem = f"{PI}/remediations"

    def put_remediation(request: Request) -> Response:
        try:
            task, created = manager.create(
                _scope_of(request), request.params["name"], request.json_object(), request.principal
            )
        except RemediationError as exc:
            raise _arm(exc) from exc
        return Response(201 if created else 200, {}, task.to_json(request.api_version))

    def task_or_404(request: Request) -> Any:
        scope = _scope_of(request)
        task = manager.get(f"{scope}{PI}/remediations/{request.params['name']}")
        if task is None:
            raise ArmError(
                404, "RemediationNotFound", f"The remediation '{request.params['name']}' could not be found."
            )
        return task

    def get_remediation(request: Request) -> Response:
        return Response(200, {}, task_or_404(request).to_json(request.api_version))

    def delete_remediation(request: Request) -> Response:
        task = task_or_404(request)
        manager.delete(task.id)
        return Response(200, {}, task.to_json(request.api_version))

    def list_remediations(request: Request) -> Response:
        tasks = manager.list(_scope_of(request))
        return Response(200, {}, {"value": [t.to_json(request.api_version) for t in tasks]})

    def cancel(request: Request) -> Response:
        task = task_or_404(request)
        try:
            manager.cancel(task.id)
        except RemediationError as exc:
            raise _arm(exc) from exc
        return Response(200, {}, task.to_json(request.api_version))

    def list_deployments(request: Request) -> Response:
        task = task_or_404(request)
        with manager.lock:
            rows = [dict(d) for d in task.deployments.values()]
        top = request.query.get("$top")
        if top is not None and str(top).isdigit():
            rows = rows[: int(top)]
        return Response(200, {}, {"value": rows})

    _add_scoped(router, "PUT", f"{rem}/{{name}}", put_remediation, operation="Remediations_CreateOrUpdate")
    _add_scoped(router, "GET", f"{rem}/{{name}}", get_remediation, operation="Remediations_Get")
    _add_scoped(router, "DELETE", f"{rem}/{{name}}", delete_remediation, operation="Remediations_Delete")
    _add_scoped(router, "GET", rem, list_remediations, operation="Remediations_List")
    _add_scoped(router, "POST", f"{rem}/{{name}}/cancel", cancel, operation="Remediations_Cancel")
    _add_scoped(
        router,
        "POST",
        f"{rem}/{{name}}/listDeployments",
        list_deployments,
        operation="Remediations_ListDeployments",
    )
    if ctx.runtime is not None:
        # recorded: the remediation PUT carries x-ms-ratelimit-remaining-policy-insights-requests
        ctx.runtime.quotas.attach(POLICY_INSIGHTS, operations=("Remediations_CreateOrUpdate",))

    # ---- admin ----------------------------------------------------------------------------------
    base = "/_emulator/policy"

    def admin_view(_r: Request) -> Response:
        with engine.lock:
            return Response(
                200,
                {},
                {
                    "assignments": [a.to_json() for a in engine.assignments.values()],
                    "records": len(engine.records),
                    "settings": {
                        "evaluationDelayS": settings.evaluation_delay_s,
                        "evaluationS": settings.evaluation_s,
                        "remediation": manager.settings.to_json(),
                    },
                },
            )

    def admin_states(_r: Request) -> Response:
        with engine.lock:
            return Response(200, {}, {"value": list(engine.records.values())})

    def admin_add_assignment(request: Request) -> Response:
        try:
            assignment = engine.add_assignment(request.json_object())
        except ValueError as exc:
            raise ArmError(400, "InvalidAdminRequest", str(exc)) from exc
        return Response(201, {}, assignment.to_json())

    def admin_backup(request: Request) -> Response:
        data = request.json_object()
        cluster_id = data.get("clusterId")
        if not isinstance(cluster_id, str):
            raise ArmError(400, "InvalidAdminRequest", "clusterId is required")
        if request.method == "DELETE":
            engine.remove_backup_instances(cluster_id)
            return Response(200, {}, {"clusterId": cluster_id, "backupInstances": []})
        bi = engine.add_backup_instance(cluster_id, data.get("id"))
        return Response(201, {}, {"clusterId": cluster_id, "id": bi})

    def admin_settings(request: Request) -> Response:
        data = request.json_object()
        try:
            for key, value in data.items():
                if key == "evaluationDelayS":
                    settings.evaluation_delay_s = max(0.0, float(value))
                elif key == "evaluationS":
                    settings.evaluation_s = max(0.0, float(value))
                elif key == "remediation":
                    manager.settings.update(value)
                else:
                    raise ValueError(f"unknown policy setting '{key}'")
        except (ValueError, TypeError) as exc:
            raise ArmError(400, "InvalidAdminRequest", str(exc)) from exc
        return admin_view(request)

    router.add("GET", base, admin_view, operation="Admin_PolicyGet", admin=True)
    router.add("GET", f"{base}/states", admin_states, operation="Admin_PolicyStates", admin=True)
    router.add(
        "POST", f"{base}/assignments", admin_add_assignment, operation="Admin_PolicyAssign", admin=True
    )
    router.add("POST", f"{base}/backupInstances", admin_backup, operation="Admin_PolicyBackupAdd", admin=True)
    router.add(
        "DELETE", f"{base}/backupInstances", admin_backup, operation="Admin_PolicyBackupDel", admin=True
    )
    router.add("PATCH", f"{base}/settings", admin_settings, operation="Admin_PolicySettings", admin=True)
