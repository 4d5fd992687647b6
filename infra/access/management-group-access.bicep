// The same control-plane roles as scope-roles.bicep and the same Policy 1/2 audits as audit-policies.bicep, at a
// management group, for configs whose scope lists managementGroups. Deployed on its own (main.bicep is a
// subscription deployment and does not reach management groups):
//   az deployment mg create --management-group-id <mg> --location <region> \
//     --template-file infra/access/management-group-access.bicep \
//     --parameters principalId=<REMEDIATOR_PRINCIPAL_ID> mode=install \
//       [wireNewSubscriptions=true eventWiringRoleId=<GUID of the Event Wiring role>]
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

@description('Assign the built-in Policy 1/2 audits at this management group (AuditIfNotExists, no identity).')
param assignAuditPolicies bool = true

@description('Let the app wire subscriptions that join this group to Event Grid (docs/deploy.md, "Wiring that follows the scope"): EventGrid EventSubscription Contributor plus the Event Wiring custom role here.')
param wireNewSubscriptions bool = false

@description('GUID of the Event Wiring custom role (infra/access/event-wiring-role.bicep, created once by an administrator); required when wireNewSubscriptions.')
param eventWiringRoleId string = ''

var roles = loadJsonContent('../roles.json')
var policies = loadJsonContent('../policies.json')

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

// Wiring that follows the scope: the timer's wiring step creates the system topics and event subscriptions of
// subscriptions that join this group later. EventGrid EventSubscription Contributor carries
// Microsoft.EventGrid/eventSubscriptions/write, which Event Grid checks on the event source (the subscription);
// the custom role adds exactly the system-topic and resource-group writes (event-wiring-role.bicep).
resource eventSubscriptionContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (wireNewSubscriptions) {
  name: guid(managementGroup().id, principalId, roles.eventGridEventSubscriptionContributor)
  properties: {
    roleDefinitionId: tenantResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridEventSubscriptionContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: event subscriptions of subscriptions that join this management group'
  }
}

resource eventWiring 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (wireNewSubscriptions) {
  name: guid(managementGroup().id, principalId, 'event-wiring')
  properties: {
    roleDefinitionId: tenantResourceId('Microsoft.Authorization/roleDefinitions', eventWiringRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: system topics (and their resource group) of subscriptions that join this management group'
  }
}

// Management-group assignment names are limited to 24 characters.
var audits = [
  {
    name: 'aks-backup-p1-audit'
    definition: policies.extensionInstalledAudit
    displayName: 'AKS backup: Azure Backup extension installed (audit, aks-backup-remediator)'
  }
  {
    name: 'aks-backup-p2-audit'
    definition: policies.backupEnabledAudit
    displayName: 'AKS backup: Azure Backup enabled (audit, aks-backup-remediator)'
  }
]

resource auditAssignments 'Microsoft.Authorization/policyAssignments@2024-04-01' = [for audit in audits: if (assignAuditPolicies) {
  name: audit.name
  properties: {
    displayName: audit.displayName
    description: 'Assigned by aks-backup-remediator (docs/deploy.md, "Audit policies"). Audit only: no identity, no remediation.'
    policyDefinitionId: tenantResourceId('Microsoft.Authorization/policyDefinitions', audit.definition)
    enforcementMode: 'Default'
    parameters: {
      effect: {
        value: 'AuditIfNotExists'
      }
    }
  }
}]
