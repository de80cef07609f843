// Azure Communication Services Email with an Azure-managed sender domain (behind the
// enableEmail flag in main.bicep). The app sends with its managed identity to the
// service's endpoint (MAIL_ENDPOINT; the role is in app/rbac.bicep): no connection string,
// no access key in any setting or secret.

param communicationServiceName string
param emailServiceName string
param tags object = {}
@description('Where the messages are stored at rest (Communication Services dataLocation, e.g. Europe, United States, UK).')
param dataLocation string
param logAnalyticsWorkspaceId string

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource domain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [domain.id]
  }
}

// What was sent and what became of it (delivered, bounced) in Log Analytics. Engagement
// logs stay off: tracking is disabled above.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'email-to-log-analytics'
  scope: communicationService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'EmailSendMailOperational', enabled: true }
      { category: 'EmailStatusUpdateOperational', enabled: true }
    ]
  }
}

output communicationServiceName string = communicationService.name
output endpoint string = 'https://${communicationService.properties.hostName}'
output senderAddress string = 'DoNotReply@${domain.properties.mailFromSenderDomain}'
