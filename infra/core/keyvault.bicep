// Key Vault for the app's secrets. RBAC mode (no access policies): the app's identity
// gets Key Vault Secrets User in app/rbac.bicep. Soft delete keeps a deleted secret (and
// vault) recoverable for the retention period; infra/hooks/preprovision.sh recovers a
// deleted vault before the next provision. Purge protection, which also forbids purging
// the deleted vault, is on where the profile says (prod): dev and test can start afresh
// with `azd down --purge` (docs/deployment.md).

param name string
param location string
param tags object = {}
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int
@description('Forbid purging deleted secrets and the deleted vault until the retention ends (cannot be turned off again).')
param purgeProtection bool
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
    // The service refuses false: off is "not set"; once on, it stays on.
    enablePurgeProtection: purgeProtection ? true : null
    // checkov:skip=CKV_AZURE_110: Purge protection is data: on in prod (infra/environments/prod.json), off in dev and test so that azd down --purge then azd up works.
    // checkov:skip=CKV_AZURE_42: Soft delete is always on (7 to 90 days); purge protection is on in prod only, see above.
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
