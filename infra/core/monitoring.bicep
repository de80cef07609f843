// Logs and telemetry: a Log Analytics workspace and a workspace-based Application
// Insights that accepts only Entra ID-authenticated telemetry (no instrumentation key).

param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object = {}
param retentionInDays int

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

output logAnalyticsWorkspaceId string = workspace.id
output applicationInsightsName string = appInsights.name
output applicationInsightsId string = appInsights.id
output applicationInsightsConnectionString string = appInsights.properties.ConnectionString
