// The two Event Grid system topics of one managed subscription. Each has a system-assigned identity that writes
// undeliverable events to the dead-letter container (granted in app/deadletter-access.bicep). The event
// subscriptions themselves are created after code deploy by ../events.bicep, because an AzureFunction endpoint
// must already exist when the subscription is created.
//
// Azure allows ONE system topic per source and topic type: if the subscription already has a
// Microsoft.Resources.Subscriptions or Microsoft.PolicyInsights.PolicyStates system topic, this deployment fails
// with a conflict; see docs/deploy.md ("Subscriptions that already have system topics").

param resourcesTopicName string
param policyTopicName string
param tags object = {}

resource resourcesTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: resourcesTopicName
  location: 'global'
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource policyTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: policyTopicName
  location: 'global'
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.PolicyInsights.PolicyStates'
  }
}

output resourcesTopicPrincipalId string = resourcesTopic.identity.principalId
output policyTopicPrincipalId string = policyTopic.identity.principalId
