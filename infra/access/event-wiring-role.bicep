// Custom role for the wiring step (remediator/service/wiring.py; docs/deploy.md, "Wiring that follows the scope"):
// create the events resource group, the Event Grid system topics and their event subscriptions in subscriptions
// that join a managed management group. Nothing else: no delete, no other Event Grid resource (custom topics,
// domains, namespaces), no data plane. No built-in role is this narrow: EventGrid Contributor is
// Microsoft.EventGrid/* everywhere below the scope. Created ONCE by an administrator (roleDefinitions/write) and
// assigned by infra/access/management-group-access.bicep (or Terraform) at each managed management group, next to
// the built-in EventGrid EventSubscription Contributor:
//   az deployment mg create --management-group-id <mg> --location <region> \
//     --template-file infra/access/event-wiring-role.bicep --parameters roleNameSuffix=shared
targetScope = 'managementGroup'

@description('Unique per deployment so several environments can coexist in one tenant.')
param roleNameSuffix string

@description('Scopes the role can be assigned at: the managed management groups (a custom role may name one management group).')
param assignableScopes array = [
  managementGroup().id
]

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(managementGroup().id, 'aks-backup-remediator-event-wiring', roleNameSuffix)
  properties: {
    roleName: 'AKS Backup Remediator Event Wiring (${roleNameSuffix})'
    description: 'Create the resource group, Event Grid system topics and event subscriptions that wire a subscription to the AKS backup remediator; no delete.'
    type: 'CustomRole'
    assignableScopes: assignableScopes
    permissions: [
      {
        actions: [
          'Microsoft.Resources/subscriptions/resourceGroups/read'
          'Microsoft.Resources/subscriptions/resourceGroups/write'
          'Microsoft.EventGrid/systemTopics/read'
          'Microsoft.EventGrid/systemTopics/write'
          'Microsoft.EventGrid/systemTopics/eventSubscriptions/read'
          'Microsoft.EventGrid/systemTopics/eventSubscriptions/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

@description('GUID of the custom role (the role definition name).')
output roleGuid string = role.name
