// The Event Grid system topics of one managed subscription that do not exist yet (subscription-topics.bicep
// decides). Each has a system-assigned identity that writes undeliverable events to the dead-letter container
// (granted in app/deadletter-access.bicep). The event subscriptions themselves are created after code deploy by
// ../events.bicep, because an AzureFunction endpoint must already exist when the subscription is created.

param resourcesTopicName string
param policyTopicName string
param createResourcesTopic bool = true
param createPolicyTopic bool = true
param tags object = {}

resource resourcesTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (createResourcesTopic) {
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

resource policyTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (createPolicyTopic) {
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

output resourcesTopicPrincipalId string = createResourcesTopic ? resourcesTopic.identity.principalId : ''
output policyTopicPrincipalId string = createPolicyTopic ? policyTopic.identity.principalId : ''
