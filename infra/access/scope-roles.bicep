// Control-plane roles of the remediator identity at one managed subscription (config scope.subscriptions).
// Reader: GET clusters, extensions, storage accounts; Resource Graph inventory.
// Kubernetes Extension Contributor: create the azure-aks-backup extension (install mode only).
// Resource Policy Contributor: only in policy-task mode (create remediation tasks).
// Never Owner, never Contributor (tests/unit/infra checks this).
targetScope = 'subscription'

param principalId string

@description('remediation.mode of the config: install (the app installs), policy-task (the app creates remediation tasks), audit (read only).')
@allowed([
  'install'
  'policy-task'
  'audit'
])
param mode string

var roles = loadJsonContent('../roles.json')

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roles.reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: read clusters, extensions and storage accounts; Resource Graph'
  }
}

resource extensionContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'install') {
  name: guid(subscription().id, principalId, roles.kubernetesExtensionContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.kubernetesExtensionContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: install the azure-aks-backup cluster extension'
  }
}

resource policyContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'policy-task') {
  name: guid(subscription().id, principalId, roles.resourcePolicyContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.resourcePolicyContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: create policy remediation tasks (policy-task mode)'
  }
}
