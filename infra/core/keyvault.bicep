// Key Vault for the app's secrets. RBAC mode (no access policies): the app's identity
// gets Key Vault Secrets User in app/rbac.bicep. Soft delete and purge protection keep a
// deleted secret recoverable for the retention period.

param name string
param location string
param tags object = {}
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int
param logAnalyticsWorkspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    // checkov:skip=CKV_AZURE_109: Flex Consumption without VNet integration reads secrets over the public endpoint; every call needs an Entra ID token and an RBAC role.
    // checkov:skip=CKV_AZURE_189: Same as above: the public endpoint stays on.
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Every read and write of a secret, in Log Analytics.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'keyvault-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { categoryGroup: 'audit', enabled: true }
    ]
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
