"""Reading infra/ for the tests: Bicep parsed with pycep-parser (the version checkov uses),
the app settings the Function App gets, and the env-var names the settings model reads."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
STORAGE = INFRA / "core" / "storage.bicep"
KEY_VAULT = INFRA / "core" / "keyvault.bicep"
MONITORING = INFRA / "core" / "monitoring.bicep"
EMAIL = INFRA / "core" / "email.bicep"
API = INFRA / "app" / "api.bicep"
RBAC = INFRA / "app" / "rbac.bicep"
FRONT_DOOR = INFRA / "app" / "frontdoor.bicep"
PARAMETERS = INFRA / "main.parameters.json"
ENVIRONMENTS = ("dev", "test", "prod")

KEY_VAULT_REFERENCE = re.compile(
    r"^@Microsoft\.KeyVault\((VaultName=[^;]+;SecretName=[^)]+|SecretUri=https://[^)]+)\)$"
)

# Bicep app settings the settings model does not read: the Functions host's own.
HOST_SETTINGS = {
    # identity-based host storage: the model reads __accountName and __clientId itself
    "AzureWebJobsStorage__credential": "tells the host to use a managed identity for its storage",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "where the host sends telemetry",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra ID sign-in for telemetry (local auth is off)",
    "AzureWebJobsDisableHomepage": "the host's default page would hide the guest page at /",
    "PYTHON_THREADPOOL_THREAD_COUNT": "the Python worker's thread pool, sized to the per-instance HTTP concurrency",
}

# Model settings that are deliberately absent from the Bicep app settings.
NOT_IN_BICEP = {
    # App Service sets it on every instance; the model's other choice (INSTANCE_ID) is local.
    "WEBSITE_INSTANCE_ID": "platform-provided",
    # A connection string is for Azurite only: in Azure shared keys are disabled and the
    # identity-based AzureWebJobsStorage__* settings replace it.
    "AzureWebJobsStorage": "local only",
    # Mail goes through MAIL_ENDPOINT and the managed identity: no key anywhere in Azure.
    "MAIL_CONNECTION_STRING": "local or other hosts only",
}


@cache
def _parser() -> BicepParser:
    return BicepParser()  # building the grammar takes a while: once per test run


def parse_bicep(path: Path) -> dict[str, Any]:
    return _parser().parse(file_path=path)


@cache
def parsed(path: Path) -> dict[str, Any]:
    return parse_bicep(path)


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def app_settings(template: dict[str, Any]) -> dict[str, Any]:
    """The `var appSettings = {...}` object of main.bicep: name -> parsed value."""
    value = template["variables"]["appSettings"]["value"]
    return {unquote(name): item for name, item in value.items()}


def env_names(name: str, field: Any) -> list[str]:
    """The environment variables a settings field is read from, in priority order."""
    alias = field.validation_alias
    if alias is None:
        return [(field.alias or name).upper()]
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)] + [
            str(choice.path[0]) for choice in alias.choices if isinstance(choice, AliasPath)
        ]
    if isinstance(alias, AliasPath):
        return [str(alias.path[0])]
    raise TypeError(f"unexpected alias {alias!r} on {name}")


def model_env_names(model: type[BaseSettings]) -> dict[str, list[str]]:
    prefix = model.model_config.get("env_prefix") or ""
    assert not prefix, "the comparison assumes no env_prefix"
    return {name: env_names(name, field) for name, field in model.model_fields.items()}


@dataclass
class Comparison:
    missing_in_bicep: list[str]  # field (env names) the app reads that Azure would not set
    unknown_in_bicep: list[str]  # app settings in the Bicep that nothing reads

    @property
    def ok(self) -> bool:
        return not self.missing_in_bicep and not self.unknown_in_bicep


def compare(model: type[BaseSettings], bicep_settings: set[str]) -> Comparison:
    """Case-insensitive, like the settings model (and like environment variables on the
    Functions host, which upper-cases nothing but matches names case-insensitively)."""
    in_bicep = {name.lower() for name in bicep_settings}
    exempt = {name.lower() for name in NOT_IN_BICEP}
    read: set[str] = set()
    missing = []
    for field, names in model_env_names(model).items():
        lowered = [n.lower() for n in names]
        read.update(lowered)
        if not any(n in in_bicep or n in exempt for n in lowered):
            missing.append(f"{field} ({' or '.join(names)})")
    host = {name.lower() for name in HOST_SETTINGS}
    unknown = sorted(name for name in bicep_settings if name.lower() not in read | host)
    return Comparison(sorted(missing), unknown)


def accessor_path(node: Any) -> list[str] | None:
    """`profile.audit.deleteAfterDays` -> ['profile', 'audit', 'deleteAfterDays']."""
    if isinstance(node, str):
        return [node]
    operator = node.get("operator") if isinstance(node, dict) else None
    if not operator or operator.get("type") != "property_accessor":
        return None
    left = accessor_path(operator["operands"]["operand_1"])
    right = accessor_path(operator["operands"]["operand_2"])
    return left + right if left is not None and right is not None else None


def walk(node: Any):
    """Every dict and list inside a parsed template, depth first."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def profile(env: str) -> dict[str, Any]:
    return json.loads((INFRA / "environments" / f"{env}.json").read_text())


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["resources"].items() if res["type"] == resource_type}


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's properties object, unwrapping `if (...)` and `[for ...]` forms."""
    config = resource["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def condition(resource: dict[str, Any]) -> Any:
    return resource["config"].get("condition")
