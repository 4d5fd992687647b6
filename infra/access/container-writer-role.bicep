// Custom role: create (and read) blob containers on a storage account, nothing else. No built-in role is this
// narrow: Storage Account Contributor can also list keys and change network rules. The remediator creates the
// backup container azure-aks-backup-<cluster> the way the built-in DINE policy does.
targetScope = 'subscription'

@description('Unique per deployment so several environments can coexist in one tenant.')
param roleNameSuffix string

@description('Scopes the role can be assigned at: the subscriptions holding the backup storage accounts.')
param assignableScopes array

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'aks-backup-remediator-container-writer', roleNameSuffix)
  properties: {
    roleName: 'AKS Backup Remediator Container Writer (${roleNameSuffix})'
    description: 'Read storage accounts and create blob containers for AKS backup; no keys, no data access.'
    type: 'CustomRole'
    assignableScopes: assignableScopes
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/read'
          'Microsoft.Storage/storageAccounts/blobServices/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/write'
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
