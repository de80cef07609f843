"""Publishing the active bans to the Front Door WAF policy, as custom block rules.

The cleanup timer (functions/cleanup.py) calls `publish` as the app's managed identity,
whose only right on the policy is a role scoped to it that reads and writes it
(infra/app/frontdoor.bicep). Front Door takes at most 600 IP address ranges per custom
rule and 100 custom rules per policy
(https://learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits,
"Azure Front Door Standard and Premium service limits"). The bans take BAN_WAF_RULES
rules, `ServiceBan1`..`N` at priorities 1..N, ahead of the policy's own rules (10 and
up), and match `SocketAddr`: the address Front Door saw, which is what the app's limits
count (a client can write anything into X-Forwarded-For, which `RemoteAddr` reads).

Over the limit, the worst offenders go first (most bans, then the longest-standing,
`BanList.active`'s order); the rest stay refused by the app's own limits and are
published once room frees. Merging addresses into wider networks would fit more, but
would ban their innocent neighbours, so it is not done. A publish that changes nothing
writes nothing (each write takes minutes to reach every Front Door edge).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.audit import AuditEventType, AuditLog
from shared.limits.bans import Ban

if TYPE_CHECKING:
    from azure.mgmt.frontdoor import FrontDoorManagementClient

RULE_PREFIX = "ServiceBan"
ADDRESSES_PER_RULE = 600
PUBLISHER_ACTOR = "system:ban-publisher"


def ban_rules(bans: list[Ban], rule_count: int) -> tuple[list[dict], int]:
    """The custom rules for `bans` (in priority order) and how many bans did not fit."""
    sources = [ban.source for ban in bans][: rule_count * ADDRESSES_PER_RULE]
    rules = []
    for number, start in enumerate(range(0, len(sources), ADDRESSES_PER_RULE), start=1):
        addresses = sources[start : start + ADDRESSES_PER_RULE]
        rules.append(
            {
                "name": f"{RULE_PREFIX}{number}", "priority": number, "enabledState": "Enabled",
                "ruleType": "MatchRule", "action": "Block",
                "matchConditions": [{"matchVariable": "SocketAddr", "operator": "IPMatch", "matchValue": addresses}],
            }
        )  # fmt: skip
    return rules, len(bans) - len(sources)


def _parts(policy_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, policy name) of a policy's resource id."""
    parts = policy_id.strip("/").split("/")
    return parts[1], parts[3], parts[-1]


class WafBanPublisher:
    def __init__(
        self,
        client_for: Callable[[str], FrontDoorManagementClient],
        policy_id: str,
        rule_count: int,
        audit: AuditLog,
    ):
        self._client_for = client_for  # subscription id -> a management client
        self._policy_id = policy_id
        self._rule_count = rule_count
        self._audit = audit

    def publish(self, bans: list[Ban]) -> dict:
        """Make the policy's ban rules say exactly `bans` (as many as fit); what was published."""
        from azure.mgmt.frontdoor.models import CustomRule, CustomRuleList

        subscription, group, name = _parts(self._policy_id)
        client = self._client_for(subscription)
        policy = client.policies.get(group, name)
        if policy.custom_rules is None:
            policy.custom_rules = CustomRuleList(rules=[])
        existing = policy.custom_rules.rules or []
        own = [rule for rule in existing if not rule.name.startswith(RULE_PREFIX)]
        current = [rule.as_dict() for rule in existing if rule.name.startswith(RULE_PREFIX)]
        wanted, left_out = ban_rules(bans, self._rule_count)
        published = len(bans) - left_out
        changed = wanted != current
        if changed:
            policy.custom_rules.rules = [CustomRule(rule) for rule in wanted] + own
            client.policies.begin_create_or_update(group, name, policy).result()
        summary = {"published": published, "leftOut": left_out, "rules": len(wanted), "changed": changed}
        self._audit.record(AuditEventType.BAN_PUBLISH, "ok", actor=PUBLISHER_ACTOR, details=summary)
        return summary
