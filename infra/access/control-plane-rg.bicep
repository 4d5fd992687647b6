// The deployment variant with per-resource-group control-plane roles (docs/deploy.md, "Narrower control-plane
// roles"; docs/security.md §1, M2/M3): the app's WRITE role for its mode, at one resource group of a listed
// subscription, instead of at the whole subscription. main.bicep deploys it once per entry of
// deployment.controlPlaneResourceGroups (tools/deploy --control-plane-resource-group) and then passes mode
// 'audit' to scope-roles.bicep for the listed subscriptions, so Reader stays at the subscription (inventory,
// report, preflight) and no write role does.
// Kubernetes Extension Contributor: create the azure-aks-backup extension (install mode only).
// Resource Policy Contributor: only in policy-task mode (create remediation tasks).
// Never Owner, never Contributor (tests/unit/infra checks this).
targetScope = 'resourceGroup'

param principalId string

@description('remediation.mode of the config: install (the app installs), policy-task (the app creates remediation tasks), audit (read only).')
@allowed([
  'install'
  'policy-task'
  'audit'
])
param mode string

var roles = loadJsonContent('../roles.json')

resource extensionContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'install') {
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
