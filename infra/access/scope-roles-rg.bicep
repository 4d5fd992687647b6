// Control-plane roles of the remediator identity at one managed resource group (config scope.resourceGroups).
// Reader: GET clusters, extensions, storage accounts; Resource Graph inventory.
// Kubernetes Extension Contributor: create the azure-aks-backup extension (install mode only).
// Resource Policy Contributor: only in policy-task mode (create remediation tasks).
// Protect mode: the protect-writer custom role (access/protect-writer-role.bicep: trusted-access bindings, the
// snapshot resource group, vault/policy/instance writes) and Role Based Access Control Administrator limited by
// an ABAC condition to exactly the roles the protect chain grants the backup vault's and the cluster's
// identities (infra/protect-roles.json, service principals only). The app itself never holds them.
// Never Owner, never Contributor (tests/unit/infra checks this).
targetScope = 'resourceGroup'

param principalId string

@description('remediation.mode of the config: install (the app installs), policy-task (the app creates remediation tasks), audit (read only), protect (install and configure Azure Backup end to end).')
@allowed([
  'install'
  'policy-task'
  'audit'
  'protect'
])
param mode string

@description('GUID of the protect-writer custom role (access/protect-writer-role.bicep); protect mode only.')
param protectWriterRoleGuid string = ''

var roles = loadJsonContent('../roles.json')
var protectRoles = loadJsonContent('../protect-roles.json')

// The modes in which the app installs the extension itself.
var installsExtension = contains([
  'install'
  'protect'
], mode)

// The roles the remediator may grant (and revoke) here in protect mode: the vault identity's Reader, Disk
// Snapshot Contributor and Data Operator for Managed Disks, the cluster identity's Contributor on the snapshot
// resource group. Both halves: a write is checked against @Request, a delete against @Resource.
var protectGrantable = '${protectRoles.reader}, ${protectRoles.diskSnapshotContributor}, ${protectRoles.dataOperatorForManagedDisks}, ${protectRoles.contributor}'
var protectCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${protectGrantable}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${protectGrantable}}))'

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roles.reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: read clusters, extensions and storage accounts; Resource Graph'
  }
}

resource extensionContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (installsExtension) {
  name: guid(resourceGroup().id, principalId, roles.kubernetesExtensionContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.kubernetesExtensionContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: install the azure-aks-backup cluster extension'
  }
}

resource policyContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'policy-task') {
  name: guid(resourceGroup().id, principalId, roles.resourcePolicyContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.resourcePolicyContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: create policy remediation tasks (policy-task mode)'
  }
}

resource protectWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'protect') {
  name: guid(resourceGroup().id, principalId, protectWriterRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', protectWriterRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: vaults, policies, backup instances, trusted access, snapshot resource groups (protect mode)'
  }
}

resource protectGrants 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'protect') {
  name: guid(resourceGroup().id, principalId, roles.roleBasedAccessControlAdministrator, 'protect')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.roleBasedAccessControlAdministrator)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: grant the backup vault and cluster identities the roles protect mode needs, only those'
    condition: protectCondition
    conditionVersion: '2.0'
  }
}
