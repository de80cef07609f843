#!/bin/sh
# azd preprovision hook: brings back this environment's Key Vault if it was deleted (for
# example by `azd down` without --purge). The vault's name is fixed per environment and a
# deleted vault keeps it for the soft-delete retention; with purge protection (prod) it
# cannot be purged either, so creating it anew would fail. Recovering it also brings back
# the HMAC keys every stored code and session hash depends on. Does nothing on the first
# provision, while the vault exists, or when no deleted vault of that name is kept.
set -eu

vault="${AZURE_KEY_VAULT_NAME:-}"
if [ -z "$vault" ]; then
  exit 0  # never provisioned: the name is an output of infra/main.bicep
fi

if az keyvault show --name "$vault" --query id -o tsv >/dev/null 2>&1; then
  exit 0
fi

deleted_location="$(az keyvault show-deleted --name "$vault" --query properties.location -o tsv 2>/dev/null || true)"
if [ -z "$deleted_location" ]; then
  exit 0  # gone for good (purged): the template creates it anew
fi

group="${AZURE_RESOURCE_GROUP:?AZURE_RESOURCE_GROUP is an output of infra/main.bicep}"
echo "Key Vault $vault is deleted but kept (soft delete): recovering it, with its secrets"
# recovery puts the vault back into its resource group, which azd down removed too
az group create --name "$group" --location "${AZURE_LOCATION:-$deleted_location}" --query id -o tsv >/dev/null
az keyvault recover --name "$vault" --query id -o tsv >/dev/null
echo "recovered Key Vault $vault"
