// The Azure Monitor workbook a manager opens in the portal: protected share over time, clusters needing a human,
// gave-ups with causes, event->write latency, outcomes by kind. Every query is a file in ../workbook/*.kql
// (the layout is ../workbook/items.json); tests/unit/infra/test_workbook.py checks them against the telemetry
// names the code emits (remediator/core/telemetry_names.py) and that Bicep and Terraform embed the same files.

param location string
param tags object = {}
param displayName string

@description('Workbook resource name: a GUID, stable per environment.')
param workbookId string

@description('Application Insights component the queries run against.')
param applicationInsightsId string

var layout = loadJsonContent('../workbook/items.json')
var queries = {
  'protected-share.kql': loadTextContent('../workbook/protected-share.kql')
  'clusters-needing-a-human.kql': loadTextContent('../workbook/clusters-needing-a-human.kql')
  'gave-ups-by-cause.kql': loadTextContent('../workbook/gave-ups-by-cause.kql')
  'event-to-write-latency.kql': loadTextContent('../workbook/event-to-write-latency.kql')
  'outcomes.kql': loadTextContent('../workbook/outcomes.kql')
}

var queryItems = [for item in layout.items: {
  type: 3
  name: item.name
  content: {
    version: 'KqlItem/1.0'
    title: item.title
    query: queries[item.query]
    size: 0
    queryType: 0
    resourceType: 'microsoft.insights/components'
    visualization: item.visualization
    timeContext: {
      durationMs: 604800000
    }
  }
}]

var content = {
  version: 'Notebook/1.0'
  items: concat([
    {
      type: 1
      name: 'title'
      content: {
        json: '## ${layout.title}\nFrom the remediator\'s OpenTelemetry spans and metrics (docs/deploy.md, "Workbook").'
      }
    }
  ], queryItems)
  fallbackResourceIds: [
    applicationInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: workbookId
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: toLower(applicationInsightsId)
    serializedData: string(content)
  }
}

output id string = workbook.id
