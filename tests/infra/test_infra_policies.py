"""Checks on the Bicep that checkov does not make (or cannot see through Bicep): each
states a rule of the deployment. `make lint-infra` runs them after checkov."""

from __future__ import annotations

import re

import pytest
from bicep_reader import (
    ENVIRONMENTS,
    INFRA,
    MAIN,
    ROOT,
    bicep_files,
    body,
    condition,
    parse_bicep,
    parsed,
    profile,
    resources_of_type,
)

from shared import storage

STORAGE = INFRA / "core" / "storage.bicep"
KEY_VAULT = INFRA / "core" / "keyvault.bicep"
API = INFRA / "app" / "api.bicep"
RBAC = INFRA / "app" / "rbac.bicep"
FRONT_DOOR = INFRA / "app" / "frontdoor.bicep"
MONITORING = INFRA / "core" / "monitoring.bicep"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path):
    template = parse_bicep(path)
    assert template.get("resources") or template.get("modules")


def test_every_module_main_bicep_uses_exists():
    for name, module in parsed(MAIN)["modules"].items():
        assert (INFRA / module["detail"]["path"]).is_file(), name


def _one(path, resource_type):
    found = {n: r for n, r in resources_of_type(parsed(path), resource_type).items() if not r["existing"]}
    assert len(found) == 1, f"{path.name}: expected one {resource_type}, found {list(found)}"
    return next(iter(found.values()))


def test_storage_account_has_no_public_blobs_tls12_and_no_shared_keys():
    props = body(_one(STORAGE, "Microsoft.Storage/storageAccounts"))["properties"]
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowSharedKeyAccess"] is False
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["defaultToOAuthAuthentication"] is True


