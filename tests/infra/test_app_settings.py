"""The settings model (shared/config.py) and the Function App's app settings in
infra/main.bicep name the same settings: whoever adds one to either side adds it to both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bicep_reader import (
    ENVIRONMENTS,
    KEY_VAULT_REFERENCE,
    MAIN,
    accessor_path,
    app_settings,
    compare,
    model_env_names,
    parse_bicep,
    parsed,
    profile,
    walk,
)
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings

from shared.auth import key_vault
from shared.config import Settings


def bicep_setting_names(path: Path = MAIN) -> set[str]:
    return set(app_settings(parse_bicep(path) if path != MAIN else parsed(MAIN)))


def test_every_setting_the_app_reads_is_an_app_setting_in_bicep_and_vice_versa():
    result = compare(Settings, bicep_setting_names())
    assert result.missing_in_bicep == [], (
        "add these to `var appSettings` in infra/main.bicep (or, if Azure must not set them, "
        "to NOT_IN_BICEP in tests/infra/bicep_reader.py with the reason)"
    )
    assert result.unknown_in_bicep == [], (
        "nothing reads these app settings: add them to shared/config.py, or to HOST_SETTINGS "
        "in tests/infra/bicep_reader.py if the Functions host reads them"
    )


def _copy_without_line(tmp_path: Path, setting: str) -> Path:
    text = MAIN.read_text()
    pattern = re.compile(rf"^  {setting}: .*\n", re.MULTILINE)
    assert pattern.search(text), setting
    copy = tmp_path / "main.bicep"
    copy.write_text(pattern.sub("", text, count=1))
    return copy


def test_comparison_fails_when_the_bicep_lacks_a_setting_the_model_reads(tmp_path):
    copy = _copy_without_line(tmp_path, "BCRYPT_COST")
    result = compare(Settings, bicep_setting_names(copy))
    assert not result.ok
    assert result.missing_in_bicep == ["bcrypt_cost (BCRYPT_COST)"]


def test_comparison_fails_when_the_bicep_has_a_setting_nothing_reads(tmp_path):
    copy = tmp_path / "main.bicep"
    line = "  BCRYPT_COST: string(profile.bcryptCost)\n"
    assert line in MAIN.read_text()
    copy.write_text(MAIN.read_text().replace(line, line + "  BCRYPT_COTS: '12'\n"))
    result = compare(Settings, bicep_setting_names(copy))
    assert result.unknown_in_bicep == ["BCRYPT_COTS"]
    assert result.missing_in_bicep == []


def test_comparison_fails_when_the_model_gains_a_setting_the_bicep_lacks():
    class Grown(Settings):
        brand_new_limit: int = 3

    result = compare(Grown, bicep_setting_names())
    assert result.missing_in_bicep == ["brand_new_limit (BRAND_NEW_LIMIT)"]


def test_alias_choices_count_as_covered_when_any_choice_is_set():
    class Aliased(BaseSettings):
        region: str = Field(default="x", validation_alias=AliasChoices("AZURE_REGION", "REGION"))

    assert model_env_names(Aliased) == {"region": ["AZURE_REGION", "REGION"]}
    assert compare(Aliased, {"REGION"}).ok
    assert compare(Aliased, set()).missing_in_bicep == ["region (AZURE_REGION or REGION)"]


def _secret_fields() -> dict[str, list[str]]:
    names = model_env_names(Settings)
    return {
        field: names[field]
        for field, info in Settings.model_fields.items()
        if info.annotation in (SecretStr, SecretStr | None)
    }


def test_every_secret_setting_is_a_key_vault_reference_in_bicep():
    settings = app_settings(parsed(MAIN))
    by_lower = {name.lower(): value for name, value in settings.items()}
    for field, names in _secret_fields().items():
        present = [by_lower[n.lower()] for n in names if n.lower() in by_lower]
        if not present:
            continue  # local only (see NOT_IN_BICEP)
        value = present[0]
        # either a plain reference, or a flag choosing between a reference and ""
        candidates = [value]
        if isinstance(value, dict) and value.get("operator", {}).get("type") == "conditional":
            operands = value["operator"]["operands"]
            candidates = [operands["true_value"], operands["false_value"]]
        references = [c for c in candidates if isinstance(c, str) and KEY_VAULT_REFERENCE.match(c)]
        assert references, f"{field}: a secret must come from Key Vault, not {value!r}"
        assert all(c == "" or c in references for c in candidates), field


def test_key_ring_secret_names_match_what_the_app_refreshes():
    names = parsed(MAIN)["variables"]["secretNames"]["value"]
    assert names["hmacKeys"] == key_vault.HMAC_KEYS_SECRET
    assert names["hmacActiveKeyId"] == key_vault.HMAC_ACTIVE_KEY_ID_SECRET


def test_trusted_proxy_count_is_two_behind_front_door_and_one_otherwise():
    value = app_settings(parsed(MAIN))["TRUSTED_PROXY_COUNT"]
    operands = value["operator"]["operands"]
    assert operands == {"condition": "useFrontDoor", "true_value": "2", "false_value": "1"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_profile_value_the_bicep_uses_exists_in_each_environment(env):
    used = set()
    for node in walk(parsed(MAIN)):
        path = accessor_path(node) if isinstance(node, dict) else None
        if path and path[0] == "profile" and len(path) > 1:
            used.add(tuple(path[1:]))
    assert used, "main.bicep reads nothing from the profile?"
    data = profile(env)
    for path in used:
        node = data
        for part in path:
            assert isinstance(node, dict) and part in node, f"environments/{env}.json lacks {'.'.join(path)}"
            node = node[part]


def test_environment_profiles_have_the_same_shape():
    def shape(node):
        return {k: shape(v) for k, v in node.items()} if isinstance(node, dict) else type(node).__name__

    shapes = {env: shape(profile(env)) for env in ENVIRONMENTS}
    assert shapes["dev"] == shapes["test"] == shapes["prod"]
