// aks-backup-remediator: everything `azd provision` creates. Deployed at subscription scope (the app's
// subscription); reaches into the managed subscriptions with subscription-scoped modules.
//   app resource group: identity, host storage (+ queues, journal table, dead-letter container), Log Analytics,
//                       App Insights, Flex Consumption plan + Functions app, outcome topic, alerts
//   each event subscription: resource group with the two Event Grid system topics
//   managed scopes: least-privilege role assignments for the app identity (see docs/deploy.md, "Roles")
// The event subscriptions are created after code deploy by events.bicep (azd postdeploy hook).
targetScope = 'subscription'

@minLength(1)
@maxLength(24)
@description('azd environment name; seeds resource names.')
param environmentName string

@minLength(1)
@description('Region of the app resources (a region that offers Flex Consumption with Python 3.11).')
param location string

@description('The remediator config (same schema as docs/config.schema.json). Scope, storage targets and mode drive the role assignments below.')
param remediatorConfig object = loadJsonContent('remediator.config.json')

@description('Extra subscription ids (GUIDs) to wire to Event Grid, e.g. the subscriptions below the management groups of scope.managementGroups. Subscriptions of scope.subscriptions and scope.resourceGroups are wired automatically.')
param additionalEventSubscriptionIds array = []

@description('NCRONTAB schedule of the timer sweep (UTC). Default: hourly, at minute 7.')
param sweepSchedule string = '0 7 * * * *'

@description('E-mail addresses for alerts (optional).')
param alertEmails array = []

@description('Schema of the outcome topic; must match what remediator/adapters/publisher.py sends.')
@allowed([
  'CloudEventSchemaV1_0'
  'EventGridSchema'
])
param outcomeTopicInputSchema string = 'EventGridSchema'

@description('Name of the function bound to the poison queue (alert "poison-queue-not-empty").')
param poisonFunctionName string = 'reconcile_poison'

param inlineBudgetSeconds string = '20'
param maxAttempts string = '30'
param maxWaitSeconds string = '600'