def test_blob_containers_are_private():
    container = _one(STORAGE, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert body(container)["properties"]["publicAccess"] == "None"


def test_bicep_creates_exactly_the_tables_containers_and_queues_the_app_uses():
    variables = parsed(MAIN)["variables"]
    # the dev mailbox exists locally only (GET /api/dev/mailbox); Azure has no such table
    local_only = {getattr(storage, "DEV_MAILBOX_TABLE", None)}
    assert variables["tables"]["value"] == [name for name in storage.TABLES if name not in local_only]
    assert variables["auditContainerName"]["value"] == storage.AUDIT_CONTAINER
    assert [
        variables["auditContainerName"]["value"] if item == "auditContainerName" else item
        for item in variables["containers"]["value"]
    ] == list(storage.CONTAINERS)
    assert variables["queues"]["value"] == list(storage.QUEUES)


def test_audit_container_is_immutable_where_the_profile_says_so():
    policy = _one(STORAGE, "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies")
    assert condition(policy) is not None, "the policy must depend on auditImmutabilityDays"
    props = body(policy)["properties"]
    assert props["immutabilityPeriodSinceCreationInDays"] == "auditImmutabilityDays"
    assert props["allowProtectedAppendWrites"] is True  # audit blobs are append blobs
    assert profile("prod")["audit"]["immutabilityDays"] >= 365 * 7


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_audit_lifecycle_is_ordered_and_never_deletes_what_is_still_immutable(env):
    audit = profile(env)["audit"]
    assert 0 < audit["coolAfterDays"] < audit["archiveAfterDays"] < audit["deleteAfterDays"]
    assert audit["deleteAfterDays"] >= audit["immutabilityDays"]


def test_lifecycle_rules_tier_then_delete_audit_blobs():
    rules = body(_one(STORAGE, "Microsoft.Storage/storageAccounts/managementPolicies"))["properties"]["policy"]["rules"]
    actions = {rule["name"]: rule["definition"]["actions"]["baseBlob"] for rule in rules}
    tiering = actions["audit-archive-tiering"]
    assert set(tiering) == {"tierToCool", "tierToArchive", "delete"}
    assert actions["audit-retention"]["delete"]["daysAfterModificationGreaterThan"] == "auditDeleteAfterDays"
    for rule in rules:
        prefixes = rule["definition"]["filters"]["prefixMatch"]
        assert all(prefix.startswith("${auditContainerName}/") for prefix in prefixes)


def test_key_vault_uses_rbac_soft_delete_and_purge_protection():
    props = body(_one(KEY_VAULT, "Microsoft.KeyVault/vaults"))["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True
    assert "accessPolicies" not in props


def test_function_app_is_flex_consumption_python_311_with_identity_based_settings():
    plan = body(_one(API, "Microsoft.Web/serverfarms"))
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    app = body(_one(API, "Microsoft.Web/sites"))
    assert app["identity"]["type"] == "UserAssigned"
    props = app["properties"]
    assert props["httpsOnly"] is True
    assert props["keyVaultReferenceIdentity"] == "identityId"
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    scale = config["scaleAndConcurrency"]
    assert scale["maximumInstanceCount"] == "maximumInstanceCount"
    assert scale["instanceMemoryMB"] == "instanceMemoryMB"
    assert scale["triggers"]["http"]["perInstanceConcurrency"] == "httpPerInstanceConcurrency"
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    settings = body(_one(API, "Microsoft.Web/sites/config"))
    assert settings["name"] == "appsettings" and settings["properties"] == "appSettings"  # verbatim, one place
    main_settings = parsed(MAIN)["variables"]["appSettings"]["value"]
    assert main_settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert "AzureWebJobsStorage" not in main_settings  # no connection string with a key


def test_basic_publishing_credentials_are_off():
    policies = resources_of_type(parsed(API), "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {body(p)["name"] for p in policies.values()} == {"ftp", "scm"}
    assert all(body(p)["properties"]["allow"] is False for p in policies.values())


def test_app_identity_gets_only_data_roles_key_vault_secrets_user_and_metrics_publisher():
    roles = parsed(RBAC)["variables"]["roles"]["value"]
    expected = {
        "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
        "keyVaultSecretsOfficer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    }
    assert roles == expected
    text = RBAC.read_text()
    # Owner, Contributor, User Access Administrator: never
    for broad in ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c",
                  "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"):
        assert broad not in text
    # the officer role is for the deploying user only
    assignments = resources_of_type(parsed(RBAC), "Microsoft.Authorization/roleAssignments")
    for name, assignment in assignments.items():
        props = body(assignment)["properties"]
        if "keyVaultSecretsOfficer" in str(props["roleDefinitionId"]):
            assert props["principalId"] == "userPrincipalId", name
        else:
            assert props["principalId"] == "appPrincipalId", name


def test_application_insights_accepts_only_entra_id():
    component = body(_one(MONITORING, "Microsoft.Insights/components"))
    assert component["properties"]["DisableLocalAuth"] is True


def test_front_door_waf_rate_limits_by_client_ip_and_blocks_the_host_admin_api():
    policy = body(_one(FRONT_DOOR, "Microsoft.Network/FrontDoorWebApplicationFirewallPolicies"))
    assert policy["properties"]["policySettings"]["mode"] == "Prevention"
    rules = {rule["name"]: rule for rule in policy["properties"]["customRules"]["rules"]}
    rate_rules = [r for r in rules.values() if r["ruleType"] == "RateLimitRule"]
    assert rate_rules and all(r["groupBy"] == [{"variableName": "SocketAddr"}] for r in rate_rules)
    block = rules["BlockHostAdminApi"]["matchConditions"][0]["matchValue"][0]
    pattern = re.compile(block.replace("\\\\", "\\"))
    assert pattern.search("https://x.azurefd.net/admin/host/status")
    assert pattern.search("https://x.azurefd.net/admin/functions/health")
    assert not pattern.search("https://x.azurefd.net/admin/")  # the admin console stays reachable
    assert not pattern.search("https://x.azurefd.net/admin/audit")


def test_front_door_and_email_are_behind_flags():
    modules = parsed(MAIN)["modules"]
    assert modules["frontDoor"]["config"]["condition"] == "enableFrontDoor"
    assert modules["email"]["config"]["condition"] == "enableEmail"


CHECKOV_SKIP = re.compile(r"checkov:skip=(?P<id>[A-Z0-9_]+)(?P<rest>.*)$")


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_checkov_skip_says_why(path):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = CHECKOV_SKIP.search(line)
        if match:
            reason = match["rest"].lstrip(":").strip()
            assert len(reason) >= 20, f"{path.name}:{number}: {match['id']} needs a reason beside it"


def test_azd_deploys_the_root_as_a_python_function_app():
    text = (ROOT / "azure.yaml").read_text()
    assert re.search(r"^\s+api:\s*$", text, re.MULTILINE)
    assert re.search(r"^\s+language:\s*python\s*$", text, re.MULTILINE)
    assert re.search(r"^\s+host:\s*function\s*$", text, re.MULTILINE)
    assert re.search(r"^\s+project:\s*\.\s*$", text, re.MULTILINE)
