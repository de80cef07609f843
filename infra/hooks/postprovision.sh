#!/bin/sh
# azd postprovision hook: puts the first secrets into the new Key Vault if they are missing,
# so that `azd up` works on an empty environment. It never prints a secret value and never
# overwrites an existing secret (rotation is a separate, deliberate step: README).
#
# Right after provisioning, the role that lets the deploying principal read and write
# secrets may not have reached Key Vault yet (propagation takes up to a few minutes): Key
# Vault then answers 403. That is retried with growing waits; 404 means "no such secret";
# anything else stops the hook.
set -eu

vault="${AZURE_KEY_VAULT_NAME:?run through azd: AZURE_KEY_VAULT_NAME is an output of infra/main.bicep}"
# waits between tries on 403, in seconds: 5, 10, 20, 40, 80, 120, 120 (about 6.5 minutes)
retry_base="${KEY_VAULT_RETRY_BASE_SECONDS:-5}"
retry_cap="${KEY_VAULT_RETRY_MAX_SECONDS:-120}"
retry_tries="${KEY_VAULT_RETRY_TRIES:-8}"

errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT

# az prints the service's error code: (Forbidden) / ForbiddenByRbac, (SecretNotFound)
forbidden() { grep -qiE 'Forbidden|not authorized' "$errors"; }
not_found() { grep -qE 'SecretNotFound' "$errors"; }

# Runs "$@" (an az call, stdin passed through), retrying while Key Vault answers 403.
# Returns 0 on success, 4 on 404; exits on anything else.
with_retry() {
  attempt=1
  wait_s="$retry_base"
  input=""
  if [ ! -t 0 ]; then input="$(cat)"; fi
  while :; do
    if printf '%s' "$input" | "$@" 2>"$errors" >/dev/null; then
      return 0
    fi
    if not_found && ! forbidden; then
      return 4
    fi
    if forbidden && [ "$attempt" -lt "$retry_tries" ]; then
      echo "Key Vault answered 403 (the role may not have propagated yet): retrying in ${wait_s}s" >&2
      sleep "$wait_s"
      attempt=$((attempt + 1))
      wait_s=$((wait_s * 2))
      if [ "$wait_s" -gt "$retry_cap" ]; then wait_s="$retry_cap"; fi
      continue
    fi
    if forbidden; then
      echo "Key Vault still answers 403 after $attempt tries: does the deploying principal have Key Vault Secrets Officer on $vault (AZURE_PRINCIPAL_ID, AZURE_PRINCIPAL_TYPE)?" >&2
    fi
    cat "$errors" >&2
    exit 1
  done
}

has_secret() {  # 0: exists, 1: does not exist
  if with_retry az keyvault secret show --vault-name "$vault" --name "$1" --query id -o tsv </dev/null; then
    return 0
  else
    return 1
  fi
}

put_secret() {  # name; the value comes on stdin, so it never shows in a process list
  with_retry az keyvault secret set --vault-name "$vault" --name "$1" --file /dev/stdin --encoding utf-8 \
    --content-type text/plain --query id -o tsv
  echo "created Key Vault secret $1"
}

random_base64() {
  python3 -c "import base64, secrets; print(base64.b64encode(secrets.token_bytes($1)).decode(), end='')"
}

if ! has_secret hmac-keys; then
  key_id="k$(date -u +%Y%m%d)"
  printf '%s:%s' "$key_id" "$(random_base64 32)" | put_secret hmac-keys
  printf '%s' "$key_id" | put_secret hmac-active-key-id
elif ! has_secret hmac-active-key-id; then
  echo "hmac-keys exists but hmac-active-key-id does not: set it to one of the key ids (README)" >&2
  exit 1
fi

if [ -n "${INITIAL_ADMIN_EMAIL:-}" ] && ! has_secret initial-admin-password; then
  random_base64 24 | put_secret initial-admin-password
  echo "the first admin's password is in Key Vault secret initial-admin-password (az keyvault secret show)"
fi

# Key Vault references are resolved when an instance starts: restart so the app picks up
# secrets created just now (the deploy step restarts it too).
if [ -n "${AZURE_FUNCTION_NAME:-}" ] && [ -n "${AZURE_RESOURCE_GROUP:-}" ]; then
  az functionapp restart --name "$AZURE_FUNCTION_NAME" --resource-group "$AZURE_RESOURCE_GROUP" >/dev/null || true
fi
