// Second template, deployed by the azd postdeploy hook (infra/hooks/postdeploy.sh) AFTER the code is deployed:
// an event subscription with endpoint type AzureFunction is validated against the function at creation time,
// so on_cluster_write and on_policy_state must already be indexed by the host.
//   az deployment sub create --location <region> --template-file infra/events.bicep --parameters ...
// The system topics and the dead-letter grants are made by main.bicep (azd provision).
targetScope = 'subscription'

@description('Per managed subscription, its two system topics (output EVENT_WIRING of main.bicep): [{subscriptionId, resourcesTopic: {name, resourceGroup}, policyTopic: {name, resourceGroup}}]. Reused topics keep their own resource group.')
param eventWiring array

@description('Resource id of the Functions app.')
param functionAppId string

param deadLetterStorageAccountId string
param deadLetterContainerName string

@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

module clusterWrites 'events/event-subscriptions.bicep' = [for wiring in eventWiring: {
  name: 'remediator-events-arm-${uniqueString(wiring.subscriptionId)}'
  scope: resourceGroup(wiring.subscriptionId, wiring.resourcesTopic.resourceGroup)
  params: {
    topic: 'resources'
    topicName: wiring.resourcesTopic.name
    functionAppId: functionAppId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
}]

module policyStates 'events/event-subscriptions.bicep' = [for wiring in eventWiring: {
  name: 'remediator-events-policy-${uniqueString(wiring.subscriptionId)}'
  scope: resourceGroup(wiring.subscriptionId, wiring.policyTopic.resourceGroup)
  params: {
    topic: 'policy'
    topicName: wiring.policyTopic.name
    functionAppId: functionAppId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
}]
