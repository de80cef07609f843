"""Hardening and cost: logs where the data lives, secrets kept out of them, the edge's
rules, mail without a key, and a thread pool that matches what an instance is sent."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from bicep_reader import (
    API,
    EMAIL,
    ENVIRONMENTS,
    FRONT_DOOR,
    INFRA,
    MAIN,
    RBAC,
    ROOT,
    STORAGE,
    accessor_path,
    app_settings,
    body,
    parsed,
    profile,
    resources_of_type,
)

DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"


def _diagnostics(path) -> dict[str, set[str]]:
    """Scope of each diagnostic setting -> the log categories it sends."""
    found = {}
    for resource in resources_of_type(parsed(path), "Microsoft.Insights/diagnosticSettings").values():
        props = body(resource)
        assert props["properties"]["workspaceId"] == "logAnalyticsWorkspaceId"
        found[props["scope"]] = {log.get("category") for log in props["properties"]["logs"] if log["enabled"]}
    return found


def test_table_blob_and_queue_services_log_reads_writes_and_deletes():
    """Users, sessions and codes live in tables: who touched them must be on record too."""
    every = {"StorageRead", "StorageWrite", "StorageDelete"}
    assert _diagnostics(STORAGE) == {"blobService": every, "tableService": every, "queueService": every}


def test_front_door_sends_access_and_waf_logs():
    assert _diagnostics(FRONT_DOOR) == {"profile": {"FrontDoorAccessLog", "FrontDoorWebApplicationFirewallLog"}}
    assert parsed(MAIN)["modules"]["frontDoor"]["config"]["config"]["params"]["logAnalyticsWorkspaceId"]


def test_communication_services_sends_its_mail_logs():
    assert _diagnostics(EMAIL) == {"communicationService": {"EmailSendMailOperational", "EmailStatusUpdateOperational"}}


def _waf_policy() -> dict:
    resources = resources_of_type(parsed(FRONT_DOOR), "Microsoft.Network/FrontDoorWebApplicationFirewallPolicies")
    return body(next(iter(resources.values())))


def test_waf_log_scrubs_passwords_codes_tokens_and_cookies():
    """The WAF log shows the part of a request a rule matched: a password in a sign-in
    body must be starred out before it is written."""
    scrubbing = _waf_policy()["properties"]["policySettings"]["logScrubbing"]
    assert scrubbing["state"] == "Enabled"
    assert scrubbing["scrubbingRules"]["function"]["type"] == "concat"
    variables = parsed(FRONT_DOOR)["variables"]
    json_fields = set(variables["secretJsonFields"]["value"])
    assert {"password", "oldPassword", "newPassword", "code", "unlockCode", "token"} <= json_fields
    form_fields = set(variables["secretFormFields"]["value"])
    assert {"password", "oldPassword", "newPassword", "code", "unlockCode", "csrfToken"} <= form_fields
    assert {"Authorization", "X-Device-Token"} <= set(variables["secretHeaders"]["value"])
    assert variables["cookieScrubbing"]["value"] == [
        {"matchVariable": "RequestCookieNames", "selectorMatchOperator": "EqualsAny", "state": "Enabled"}
    ]
    kinds = {"jsonScrubbing": "RequestBodyJsonArgNames", "formScrubbing": "RequestBodyPostArgNames"}
    for name, match_variable in kinds.items():
        rule = variables[name]["value"]  # `[for field in ...: {...}]`
        assert rule["config"] == {
            "matchVariable": match_variable,
            "selectorMatchOperator": "Equals",
            "selector": "field",
            "state": "Enabled",
        }


def test_front_door_has_no_health_probe_for_its_single_origin():
    """Every point of presence probing /api/health keeps instances awake and billed, and
    with one origin there is nothing to fail over to."""
    groups = resources_of_type(parsed(FRONT_DOOR), "Microsoft.Cdn/profiles/originGroups")
    assert len(groups) == 1
    assert "healthProbeSettings" not in body(next(iter(groups.values())))["properties"]
    assert len(resources_of_type(parsed(FRONT_DOOR), "Microsoft.Cdn/profiles/originGroups/origins")) == 1


def _rule(name: str) -> dict:
    rules = {rule["name"]: rule for rule in _waf_policy()["properties"]["customRules"]["rules"]}
    return rules[name]


def _uri_condition(rule: dict) -> tuple[re.Pattern, list[str]]:
    condition = next(c for c in rule["matchConditions"] if c["matchVariable"] == "RequestUri")
    pattern = re.compile(condition["matchValue"][0].replace("\\\\", "\\"))
    return pattern, condition["transforms"]


def _as_front_door_sees_it(uri: str, transforms: list[str]) -> str:
    """The address after the rule's transforms, in their order."""
    for transform in transforms:
        uri = {"UrlDecode": unquote, "Lowercase": str.lower}[transform](uri)
    return uri


