// Lets the system topics of one managed subscription write dead-lettered events into the dead-letter container
// (and nowhere else): Storage Blob Data Contributor at container scope. Shared keys are disabled on the account,
// so Event Grid must dead-letter with its resource identity.

param storageAccountName string
param containerName string

@description('Principal ids of the system topics\' system-assigned identities.')
param principalIds array

var roles = loadJsonContent('../roles.json')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: containerName
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in principalIds: {
  name: guid(container.id, principalId, roles.storageBlobDataContributor)
  scope: container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aks-backup-remediator: Event Grid dead-lettering'
  }
}]
