"""HTTP surface of Azure Backup for AKS (Microsoft.DataProtection) plus the AKS/ARM pieces it depends on.

Routes (ARM, held to shared/recordings and the official examples; emulator/README.md Part 3):
- backup vaults: PUT (201 + Azure-AsyncOperation, LRO), GET, list by resource group / subscription;
- backup policies: PUT (200, synchronous), GET, list, DELETE;
- backup instances: PUT (201 / 202 + Azure-AsyncOperation), GET, list, DELETE (202 LRO; 204 when absent),
  POST ``sync``; POST ``{vault}/validateForBackup`` (202 + Azure-AsyncOperation + Location);
- operation status ``{vault}/operationStatus/{id}``, ``…/locations/{loc}/operationStatus/{id}``, results
  ``…/locations/{loc}/operationResults/{id}`` and ``{instance}/operationResults/{id}``;
- extension routing ``GET {resourceId}/providers/Microsoft.DataProtection/backupInstances``;
- trusted-access role bindings (emulator.dataprotection.trusted_access) and management locks
  (emulator.dataprotection.locks).
Admin: ``GET|PATCH /_emulator/dataprotection`` (knobs, ``profile``), ``POST /_emulator/dataprotection/tick``
(run the scheduled-backup check now), ``GET /_emulator/dataprotection/operations``.
Estate keys: ``dataProtection: {settings, vaults, policies, backupInstances, roleAssignments}``,
``trustedAccessRoleBindings``, ``locks``, ``trustedAccessRoles`` (README Part 3).
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

from emulator.dataprotection import locks, trusted_access
from emulator.dataprotection.model import (
    AKS_DATASOURCE_TYPE,
    BI_TYPE,
    DP,
    POLICY_TYPE,
    ROLE_NAMES,
    VAULT_TYPE,
    backup_instance_body,
    cloud_error,
    datasource_id,
    policy_body,
    policy_preset,
    policy_uses_vault_store,
    routing_view,
    user_facing_error,
    vault_body,
    vault_id_of,
)
from emulator.dataprotection.service import DataProtectionService, Operation
from emulator.errors import ArmError, bad_request, invalid_body, not_found, retry_after
from emulator.quotas import DATA_PROTECTION
from emulator.resources.authorization import PRECREATE_HOOK
from emulator.resources.common import (
    deterministic_uuid,
    require_registered,
    require_resource_group,
    require_subscription,
)
from emulator.routing import PluginContext, Request, Response, Router
from emulator.state import EmulatorState, key_of

logger = logging.getLogger(__name__)

EXTRAS_KEY = "dataprotection"

RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
VAULTS = RG + "/providers/Microsoft.DataProtection/backupVaults"
VAULT = VAULTS + "/{vaultName}"
POLICIES = VAULT + "/backupPolicies"
POLICY = POLICIES + "/{backupPolicyName}"
INSTANCES = VAULT + "/backupInstances"
INSTANCE = INSTANCES + "/{backupInstanceName}"
LOCATION_OPS = "/subscriptions/{subscriptionId}/providers/Microsoft.DataProtection/locations/{location}"
STORAGE_TYPES = ("GeoRedundant", "LocallyRedundant", "ZoneRedundant")
DATASTORE_TYPES = ("VaultStore", "OperationalStore", "ArchiveStore")
SOFT_DELETE_STATES = ("Off", "On", "AlwaysOn")


def service_for(ctx: PluginContext) -> DataProtectionService:
    service = ctx.extras.get(EXTRAS_KEY)
    if service is None:
        service = DataProtectionService(ctx.state)
        ctx.extras[EXTRAS_KEY] = service
    assert isinstance(service, DataProtectionService)
    return service


def _invalid(message: str, target: str | None = None) -> ArmError:
    """DataProtection's generic input error (``BMSUserErrorInvalidInput``, seen in real AKS policy errors)."""
    return ArmError(400, "BMSUserErrorInvalidInput", message, target=target)


def _region(name: Any) -> str:
    return str(name or "").lower().replace(" ", "")


def _vault_id(request: Request) -> str:
    p = request.params
    rg = f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
    return f"{rg}/providers/{DP}/backupVaults/{p['vaultName']}"


