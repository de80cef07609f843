"""What would break a deployment, or the next one: each test states a rule that keeps
`azd up`, `azd provision` and `azd down` then `azd up` working, in every environment and
from a laptop or CI."""

from __future__ import annotations

import json
import re

import pytest
from bicep_reader import (
    API,
    ENVIRONMENTS,
    INFRA,
    MAIN,
    PARAMETERS,
    RBAC,
    STORAGE,
    accessor_path,
    body,
    condition,
    parsed,
    profile,
    resources_of_type,
)


def _parameter_values() -> dict[str, str]:
    return {name: item["value"] for name, item in json.loads(PARAMETERS.read_text())["parameters"].items()}


def test_flex_site_sets_no_ftps_state():
    """Flex Consumption deprecates siteConfig.ftpsState and some regions refuse the site."""
    site = body(next(r for r in resources_of_type(parsed(API), "Microsoft.Web/sites").values() if not r["existing"]))
    assert "ftpsState" not in site["properties"]["siteConfig"]
    assert "ftpsState" not in re.sub(r"//.*", "", API.read_text())


def test_environment_type_has_no_default_so_azd_asks():
    """A prod environment created without APP_ENVIRONMENT must not quietly get dev."""
    param = parsed(MAIN)["parameters"]["environmentType"]
    assert param.get("default") is None
    assert _parameter_values()["environmentType"] == "${APP_ENVIRONMENT}"  # no `=dev` fallback


def test_deploying_principal_type_comes_from_azd():
    """CI signs in as a service principal: a hard-coded 'User' makes the assignment fail."""
    assert _parameter_values()["principalType"].startswith("${AZURE_PRINCIPAL_TYPE")
    assert parsed(MAIN)["modules"]["rbac"]["config"]["params"]["userPrincipalType"] == "principalType"
    for name, assignment in resources_of_type(parsed(RBAC), "Microsoft.Authorization/roleAssignments").items():
        props = body(assignment)["properties"]
        if props["principalId"] == "userPrincipalId":
            assert props["principalType"] == "userPrincipalType", name
        else:
            assert props["principalType"] == "ServicePrincipal", name  # the app's managed identity


def test_a_locked_audit_immutability_policy_is_left_alone():
    """A locked policy refuses every PUT: with AUDIT_IMMUTABILITY_LOCKED=true the template
    no longer declares it, so `azd provision` keeps working after the operator locks it."""
    assert _parameter_values()["auditImmutabilityLocked"].startswith("${AUDIT_IMMUTABILITY_LOCKED")
    storage_params = parsed(MAIN)["modules"]["storage"]["config"]["params"]
    assert storage_params["auditImmutabilityLocked"] == "auditImmutabilityLocked"
    policy = next(
        r
        for r in resources_of_type(
            parsed(STORAGE), "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies"
        ).values()
    )
    assert "auditImmutabilityLocked" in str(condition(policy))
    assert re.search(r"= if \(auditImmutabilityDays > 0 && !auditImmutabilityLocked\) \{", STORAGE.read_text())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_key_vault_purge_protection_is_on_in_prod_only(env):
    """Purge protection with a fixed vault name makes `azd down` then `azd up` fail for the
    whole retention: dev and test can purge, prod keeps its keys (recovery: docs)."""
    assert profile(env)["keyVaultPurgeProtection"] is (env == "prod")
    params = parsed(MAIN)["modules"]["keyVault"]["config"]["params"]
    assert accessor_path(params["purgeProtection"]) == ["profile", "keyVaultPurgeProtection"]


def test_recovery_of_a_deleted_vault_is_written_down_and_scripted():
    """The pre-provision hook recovers it (tests/infra/test_preprovision_hook.py)."""
    text = (INFRA.parent / "docs" / "deployment.md").read_text()
    assert "az keyvault recover" in text and "infra/hooks/preprovision.sh" in text
    assert "azd down --purge" in text
    assert "az keyvault recover" in (INFRA / "hooks" / "preprovision.sh").read_text()


CONDITIONAL_OUTPUT = re.compile(r"\b(?P<module>frontDoor|email)\.outputs\.")


def test_conditional_modules_outputs_are_read_safely():
    """Reading `outputs` of a module whose condition is false fails the deployment (Bicep
    warns BCP318): read them with `.?` and a fallback instead."""
    text = MAIN.read_text()
    modules = parsed(MAIN)["modules"]
    conditional = {name for name, module in modules.items() if module["config"].get("condition")}
    assert conditional == {"frontDoor", "email"}
    assert not CONDITIONAL_OUTPUT.findall(text), "use `<module>.?outputs.<name> ?? <fallback>`"
    assert re.search(r"frontDoor\.\?outputs\.frontDoorId \?\? ''", text)
    assert re.search(r"email\.\?outputs\.", text)


def test_front_door_is_on_by_default_in_prod_only_and_the_flag_can_override():
    for env in ENVIRONMENTS:
        assert profile(env)["frontDoor"]["enabled"] is (env == "prod")
    assert parsed(MAIN)["parameters"]["enableFrontDoor"]["default"] == ""
    assert _parameter_values()["enableFrontDoor"] == "${ENABLE_FRONT_DOOR}"
    use = parsed(MAIN)["variables"]["useFrontDoor"]["value"]["operator"]["operands"]
    assert use["condition"]["function"]["type"] == "empty"
    assert accessor_path(use["true_value"]) == ["profile", "frontDoor", "enabled"]
