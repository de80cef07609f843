// One-time access codes: the whole deployment on one screen. `azd up` deploys it with the
// parameters in main.parameters.json; what differs between dev, test and prod is data in
// environments/<environmentType>.json, never a branch here.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: part of every resource name.')
param environmentName string

@minLength(1)
@description('Region for every resource (Flex Consumption must be offered there).')
@metadata({ azd: { type: 'location' } })
param location string

// No default: a prod environment created without APP_ENVIRONMENT must not quietly get the
// dev profile, so azd asks for it.
@allowed(['dev', 'test', 'prod'])
@description('Which environments/<name>.json profile to deploy (azd: APP_ENVIRONMENT).')
param environmentType string

@description('Who runs azd (AZURE_PRINCIPAL_ID); gets Key Vault Secrets Officer on the vault. Empty for none.')
param principalId string = ''

// azd signs in as a user on a laptop and as a service principal in CI; a role assignment
// that names the wrong type is refused.
@allowed(['User', 'ServicePrincipal'])
@description('The kind of principal principalId is (AZURE_PRINCIPAL_TYPE).')
param principalType string = 'User'

@description('Create Azure Communication Services Email and send real mail.')
param enableEmail bool = false

@description('Where Communication Services stores mail data at rest (its dataLocation: Europe, United States, UK, ...).')
param emailDataLocation string = 'Europe'

@description('E-mail address of the first admin (created at start-up if absent); its password is the Key Vault secret initial-admin-password. Empty for none.')
param initialAdminEmail string = ''

// Empty means "as the profile says" (on in prod); 'true' or 'false' overrides it.
@allowed(['', 'true', 'false'])
@description('Put Azure Front Door with a rate-limiting WAF policy in front of the app; empty: the profile decides.')
param enableFrontDoor string = ''

// A locked immutability policy refuses every PUT, so once the operator has locked it
// (README, "Audit retention") the template must leave the policy alone.
@description('The audit container\'s immutability policy is locked: do not touch it (AUDIT_IMMUTABILITY_LOCKED).')
param auditImmutabilityLocked bool = false

var profiles = {
  dev: loadJsonContent('environments/dev.json')
  test: loadJsonContent('environments/test.json')
  prod: loadJsonContent('environments/prod.json')
}
var profile = profiles[environmentType]
var useFrontDoor = empty(enableFrontDoor) ? profile.frontDoor.enabled : enableFrontDoor == 'true'

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName, environment: environmentType }

var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
var keyVaultName = '${abbrs.keyVaultVaults}${resourceToken}'
var wafPolicyName = '${abbrs.networkFrontDoorWebApplicationFirewallPolicies}${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'

// What the app stores where: the same names as shared/storage.py.
var tables = ['users', 'sessions', 'activations', 'resources', 'codes', 'expiry', 'ratelimits', 'jobs', 'verifiers', 'bans']
var auditContainerName = 'audit'
var containers = [auditContainerName, 'resources']
// The Functions host's own containers (timer leases, host keys): created here, so that the
// app's identity needs rights on these containers only, never on the whole account.
var hostContainers = ['azure-webjobs-hosts', 'azure-webjobs-secrets']
var queues = ['mail-outbox', 'mail-outbox-poison']

// Key Vault secret names (shared/auth/key_vault.py reads the key ring's under the same names).
var secretNames = {
  hmacKeys: 'hmac-keys'
  hmacActiveKeyId: 'hmac-active-key-id'
  initialAdminPassword: 'initial-admin-password'
}

