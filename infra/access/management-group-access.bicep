// The same control-plane roles as scope-roles.bicep, at a management group, for configs whose scope lists
// managementGroups. Deployed on its own (a subscription deployment cannot target a management group):
//   az deployment mg create --management-group-id <mg> --location <region> \
//     --template-file infra/access/management-group-access.bicep \
//     --parameters principalId=<REMEDIATOR_PRINCIPAL_ID> mode=install
targetScope = 'managementGroup'

@description('Object (principal) id of the remediator user-assigned identity (azd output REMEDIATOR_PRINCIPAL_ID).')
param principalId string

@description('remediation.mode of the config: install, policy-task or audit.')
@allowed([
  'install'
  'policy-task'
  'audit'
])
param mode string = 'install'

var roles = loadJsonContent('../roles.json')

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, principalId, roles.reader)
  properties: {
    roleDefinitionId: tenantResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: read clusters, extensions and storage accounts; Resource Graph'
  }
}

resource extensionContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'install') {
  name: guid(managementGroup().id, principalId, roles.kubernetesExtensionContributor)
  properties: {
    roleDefinitionId: tenantResourceId('Microsoft.Authorization/roleDefinitions', roles.kubernetesExtensionContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: install the azure-aks-backup cluster extension'
  }
}

resource policyContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (mode == 'policy-task') {
  name: guid(managementGroup().id, principalId, roles.resourcePolicyContributor)
  properties: {
    roleDefinitionId: tenantResourceId('Microsoft.Authorization/roleDefinitions', roles.resourcePolicyContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: create policy remediation tasks (policy-task mode)'
  }
}
