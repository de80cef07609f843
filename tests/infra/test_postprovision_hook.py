"""The azd post-provision hook (infra/hooks/postprovision.sh) against a stand-in for the
az CLI: right after provisioning the deploying principal's Key Vault role may not have
propagated, so 403 is waited out while 404 means "create it", and nothing else is guessed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from bicep_reader import INFRA
from fake_az import fake_az

HOOK = INFRA / "hooks" / "postprovision.sh"

FAKE_AZ = """#!/bin/sh
# A stand-in for `az keyvault secret show|set`: answers from a script of responses, one
# line per call ("403", "404", "500" or "ok"), and records what was set.
state="$FAKE_AZ_STATE"
n=$(cat "$state/count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$state/count"
answer=$(sed -n "${n}p" "$state/script")
[ -n "$answer" ] || answer=ok
echo "$*" >> "$state/calls"
case "$answer" in
  403) echo "ERROR: (Forbidden) Caller is not authorized to perform action. Code: ForbiddenByRbac" >&2; exit 1 ;;
  404) echo "ERROR: (SecretNotFound) A secret with (name/id) x was not found in this key vault." >&2; exit 1 ;;
  500) echo "ERROR: (InternalServerError) something else" >&2; exit 1 ;;
esac
case "$*" in
  *"secret set"*) cat > "$state/set-$(echo "$*" | sed 's/.*--name \\([^ ]*\\).*/\\1/')" ;;
esac
echo "https://vault/secrets/x/1"
"""


def _run_hook(tmp_path: Path, script: list[str]) -> subprocess.CompletedProcess:
    env, state = fake_az(tmp_path, FAKE_AZ)
    (state / "script").write_text("\n".join(script) + "\n")
    env = {
        **env,
        "AZURE_KEY_VAULT_NAME": "kv-test",
        "KEY_VAULT_RETRY_BASE_SECONDS": "0",
        "KEY_VAULT_RETRY_TRIES": "4",
    }
    return subprocess.run(["sh", str(HOOK)], env=env, capture_output=True, text=True, timeout=60)


def _calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "state" / "calls").read_text().splitlines()


def test_hook_retries_403_until_the_role_has_propagated_then_creates_the_keys(tmp_path):
    result = _run_hook(tmp_path, ["403", "403", "404", "ok", "ok"])
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("retrying") == 2
    assert "created Key Vault secret hmac-keys" in result.stdout
    assert "created Key Vault secret hmac-active-key-id" in result.stdout
    keys = (tmp_path / "state" / "set-hmac-keys").read_text()
    key_id = (tmp_path / "state" / "set-hmac-active-key-id").read_text()
    assert re.fullmatch(r"k\d{8}:[A-Za-z0-9+/]{43}=", keys)
    assert keys.startswith(key_id + ":")
    assert keys.split(":")[1] not in result.stdout + result.stderr  # never printed


def test_hook_reads_404_as_missing_and_writes_without_waiting(tmp_path):
    result = _run_hook(tmp_path, ["404", "ok", "ok"])
    assert result.returncode == 0, result.stderr
    assert "retrying" not in result.stderr
    assert [call.split()[2] for call in _calls(tmp_path)] == ["show", "set", "set"]


def test_hook_leaves_existing_secrets_alone(tmp_path):
    result = _run_hook(tmp_path, ["ok", "ok"])
    assert result.returncode == 0, result.stderr
    assert all(call.split()[2] == "show" for call in _calls(tmp_path))


def test_hook_gives_up_on_a_403_that_stays_and_says_which_role_is_missing(tmp_path):
    result = _run_hook(tmp_path, ["403"] * 10)
    assert result.returncode != 0
    assert "Key Vault Secrets Officer" in result.stderr
    assert len(_calls(tmp_path)) == 4  # KEY_VAULT_RETRY_TRIES
    assert not list((tmp_path / "state").glob("set-*"))


def test_hook_stops_on_any_other_error_without_writing(tmp_path):
    result = _run_hook(tmp_path, ["500"])
    assert result.returncode != 0
    assert "InternalServerError" in result.stderr
    assert len(_calls(tmp_path)) == 1
    assert not list((tmp_path / "state").glob("set-*"))