// Every app setting, in one place: the settings model (shared/config.py) reads these, and
// tests/infra fails when either side has one the other lacks. Secrets are Key Vault
// references, resolved by the platform with the app's identity when an instance starts.
var appSettings = {
  // the Functions host
  AzureWebJobsStorage__accountName: storage.outputs.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  AzureWebJobsDisableHomepage: 'true' // the guest page is served at /
  // The worker runs sync functions on this many threads (its default is min(32, cores + 4):
  // 5 on a 2048 MB instance). Every HTTP request holds one thread for its whole run, so the
  // platform may send an instance no more requests at once than it has threads; both come
  // from profile.httpPerInstanceConcurrency (docs/deployment.md, "Threads and concurrency").
  PYTHON_THREADPOOL_THREAD_COUNT: string(profile.httpPerInstanceConcurrency)
  // the app: environment, identity, secrets
  APP_ENVIRONMENT: environmentType
  AZURE_CLIENT_ID: identity.outputs.clientId
  KEY_VAULT_URL: keyVault.outputs.uri
  SECRET_REFRESH_SECONDS: string(profile.secretRefreshSeconds)
  HMAC_KEYS: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.hmacKeys})'
  HMAC_ACTIVE_KEY_ID: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.hmacActiveKeyId})'
  INITIAL_ADMIN_EMAIL: initialAdminEmail
  INITIAL_ADMIN_PASSWORD: empty(initialAdminEmail) ? '' : '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.initialAdminPassword})'
  // storage and the HTTP edge
  STORAGE_TIMEOUT_SECONDS: string(profile.storageTimeoutSeconds)
  TRUSTED_PROXY_COUNT: useFrontDoor ? '2' : '1'
  MAX_JSON_BODY_BYTES: '65536'
  MAX_QUERY_STRING_BYTES: '2048'
  MAX_HEADER_BYTES: '16384'
  // mail: Communication Services with the app's identity (no connection string, no key)
  MAIL_PROVIDER: 'acs'
  MAIL_ENDPOINT: email.?outputs.endpoint ?? ''
  MAIL_SENDER: email.?outputs.senderAddress ?? ''
  MAIL_RETRY_BASE_SECONDS: '15'
  DEV_MAILBOX_ENABLED: 'false'
  // accounts and sessions
  BCRYPT_COST: string(profile.bcryptCost)
  PASSWORD_MAX_AGE_DAYS: '180'
  PWNED_PASSWORDS_ENABLED: 'true'
  PWNED_PASSWORDS_URL: 'https://api.pwnedpasswords.com'
  PWNED_PASSWORDS_TIMEOUT_SECONDS: '2'
  SESSION_IDLE_MINUTES: string(profile.sessionIdleMinutes)
  SESSION_LIFETIME_HOURS: string(profile.sessionLifetimeHours)
  COOKIE_SECURE: 'true'
  // behind Front Door the console is /admin (the edge rewrites it to the app's /console)
  CONSOLE_BASE_PATH: useFrontDoor ? '/admin' : '/console'
  ACTIVATION_CODE_DIGITS: '4'
  ACTIVATION_CODE_TTL_SECONDS: '60'
  ACTIVATION_MAX_ATTEMPTS: '5'
  ACTIVATION_RESEND_COOLDOWN_SECONDS: '30'
  ACTIVATION_SENDS_PER_HOUR: '5'
  // accounts hardening: pending registrations' life, guesses per registration, mail
  // budgets of registration and resend, old-password attempts per account
  PENDING_REGISTRATION_HOURS: '24'
  ACTIVATION_ATTEMPTS_PER_REGISTRATION: '10'
  LIMIT_REGISTRATION_MAILS_PER_RECIPIENT: '3/1h'
  LIMIT_REGISTRATION_MAILS_PER_RECIPIENT_DAILY: '10/1d'
  LIMIT_REGISTRATION_MAILS_GLOBAL: '1000/1h'
  LIMIT_PASSWORD_CHANGE_ATTEMPTS_PER_ACCOUNT: '5/1h'
  // resources and codes
  RESOURCE_MAX_BYTES: '10485760'
  CODE_TTL_SECONDS: string(profile.codeTtlSeconds)
  DOWNLOAD_URL_SECONDS: '300'
  ISSUER_STATUS_CACHE_SECONDS: '15'
  MAX_ACTIVE_CODES_PER_RESOURCE: '3'
  // cleanup (the host reads CLEANUP_SCHEDULE for the timer trigger)
  CLEANUP_SCHEDULE: '0 */5 * * * *'
  CLEANUP_LOOKBACK_HOURS: '24'
  // rate limits ("<count>/<window>"; README, "Abuse resistance"), known devices, unlock codes
  IPV6_PREFIX_LENGTH: '64'
  LIMIT_REGISTER_PER_IP: '10/1h'
  LIMIT_LOGIN_FAILURES_PER_IP: '30/15m'
  LIMIT_LOGIN_FAILURES_PER_IP_AND_ACCOUNT: '5/15m'
  LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '10/15m'
  LIMIT_LOGIN_FAILURES_PER_ACCOUNT_DAILY: '100/1d'
  LIMIT_LOGIN_FAILURES_PER_DEVICE: '5/15m'
  LIMIT_ACTIVATION_PER_IP: '20/10m'
  LIMIT_RESEND_PER_IP: '10/1h'
  LIMIT_UNLOCK_PER_IP: '5/1h'
  LIMIT_UNLOCK_MAILS_PER_ACCOUNT: '3/1h'
  DEVICE_TOKEN_DAYS: '90'
  UNLOCK_CODE_TTL_SECONDS: '600'
  UNLOCK_CODE_MAX_ATTEMPTS: '5'
  LIMIT_ISSUE_PER_USER: '120/1h'
  LIMIT_ISSUE_PER_IP: '600/1h'
  LIMIT_REDEEM_FAILURES_PER_IP: '20/10m'
  LIMIT_REDEEM_FAILURES_PER_IP_TIGHTENED: '3'
  LIMIT_REDEEM_ATTEMPTS_PER_RESOURCE_AND_IP: '5/30m'
  LIMIT_REDEEM_ATTEMPTS_PER_RESOURCE: '10/30m'
  LIMIT_REDEEM_FAILURES_GLOBAL: '2000/5m'
  // bans at the edge (README, "Bans at the edge"); the cleanup timer publishes them to the WAF
  BAN_AFTER_STRIKES: '3'
  BAN_FINDTIME_SECONDS: '3600'
  BAN_FIRST_SECONDS: '900'
  BAN_LONGEST_SECONDS: '86400'
  BAN_MEMORY_DAYS: '7'
  BAN_EXEMPT_NETWORKS: ''
  BAN_WAF_POLICY_ID: useFrontDoor ? resourceId(subscription().subscriptionId, rg.name, 'Microsoft.Network/FrontDoorWebApplicationFirewallPolicies', wafPolicyName) : ''
  BAN_WAF_RULES: '5'
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'core/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    retentionInDays: profile.logRetentionDays
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    skuName: profile.storageSku
    tables: tables
    containers: concat(containers, hostContainers)
    queues: queues
    deploymentContainerName: deploymentContainerName
    auditContainerName: auditContainerName
    auditDeleteAfterDays: profile.audit.deleteAfterDays
    auditImmutabilityDays: profile.audit.immutabilityDays
    auditImmutabilityLocked: auditImmutabilityLocked
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module keyVault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    softDeleteRetentionInDays: profile.keyVaultSoftDeleteRetentionDays
    purgeProtection: profile.keyVaultPurgeProtection
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module email 'core/email.bicep' = if (enableEmail) {
  name: 'email'
  scope: rg
  params: {
    communicationServiceName: '${abbrs.communicationCommunicationServices}${resourceToken}'
    emailServiceName: '${abbrs.communicationEmailServices}${resourceToken}'
    tags: tags
    dataLocation: emailDataLocation
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    tables: tables
    dataContainers: containers
    hostContainers: concat(hostContainers, [deploymentContainerName])
    queues: queues
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    communicationServiceName: email.?outputs.communicationServiceName ?? ''
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module frontDoor 'app/frontdoor.bicep' = if (useFrontDoor) {
  name: 'frontdoor'
  scope: rg
  params: {
    profileName: '${abbrs.cdnProfiles}${resourceToken}'
    endpointName: '${abbrs.cdnProfilesAfdEndpoints}${resourceToken}'
    wafPolicyName: wafPolicyName
    appPrincipalId: identity.outputs.principalId
    tags: tags
    skuName: profile.frontDoor.sku
    originHostName: '${functionAppName}.azurewebsites.net'
    requestsPerMinutePerIp: profile.frontDoor.requestsPerMinutePerIp
    signInRequestsPerMinutePerIp: profile.frontDoor.signInRequestsPerMinutePerIp
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    appSettings: appSettings
    maximumInstanceCount: profile.maximumInstanceCount
    instanceMemoryMB: profile.instanceMemoryMB
    httpPerInstanceConcurrency: profile.httpPerInstanceConcurrency
    zoneRedundant: profile.zoneRedundant
    frontDoorId: frontDoor.?outputs.frontDoorId ?? ''
  }
  // the identity may read the vault and storage before the first instance starts
  dependsOn: [rbac]
}

// azd stores these in the environment (.azure/<env>/.env); the hooks read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output SERVICE_API_URL string = 'https://${frontDoor.?outputs.hostName ?? api.outputs.defaultHostName}'
