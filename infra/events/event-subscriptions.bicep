// The event subscriptions of one managed subscription, on its system topics (created by system-topics.bicep or
// reused). Deployed once per topic, because a reused topic may live in another resource group than ours:
// `topic` says which of the two subscriptions this deployment creates.
// Endpoint type AzureFunction: Event Grid calls the function by resource id, so no function key is handled here.
// Both retry (maxDeliveryAttempts / eventTimeToLiveInMinutes) and dead-letter to a blob container with the topic's
// identity. Filters: see docs/deploy.md and shared/reference/platform_facts.md 1.4.

@description('Which event subscription to create: resources (on the Microsoft.Resources.Subscriptions topic) or policy (on the Microsoft.PolicyInsights.PolicyStates topic).')
@allowed([
  'resources'
  'policy'
])
param topic string

@description('Name of that system topic (in the resource group this module is deployed to).')
param topicName string

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

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

resource clusterWrites 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (topic == 'resources') {
  parent: systemTopic
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

resource policyStates 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (topic == 'policy') {
  parent: systemTopic
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
