// Protect mode: the app identity at the resource group of a backup vault the config names or presets
// (regionTargets.<region>.backupVault): Reader (read the vault, its policies and operations) and the
// protect-writer custom role (create the vault, its policy and backup instances; validate; re-sync). Deployed
// for every vault resource group even when a managed scope covers it already (idempotent).
targetScope = 'resourceGroup'

param principalId string

@description('GUID of the protect-writer custom role (access/protect-writer-role.bicep).')
param protectWriterRoleGuid string

var roles = loadJsonContent('../roles.json')

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roles.reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: read backup vaults, policies and their operations (protect mode)'
  }
}

resource protectWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, protectWriterRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', protectWriterRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: vaults, policies, backup instances (protect mode)'
  }
}
