// Second template, deployed by the azd postdeploy hook (infra/hooks/postdeploy.sh) AFTER the code is deployed:
// an event subscription with endpoint type AzureFunction is validated against the function at creation time,
// so on_cluster_write and on_policy_state must already be indexed by the host.
//   az deployment sub create --location <region> --template-file infra/events.bicep --parameters ...
// The system topics and the dead-letter grants are made by main.bicep (azd provision).
targetScope = 'subscription'

@description('Subscription ids whose system topics feed the app (output EVENT_SUBSCRIPTION_IDS of main.bicep).')
param eventSubscriptionIds array

@description('Resource group holding the system topics in each of those subscriptions.')
param eventsResourceGroupName string

param resourcesTopicName string
param policyTopicName string

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

module subscriptions 'events/event-subscriptions.bicep' = [for subscriptionId in eventSubscriptionIds: {
  name: 'remediator-events-${uniqueString(subscriptionId)}'
  scope: resourceGroup(subscriptionId, eventsResourceGroupName)
  params: {
    resourcesTopicName: resourcesTopicName
    policyTopicName: policyTopicName
    functionAppId: functionAppId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
}]
