// Host storage of the Functions app: deployment package, host state, the work queue (+ poison queues), the journal
// table and the Event Grid dead-letter container. Shared keys are disabled: every client (host, product, Event Grid
// dead-lettering) authenticates with Entra ID.

@description('Storage account name (3-24 lower-case letters and digits).')
param name string

param location string
param tags object = {}

@description('SKU of the host storage account. ZRS exists only in some regions (infra/regions.json); the preflight picks ZRS there and LRS elsewhere, and refuses a zone SKU where the region has none.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_ZRS'

@description('Blob container the Flex Consumption plan deploys the app package from.')
param deploymentContainerName string

@description('Blob container Event Grid writes undeliverable events to.')
param deadLetterContainerName string

@description('Queue of durable work items (REMEDIATOR_WORK_QUEUE); the host adds "<name>-poison".')
param workQueueName string

@description('Table holding decisions, actions and outcomes (REMEDIATOR_JOURNAL_TABLE).')
param journalTableName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:The Flex app runs without VNet integration and Event Grid dead-letters from outside; access is Entra-only (shared keys off). Private endpoints: docs/deploy.md "Hardening".
  // checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: the public endpoint stays reachable, but only Entra-authenticated principals with data roles get in.
  // checkov:skip=CKV_AZURE_206:ZRS (LRS where the region has no zones) on purpose: the app runs in one region and the sweep re-derives every cluster's state; only journal history is lost with the region (set hostStorageSku Standard_GZRS/GRS to keep it).
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource workQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: workQueueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${workQueueName}-poison'
}

// Where the host moves items the poison function (reconcile_poison) failed on 5 times. Nothing drains it; the
// alert "poison-poison-queue-not-empty" (app/alerts.bicep) watches it and docs/operations.md says what to do.
resource poisonPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${workQueueName}-poison-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource journalTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: journalTableName
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output deploymentContainerName string = deploymentContainer.name
output deadLetterContainerName string = deadLetterContainer.name