SIGN_IN_PATHS = [
    "/",  # the guest form: paste the link, type the code
    "/r/AbCdEf0123456789abcdefgh",  # the guest page of one resource
    "/admin/login",  # the console's sign-in form (the app serves it as /console/login)
    "/account/login",  # the account pages' forms that check a password or a code
    "/account/unlock",
    "/account/register",
    "/account/activate",
    "/account/password",
    "/api/sessions",
    "/api/sessions/unlock",
    "/api/users",
    "/api/users/activation",
    "/api/users/activation/resend",
    "/api/codes/redeem",
]
OTHER_PATHS = [
    "/api/codes", "/api/resources", "/api/health", "/admin", "/admin/audit", "/r/x/y", "/api/users/me", "/account",
    "/account/files", "/account/codes",
]  # fmt: skip


@pytest.mark.parametrize("path", SIGN_IN_PATHS)
def test_sign_in_rate_rule_covers_the_api_and_the_html_forms(path):
    rule = _rule("SignInRateLimitPerIp")
    assert {"matchVariable": "RequestMethod", "operator": "Equal", "matchValue": ["POST"]} in rule["matchConditions"]
    pattern, transforms = _uri_condition(rule)
    for uri in (f"https://x.azurefd.net{path}", f"https://x.azurefd.net{path}?returnUrl=%2F", path):
        assert pattern.search(_as_front_door_sees_it(uri, transforms)), uri
    # percent-encoding or capitals do not take a request out of the tight budget
    disguised = path if path == "/" else path[:-1].upper() + f"%{ord(path[-1]):02X}"  # /API/SESSION%53
    assert pattern.search(_as_front_door_sees_it(f"https://x.azurefd.net{disguised}", transforms)), disguised


@pytest.mark.parametrize("path", OTHER_PATHS)
def test_sign_in_rate_rule_leaves_other_routes_to_the_general_budget(path):
    pattern, transforms = _uri_condition(_rule("SignInRateLimitPerIp"))
    assert not pattern.search(_as_front_door_sees_it(f"https://x.azurefd.net{path}", transforms))


def test_admin_block_decodes_the_url_before_matching():
    pattern, transforms = _uri_condition(_rule("BlockHostAdminApi"))
    assert transforms[0] == "UrlDecode" and "Lowercase" in transforms
    for uri in ("/%61dmin/host/status", "/ADMIN/%66unctions/x", "/admin/vfs%2Fsite", "/admin%2Fextensions"):
        assert pattern.search(_as_front_door_sees_it(f"https://x.azurefd.net{uri}", transforms)), uri
    assert not pattern.search(_as_front_door_sees_it("https://x.azurefd.net/admin/%61udit", transforms))


# --- threads and concurrency ------------------------------------------------------------