var tags = {
  'azd-env-name': environmentName
  app: 'aks-backup-remediator'
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var prefix = 'aksbr-${environmentName}'
var workQueueName = 'reconcile-work'
var journalTableName = 'remediatorjournal'
var deadLetterContainerName = 'eventgrid-deadletter'
var deploymentContainerName = 'app-package-${token}'
var eventsResourceGroupName = 'rg-${prefix}-events'
var resourcesTopicName = 'evgt-${prefix}-arm'
var policyTopicName = 'evgt-${prefix}-policy'

// What the config asks for decides which roles are needed.
var mode = contains(remediatorConfig, 'remediation') ? (contains(remediatorConfig.remediation, 'mode') ? remediatorConfig.remediation.mode : 'install') : 'install'
var grantStorageAccess = contains(remediatorConfig, 'remediation') ? (contains(remediatorConfig.remediation, 'grantStorageAccess') ? remediatorConfig.remediation.grantStorageAccess : true) : true
var grantScope = contains(remediatorConfig, 'remediation') ? (contains(remediatorConfig.remediation, 'grantScope') ? remediatorConfig.remediation.grantScope : 'account') : 'account'
var scopeSubscriptions = contains(remediatorConfig.scope, 'subscriptions') ? remediatorConfig.scope.subscriptions : []
var scopeResourceGroups = contains(remediatorConfig.scope, 'resourceGroups') ? remediatorConfig.scope.resourceGroups : []
// Subscription refs may be ids (/subscriptions/<guid>) or bare GUIDs.
var scopeSubscriptionGuids = [for ref in scopeSubscriptions: toLower(last(split(ref, '/')))]
var resourceGroupSubscriptionGuids = [for ref in scopeResourceGroups: toLower(split(ref, '/')[2])]
var eventSubscriptionIds = union(scopeSubscriptionGuids, resourceGroupSubscriptionGuids, additionalEventSubscriptionIds)
var storageSubscriptionScopes = [for entry in items(remediatorConfig.storage): '/subscriptions/${split(entry.value, '/')[2]}']

resource appGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${prefix}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'remediator-identity'
  scope: appGroup
  params: {
    name: 'id-${prefix}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'remediator-storage'
  scope: appGroup
  params: {
    name: 'staksbr${token}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    workQueueName: workQueueName
    journalTableName: journalTableName
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'remediator-monitoring'
  scope: appGroup
  params: {
    logAnalyticsName: 'log-${prefix}'
    applicationInsightsName: 'appi-${prefix}'
    location: location
    tags: tags
  }
}

module outcomeTopic 'app/outcome-topic.bicep' = {
  name: 'remediator-outcome-topic'
  scope: appGroup
  params: {
    name: 'evgt-out-${token}'
    location: location
    tags: tags
    inputSchema: outcomeTopicInputSchema
  }
}

module appAccess 'app/app-access.bicep' = {
  name: 'remediator-app-access'
  scope: appGroup
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    outcomeTopicName: outcomeTopic.outputs.name
  }
}

module functionApp 'app/function.bicep' = {
  name: 'remediator-function'
  scope: appGroup
  dependsOn: [
    appAccess
  ]
  params: {
    name: 'func-${prefix}-${token}'
    planName: 'plan-${prefix}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    remediatorConfigJson: string(remediatorConfig)
    workQueueName: workQueueName
    journalTableName: journalTableName
    outcomeTopicEndpoint: outcomeTopic.outputs.endpoint
    sweepSchedule: sweepSchedule
    inlineBudgetSeconds: inlineBudgetSeconds
    maxAttempts: maxAttempts
    maxWaitSeconds: maxWaitSeconds
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'remediator-alerts'
  scope: appGroup
  params: {
    location: location
    tags: tags
    namePrefix: prefix
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    poisonFunctionName: poisonFunctionName
    workQueueName: workQueueName
    alertEmails: alertEmails
  }
}

// ---- managed scopes: least privilege for the app identity ----

module subscriptionRoles 'access/scope-roles.bicep' = [for subscriptionId in scopeSubscriptionGuids: {
  name: 'remediator-roles-${uniqueString(subscriptionId, environmentName)}'
  scope: subscription(subscriptionId)
  params: {
    principalId: identity.outputs.principalId
    mode: mode
  }
}]

module resourceGroupRoles 'access/scope-roles-rg.bicep' = [for groupId in scopeResourceGroups: {
  name: 'remediator-roles-${uniqueString(groupId, environmentName)}'
  scope: resourceGroup(split(groupId, '/')[2], split(groupId, '/')[4])
  params: {
    principalId: identity.outputs.principalId
    mode: mode
  }
}]

module containerWriterRole 'access/container-writer-role.bicep' = if (mode == 'install') {
  name: 'remediator-container-writer-role'
  params: {
    roleNameSuffix: '${environmentName}-${token}'
    assignableScopes: union(['/subscriptions/${subscription().subscriptionId}'], storageSubscriptionScopes)
  }
}

// One module per region; regions sharing an account repeat the same idempotent PUTs, so run them one at a time.
@batchSize(1)
module storageGrants 'access/storage-access.bicep' = [for entry in items(remediatorConfig.storage): if (mode == 'install') {
  name: 'remediator-storage-${uniqueString(entry.key, environmentName)}'
  scope: resourceGroup(split(entry.value, '/')[2], split(entry.value, '/')[4])
  params: {
    storageAccountName: split(entry.value, '/')[8]
    principalId: identity.outputs.principalId
    containerWriterRoleGuid: containerWriterRole.outputs.roleGuid
    grantStorageAccess: grantStorageAccess
    grantScope: grantScope
  }
}]

// ---- Event Grid: system topics per event subscription (event subscriptions: events.bicep, postdeploy) ----

module eventTopics 'events/subscription-topics.bicep' = [for subscriptionId in eventSubscriptionIds: {
  name: 'remediator-topics-${uniqueString(subscriptionId, environmentName)}'
  scope: subscription(subscriptionId)
  params: {
    resourceGroupName: eventsResourceGroupName
    location: location
    resourcesTopicName: resourcesTopicName
    policyTopicName: policyTopicName
    tags: tags
  }
}]

module deadLetterAccess 'app/deadletter-access.bicep' = [for (subscriptionId, i) in eventSubscriptionIds: {
  name: 'remediator-deadletter-${uniqueString(subscriptionId, environmentName)}'
  scope: appGroup
  params: {
    storageAccountName: storage.outputs.name
    containerName: deadLetterContainerName
    principalIds: [
      eventTopics[i].outputs.resourcesTopicPrincipalId
      eventTopics[i].outputs.policyTopicPrincipalId
    ]
  }
}]

// ---- outputs: azd stores them in the environment; the postdeploy hook and docs use them ----
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = appGroup.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output REMEDIATOR_PRINCIPAL_ID string = identity.outputs.principalId
output REMEDIATOR_CLIENT_ID string = identity.outputs.clientId
output REMEDIATOR_MODE string = mode
output EVENT_SUBSCRIPTION_IDS array = eventSubscriptionIds
output EVENTS_RESOURCE_GROUP string = eventsResourceGroupName
output RESOURCES_TOPIC_NAME string = resourcesTopicName
output POLICY_TOPIC_NAME string = policyTopicName
output DEADLETTER_STORAGE_ACCOUNT_ID string = storage.outputs.id
output DEADLETTER_CONTAINER_NAME string = deadLetterContainerName
output OUTCOME_TOPIC_ENDPOINT string = outcomeTopic.outputs.endpoint
