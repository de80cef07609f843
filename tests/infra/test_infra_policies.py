"""Checks on the Bicep that checkov does not make (or cannot see through Bicep): each
states a rule of the deployment. `make lint-infra` runs them after checkov."""

from __future__ import annotations

import re

import pytest
from bicep_reader import (
    API,
    ENVIRONMENTS,
    FRONT_DOOR,
    INFRA,
    KEY_VAULT,
    MAIN,
    MONITORING,
    RBAC,
    ROOT,
    STORAGE,
    accessor_path,
    bicep_files,
    body,
    condition,
    parse_bicep,
    parsed,
    profile,
    resources_of_type,
)

from shared import storage


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
    assert "auditImmutabilityDays" in str(condition(policy)), "the policy must depend on auditImmutabilityDays"
    props = body(policy)["properties"]
    assert props["immutabilityPeriodSinceCreationInDays"] == "auditImmutabilityDays"
    assert props["allowProtectedAppendWrites"] is True  # audit blobs are append blobs
    assert profile("prod")["audit"]["immutabilityDays"] >= 365 * 7


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_audit_is_never_deleted_while_still_immutable(env):
    audit = profile(env)["audit"]
    assert audit["deleteAfterDays"] > 0
    assert audit["deleteAfterDays"] >= audit["immutabilityDays"]


def test_lifecycle_only_deletes_audit_blobs_after_the_retention_and_never_tiers_them():
    """The archive tier does not exist on ZRS (prod) and Azure tiers block blobs only, while
    audit blobs are append blobs: a tiering rule would promise a copy that never exists."""
    rules = body(_one(STORAGE, "Microsoft.Storage/storageAccounts/managementPolicies"))["properties"]["policy"]["rules"]
    assert [rule["name"] for rule in rules] == ["audit-retention"]
    actions = rules[0]["definition"]["actions"]["baseBlob"]
    assert actions == {"delete": {"daysAfterModificationGreaterThan": "auditDeleteAfterDays"}}
    assert rules[0]["definition"]["filters"]["prefixMatch"] == ["${auditContainerName}/"]
    for path in bicep_files():
        text = path.read_text()
        assert "tierToArchive" not in text and "tierToCool" not in text, path.name


def test_key_vault_uses_rbac_and_soft_delete_and_purge_protection_where_the_profile_says():
    props = body(_one(KEY_VAULT, "Microsoft.KeyVault/vaults"))["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    # the service refuses `false`: off is "not set"
    assert props["enablePurgeProtection"]["operator"]["operands"] == {
        "condition": "purgeProtection",
        "true_value": True,
        "false_value": None,
    }
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


ROLE_IDS = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storageBlobDelegator": "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
    "keyVaultSecretsOfficer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "communicationAndEmailServiceOwner": "09976791-48a7-449e-bb21-39d1a415f350",
}


def _assignments() -> dict[str, tuple[str, dict]]:
    """Role assignment name -> (its key in rbac.bicep's `roles`, the assignment's body)."""
    found = {}
    for name, assignment in resources_of_type(parsed(RBAC), "Microsoft.Authorization/roleAssignments").items():
        role_id = body(assignment)["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        path = accessor_path(role_id)
        assert path and path[0] == "roles" and len(path) == 2, f"{name}: a role from the roles table"
        found[name] = (path[1], body(assignment))
    return found


def test_app_identity_gets_only_data_roles_key_vault_secrets_user_metrics_publisher_and_mail():
    assert parsed(RBAC)["variables"]["roles"]["value"] == ROLE_IDS
    text = RBAC.read_text()
    # Owner, Contributor, User Access Administrator: never
    broad_roles = (
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    )
    for broad in broad_roles:
        assert broad not in text
    # the officer role is for the deploying principal only
    for name, (role, resource) in _assignments().items():
        principal = resource["properties"]["principalId"]
        assert principal == ("userPrincipalId" if role == "keyVaultSecretsOfficer" else "appPrincipalId"), name


def test_storage_roles_sit_on_one_container_table_or_queue_never_the_account():
    """Least privilege: the app's identity cannot rewrite what it was not given (other
    containers, new tables), and the only account-wide role makes delegation keys."""
    scopes = {}
    for role, resource in _assignments().values():
        if role.startswith("storage"):
            scope = resource["scope"]
            if isinstance(scope, dict):  # `refs[i]` of a loop over the named items
                scope = "{operand_1}[{operand_2}]".format(**scope["operator"]["operands"])
            scopes[role] = scope
    assert scopes == {
        "storageBlobDataOwner": "hostContainerRefs[i]",
        "storageBlobDataContributor": "dataContainerRefs[i]",
        "storageBlobDelegator": "storageAccount",
        "storageTableDataContributor": "tableRefs[i]",
        "storageQueueDataContributor": "queueRefs[i]",
    }
    refs = resources_of_type(parsed(RBAC), "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert all(ref["existing"] for ref in refs.values())
    params = parsed(MAIN)["modules"]["rbac"]["config"]["params"]
    assert params["tables"] == "tables"
    assert params["queues"] == "queues"
    # the app's data containers get Contributor; Owner only where the host and deployment need it
    assert params["dataContainers"] == "containers"
    assert params["hostContainers"]["function"]["parameters"] == {
        "arg_1": "hostContainers",
        "arg_2": ["deploymentContainerName"],
    }
    storage_params = parsed(MAIN)["modules"]["storage"]["config"]["params"]
    assert storage_params["containers"]["function"]["parameters"] == {"arg_1": "containers", "arg_2": "hostContainers"}
    assert parsed(MAIN)["variables"]["hostContainers"]["value"] == ["azure-webjobs-hosts", "azure-webjobs-secrets"]


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
    assert modules["frontDoor"]["config"]["condition"] == "useFrontDoor"
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
