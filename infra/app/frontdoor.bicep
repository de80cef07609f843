// Azure Front Door in front of the app (on in prod, a flag elsewhere), with a WAF policy
// that rate-limits by client IP. Behind it the app sees two proxies in X-Forwarded-For,
// so main.bicep sets TRUSTED_PROXY_COUNT to 2. Access and WAF logs go to Log Analytics
// with secrets scrubbed out.

param profileName string
param endpointName string
param wafPolicyName string
param tags object = {}
@allowed(['Standard_AzureFrontDoor', 'Premium_AzureFrontDoor'])
param skuName string
@description('The app\'s host name (the origin).')
param originHostName string
param requestsPerMinutePerIp int
param signInRequestsPerMinutePerIp int
param logAnalyticsWorkspaceId string
@description('The app\'s managed identity: it publishes the service\'s bans to the WAF policy.')
param appPrincipalId string

// Request fields that carry a password, code or token: the WAF log shows what a rule
// matched, so these are replaced by asterisks before anything is written.
var secretJsonFields = ['password', 'oldPassword', 'newPassword', 'code', 'unlockCode', 'token']
var secretFormFields = ['password', 'oldPassword', 'newPassword', 'code', 'unlockCode', 'csrfToken']
var secretHeaders = ['Authorization', 'X-Device-Token', 'x-functions-key']
var jsonScrubbing = [for field in secretJsonFields: {
  matchVariable: 'RequestBodyJsonArgNames'
  selectorMatchOperator: 'Equals'
  selector: field
  state: 'Enabled'
}]
var formScrubbing = [for field in secretFormFields: {
  matchVariable: 'RequestBodyPostArgNames'
  selectorMatchOperator: 'Equals'
  selector: field
  state: 'Enabled'
}]
var headerScrubbing = [for header in secretHeaders: {
  matchVariable: 'RequestHeaderNames'
  selectorMatchOperator: 'Equals'
  selector: header
  state: 'Enabled'
}]
// every cookie the app sets is a session, device or form secret
var cookieScrubbing = [
  { matchVariable: 'RequestCookieNames', selectorMatchOperator: 'EqualsAny', state: 'Enabled' }
]

var isPremium = skuName == 'Premium_AzureFrontDoor'

resource profile 'Microsoft.Cdn/profiles@2024-02-01' = {
  name: profileName
  location: 'global'
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    // The access log keeps the client's address (abuse needs it) but no query values.
    logScrubbing: {
      state: 'Enabled'
      scrubbingRules: [
        { matchVariable: 'QueryStringArgNames', selectorMatchOperator: 'EqualsAny', state: 'Enabled' }
      ]
    }
  }
}

resource endpoint 'Microsoft.Cdn/profiles/afdEndpoints@2024-02-01' = {
  parent: profile
  name: endpointName
  location: 'global'
  tags: tags
  properties: {
    enabledState: 'Enabled'
  }
}

resource originGroup 'Microsoft.Cdn/profiles/originGroups@2024-02-01' = {
  parent: profile
  name: 'app'
  properties: {
    loadBalancingSettings: {
      sampleSize: 4
      successfulSamplesRequired: 3
      additionalLatencyInMilliseconds: 50
    }
    // No health probe: with a single origin there is nothing to fail over to, and every
    // point of presence probing /api/health would keep instances awake and billed.
  }
}

resource origin 'Microsoft.Cdn/profiles/originGroups/origins@2024-02-01' = {
  parent: originGroup
  name: 'function-app'
  properties: {
    hostName: originHostName
    originHostHeader: originHostName
    httpsPort: 443
    priority: 1
    weight: 1000
    enforceCertificateNameCheck: true
  }
}

resource route 'Microsoft.Cdn/profiles/afdEndpoints/routes@2024-02-01' = {
  parent: endpoint
  name: 'all'
  properties: {
    originGroup: {
      id: originGroup.id
    }
    supportedProtocols: ['Http', 'Https']
    httpsRedirect: 'Enabled'
    forwardingProtocol: 'HttpsOnly'
    patternsToMatch: ['/*']
    linkToDefaultDomain: 'Enabled'
    ruleSets: [
      {
        id: consoleRuleSet.id
      }
    ]
    // no caching: every answer is per caller
  }
  dependsOn: [origin]
}

// The admin console: browsers use /admin/*, the app serves it as /console/* (the Functions
// host never routes a path under /admin to a function; it keeps /admin for its own API,
// which the WAF below blocks before this rule runs). docs/decisions.md.
resource consoleRuleSet 'Microsoft.Cdn/profiles/ruleSets@2024-02-01' = {
  parent: profile
  name: 'console'
}

resource consoleRewrite 'Microsoft.Cdn/profiles/ruleSets/rules@2024-02-01' = {
  parent: consoleRuleSet
  name: 'adminToConsole'
  properties: {
    order: 1
    conditions: [
      {
        name: 'UrlPath'
        parameters: {
          typeName: 'DeliveryRuleUrlPathMatchConditionParameters'
          operator: 'RegEx'
          matchValues: ['^/?admin(/.*)?$']
          negateCondition: false
          transforms: ['Lowercase']
        }
      }
    ]
    actions: [
      {
        name: 'UrlRewrite'
        parameters: {
          typeName: 'DeliveryRuleUrlRewriteActionParameters'
          sourcePattern: '/admin'
          destination: '/console'
          preserveUnmatchedPath: true
        }
      }
    ]
    matchProcessingBehavior: 'Stop'
  }
}

