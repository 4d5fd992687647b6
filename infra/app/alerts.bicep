// Alerts on the three things an operator must act on. All are log alerts on Application Insights, where the
// Functions host records every invocation as a request:
// - poison: the poison-queue function ran, i.e. a work item failed 5 dequeues and landed in <queue>-poison;
// - poison of the poison: the poison-queue function itself failed; after 5 failures the host moves the item to
//   <queue>-poison-poison, which no function drains, so without this alert the item would be lost silently;
// - gave up: the product logged a gave_up outcome / AksBackupRemediator.GaveUp (attempts exhausted, poison message);
// - failures: any function invocation failed.

param location string
param tags object = {}
param namePrefix string
param applicationInsightsId string

@description('Function bound to the poison queue (see function_app.py).')
param poisonFunctionName string

@description('Work queue (REMEDIATOR_WORK_QUEUE); the host moves items the poison function fails on to "<name>-poison-poison".')
param workQueueName string

@description('E-mail addresses notified by the action group; empty: alerts fire without notification.')
param alertEmails array = []

@description('Alert evaluation frequency and window (ISO 8601).')
param evaluationFrequency string = 'PT5M'
param windowSize string = 'PT5M'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-ag'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'aksbackup'
    enabled: true
    emailReceivers: [for (email, i) in alertEmails: {
      name: 'email-${i}'
      emailAddress: email
      useCommonAlertSchema: true
    }]
  }
}

var rules = [
  {
    name: 'poison-queue-not-empty'
    severity: 1
    description: 'A work item failed 5 dequeues and was moved to the poison queue (journaled by ${poisonFunctionName}).'
    query: 'requests | where operation_Name =~ \'${poisonFunctionName}\' or name =~ \'${poisonFunctionName}\''
  }
  {
    // The host logs "Message has reached MaxDequeueCount of 5. Moving message to queue '<queue>-poison-poison'."
    // (a Warning trace). Traces are sampled (host.json), requests are not: a failed poison-function invocation
    // also fires, since five of them are what sends an item to <queue>-poison-poison.
    name: 'poison-poison-queue-not-empty'
    severity: 0
    description: 'The poison-queue function ${poisonFunctionName} failed; after 5 failures the host moves the item to ${workQueueName}-poison-poison, which nothing drains. Inspect that queue (docs/operations.md).'
    query: 'union (traces | where message contains \'${workQueueName}-poison-poison\'), (requests | where (operation_Name =~ \'${poisonFunctionName}\' or name =~ \'${poisonFunctionName}\') and success == false)'
  }
  {
    name: 'gave-up-outcomes'
    severity: 2
    description: 'The remediator gave up on a cluster (outcome gave_up, event AksBackupRemediator.GaveUp).'
    query: 'union traces, customEvents | where message contains \'gave_up\' or message contains \'gave up\' or message contains \'AksBackupRemediator.GaveUp\' or name == \'AksBackupRemediator.GaveUp\' or tostring(customDimensions.outcome) == \'gave_up\''
  }
  {
    name: 'function-failures'
    severity: 2
    description: 'A function invocation failed.'
    query: 'requests | where success == false'
  }
]

resource alerts 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: ${rule.name}'
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: evaluationFrequency
    windowSize: windowSize
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]
