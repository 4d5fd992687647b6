// The two event subscriptions of one managed subscription, on the system topics made by system-topics.bicep.
// Endpoint type AzureFunction: Event Grid calls the function by resource id, so no function key is handled here.
// Both retry (maxDeliveryAttempts / eventTimeToLiveInMinutes) and dead-letter to a blob container with the topic's
// identity. Filters: see docs/deploy.md and shared/reference/platform_facts.md 1.4.

param resourcesTopicName string
param policyTopicName string

@description('Resource id of the Functions app (Microsoft.Web/sites).')
param functionAppId string

param clusterWriteFunctionName string = 'on_cluster_write'
param policyStateFunctionName string = 'on_policy_state'

@description('Resource id of the storage account holding the dead-letter container.')
param deadLetterStorageAccountId string
param deadLetterContainerName string

@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

resource resourcesTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: resourcesTopicName
}

resource policyTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: policyTopicName
}

resource clusterWrites 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: resourcesTopic
  name: 'aks-cluster-writes'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${clusterWriteFunctionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
      ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: [
            'Microsoft.ContainerService/managedClusters/write'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

resource policyStates 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: policyTopic
  name: 'aks-policy-states'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${policyStateFunctionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.PolicyInsights.PolicyStateCreated'
        'Microsoft.PolicyInsights.PolicyStateChanged'
      ]
      advancedFilters: [
        {
          operatorType: 'StringContains'
          key: 'Subject'
          values: [
            '/providers/Microsoft.ContainerService/managedClusters/'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}
