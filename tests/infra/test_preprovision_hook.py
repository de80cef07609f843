"""The azd pre-provision hook (infra/hooks/preprovision.sh) against a stand-in for the az
CLI: a deleted vault keeps its fixed name (and, in prod, cannot be purged), so `azd down`
then `azd up` recovers it, keys included, instead of failing to create it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from bicep_reader import INFRA, ROOT
from fake_az import fake_az

HOOK = INFRA / "hooks" / "preprovision.sh"

FAKE_AZ = """#!/bin/sh
# A stand-in for az: the vault exists when $state/vault exists; a deleted vault is kept
# when $state/deleted holds its location. Every call is recorded.
state="$FAKE_AZ_STATE"
echo "$*" >> "$state/calls"
case "$*" in
  "keyvault show "*)
    [ -f "$state/vault" ] && { echo "/subscriptions/s/vaults/x"; exit 0; }
    echo "ERROR: (ResourceNotFound) The Resource 'Microsoft.KeyVault/vaults/x' was not found." >&2; exit 3 ;;
  "keyvault show-deleted "*)
    [ -f "$state/deleted" ] && { cat "$state/deleted"; exit 0; }
    echo "ERROR: (DeletedVaultNotFound) Deleted vault x not found" >&2; exit 3 ;;
  "keyvault recover "*) touch "$state/vault"; rm -f "$state/deleted"; echo "/subscriptions/s/vaults/x" ;;
  "group create "*) echo "/subscriptions/s/resourceGroups/rg" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""


def _run(tmp_path: Path, *, vault_name: str | None = "kv-abc", exists: bool = False, deleted_in: str | None = None):
    env, state = fake_az(tmp_path, FAKE_AZ)
    (state / "calls").write_text("")
    if exists:
        (state / "vault").write_text("")
    if deleted_in:
        (state / "deleted").write_text(deleted_in + "\n")
    env = {
        **env,
        "AZURE_RESOURCE_GROUP": "rg-codes-prod",
        "AZURE_LOCATION": "westeurope",
    }
    if vault_name:
        env["AZURE_KEY_VAULT_NAME"] = vault_name
    result = subprocess.run(["sh", str(HOOK)], env=env, capture_output=True, text=True, timeout=60)
    calls = [line.split()[:2] for line in (state / "calls").read_text().splitlines()]
    return result, calls


def test_first_provision_asks_nothing(tmp_path):
    result, calls = _run(tmp_path, vault_name=None)
    assert result.returncode == 0, result.stderr
    assert calls == []


def test_an_existing_vault_is_left_alone(tmp_path):
    result, calls = _run(tmp_path, exists=True)
    assert result.returncode == 0, result.stderr
    assert calls == [["keyvault", "show"]]


def test_a_deleted_vault_is_recovered_into_a_recreated_resource_group(tmp_path):
    result, calls = _run(tmp_path, deleted_in="westeurope")
    assert result.returncode == 0, result.stderr
    assert calls == [["keyvault", "show"], ["keyvault", "show-deleted"], ["group", "create"], ["keyvault", "recover"]]
    assert "recovered Key Vault kv-abc" in result.stdout
    recorded = (tmp_path / "state" / "calls").read_text()
    assert "group create --name rg-codes-prod --location westeurope" in recorded
    assert "keyvault recover --name kv-abc" in recorded


def test_a_purged_vault_is_left_to_the_template(tmp_path):
    result, calls = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls == [["keyvault", "show"], ["keyvault", "show-deleted"]]


def test_azd_runs_the_hook_before_provisioning():
    text = (ROOT / "azure.yaml").read_text()
    hooks = text[text.index("\nhooks:") :]
    assert re.search(r"preprovision:\n\s+posix:\n(\s+\w+:.*\n)*?\s+run: \./infra/hooks/preprovision\.sh\n", hooks)
    assert os.access(HOOK, os.X_OK)
