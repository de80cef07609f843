// Azure Communication Services Email with an Azure-managed sender domain (behind the
// enableEmail flag in main.bicep). Its connection string goes straight into Key Vault;
// the app reads it through a Key Vault reference (MAIL_CONNECTION_STRING).

param communicationServiceName string
param emailServiceName string
param tags object = {}
@description('Where the messages are stored at rest.')
param dataLocation string = 'Europe'
param keyVaultName string
param connectionStringSecretName string

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

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource connectionStringSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: connectionStringSecretName
  properties: {
    // checkov:skip=CKV_AZURE_41: The value is the service's access key, rotated with the key itself (README, "Rotating secrets"); an expiry date would only break mail.
    contentType: 'text/plain'
    value: communicationService.listKeys().primaryConnectionString
  }
}

output senderAddress string = 'DoNotReply@${domain.properties.mailFromSenderDomain}'
