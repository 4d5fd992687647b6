// One managed subscription's event plumbing: a resource group holding its two system topics.
targetScope = 'subscription'

param resourceGroupName string
param location string
param resourcesTopicName string
param policyTopicName string
param tags object = {}

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module topics 'system-topics.bicep' = {
  name: 'remediator-system-topics'
  scope: group
  params: {
    resourcesTopicName: resourcesTopicName
    policyTopicName: policyTopicName
    tags: tags
  }
}

output resourcesTopicPrincipalId string = topics.outputs.resourcesTopicPrincipalId
output policyTopicPrincipalId string = topics.outputs.policyTopicPrincipalId
