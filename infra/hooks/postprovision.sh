#!/bin/sh
# azd postprovision hook: puts the first secrets into the new Key Vault if they are missing,
# so that `azd up` works on an empty environment. It never prints a secret value and never
# overwrites an existing secret (rotation is a separate, deliberate step: README).
set -eu

vault="${AZURE_KEY_VAULT_NAME:?run through azd: AZURE_KEY_VAULT_NAME is an output of infra/main.bicep}"

has_secret() {
  az keyvault secret show --vault-name "$vault" --name "$1" --query id -o tsv >/dev/null 2>&1
}

put_secret() {  # name; the value comes on stdin, so it never shows in a process list
  az keyvault secret set --vault-name "$vault" --name "$1" --file /dev/stdin --encoding utf-8 \
    --content-type text/plain --query id -o tsv >/dev/null
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
