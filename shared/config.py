"""Every setting the app reads, in one place, validated once per process.

Locally the values come from `local.settings.json` (the host copies its `Values`
into the environment); in Azure from app settings, secrets among them resolved
from Key Vault references by the platform. A missing or bad value stops start-up
with a message naming the setting, never its value.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["local", "dev", "test", "prod"]


class SettingsError(RuntimeError):
    """Start-up stops: a setting is missing or invalid (the message names it)."""


class Settings(BaseSettings):
    """App settings. The environment-variable name of each field is its upper-case name,
    except the storage connection, which follows the Functions host's naming."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True)

    app_environment: Environment = "local"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Distinguishes audit blobs of concurrent writers; the platform sets WEBSITE_INSTANCE_ID.
    instance_id: str = Field(
        default="local",
        validation_alias=AliasChoices("WEBSITE_INSTANCE_ID", "INSTANCE_ID"),
        pattern=r"^[A-Za-z0-9-]{1,64}$",
    )

    # Storage: a connection string locally (Azurite), the account name plus managed
    # identity in Azure, where shared keys are disabled.
    storage_connection_string: SecretStr | None = Field(default=None, validation_alias="AzureWebJobsStorage")
    storage_account_name: str | None = Field(default=None, validation_alias="AzureWebJobsStorage__accountName")
    storage_client_id: str | None = Field(default=None, validation_alias="AzureWebJobsStorage__clientId")
    storage_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # How many proxies append to X-Forwarded-For in front of the app: 1 for the Functions
    # front end (the local host imitates it), 2 behind Azure Front Door.
    trusted_proxy_count: int = Field(default=1, ge=1, le=5)

    # Keyed hashes of codes, tokens and client IPs: "kid:base64key,kid:base64key".
    hmac_keys: SecretStr
    hmac_active_key_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,16}$")

    # Sessions: a sliding idle timeout inside an absolute lifetime.
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_lifetime_hours: int = Field(default=12, ge=1, le=24 * 30)

    @model_validator(mode="after")
    def _storage_is_reachable_somehow(self) -> Settings:
        if self.storage_connection_string is None and not self.storage_account_name:
            raise ValueError(
                "set AzureWebJobsStorage (a connection string) or AzureWebJobsStorage__accountName (managed identity)"
            )
        return self

    @property
    def is_local(self) -> bool:
        return self.app_environment == "local"


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        lines.append(f"{name.upper()}: {item['msg']}")
    return "invalid app settings: " + "; ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read and validated once."""
    try:
        return Settings()
    except ValidationError as error:
        # input values are left out on purpose: they may be secrets
        raise SettingsError(_describe(error)) from None
