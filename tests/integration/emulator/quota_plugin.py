"""A route module for test_quota_headers.py: how a plug-in attaches a provider quota to its routes (the way
the DataProtection plug-in attaches ``dataProtection``)."""

from __future__ import annotations

from emulator.quotas import DATA_PROTECTION
from emulator.routing import PluginContext, Request, Response, Router

VAULT = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.DataProtection"
    "/backupVaults/{vaultName}"
)


def register(router: Router, ctx: PluginContext) -> None:
    def get_vault(request: Request) -> Response:
        return Response(200, {}, {"name": request.params["vaultName"]})

    def validate(request: Request) -> Response:
        return Response(202, {}, None)

    router.add("GET", VAULT, get_vault, operation="BackupVaults_Get")
    router.add("POST", VAULT + "/validateForBackup", validate, operation="BackupInstances_ValidateForBackup")
    # recorded: vault/policy/instance calls carry the DataProtection header, validateForBackup does not
    ctx.runtime.quotas.attach(DATA_PROTECTION, namespaces=("Microsoft.DataProtection",), methods=("GET",))
