// The app's storage account: tables (state), blob containers (audit, resources, the
// Functions host's own, the deployment package) and queues (mail). Reached only with
// Entra ID: shared keys are off, and app/rbac.bicep grants each role on one container,
// table or queue.

param name string
param location string
param tags object = {}
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS'])
param skuName string

// Must match shared/storage.py (TABLES, CONTAINERS, QUEUES); tests/infra checks it.
param tables array
@description('The app\'s containers and the Functions host\'s (created here, so nobody needs account-wide rights).')
param containers array
param queues array
@description('Container Flex Consumption deploys the app package from.')
param deploymentContainerName string

@description('Container holding the audit append blobs.')
param auditContainerName string
param auditDeleteAfterDays int
@description('Days audit blobs cannot be changed or deleted; 0 for no immutability policy.')
param auditImmutabilityDays int
@description('The policy is locked: a locked policy refuses every PUT, so the template leaves it alone.')
param auditImmutabilityLocked bool = false

param logAnalyticsWorkspaceId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches storage over its public endpoint; access needs an Entra ID token (shared keys are disabled).
    // checkov:skip=CKV_AZURE_59: Same as above: public endpoint, identity-only access.
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    // checkov:skip=CKV_AZURE_206: Replication is data: ZRS in prod, LRS in dev and test (infra/environments).
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        table: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in concat(containers, [deploymentContainerName]): {
  parent: blobService
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource appTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for table in tables: {
  parent: tableService
  name: table
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource appQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in queues: {
  parent: queueService
  name: queue
}]

// Audit events are appended to append blobs, one blob per writer and period; each is
// deleted after the retention. No tiering: Azure tiers block blobs only, and the archive
// tier does not exist on ZRS (prod), so audit stays in the account's hot tier.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'audit-retention'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['appendBlob']
              prefixMatch: ['${auditContainerName}/']
            }
            actions: {
              baseBlob: {
                delete: { daysAfterModificationGreaterThan: auditDeleteAfterDays }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [blobContainers]
}

// Time-based retention on the audit container (prod): blobs can be appended to, never
// changed or deleted until the period ends. Created unlocked; lock it once verified
// (README, "Audit retention"): a locked policy can only be extended, and every later PUT
// of it fails, so after locking set AUDIT_IMMUTABILITY_LOCKED=true and the template skips it.
resource auditContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: auditContainerName
}

resource auditImmutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (auditImmutabilityDays > 0 && !auditImmutabilityLocked) {
  parent: auditContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: auditImmutabilityDays
    allowProtectedAppendWrites: true
  }
  dependsOn: [blobContainers]
}

// Storage resource logs (who read or wrote what) in Log Analytics.
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'storage-to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

// Users, sessions and codes live in tables: every read, write and delete of them too.
resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'storage-to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'storage-to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
