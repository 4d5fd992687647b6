// aks-backup-remediator: everything `azd provision` creates. Deployed at subscription scope (the app's
// subscription); reaches into the managed subscriptions with subscription-scoped modules.
//   app resource group: identity, host storage (+ queues, journal table, dead-letter container), Log Analytics,
//                       App Insights, Flex Consumption plan + Functions app, outcome topic, alerts, workbook
//   each event subscription: resource group with the two Event Grid system topics (existing ones are reused)
//   managed scopes: least-privilege role assignments for the app identity and the built-in Policy 1/2 audits
//                   (see docs/deploy.md, "Roles" and "Audit policies")
// Its inputs come from infra/generated/deployment.json, written by the preprovision hook
// (`python -m tools.deploy prepare`) from infra/remediator.config.yaml after the preflight passed.
// The event subscriptions are created after code deploy by events.bicep (azd postdeploy hook).
targetScope = 'subscription'

@minLength(1)
@maxLength(24)
@description('azd environment name; seeds resource names.')
param environmentName string

@minLength(1)
@description('Region of the app resources (a region that offers Flex Consumption with Python 3.11).')
param location string

@description('Validated deployment inputs (tools/deploy/__main__.py): the config as JSON, the scope and storage lists, event subscriptions, system topics to reuse, host storage SKU, custom role id, audit switch.')
param deployment object = loadJsonContent('generated/deployment.json')

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

@description('REMEDIATOR_EVENT_MAX_AGE_SECONDS: the oldest event acted on (older: a replay). Default 25 h.')
param eventMaxAgeSeconds string = '90000'

@description('REMEDIATOR_EVENT_MAX_SKEW_SECONDS: how far in the future an event or policy-state time may lie.')
param eventMaxSkewSeconds string = '300'

@description('REMEDIATOR_SCOPE_REMEDIATIONS_PER_HOUR: POST /api/remediate {scope} requests per caller and hour.')
param scopeRemediationsPerHour string = '6'

var remediatorConfig = deployment.config
var policies = loadJsonContent('policies.json')

var tags = {
  'azd-env-name': environmentName
  app: 'aks-backup-remediator'
}
// Global-name token and workbook name, derived once by tools/deploy (Terraform uses the same values).
var token = deployment.nameToken
var prefix = 'aksbr-${environmentName}'
var workQueueName = 'reconcile-work'
var journalTableName = 'remediatorjournal'
var deadLetterContainerName = 'eventgrid-deadletter'
var deploymentContainerName = 'app-package-${token}'
var eventsResourceGroupName = 'rg-${prefix}-events'
var resourcesTopicName = 'evgt-${prefix}-arm'
var policyTopicName = 'evgt-${prefix}-policy'

// What the config asks for decides which roles are needed (derived once, by the product's parser, in the hook).
var mode = deployment.mode
var grantStorageAccess = deployment.grantStorageAccess
var grantScope = deployment.grantScope
var scopeSubscriptionGuids = deployment.subscriptions
var scopeResourceGroups = deployment.resourceGroups
var eventSubscriptionIds = deployment.eventSubscriptionIds
var existingTopics = deployment.existingSystemTopics
var assignAuditPolicies = deployment.assignAuditPolicies
// Options of issue 15 (docs/deploy.md): App Service authentication (Entra ID) in front of the HTTP routes when an
// app registration's client id is given; write roles per resource group instead of per listed subscription.
var entraClientId = contains(deployment, 'entraClientId') ? deployment.entraClientId : ''
var controlPlaneResourceGroups = contains(deployment, 'controlPlaneResourceGroups') ? deployment.controlPlaneResourceGroups : []
var perResourceGroupWrites = !empty(controlPlaneResourceGroups)
// Wiring that follows the scope (docs/deploy.md): on when the scope lists management groups and the Event Wiring
// custom role exists (its id is a deployment input; management-group-access.bicep assigns it at the groups).
var eventWiringRoleId = contains(deployment, 'eventWiringRoleId') ? deployment.eventWiringRoleId : ''
var wireNewSubscriptions = !empty(deployment.managementGroups) && !empty(eventWiringRoleId)

// Per event subscription: the two system topics it feeds from, reused when one already exists for the source
// ("only one system topic is allowed per source", docs/deploy.md), else created in rg-<prefix>-events.
var eventWiring = [for subscriptionId in eventSubscriptionIds: {
  subscriptionId: subscriptionId
  resourcesTopic: contains(existingTopics, subscriptionId) && contains(existingTopics[subscriptionId], 'Microsoft.Resources.Subscriptions') ? {
    name: existingTopics[subscriptionId]['Microsoft.Resources.Subscriptions'].name
    resourceGroup: existingTopics[subscriptionId]['Microsoft.Resources.Subscriptions'].resourceGroup
    principalId: existingTopics[subscriptionId]['Microsoft.Resources.Subscriptions'].principalId
    create: false
  } : {
    name: resourcesTopicName
    resourceGroup: eventsResourceGroupName
    principalId: ''
    create: true
  }
  policyTopic: contains(existingTopics, subscriptionId) && contains(existingTopics[subscriptionId], 'Microsoft.PolicyInsights.PolicyStates') ? {
    name: existingTopics[subscriptionId]['Microsoft.PolicyInsights.PolicyStates'].name
    resourceGroup: existingTopics[subscriptionId]['Microsoft.PolicyInsights.PolicyStates'].resourceGroup
    principalId: existingTopics[subscriptionId]['Microsoft.PolicyInsights.PolicyStates'].principalId
    create: false
  } : {
    name: policyTopicName
    resourceGroup: eventsResourceGroupName
    principalId: ''
    create: true
  }
}]

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
    skuName: deployment.hostStorageSku
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
    eventMaxAgeSeconds: eventMaxAgeSeconds
    eventMaxSkewSeconds: eventMaxSkewSeconds
    scopeRemediationsPerHour: scopeRemediationsPerHour
    entraClientId: entraClientId
    eventWiring: wireNewSubscriptions ? {
      resourceGroup: eventsResourceGroupName
      location: location
      resourcesTopic: resourcesTopicName
      policyTopic: policyTopicName
    } : {}
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

