// Least-privilege role assignments. The app's identity gets each storage role on the one
// container, table or queue it works on, never on the account: it cannot create or delete
// containers, tables or queues, nor touch data this template did not name. The person (or
// CI service principal) running azd gets Key Vault Secrets Officer to seed the first keys.

param storageAccountName string
@description('Tables the app reads and writes.')
param tables array
@description('Containers of app data (audit, resources).')
param dataContainers array
@description('Containers the Functions host and Flex deployment use (leases, host keys, the app package).')
param hostContainers array
@description('Queues the app sends to and the host\'s queue trigger takes from.')
param queues array
param keyVaultName string
param applicationInsightsName string
@description('Communication Services resource the app sends mail through; empty without mail.')
param communicationServiceName string = ''
param appPrincipalId string
@description('Who runs azd (AZURE_PRINCIPAL_ID); empty for none.')
param userPrincipalId string = ''
@allowed(['User', 'ServicePrincipal'])
@description('A person on a laptop or a service principal in CI (AZURE_PRINCIPAL_TYPE).')
param userPrincipalType string = 'User'

// Built-in role definition ids.
var roles = {
  // The Functions host's storage (leases, host keys) and the Flex deployment package: what
  // the host documentation asks for, on those containers only.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Audit and resource blobs: read, write, append.
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  // A user delegation key for download links; the link can do no more than the identity
  // itself may do on the resources container.
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  // Send to and take from the mail queue (and its poison queue).
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Read and write entities; the tables themselves come from this template.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Read secret values, nothing else.
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  // Write secrets (the deploying principal, for the first key and rotations).
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  // Send telemetry to an Application Insights that only accepts Entra ID.
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // Send mail through Communication Services with Entra ID (no access key).
  communicationAndEmailServiceOwner: '09976791-48a7-449e-bb21-39d1a415f350'
}

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource hostContainerRefs 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for name in hostContainers: {
  parent: blobService
  name: name
}]

resource dataContainerRefs 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for name in dataContainers: {
  parent: blobService
  name: name
}]

resource tableRefs 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = [for name in tables: {
  parent: tableService
  name: name
}]

resource queueRefs 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = [for name in queues: {
  parent: queueService
  name: name
}]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' existing = if (!empty(communicationServiceName)) {
  name: communicationServiceName
}

resource appHostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in hostContainers: {
  name: guid(hostContainerRefs[i].id, appPrincipalId, roles.storageBlobDataOwner)
  scope: hostContainerRefs[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource appDataBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in dataContainers: {
  name: guid(dataContainerRefs[i].id, appPrincipalId, roles.storageBlobDataContributor)
  scope: dataContainerRefs[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

// The delegation key is asked of the blob service, so this one role sits on the account.
resource appBlobDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, roles.storageBlobDelegator)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDelegator)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in tables: {
  name: guid(tableRefs[i].id, appPrincipalId, roles.storageTableDataContributor)
  scope: tableRefs[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource appQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in queues: {
  name: guid(queueRefs[i].id, appPrincipalId, roles.storageQueueDataContributor)
  scope: queueRefs[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appMailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(communicationServiceName)) {
  // named from the resource group and the service's name: the conditional resource is not dereferenced
  name: guid(resourceGroup().id, communicationServiceName, appPrincipalId, roles.communicationAndEmailServiceOwner)
  scope: communicationService
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.communicationAndEmailServiceOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource userSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(vault.id, userPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}