def register(router: Router, ctx: PluginContext) -> None:
    state = ctx.state
    service = service_for(ctx)

    # ---- estate, observers, role-assignment limit ------------------------------------------------
    def on_load(_state: EmulatorState, estate: dict[str, Any]) -> None:
        block = estate.get("dataProtection") or {}
        service.reset(block.get("settings"))
        load_estate(state, service, estate)
        _install_precreate(state, service)

    state.on_load(on_load)
    if state.estate:
        on_load(state, state.estate)

    def on_change(operation: str, resource_id: str, resource: Any, principal: str | None) -> None:
        low = resource_id.lower()
        if "/providers/microsoft.authorization/roleassignments/" not in low:
            return
        sub = _subscription_of(resource_id)
        if operation == "write":
            service.visibility.set(resource_id, state.now() + service.settings.role_propagation_s)
            if sub and sub in service.role_assignment_counts:
                service.role_assignment_counts[sub] += 1
        elif operation == "deleted":
            service.visibility.forget(resource_id)
            if sub and sub in service.role_assignment_counts:
                service.role_assignment_counts[sub] = max(0, service.role_assignment_counts[sub] - 1)

    state.subscribe(on_change)

    def op_headers(request: Request, op: Operation, *, location: str | None, retry: bool) -> dict[str, str]:
        api = request.api_version or ""
        status_url = f"{request.base_url}{op.vault_id}/operationStatus/{op.id}"
        headers = {"Azure-AsyncOperation": f"{status_url}?api-version={api}"}
        if location:
            headers["Location"] = f"{request.base_url}{location}?api-version={api}"
        if retry:
            assert request.config is not None
            if request.config.lro_retry_after_s is not None:  # None: no Retry-After (the emulator's default)
                headers.update(retry_after(request.config.lro_retry_after_s))
        return headers

    # ---- vaults ---------------------------------------------------------------------------------
    def put_vault(request: Request) -> Response:
        p = request.params
        require_resource_group(state, p["subscriptionId"], p["resourceGroupName"])
        require_registered(state, p["subscriptionId"], DP)
        headers: dict[str, str] = {}
        body = request.json_object()
        rid = _vault_id(request)
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise bad_request("LocationRequired", "The location property is required for this definition.")
        props = body.get("properties")
        if not isinstance(props, dict):
            raise invalid_body("The request must contain a 'properties' object.")
        storage = props.get("storageSettings")
        if not isinstance(storage, list) or not storage:
            raise _invalid("properties.storageSettings must name at least one datastore.", "storageSettings")
        for item in storage:
            if not isinstance(item, dict) or item.get("type") not in STORAGE_TYPES:
                raise _invalid(f"storageSettings[].type must be one of {STORAGE_TYPES}.", "storageSettings")
            if item.get("datastoreType") not in DATASTORE_TYPES:
                raise _invalid(
                    f"storageSettings[].datastoreType must be one of {DATASTORE_TYPES}.", "storageSettings"
                )
        redundancy = str(storage[0]["type"])
        refused = service.settings.unsupported_redundancy.get(_region(location), [])
        if redundancy in refused:
            raise bad_request(
                "RedundancyConfigurationNotAvailableInRegion",
                f"The Backup vault failed to create due to redundancy configuration - {redundancy} - not "
                f"available in selected Region - {_region(location)}.",
            )
        soft = ((props.get("securitySettings") or {}).get("softDeleteSettings") or {}).get("state")
        if soft is not None and soft not in SOFT_DELETE_STATES:
            raise _invalid(f"softDeleteSettings.state must be one of {SOFT_DELETE_STATES}.")
        crr = ((props.get("featureSettings") or {}).get("crossRegionRestoreSettings") or {}).get("state")
        if crr == "Enabled" and redundancy != "GeoRedundant":
            raise _invalid(
                "Cross Region Restore can be enabled only for a vault with GeoRedundant storage.",
                "featureSettings.crossRegionRestoreSettings",
            )
        identity = body.get("identity")
        if identity is not None and (
            not isinstance(identity, dict)
            or identity.get("type")
            not in ("None", "SystemAssigned", "UserAssigned", "SystemAssigned,UserAssigned")
        ):
            raise _invalid("identity.type must be None, SystemAssigned or UserAssigned.", "identity")
        tenant = require_subscription(state, p["subscriptionId"])["tenantId"]
        with state.lock:
            previous = state.resources.get(key_of(rid))
            if previous is not None:
                old_crr = (
                    (previous["properties"].get("featureSettings") or {}).get("crossRegionRestoreSettings")
                    or {}
                ).get("state")
                if old_crr == "Enabled" and crr == "Disabled":
                    raise _invalid("Cross Region Restore can't be disabled once it is enabled.")
                if _region(previous.get("location")) != _region(location):
                    raise bad_request(
                        "InvalidResourceLocation", "The location of a Backup vault can't change."
                    )
                stored = vault_body(
                    rid, body, tenant_id=tenant, provisioning_state="Succeeded", previous=previous
                )
                state.put("resources", rid, stored, principal=request.principal, notify=False)
            else:
                stored = vault_body(rid, body, tenant_id=tenant, provisioning_state="Provisioning")
                state.put("resources", rid, stored, principal=request.principal, notify=False)
                op = service.new_operation(
                    "vault-put", rid, vault_id=rid, location=_region(location), principal=request.principal
                )
                token = state.new_lifecycle_token(rid)
                principal = request.principal

                def provisioned() -> list[tuple[str, str, Any, Any]]:
                    current = state.resources.get(key_of(rid))
                    if current is None:
                        return []
                    new = copy.deepcopy(current)
                    new["properties"]["provisioningState"] = "Succeeded"
                    state.resources[key_of(rid)] = new
                    return [("provisioned", rid, new, principal)]

                state.schedule(state.now() + service.settings.vault_create_s, rid, token, provisioned)
        state.notify("write", rid, stored, request.principal)
        if previous is not None:
            return Response(200, headers, stored)
        # recording vault-put: 201 + Azure-AsyncOperation, no Location, no Retry-After
        headers.update(op_headers(request, op, location=None, retry=False))
        return Response(201, headers, stored)

    def get_vault(request: Request) -> Response:
        p = request.params
        require_resource_group(state, p["subscriptionId"], p["resourceGroupName"])
        headers: dict[str, str] = {}
        body = state.get("resources", _vault_id(request))
        if body is None:
            raise not_found(VAULT_TYPE, p["vaultName"], p["resourceGroupName"])
        return Response(200, headers, body)

    def list_vaults(request: Request) -> Response:
        p = request.params
        if "resourceGroupName" in p:
            require_resource_group(state, p["subscriptionId"], p["resourceGroupName"])
            prefix = key_of(f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}/")
        else:
            require_subscription(state, p["subscriptionId"])
            prefix = key_of(f"/subscriptions/{p['subscriptionId']}") + "/"
        headers: dict[str, str] = {}
        with state.lock:
            items = [
                b
                for k, b in state.resources.items()
                if k.startswith(prefix) and str(b.get("type", "")).lower() == VAULT_TYPE.lower()
            ]
        return Response(200, headers, {"value": items})

    def vault_or_404(request: Request) -> dict[str, Any]:
        p = request.params
        require_resource_group(state, p["subscriptionId"], p["resourceGroupName"])
        body = state.get("resources", _vault_id(request))
        if body is None:
            raise not_found(VAULT_TYPE, p["vaultName"], p["resourceGroupName"])
        return body

    # ---- policies -------------------------------------------------------------------------------
    def put_policy(request: Request) -> Response:
        vault = vault_or_404(request)
        headers: dict[str, str] = {}
        body = request.json_object()
        props = body.get("properties")
        if not isinstance(props, dict):
            raise invalid_body("The request must contain a 'properties' object.")
        if props.get("objectType") != "BackupPolicy":
            raise _invalid("properties.objectType must be BackupPolicy.", "objectType")
        types = props.get("datasourceTypes")
        if not isinstance(types, list) or not types:
            raise _invalid("properties.datasourceTypes must name the datasource type.", "datasourceTypes")
        rules = props.get("policyRules")
        if not isinstance(rules, list) or not rules:
            raise _invalid("properties.policyRules must not be empty.", "policyRules")
        kinds = {str((r or {}).get("objectType")) for r in rules}
        has_default = any(
            (r or {}).get("objectType") == "AzureRetentionRule" and r.get("isDefault") for r in rules
        )
        if "AzureBackupRule" not in kinds or not has_default:
            raise _invalid(
                "A backup policy needs an AzureBackupRule and a default AzureRetentionRule.", "policyRules"
            )
        if (
            policy_uses_vault_store(props)
            and _region(vault.get("location")) in service.settings.vault_tier_unsupported_regions
        ):
            raise DataProtectionError(400, cloud_error("DppUserErrorVaultTierPolicyNotSupported"))
        rid = f"{vault['id']}/backupPolicies/{request.params['backupPolicyName']}"
        stored = policy_body(rid, body)
        with state.lock:
            previous = state.resources.get(key_of(rid))
            if previous is not None and json.dumps(previous["properties"], sort_keys=True) != json.dumps(
                stored["properties"], sort_keys=True
            ):
                aks = any(str(t).lower() == AKS_DATASOURCE_TYPE.lower() for t in types)
                if aks:
                    # support matrix: "modification of a backup policy ... isn't supported" for AKS
                    raise _invalid(
                        "Modification of a backup policy isn't supported for Microsoft.ContainerService/"
                        "managedClusters; create a new policy.",
                        "policyRules",
                    )
            if previous is not None:
                stored["name"] = previous["name"]
            state.put("resources", rid, stored, principal=request.principal)
        return Response(200, headers, stored)

    def get_policy(request: Request) -> Response:
        vault = vault_or_404(request)
        headers: dict[str, str] = {}
        body = state.get("resources", f"{vault['id']}/backupPolicies/{request.params['backupPolicyName']}")
        if body is None:
            raise not_found(
                POLICY_TYPE, request.params["backupPolicyName"], request.params["resourceGroupName"]
            )
        return Response(200, headers, body)

    def list_policies(request: Request) -> Response:
        vault = vault_or_404(request)
        headers: dict[str, str] = {}
        items = list(state.children("resources", vault["id"] + "/backupPolicies"))
        return Response(200, headers, {"value": items})

    def delete_policy(request: Request) -> Response:
        vault = vault_or_404(request)
        headers: dict[str, str] = {}
        gone = state.remove(
            "resources",
            f"{vault['id']}/backupPolicies/{request.params['backupPolicyName']}",
            principal=request.principal,
        )
        return Response(200 if gone else 204, headers, None)

    # ---- backup instances -----------------------------------------------------------------------
    def validate_instance_body(vault: dict[str, Any], props: Any, *, bi_id: str | None) -> dict[str, Any]:
        if not isinstance(props, dict):
            raise invalid_body("The request must contain a backup instance 'properties' object.")
        if props.get("objectType") != "BackupInstance":
            raise _invalid("properties.objectType must be BackupInstance.", "objectType")
        info = props.get("dataSourceInfo")
        if not isinstance(info, dict) or not datasource_id(props):
            raise _invalid("properties.dataSourceInfo.resourceID is required.", "dataSourceInfo")
        if str(info.get("datasourceType", "")).lower() != AKS_DATASOURCE_TYPE.lower():
            raise _invalid(
                f"Only datasourceType {AKS_DATASOURCE_TYPE} is modelled by the emulator.", "datasourceType"
            )
        policy_id = str((props.get("policyInfo") or {}).get("policyId") or "")
        if not policy_id:
            raise _invalid("properties.policyInfo.policyId is required.", "policyInfo")
        if key_of(vault_id_of(policy_id)) != key_of(vault["id"]):
            raise _invalid("The backup policy must belong to the same Backup vault.", "policyInfo.policyId")
        policy = state.get("resources", policy_id)
        if policy is None:
            raise _invalid(f"The backup policy '{policy_id}' was not found.", "policyInfo.policyId")
        ptypes = [str(t).lower() for t in policy["properties"].get("datasourceTypes") or []]
        if AKS_DATASOURCE_TYPE.lower() not in ptypes:
            raise _invalid("The backup policy is not for Microsoft.ContainerService/managedClusters.")
        cluster = state.get("clusters", datasource_id(props))
        if cluster is not None and _region(cluster.get("location")) != _region(vault.get("location")):
            raise _invalid(
                "The Backup vault and the AKS cluster must be in the same region "
                f"(vault: {_region(vault.get('location'))}, cluster: {_region(cluster.get('location'))}).",
                "dataSourceInfo.resourceLocation",
            )
        for other in service.instances_for(datasource_id(props)):
            if bi_id is not None and key_of(other["id"]) == key_of(bi_id):
                continue
            other_vault = vault_id_of(str(other["id"]))
            error = cloud_error(
                "UserErrorDppDatasourceAlreadyProtected", vault=other_vault, instance=str(other["name"])
            )
            raise DataProtectionError(400, error)
        return props

    def put_instance(request: Request) -> Response:
        vault = vault_or_404(request)
        headers: dict[str, str] = {}
        body = request.json_object()
        rid = f"{vault['id']}/backupInstances/{request.params['backupInstanceName']}"
        props = validate_instance_body(vault, body.get("properties"), bi_id=rid)
        with state.lock:
            previous = state.resources.get(key_of(rid))
            if previous is not None and key_of(datasource_id(previous["properties"])) != key_of(
                datasource_id(props)
            ):
                raise _invalid("The datasource of a backup instance can't change.", "dataSourceInfo")
            stored = backup_instance_body(
                rid,
                props,
                provisioning_state="Provisioning" if previous is None else "Updating",
                protection_state="ConfiguringProtection",
            )
            state.put("resources", rid, stored, principal=request.principal, notify=False)
            op = service.new_operation(
                "bi-put",
                rid,
                vault_id=vault["id"],
                location=_region(vault.get("location")),
                principal=request.principal,
            )
            service.start_protection(rid, request.principal)
        state.notify("write", rid, stored, request.principal)
        if previous is None:
            headers.update(op_headers(request, op, location=None, retry=True))
            return Response(201, headers, stored)
        headers.update(op_headers(request, op, location=f"{rid}/operationResults/{op.id}", retry=True))
        return Response(202, headers, None)

    def get_instance(request: Request) -> Response:
        vault = vault_or_404(request)
        headers: dict[str, str] = {}
        body = state.get("resources", f"{vault['id']}/backupInstances/{request.params['backupInstanceName']}")
        if body is None:
            raise not_found(
                BI_TYPE, request.params["backupInstanceName"], request.params["resourceGroupName"]
            )
        return Response(200, headers, body)

    def list_instances(request: Request) -> Response:
        vault = vault_or_404(request)
        headers: dict[str, str] = {}
        with state.lock:
            items = [
                b
                for b in state.children("resources", vault["id"] + "/backupInstances")
                if str(b.get("type", "")).lower() == BI_TYPE.lower()
            ]
        return Response(200, headers, {"value": items})

    def delete_instance(request: Request) -> Response:
        vault = vault_or_404(request)
        headers: dict[str, str] = {}
        rid = f"{vault['id']}/backupInstances/{request.params['backupInstanceName']}"
        with state.lock:
            previous = state.resources.get(key_of(rid))
            if previous is None:
                return Response(204, headers, None)  # recording bi-delete
            new = copy.deepcopy(previous)
            new["properties"]["currentProtectionState"] = "SoftDeleting"
            new["properties"]["protectionStatus"] = {"status": "SoftDeleting"}
            state.put("resources", rid, new, principal=request.principal, notify=False)
            op = service.new_operation(
                "bi-delete",
                rid,
                vault_id=vault["id"],
                location=_region(vault.get("location")),
                principal=request.principal,
            )
            service.schedule_delete(rid, request.principal)
        state.notify("delete", rid, new, request.principal)
        headers.update(op_headers(request, op, location=f"{rid}/operationResults/{op.id}", retry=True))
        return Response(202, headers, None)

    def sync_instance(request: Request) -> Response:
        vault = vault_or_404(request)
        headers: dict[str, str] = {}
        rid = f"{vault['id']}/backupInstances/{request.params['backupInstanceName']}"
        data = request.json_object(required=False)
        if data.get("syncType", "Default") not in ("Default", "ForceResync"):
            raise _invalid("syncType must be Default or ForceResync.", "syncType")
        with state.lock:
            previous = state.resources.get(key_of(rid))
            if previous is None:
                raise not_found(
                    BI_TYPE, request.params["backupInstanceName"], request.params["resourceGroupName"]
                )
            stored = backup_instance_body(
                rid,
                previous["properties"],
                provisioning_state="Updating",
                protection_state="ConfiguringProtection",
            )
            state.put("resources", rid, stored, principal=request.principal, notify=False)
            op = service.new_operation(
                "bi-sync",
                rid,
                vault_id=vault["id"],
                location=_region(vault.get("location")),
                principal=request.principal,
            )
            service.start_protection(rid, request.principal)
        state.notify("write", rid, stored, request.principal)
        headers.update(op_headers(request, op, location=f"{rid}/operationResults/{op.id}", retry=True))
        return Response(202, headers, None)

    def validate_for_backup(request: Request) -> Response:
        vault = vault_or_404(request)
        data = request.json_object()
        props = validate_instance_body(vault, data.get("backupInstance"), bi_id=None)
        op = service.new_operation(
            "validate",
            vault["id"],
            vault_id=vault["id"],
            location=_region(vault.get("location")),
            principal=request.principal,
        )
        service.start_validation(op, vault, props)
        sub = request.params["subscriptionId"]
        location = f"/subscriptions/{sub}/providers/{DP}/locations/{op.location}/operationResults/{op.id}"
        # recording validate-for-backup: 202, Azure-AsyncOperation + Location, no Retry-After, no body
        return Response(202, op_headers(request, op, location=location, retry=False), None)

    # ---- operations -----------------------------------------------------------------------------
    def op_or_404(op_id: str) -> Operation:
        op = service.operation(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        return op

    def vault_operation_status(request: Request) -> Response:
        vault_or_404(request)
        headers: dict[str, str] = {}
        op = op_or_404(request.params["operationId"])
        return Response(200, headers, service.status_body(op, request.path))

    def location_operation_status(request: Request) -> Response:
        require_subscription(state, request.params["subscriptionId"])
        headers: dict[str, str] = {}
        op = op_or_404(request.params["operationId"])
        return Response(200, headers, service.status_body(op, request.path))

    def location_operation_result(request: Request) -> Response:
        p = request.params
        require_subscription(state, p["subscriptionId"])
        headers: dict[str, str] = {}
        op = op_or_404(p["operationId"])
        status = service.status(op)
        api = request.api_version or ""
        if status == "Inprogress":
            headers["Location"] = f"{request.base_url}{request.path}?api-version={api}"
            return Response(202, headers, None)
        if status == "Failed":
            error = op.error or cloud_error("UserErrorMissingRequiredPermissions")
            return Response(400, headers, {"error": error})
        headers["Azure-AsyncOperation"] = (
            f"{request.base_url}/subscriptions/{p['subscriptionId']}/providers/{DP}/locations/"
            f"{p['location']}/operationStatus/{op.id}?api-version={api}"
        )
        return Response(200, headers, op.result or {"objectType": "OperationJobExtendedInfo"})

    def instance_operation_result(request: Request) -> Response:
        vault = vault_or_404(request)
        headers: dict[str, str] = {}
        op = op_or_404(request.params["operationId"])
        status = service.status(op)
        if status == "Inprogress":
            headers["Location"] = f"{request.base_url}{request.path}?api-version={request.api_version or ''}"
            return Response(202, headers, None)
        body = state.get("resources", f"{vault['id']}/backupInstances/{request.params['backupInstanceName']}")
        if body is None:
            return Response(204, headers, None)
        return Response(200, headers, body)

    # ---- extension routing ----------------------------------------------------------------------
    def routing_list(request: Request) -> Response:
        resource_id = "/" + request.params["resourceId"].strip("/")
        parts = resource_id.strip("/").split("/")
        if len(parts) >= 2 and parts[0].lower() == "subscriptions":
            require_subscription(state, parts[1])
            request.params["subscriptionId"] = parts[1]
        is_cluster = "/providers/microsoft.containerservice/managedclusters/" in resource_id.lower()
        if is_cluster and state.get("clusters", resource_id) is None:
            raise not_found(
                "Microsoft.ContainerService/managedClusters",
                parts[-1],
                parts[3] if len(parts) > 3 else None,
            )
        headers: dict[str, str] = {}
        items = [routing_view(b) for b in service.instances_for(resource_id)]
        return Response(200, headers, {"value": items})

    # ---- admin ----------------------------------------------------------------------------------
    def admin_get(_request: Request) -> Response:
        return Response(200, {}, _admin_view(service))

    def admin_patch(request: Request) -> Response:
        data = request.json_object()
        try:
            service.settings.update(data)
        except (ValueError, TypeError) as exc:
            raise ArmError(400, "InvalidAdminRequest", str(exc)) from exc
        return Response(200, {}, _admin_view(service))

    def admin_tick(_request: Request) -> Response:
        checked = service.backup_tick_now()
        return Response(200, {}, {"checked": checked})

    def admin_operations(_request: Request) -> Response:
        with service._lock:
            ops = list(service.operations.values())
        return Response(
            200,
            {},
            {
                "operations": [
                    {
                        "id": o.id,
                        "kind": o.kind,
                        "resourceId": o.resource_id,
                        "status": service.status(o),
                        "error": o.error,
                    }
                    for o in ops
                ]
            },
        )

    add = router.add
    add("PUT", VAULT, put_vault, operation="BackupVaults_CreateOrUpdate")
    add("GET", VAULT, get_vault, operation="BackupVaults_Get")
    add("GET", VAULTS, list_vaults, operation="BackupVaults_GetInResourceGroup")
    add(
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.DataProtection/backupVaults",
        list_vaults,
        operation="BackupVaults_GetInSubscription",
    )
    add(
        "GET",
        VAULT + "/operationStatus/{operationId}",
        vault_operation_status,
        operation="OperationStatusBackupVaultContext_Get",
    )
    add(
        "GET",
        LOCATION_OPS + "/operationStatus/{operationId}",
        location_operation_status,
        operation="OperationStatus_Get",
    )
    add(
        "GET",
        LOCATION_OPS + "/operationResults/{operationId}",
        location_operation_result,
        operation="OperationResult_Get",
    )
    add("PUT", POLICY, put_policy, operation="BackupPolicies_CreateOrUpdate")
    add("GET", POLICY, get_policy, operation="BackupPolicies_Get")
    add("GET", POLICIES, list_policies, operation="BackupPolicies_List")
    add("DELETE", POLICY, delete_policy, operation="BackupPolicies_Delete")
    add("PUT", INSTANCE, put_instance, operation="BackupInstances_CreateOrUpdate")
    add("GET", INSTANCE, get_instance, operation="BackupInstances_Get")
    add("GET", INSTANCES, list_instances, operation="BackupInstances_List")
    add("DELETE", INSTANCE, delete_instance, operation="BackupInstances_Delete")
    add("POST", INSTANCE + "/sync", sync_instance, operation="BackupInstances_SyncBackupInstance")
    add(
        "GET",
        INSTANCE + "/operationResults/{operationId}",
        instance_operation_result,
        operation="BackupInstances_GetBackupInstanceOperationResult",
    )
    add(
        "POST",
        VAULT + "/validateForBackup",
        validate_for_backup,
        operation="BackupInstances_ValidateForBackup",
    )
    add(
        "GET",
        "{resourceId:path}/providers/Microsoft.DataProtection/backupInstances",
        routing_list,
        operation="BackupInstancesExtensionRouting_List",
    )
    add("GET", "/_emulator/dataprotection", admin_get, operation="Admin_DataProtectionGet", admin=True)
    add("PATCH", "/_emulator/dataprotection", admin_patch, operation="Admin_DataProtectionPatch", admin=True)
    add(
        "POST", "/_emulator/dataprotection/tick", admin_tick, operation="Admin_DataProtectionTick", admin=True
    )
    add(
        "GET",
        "/_emulator/dataprotection/operations",
        admin_operations,
        operation="Admin_DataProtectionOperations",
        admin=True,
    )
    if ctx.runtime is not None:
        # DataProtection's own quota header (x-ms-ratelimit-remaining-subscription-resource-requests) on its
        # vault, policy, instance and operation calls; the recorded validateForBackup POST carried ARM's
        # ...-subscription-writes instead, so POST actions (validateForBackup, sync) do not draw from it.
        ctx.runtime.quotas.attach(DATA_PROTECTION, namespaces=(DP,), methods=("PUT", "GET", "DELETE"))
    trusted_access.register(router, service)
    locks.register(router)


class DataProtectionError(ArmError):
    """A DataProtection error response: ``{"error": {additionalInfo, code, message, target}}`` as the REST
    walkthrough shows (e.g. 400 UserErrorDppDatasourceAlreadyProtected)."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(status, str(error["code"]), str(error["message"]))
        self.error = error

    def body(self) -> dict[str, Any]:
        return {"error": self.error}


def _admin_view(service: DataProtectionService) -> dict[str, Any]:
    return {
        "settings": service.settings.to_json(),
        "roleAssignmentCounts": dict(service.role_assignment_counts),
        "operations": len(service.operations),
    }


def _subscription_of(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1].lower()
    return None


def _count(state: EmulatorState, service: DataProtectionService, sub: str) -> int:
    """Role assignments at subscription, resource-group and resource scope of ``sub`` (cached per
    subscription; kept current by the observer)."""
    cached = service.role_assignment_counts.get(sub)
    if cached is not None:
        return cached
    prefix = f"/subscriptions/{sub}"
    with state.lock:
        count = sum(
            1
            for body in state.role_assignments.values()
            if key_of(str((body.get("properties") or {}).get("scope", ""))) == prefix
            or key_of(str((body.get("properties") or {}).get("scope", ""))).startswith(prefix + "/")
        )
    service.role_assignment_counts[sub] = count
    return count


def _install_precreate(state: EmulatorState, service: DataProtectionService) -> None:
    def precreate(subscription_id: str) -> None:
        sub = subscription_id.lower()
        limit = service.settings.role_assignment_limit
        if _count(state, service, sub) >= limit:
            raise ArmError(
                400,
                "RoleAssignmentLimitExceeded",
                "No more role assignments can be created. The subscription "
                f"'{subscription_id}' has reached its limit of {limit} role assignments.",
            )

    state.plugin_state[PRECREATE_HOOK] = precreate


# ---- estate --------------------------------------------------------------------------------------
def load_estate(state: EmulatorState, service: DataProtectionService, estate: dict[str, Any]) -> None:
    """Estate keys of this plug-in (README Part 3). Objects are stored as already provisioned."""
    block = estate.get("dataProtection") or {}
    tenant = str(estate.get("tenantId") or "72f988bf-86f1-41af-91ab-2d7cd011db47")
    with state.lock:
        for item in block.get("vaults") or []:
            if "type" in item and "properties" in item:
                body = dict(item)
            else:
                storage = item.get("storageType", "LocallyRedundant")
                request_body: dict[str, Any] = {
                    "location": item.get("location", "eastus"),
                    "identity": {"type": item.get("identity", "SystemAssigned")},
                    "properties": {
                        "storageSettings": [{"datastoreType": "VaultStore", "type": storage}],
                        "securitySettings": {
                            "softDeleteSettings": {
                                "state": item.get("softDelete", "On"),
                                "retentionDurationInDays": 14.0,
                            }
                        },
                    },
                }
                if item.get("principalId"):
                    request_body["identity"]["principalId"] = item["principalId"]
                if item.get("crossRegionRestore"):
                    request_body["properties"]["featureSettings"] = {
                        "crossRegionRestoreSettings": {"state": "Enabled"}
                    }
                if item.get("tags"):
                    request_body["tags"] = item["tags"]
                _ensure_group(state, item["id"], request_body["location"], tenant)
                sub = item["id"].strip("/").split("/")[1].lower()
                sub_tenant = state.subscriptions.get(sub, {}).get("tenantId", tenant)
                body = vault_body(
                    item["id"], request_body, tenant_id=sub_tenant, provisioning_state="Succeeded"
                )
            state.resources[key_of(body["id"])] = body
        for item in block.get("policies") or []:
            if "type" in item and "properties" in item:
                body = dict(item)
            else:
                rid = item.get("id") or f"{item['vaultId']}/backupPolicies/{item['name']}"
                body = policy_body(rid, policy_preset(item.get("strategy", "Week")))
            state.resources[key_of(body["id"])] = body
        recheck: list[str] = []
        for item in block.get("backupInstances") or []:
            if "type" in item and "properties" in item:
                body = dict(item)
            else:
                body = _instance_from_shorthand(state, item)
            state.resources[key_of(body["id"])] = body
            if item.get("recheck"):
                recheck.append(str(body["id"]))
        for item in block.get("roleAssignments") or []:
            role = str(item["role"])
            guid = next((g for g, n in ROLE_NAMES.items() if n.lower() == role.lower()), role.lower())
            sub = item["scope"].strip("/").split("/")[1]
            name = item.get("name") or deterministic_uuid("ra", item["scope"], item["principalId"], guid)
            rid = f"{item['scope'].rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"
            state.role_assignments[key_of(rid)] = {
                "id": rid,
                "name": name,
                "type": "Microsoft.Authorization/roleAssignments",
                "properties": {
                    "roleDefinitionId": (
                        f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
                    ),
                    "principalId": item["principalId"],
                    "principalType": "ServicePrincipal",
                    "scope": item["scope"],
                },
            }
        for item in estate.get("trustedAccessRoleBindings") or []:
            body = trusted_access.binding_body(item["clusterId"], item)
            state.resources[key_of(body["id"])] = body
        for item in estate.get("locks") or []:
            body = locks.lock_body(item["scope"], item.get("name", "lock"), item.get("level", "CanNotDelete"))
            state.resources[key_of(body["id"])] = body
    for bi_id in recheck:
        service.schedule_tick_for_loaded(bi_id)


def _ensure_group(state: EmulatorState, resource_id: str, location: str, tenant: str) -> None:
    """A vault declared in an undeclared subscription / resource group creates them (like the core estate)."""
    from emulator.resources.subscriptions import resource_group_body

    parts = resource_id.strip("/").split("/")
    sub, group = parts[1], parts[3]
    if state.subscriptions.get(sub.lower()) is None:
        state.add_subscription(sub, tenant_id=tenant)
    if state.resource_groups.get(f"/subscriptions/{sub}/resourcegroups/{group}".lower()) is None:
        body = resource_group_body(sub, group, location, {})
        state.resource_groups[body["id"].lower()] = body


def _instance_from_shorthand(state: EmulatorState, item: dict[str, Any]) -> dict[str, Any]:
    """``{vaultId, clusterId, name?, policyName|policyId, snapshotResourceGroupId?, currentProtectionState?,
    errorCode?}`` → the body a CLI-style PUT would have produced (aks_helper.py naming)."""
    vault_id = item["vaultId"]
    cluster_id = item["clusterId"]
    cluster = state.clusters.get(key_of(cluster_id)) or {}
    cluster_name = cluster_id.rstrip("/").split("/")[-1]
    name = item.get("name") or f"{cluster_name}-{deterministic_uuid('bi', vault_id, cluster_id)[:8]}"
    policy_id = (
        item.get("policyId") or f"{vault_id}/backupPolicies/{item.get('policyName', 'AKSBackupPolicy-Week')}"
    )
    snapshot_rg = item.get("snapshotResourceGroupId") or "/".join(cluster_id.split("/")[:5])
    location = cluster.get("location") or item.get("location", "eastus")
    info = {
        "datasourceType": AKS_DATASOURCE_TYPE,
        "resourceID": cluster_id,
        "resourceLocation": location,
        "resourceName": cluster_name,
        "resourceType": "Microsoft.ContainerService/managedclusters",
        "resourceUri": cluster_id,
    }
    props = {
        "objectType": "BackupInstance",
        "friendlyName": f"{cluster_name}\\fullbackup",
        "dataSourceInfo": {**info, "objectType": "Datasource"},
        "dataSourceSetInfo": {**info, "objectType": "DatasourceSet"},
        "policyInfo": {
            "policyId": policy_id,
            "policyParameters": {
                "backupDatasourceParametersList": [
                    {
                        "objectType": "KubernetesClusterBackupDatasourceParameters",
                        "includeClusterScopeResources": True,
                        "snapshotVolumes": True,
                    }
                ],
                "dataStoreParametersList": [
                    {
                        "objectType": "AzureOperationalStoreParameters",
                        "dataStoreType": "OperationalStore",
                        "resourceGroupId": snapshot_rg,
                    }
                ],
            },
        },
    }
    protection = item.get("currentProtectionState", "ProtectionConfigured")
    error = user_facing_error(item["errorCode"]) if item.get("errorCode") else None
    return backup_instance_body(
        f"{vault_id}/backupInstances/{name}",
        props,
        provisioning_state="Succeeded",
        protection_state=protection,
        error=error,
    )
