// The Function App on Flex Consumption (Linux, Python 3.11). It signs in to storage, Key
// Vault and Application Insights as its user-assigned identity; the app settings arrive
// complete from main.bicep (the one place that lists them) and are applied verbatim.

param name string
param planName string
param location string
param tags object = {}

param identityId string
param storageBlobEndpoint string
param deploymentContainerName string

@description('Every app setting: built in main.bicep (var appSettings).')
param appSettings object

param maximumInstanceCount int
@allowed([512, 2048, 4096])
param instanceMemoryMB int
@description('Requests one instance takes at once; main.bicep gives the worker as many threads (PYTHON_THREADPOOL_THREAD_COUNT).')
@minValue(1)
@maxValue(32)
param httpPerInstanceConcurrency int
@description('Spread instances over availability zones (where the region has them).')
param zoneRedundant bool = false

@description('Front Door profile id (X-Azure-FDID); empty when the app is reached directly.')
param frontDoorId string = ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
    // checkov:skip=CKV_AZURE_225: Zone redundancy is data: on in prod (infra/environments/prod.json), off where it only costs.
  }
}

// Behind Front Door only Front Door (this profile) may call the app.
var frontDoorOnly = [
  {
    name: 'front-door-only'
    action: 'Allow'
    priority: 100
    tag: 'ServiceTag'
    ipAddress: 'AzureFrontDoor.Backend'
    headers: {
      'x-azure-fdid': [frontDoorId]
    }
  }
]

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd deploys the code of service "api" (azure.yaml) to the app with this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
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
    // Key Vault references in the app settings are resolved with this identity.
    keyVaultReferenceIdentity: identityId
    // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero by design; add alwaysReady instances to the plan when cold starts matter.
    // checkov:skip=CKV_AZURE_213: Flex Consumption has no App Service health check, and Front Door sends no probes to its single origin (docs/deployment.md).
    siteConfig: {
      // No ftpsState: Flex Consumption deprecates it and some regions refuse it.
      minTlsVersion: '1.2'
      // checkov:skip=CKV_AZURE_78: ftpsState is deprecated on Flex Consumption; basic publishing credentials (ftp, scm) are disabled by the policies below.
      http20Enabled: true
      ipSecurityRestrictions: empty(frontDoorId) ? [] : frontDoorOnly
      ipSecurityRestrictionsDefaultAction: empty(frontDoorId) ? 'Allow' : 'Deny'
      // checkov:skip=CKV_AZURE_17: Client certificates do not fit a public API and guest page; callers authenticate with sessions and function keys.
      // checkov:skip=CKV_AZURE_222: A public API and guest page: public network access is the point (Front Door in front when enabled).
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        triggers: {
          // at most as many requests as the worker has threads (see the parameter)
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// checkov reads this app-settings resource as a site configuration; those checks do not apply:
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: Not a site configuration (app settings); the app authenticates its own users.
  // checkov:skip=CKV_AZURE_222: Not a site configuration (app settings); public access is set on the site.
  // checkov:skip=CKV_AZURE_80: Not a site configuration (app settings); no .NET Framework (Python).
  parent: app
  // checkov:skip=CKV_AZURE_88: Not a site configuration (app settings); Flex Consumption has no Azure Files content share.
  // checkov:skip=CKV_AZURE_63: Not a site configuration (app settings); logs go to Application Insights.
  name: 'appsettings'
  // checkov:skip=CKV_AZURE_65: Not a site configuration (app settings); logs go to Application Insights.
  // checkov:skip=CKV_AZURE_66: Not a site configuration (app settings); requests are traced in Application Insights.
  properties: appSettings
}

// No publishing with user names and passwords: azd deploys with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