module workbook 'app/workbook.bicep' = {
  name: 'remediator-workbook'
  scope: appGroup
  params: {
    location: location
    tags: tags
    displayName: 'AKS backup remediator (${environmentName})'
    workbookId: deployment.workbookName
    applicationInsightsId: monitoring.outputs.applicationInsightsId
  }
}

// ---- managed scopes: least privilege for the app identity ----

// Per-resource-group variant: the listed subscriptions get Reader only ('audit' assigns nothing else) and the
// write role goes to each control-plane resource group below.
module subscriptionRoles 'access/scope-roles.bicep' = [for subscriptionId in scopeSubscriptionGuids: {
  name: 'remediator-roles-${uniqueString(subscriptionId, environmentName)}'
  scope: subscription(subscriptionId)
  params: {
    principalId: identity.outputs.principalId
    mode: perResourceGroupWrites ? 'audit' : mode
  }
}]

module controlPlaneGroupRoles 'access/control-plane-rg.bicep' = [for group in controlPlaneResourceGroups: {
  name: 'remediator-writes-${uniqueString(group.subscriptionId, group.name, environmentName)}'
  scope: resourceGroup(group.subscriptionId, group.name)
  params: {
    principalId: identity.outputs.principalId
    mode: mode
  }
}]

module resourceGroupRoles 'access/scope-roles-rg.bicep' = [for group in scopeResourceGroups: {
  name: 'remediator-roles-${uniqueString(group.subscriptionId, group.name, environmentName)}'
  scope: resourceGroup(group.subscriptionId, group.name)
  params: {
    principalId: identity.outputs.principalId
    mode: mode
  }
}]

// One module per region; regions sharing an account repeat the same idempotent PUTs, so run them one at a time.
@batchSize(1)
// ---- built-in audits (Policy 1: extension installed, Policy 2: backup enabled) at each managed scope ----
// AuditIfNotExists only: no identity, no remediation. Management groups: access/management-group-access.bicep.

module subscriptionAudits 'access/audit-policies.bicep' = [for subscriptionId in scopeSubscriptionGuids: if (assignAuditPolicies) {
  name: 'remediator-audits-${uniqueString(subscriptionId, environmentName)}'
  scope: subscription(subscriptionId)
  params: {
    extensionInstalledAuditId: policies.extensionInstalledAudit
    backupEnabledAuditId: policies.backupEnabledAudit
  }
}]

module resourceGroupAudits 'access/audit-policies-rg.bicep' = [for group in scopeResourceGroups: if (assignAuditPolicies) {
  name: 'remediator-audits-${uniqueString(group.subscriptionId, group.name, environmentName)}'
  scope: resourceGroup(group.subscriptionId, group.name)
  params: {
    extensionInstalledAuditId: policies.extensionInstalledAudit
    backupEnabledAuditId: policies.backupEnabledAudit
  }
}]

// The container-writer custom role is created ONCE by an administrator (access/container-writer-role.bicep,
// docs/deploy.md "Custom role"), never by this deployment: creating a role definition needs
// roleDefinitions/write (Owner or User Access Administrator), and a role assigned in the deployment that
// creates it can fail with RoleDefinitionDoesNotExist while it replicates. Its GUID is a deployment input.
module storageGrants 'access/storage-access.bicep' = [for account in deployment.storageAccounts: if (mode == 'install') {
  name: 'remediator-storage-${uniqueString(account.id, environmentName)}'
  scope: resourceGroup(account.subscriptionId, account.resourceGroup)
  params: {
    storageAccountName: account.name
    principalId: identity.outputs.principalId
    containerWriterRoleGuid: deployment.containerWriterRoleId
    grantStorageAccess: grantStorageAccess
    grantScope: grantScope
  }
}]

// ---- Event Grid: system topics per event subscription (event subscriptions: events.bicep, postdeploy) ----

module eventTopics 'events/subscription-topics.bicep' = [for wiring in eventWiring: {
  name: 'remediator-topics-${uniqueString(wiring.subscriptionId, environmentName)}'
  scope: subscription(wiring.subscriptionId)
  params: {
    resourceGroupName: eventsResourceGroupName
    location: location
    resourcesTopic: wiring.resourcesTopic
    policyTopic: wiring.policyTopic
    tags: tags
  }
}]

module deadLetterAccess 'app/deadletter-access.bicep' = [for (wiring, i) in eventWiring: {
  name: 'remediator-deadletter-${uniqueString(wiring.subscriptionId, environmentName)}'
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
output EVENT_WIRING array = [for wiring in eventWiring: {
  subscriptionId: wiring.subscriptionId
  resourcesTopic: {
    name: wiring.resourcesTopic.name
    resourceGroup: wiring.resourcesTopic.resourceGroup
  }
  policyTopic: {
    name: wiring.policyTopic.name
    resourceGroup: wiring.policyTopic.resourceGroup
  }
}]
output EVENTS_RESOURCE_GROUP string = eventsResourceGroupName
output DEADLETTER_STORAGE_ACCOUNT_ID string = storage.outputs.id
output DEADLETTER_CONTAINER_NAME string = deadLetterContainerName
output OUTCOME_TOPIC_ENDPOINT string = outcomeTopic.outputs.endpoint
output WIRE_NEW_SUBSCRIPTIONS bool = wireNewSubscriptions
