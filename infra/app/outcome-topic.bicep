// Event Grid custom topic the product publishes outcome events to (AksBackupRemediator.Installed, .GaveUp, ...).
// Key authentication is disabled: the app publishes with its managed identity (EventGrid Data Sender, main.bicep).

param name string
param location string
param tags object = {}

@description('Schema the publisher sends; must match remediator/adapters/publisher.py.')
@allowed([
  'CloudEventSchemaV1_0'
  'EventGridSchema'
])
param inputSchema string = 'EventGridSchema'

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  // checkov:skip=CKV_AZURE_193:The app publishes without VNet integration, so the topic keeps its public endpoint; local (key) auth is disabled, publishers need EventGrid Data Sender.
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: inputSchema
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

output id string = topic.id
output name string = topic.name
output endpoint string = topic.properties.endpoint
