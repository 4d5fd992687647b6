// The deployment variant with per-resource-group control-plane roles (docs/deploy.md, "Narrower control-plane
// roles"; docs/security.md §1, M2/M3): the app's WRITE role for its mode, at one resource group of a listed
// subscription, instead of at the whole subscription. main.bicep deploys it once per entry of
// deployment.controlPlaneResourceGroups (tools/deploy --control-plane-resource-group) and then passes mode
// 'audit' to scope-roles.bicep for the listed subscriptions, so Reader stays at the subscription (inventory,
// report, preflight) and no write role does.
// Kubernetes Extension Contributor: create the azure-aks-backup extension (install and protect mode).
// Resource Policy Contributor: only in policy-task mode (create remediation tasks).
// Protect mode: the protect-writer custom role and the role-assignment writer limited to the protect chain's
// roles, as in scope-roles-rg.bicep. The snapshot resource group must then exist already (creating a resource
// group is a subscription-scope write): list it as a control-plane resource group (docs/deploy.md).
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

// As in scope-roles-rg.bicep: the roles the remediator may grant (and revoke) here in protect mode.
var protectGrantable = '${protectRoles.reader}, ${protectRoles.diskSnapshotContributor}, ${protectRoles.dataOperatorForManagedDisks}, ${protectRoles.contributor}'
var protectCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${protectGrantable}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${protectGrantable}}))'

resource extensionContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (installsExtension) {
  name: guid(resourceGroup().id, principalId, roles.kubernetesExtensionContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.kubernetesExtensionContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: install the azure-aks-backup cluster extension (per-resource-group variant)'
  }
}

resource policyContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'policy-task') {
  name: guid(resourceGroup().id, principalId, roles.resourcePolicyContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.resourcePolicyContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: create policy remediation tasks (policy-task mode, per-resource-group variant)'
  }
}

resource protectWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'protect') {
  name: guid(resourceGroup().id, principalId, protectWriterRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', protectWriterRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: vaults, policies, backup instances, trusted access (protect mode, per-resource-group variant)'
  }
}

resource protectGrants 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'protect') {
  name: guid(resourceGroup().id, principalId, roles.roleBasedAccessControlAdministrator, 'protect')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.roleBasedAccessControlAdministrator)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: grant the backup vault and cluster identities the roles protect mode needs, only those (per-resource-group variant)'
    condition: protectCondition
    conditionVersion: '2.0'
  }
}