def test_worker_threads_and_per_instance_http_concurrency_agree():
    """The worker runs sync functions on PYTHON_THREADPOOL_THREAD_COUNT threads and every
    HTTP request holds one: the platform may send an instance no more requests at once."""
    threads = app_settings(parsed(MAIN))["PYTHON_THREADPOOL_THREAD_COUNT"]
    assert threads["function"]["type"] == "string"
    converted = threads["function"]["parameters"]["value_to_convert"]
    assert accessor_path(converted) == ["profile", "httpPerInstanceConcurrency"]
    concurrency = parsed(MAIN)["modules"]["api"]["config"]["params"]["httpPerInstanceConcurrency"]
    assert accessor_path(concurrency) == ["profile", "httpPerInstanceConcurrency"]
    site = body(next(r for r in resources_of_type(parsed(API), "Microsoft.Web/sites").values() if not r["existing"]))
    scale = site["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["triggers"]["http"]["perInstanceConcurrency"] == "httpPerInstanceConcurrency"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_thread_count_stays_within_what_the_worker_allows(env):
    assert 1 <= profile(env)["httpPerInstanceConcurrency"] <= 32


def test_threads_and_concurrency_reason_is_written_down():
    text = DEPLOYMENT_DOC.read_text()
    assert "PYTHON_THREADPOOL_THREAD_COUNT" in text and "perInstanceConcurrency" in text


# --- mail ------------------------------------------------------------------------------


def test_mail_goes_through_the_managed_identity_not_a_connection_string():
    settings = app_settings(parsed(MAIN))
    assert "MAIL_CONNECTION_STRING" not in settings
    assert "mailConnectionString" not in parsed(MAIN)["variables"]["secretNames"]["value"]
    assert "listKeys" not in EMAIL.read_text()
    assert not resources_of_type(parsed(EMAIL), "Microsoft.KeyVault/vaults/secrets")
    assert "email.?outputs.endpoint" in MAIN.read_text()
    outputs = parsed(EMAIL)["outputs"]
    assert "properties.hostName" in EMAIL.read_text() and "endpoint" in outputs
    assignments = resources_of_type(parsed(RBAC), "Microsoft.Authorization/roleAssignments")
    mail = [a for a in assignments.values() if "communicationAndEmailServiceOwner" in str(body(a)["properties"])]
    assert len(mail) == 1 and body(mail[0])["scope"] == "communicationService"


def test_mail_data_location_is_a_parameter():
    params = parsed(MAIN)["modules"]["email"]["config"]["config"]["params"]
    assert params["dataLocation"] == "emailDataLocation"
    assert parsed(EMAIL)["parameters"]["dataLocation"]["default"] is None  # main.bicep decides
    assert '"${MAIL_DATA_LOCATION' in (INFRA / "main.parameters.json").read_text()
    services = resources_of_type(parsed(EMAIL), "Microsoft.Communication/communicationServices")
    emails = resources_of_type(parsed(EMAIL), "Microsoft.Communication/emailServices")
    for resource in [*services.values(), *emails.values()]:
        assert body(resource)["properties"]["dataLocation"] == "dataLocation"


# --- what three environments in one region cost ------------------------------------------

FLEX_REGIONAL_QUOTA_MB = 512_000  # default per subscription and region, shared by every Flex app


def test_shared_flex_memory_quota_for_three_environments_is_written_down():
    """dev, test and prod in one subscription and region share one memory quota: the doc
    states what their maxima add up to, from the profiles, so it cannot go stale."""
    total = sum(profile(env)["maximumInstanceCount"] * profile(env)["instanceMemoryMB"] for env in ENVIRONMENTS)
    text = DEPLOYMENT_DOC.read_text()
    assert f"{total:,} MB" in text
    assert f"{FLEX_REGIONAL_QUOTA_MB:,} MB" in text


TRIGGER = re.compile(r"@bp\.(?P<kind>\w+_trigger)\(")


def test_prod_zone_redundancy_cost_is_written_down():
    """A zone-redundant Flex app keeps two always-ready instances per scale group (all HTTP
    functions are one group; every other trigger is its own), billed around the clock."""
    assert profile("prod")["zoneRedundant"] is True and profile("prod")["storageSku"] == "Standard_ZRS"
    kinds = [m["kind"] for path in (ROOT / "functions").glob("*.py") for m in TRIGGER.finditer(path.read_text())]
    groups = 1 + sum(kind != "http_trigger" for kind in kinds)
    instances = 2 * groups
    text = DEPLOYMENT_DOC.read_text()
    assert f"{instances} always-ready instances of {profile('prod')['instanceMemoryMB']} MB" in text
    assert f"{instances * profile('prod')['instanceMemoryMB']:,} MB" in text


# --- bans published to the WAF --------------------------------------------------------------


def test_the_apps_identity_may_read_and_write_the_waf_policy_and_nothing_else():
    """The cleanup timer publishes the bans (shared/limits/waf.py) as the app's identity:
    a custom role of exactly the policy's read and write, assigned on that policy alone."""
    template = parsed(FRONT_DOOR)
    [role] = resources_of_type(template, "Microsoft.Authorization/roleDefinitions").values()
    [permission] = body(role)["properties"]["permissions"]
    assert sorted(permission["actions"]) == [
        "Microsoft.Network/frontdoorWebApplicationFirewallPolicies/read",
        "Microsoft.Network/frontdoorWebApplicationFirewallPolicies/write",
    ]
    assert not permission.get("dataActions")
    [assignment] = resources_of_type(template, "Microsoft.Authorization/roleAssignments").values()
    granted = body(assignment)
    assert granted["scope"] == "wafPolicy" and granted["properties"]["principalId"] == "appPrincipalId"
    assert accessor_path(granted["properties"]["roleDefinitionId"]) == ["banPublisherRole", "id"]


def test_the_ban_rules_fit_before_the_policys_own_rules():
    """ServiceBan1..BAN_WAF_RULES take priorities 1..9 at most; the policy's own start at 10."""
    own = [rule["priority"] for rule in _waf_policy()["properties"]["customRules"]["rules"]]
    assert min(own) >= 10
    assert int(app_settings(parsed(MAIN))["BAN_WAF_RULES"]) <= 9