resource wafPolicy 'Microsoft.Network/FrontDoorWebApplicationFirewallPolicies@2024-02-01' = {
  name: wafPolicyName
  location: 'global'
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    policySettings: {
      enabledState: 'Enabled'
      mode: 'Prevention'
      requestBodyCheck: 'Enabled'
      customBlockResponseStatusCode: 429
      logScrubbing: {
        state: 'Enabled'
        scrubbingRules: concat(jsonScrubbing, formScrubbing, headerScrubbing, cookieScrubbing)
      }
    }
    customRules: {
      rules: [
        {
          // The Functions host's own admin API lives under /admin/host, /admin/functions,
          // /admin/vfs and /admin/extensions; it has no business on the public edge (the
          // app's admin console pages under /admin stay reachable). Decoded first: the host
          // decodes %2F and friends too, so /%61dmin/host must not slip past.
          name: 'BlockHostAdminApi'
          priority: 10
          enabledState: 'Enabled'
          ruleType: 'MatchRule'
          action: 'Block'
          matchConditions: [
            {
              matchVariable: 'RequestUri'
              operator: 'RegEx'
              transforms: ['UrlDecode', 'Lowercase']
              matchValue: ['^(https?://[^/]+)?/admin/(host|functions|vfs|extensions)(/|\\?|$)']
            }
          ]
        }
        {
          // Sign-in, registration, unlock and redemption, through the API and through the
          // HTML forms (/, /r/{id}, /admin/login, the account pages' sign-in, unlock,
          // registration, activation and password forms): a tight budget per client IP.
          name: 'SignInRateLimitPerIp'
          priority: 20
          enabledState: 'Enabled'
          ruleType: 'RateLimitRule'
          action: 'Block'
          rateLimitDurationInMinutes: 1
          rateLimitThreshold: signInRequestsPerMinutePerIp
          groupBy: [
            { variableName: 'SocketAddr' }
          ]
          matchConditions: [
            {
              matchVariable: 'RequestMethod'
              operator: 'Equal'
              matchValue: ['POST']
            }
            {
              matchVariable: 'RequestUri'
              operator: 'RegEx'
              transforms: ['UrlDecode', 'Lowercase']
              matchValue: ['^(https?://[^/]+)?/((api/(sessions(/unlock)?|users(/activation(/resend)?)?|codes/redeem)|r/[^/?]+|admin/login|account/(login|unlock|register|activate|password))/?)?(\\?|$)']
            }
          ]
        }
        {
          // Everything else: a generous budget per client IP.
          name: 'RateLimitPerIp'
          priority: 30
          enabledState: 'Enabled'
          ruleType: 'RateLimitRule'
          action: 'Block'
          rateLimitDurationInMinutes: 1
          rateLimitThreshold: requestsPerMinutePerIp
          groupBy: [
            { variableName: 'SocketAddr' }
          ]
          matchConditions: [
            {
              // matches every request: no address is outside 0.0.0.0/0 and ::/0
              matchVariable: 'RemoteAddr'
              operator: 'IPMatch'
              negateCondition: true
              matchValue: ['255.255.255.255/32']
            }
          ]
        }
      ]
    }
    // Managed rule sets need the Premium tier (prod); Standard gets the custom rules only.
    managedRules: {
      managedRuleSets: isPremium ? [
        {
          ruleSetType: 'Microsoft_DefaultRuleSet'
          ruleSetVersion: '2.1'
          ruleSetAction: 'Block'
        }
        {
          ruleSetType: 'Microsoft_BotManagerRuleSet'
          ruleSetVersion: '1.1'
        }
      ] : []
    }
  }
}

resource securityPolicy 'Microsoft.Cdn/profiles/securityPolicies@2024-02-01' = {
  parent: profile
  name: 'waf'
  properties: {
    parameters: {
      type: 'WebApplicationFirewall'
      wafPolicy: {
        id: wafPolicy.id
      }
      associations: [
        {
          domains: [
            { id: endpoint.id }
          ]
          patternsToMatch: ['/*']
        }
      ]
    }
  }
}

// Who asked for what (access log) and what the WAF blocked and why (WAF log).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'frontdoor-to-log-analytics'
  scope: profile
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'FrontDoorAccessLog', enabled: true }
      { category: 'FrontDoorWebApplicationFirewallLog', enabled: true }
    ]
  }
}

// The app's timer publishes the service's bans as custom rules ServiceBan1..N of this
// policy (shared/limits/waf.py): its identity may read and write this policy and nothing
// else, through a role that holds only those two actions.
resource banPublisherRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'waf-ban-publisher')
  properties: {
    roleName: 'WAF ban publisher (${resourceGroup().name})'
    description: 'Reads and writes the Front Door WAF policy it is assigned on: the app publishes its bans there.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Network/frontdoorWebApplicationFirewallPolicies/read'
          'Microsoft.Network/frontdoorWebApplicationFirewallPolicies/write'
        ]
        notActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

resource banPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(wafPolicy.id, appPrincipalId, banPublisherRole.id)
  scope: wafPolicy
  properties: {
    roleDefinitionId: banPublisherRole.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output frontDoorId string = profile.properties.frontDoorId
output hostName string = endpoint.properties.hostName
