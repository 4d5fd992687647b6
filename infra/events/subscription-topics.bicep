// One managed subscription's event plumbing: the two system topics with the subscription as source. A topic that
// already exists for the source (found by the preflight, tools/deploy) is reused, never created a second time:
// Event Grid answers "Only one system topic is allowed per source" (docs/deploy.md, "Existing system topics").
// The events resource group is created only when at least one topic is.
targetScope = 'subscription'

param resourceGroupName string
param location string

@description('{name, resourceGroup, principalId, create}: the Microsoft.Resources.Subscriptions topic to create or reuse.')
param resourcesTopic object

@description('{name, resourceGroup, principalId, create}: the Microsoft.PolicyInsights.PolicyStates topic to create or reuse.')
param policyTopic object

param tags object = {}

var createAny = resourcesTopic.create || policyTopic.create

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = if (createAny) {
  name: resourceGroupName
  location: location
  tags: tags
}

module topics 'system-topics.bicep' = if (createAny) {
  name: 'remediator-system-topics'
  scope: resourceGroup(resourceGroupName)
  dependsOn: [
    group
  ]
  params: {
    resourcesTopicName: resourcesTopic.name
    policyTopicName: policyTopic.name
    createResourcesTopic: resourcesTopic.create
    createPolicyTopic: policyTopic.create
    tags: tags
  }
}

output resourcesTopicPrincipalId string = resourcesTopic.create ? topics.outputs.resourcesTopicPrincipalId : resourcesTopic.principalId
output policyTopicPrincipalId string = policyTopic.create ? topics.outputs.policyTopicPrincipalId : policyTopic.principalId
