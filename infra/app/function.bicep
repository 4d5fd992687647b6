// The Functions app on the Flex Consumption plan (FC1, Linux, Python 3.11), running as the user-assigned identity.
// Every app setting the product reads is set here; tests/unit/infra checks this list against
// remediator/core/settings.py and the %NAME% binding expressions in function_app.py.

param name string
param planName string
param location string
param tags object = {}

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of the user-assigned identity (for DefaultAzureCredential and the host storage connection).')
param identityClientId string

param storageAccountName string
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string
param deploymentContainerName string

param applicationInsightsConnectionString string

@description('The remediator config (scope, storage, selection, extension, remediation) as a JSON string.')
param remediatorConfigJson string

param workQueueName string
param journalTableName string
param outcomeTopicEndpoint string

@description('NCRONTAB schedule of the timer sweep (six fields, UTC).')
param sweepSchedule string

@description('Seconds an Event Grid invocation may reconcile inline before handing over to the queue (max 25).')
param inlineBudgetSeconds string

@description('Re-enqueues of one work item after "wait" outcomes before the give-up is journaled.')
param maxAttempts string

@description('Longest visibility delay of a re-enqueued work item, in seconds.')
param maxWaitSeconds string

@description('The oldest Event Grid event acted on, in seconds (older: dropped as a replay).')
param eventMaxAgeSeconds string

@description('How far in the future an event or policy-state time may lie, in seconds.')
param eventMaxSkewSeconds string

@description('POST /api/remediate {scope} requests one caller may make per hour.')
param scopeRemediationsPerHour string

@description('Client id of the Entra app registration (app roles reader and operator, infra/auth/app-roles.json) that App Service authentication signs callers in for; empty: no App Service authentication, function keys only.')
param entraClientId string = ''

@description('Wiring that follows the scope: {resourceGroup, location, resourcesTopic, policyTopic} of the events resource group the app creates in subscriptions that join a managed management group; empty: no wiring step.')
param eventWiring object = {}

// REMEDIATOR_EVENT_WIRING: the wiring target plus this site's own id (the AzureFunction destination).
var eventWiringSetting = empty(eventWiring) ? '' : string(union(eventWiring, {
  functionAppId: resourceId('Microsoft.Web/sites', name)
}))

@description('Upper bound of Flex Consumption instances.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Spread instances over availability zones (only in regions where Flex Consumption supports it).')
param zoneRedundant bool = false

@description('Instance memory of the Flex Consumption plan.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

var entraAuth = !empty(entraClientId)
var armEndpoint = environment().resourceManager
var armEndpointNoSlash = endsWith(armEndpoint, '/') ? substring(armEndpoint, 0, length(armEndpoint) - 1) : armEndpoint

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy is a per-region Flex Consumption option; set zoneRedundant=true where the region supports it (docs/deploy.md "Hardening"). Missed events are recovered by Event Grid retries and the sweep.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:Event Grid delivers to the function over its public endpoint; HTTP routes require a function key (auth level FUNCTION).
  // checkov:skip=CKV_AZURE_17:Event Grid does not present client certificates, so requiring them would break event delivery; callers authenticate with function keys.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales per trigger from zero; failover comes from Event Grid retries, queue redelivery and the timer sweep, not from standing instances.
  // checkov:skip=CKV_AZURE_213:The platform health check probes anonymously; /api/health is FUNCTION-auth and would report the app unhealthy. Alerts cover failures (app/alerts.bicep).
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'remediator'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // --- host storage, identity-based (no connection string, shared keys are disabled) ---
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: queueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: tableEndpoint
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // --- identity used by DefaultAzureCredential for ARM, Event Grid, queues and tables ---
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        // --- telemetry, Entra-authenticated (local auth is disabled on the component) ---
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // --- the product (remediator/core/settings.py) ---
        {
          name: 'REMEDIATOR_CONFIG_JSON'
          value: remediatorConfigJson
        }
        {
          name: 'REMEDIATOR_TENANT_ID'
          value: tenant().tenantId
        }
        {
          name: 'REMEDIATOR_ARM_ENDPOINT'
          value: armEndpointNoSlash
        }
        {
          name: 'REMEDIATOR_WORK_QUEUE'
          value: workQueueName
        }
        {
          name: 'REMEDIATOR_JOURNAL_TABLE'
          value: journalTableName
        }
        {
          name: 'REMEDIATOR_OUTCOME_TOPIC_ENDPOINT'
          value: outcomeTopicEndpoint
        }
        {
          name: 'REMEDIATOR_INLINE_BUDGET_SECONDS'
          value: inlineBudgetSeconds
        }
        {
          name: 'REMEDIATOR_MAX_ATTEMPTS'
          value: maxAttempts
        }
        {
          name: 'REMEDIATOR_MAX_WAIT_SECONDS'
          value: maxWaitSeconds
        }
        {
          name: 'REMEDIATOR_EVENT_MAX_AGE_SECONDS'
          value: eventMaxAgeSeconds
        }
        {
          name: 'REMEDIATOR_EVENT_MAX_SKEW_SECONDS'
          value: eventMaxSkewSeconds
        }
        {
          name: 'REMEDIATOR_SCOPE_REMEDIATIONS_PER_HOUR'
          value: scopeRemediationsPerHour
        }
        // 'entra' only with App Service authentication below: only then are X-MS-CLIENT-PRINCIPAL* trustworthy
        {
          name: 'REMEDIATOR_HTTP_AUTH'
          value: entraAuth ? 'entra' : 'function-key'
        }
        {
          name: 'REMEDIATOR_EVENT_WIRING'
          value: eventWiringSetting
        }
        // --- binding expressions in function_app.py ---
        {
          name: 'SWEEP_SCHEDULE'
          value: sweepSchedule
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No publishing with basic (user/password) credentials: azd and `az functionapp deployment` use Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// App Service authentication (Entra ID) in front of the HTTP routes (docs/deploy.md, "HTTP authorization"). Every
// request needs an Entra token for the app registration (401 otherwise) AND still a function key (auth level
// FUNCTION). Two paths are left to the function keys alone: Event Grid's deliveries to the Event Grid trigger
// (Event Grid presents no Entra token to an AzureFunction destination; with authentication required they fail as
// Unauthorized, Azure/azure-functions-eventgrid-extension#103) and /api/health (whose answer to a caller without
// the operator role discloses nothing). The handlers enforce the app roles reader/operator (REMEDIATOR_HTTP_AUTH).
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (entraAuth) {
  // checkov reads this child resource as a web app and applies the site's checks to it; they are evaluated (and
  // passed or skipped with reasons) on `site` above. The skips below say which setting of `site` covers each.
  // checkov:skip=CKV_AZURE_13:This resource IS the authentication setting of the site (App Service authentication, Entra ID).
  // checkov:skip=CKV_AZURE_63:Not a site: HTTP logging is a setting of `site`.
  // checkov:skip=CKV_AZURE_65:Not a site: detailed error logging is a setting of `site`.
  // checkov:skip=CKV_AZURE_66:Not a site: failed request tracing is a setting of `site`.
  // checkov:skip=CKV_AZURE_80:Not a site: the runtime (.NET version) is a setting of `site`, which runs Python.
  // checkov:skip=CKV_AZURE_88:Not a site: storage mounts are settings of `site`, which mounts none.
  // checkov:skip=CKV_AZURE_222:Not a site: public network access is a setting of `site` (see its skip).
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/runtime/webhooks/eventgrid'
        '/runtime/webhooks/EventGrid'
        '/api/health'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${entraClientId}'
            entraClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
    httpSettings: {
      requireHttps: true
    }
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
