// Azure Front Door in front of the app (behind the enableFrontDoor flag), with a WAF
// policy that rate-limits by client IP. Behind it the app sees two proxies in
// X-Forwarded-For, so main.bicep sets TRUSTED_PROXY_COUNT to 2.

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

var isPremium = skuName == 'Premium_AzureFrontDoor'

resource profile 'Microsoft.Cdn/profiles@2024-02-01' = {
  name: profileName
  location: 'global'
  tags: tags
  sku: {
    name: skuName
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
    healthProbeSettings: {
      probePath: '/api/health'
      probeRequestType: 'GET'
      probeProtocol: 'Https'
      probeIntervalInSeconds: 120
    }
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
    }
    customRules: {
      rules: [
        {
          // The Functions host's own admin API lives under /admin/host, /admin/functions,
          // /admin/vfs and /admin/extensions; it has no business on the public edge (the
          // app's admin console pages under /admin stay reachable).
          name: 'BlockHostAdminApi'
          priority: 10
          enabledState: 'Enabled'
          ruleType: 'MatchRule'
          action: 'Block'
          matchConditions: [
            {
              matchVariable: 'RequestUri'
              operator: 'RegEx'
              transforms: ['Lowercase']
              matchValue: ['^https?://[^/]+/admin/(host|functions|vfs|extensions)(/|\\?|$)']
            }
          ]
        }
        {
          // Sign-in, registration and redemption: a tight budget per client IP.
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
              transforms: ['Lowercase']
              matchValue: ['^https?://[^/]+/api/(sessions|users|users/activation|users/activation/resend|codes/redeem)/?(\\?|$)']
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

output frontDoorId string = profile.properties.frontDoorId
output hostName string = endpoint.properties.hostName
