// Grants inside the app's resource group, all to the app's user-assigned identity and all data-plane or
// telemetry roles on single resources: host storage (blob/queue/table), App Insights ingestion, outcome topic.

param principalId string
param storageAccountName string
param applicationInsightsName string
param outcomeTopicName string

var roles = loadJsonContent('../roles.json')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource outcomeTopic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: outcomeTopicName
}

// The Functions host keeps its leases and keys in blobs and needs Blob Data Owner on identity-based host storage;
// the Flex plan reads the deployment package with the same identity.
resource hostBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Queue trigger, poison queue and the product's WorkQueue.enqueue.
resource hostQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The journal table.
resource hostTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Entra-authenticated telemetry ingestion (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
resource telemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Outcome events (OutcomePublisher.publish).
resource outcomeSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outcomeTopic.id, principalId, roles.eventGridDataSender)
  scope: outcomeTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
