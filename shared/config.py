"""Every setting the app reads, in one place, validated once per process.

Locally the values come from `local.settings.json` (the host copies its `Values`
into the environment); in Azure from app settings, secrets among them resolved
from Key Vault references by the platform. A missing or bad value stops start-up
with a message naming the setting, never its value.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, StringConstraints, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.codes.models import LONGEST_TTL_SECONDS, SHORTEST_TTL_SECONDS

Environment = Literal["local", "dev", "test", "prod"]


# "<count>/<window>", e.g. "5/15m": at most <count> events per fixed window.
RateSpec = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,6}/[1-9][0-9]{0,4}[smhd]$")]


class SettingsError(RuntimeError):
    """Start-up stops: a setting is missing or invalid (the message names it)."""


class Settings(BaseSettings):
    """App settings. The environment-variable name of each field is its upper-case name,
    except the storage connection, which follows the Functions host's naming."""

    # An empty app setting means "not set": Bicep writes "" for what a flag turns off.
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    # Fails closed: without the setting the app behaves as in production (HSTS, no dev
    # mailbox); only local.settings.json and the tests say "local".
    app_environment: Environment = "prod"
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
    # An IPv6 client counts as its network of this prefix length (a subscriber's /64), so
    # rotating through it buys no fresh budget; IPv4 counts per address.
    ipv6_prefix_length: int = Field(default=64, ge=32, le=128)

    # Input limits at the HTTP edge.
    max_json_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    max_query_string_bytes: int = Field(default=2048, ge=256, le=16 * 1024)
    max_header_bytes: int = Field(default=16 * 1024, ge=4096, le=64 * 1024)

    # Keyed hashes of codes, tokens and client IPs: "kid:base64key,kid:base64key".
    hmac_keys: SecretStr
    hmac_active_key_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,16}$")

    # Key Vault (Azure only). Secrets arrive as Key Vault references resolved by the
    # platform at start-up; with the vault's URL set, the key ring is also re-read every
    # SECRET_REFRESH_SECONDS, so a rotation needs no restart (shared/secrets.py).
    key_vault_url: str | None = Field(default=None, pattern=r"^https://")
    secret_refresh_seconds: int = Field(default=300, ge=30, le=24 * 3600)
    # The user-assigned managed identity the app signs in with (Key Vault, mail).
    managed_identity_client_id: str | None = Field(default=None, validation_alias="AZURE_CLIENT_ID")

    # Mail provider (Azure Communication Services Email). Without a connection string mail
    # stays in the outbox queue for the local dev mailbox.
    mail_connection_string: SecretStr | None = None
    mail_sender: str | None = None
    # Who sends: "acs" (Azure Communication Services Email, with MAIL_CONNECTION_STRING or
    # MAIL_ENDPOINT plus the managed identity) or "devmailbox" (local only: a table read
    # by GET /api/dev/mailbox). Checked when the first mail goes out, so a missing ACS
    # setting parks mail in the poison queue instead of stopping the whole app.
    mail_provider: Literal["acs", "devmailbox"] = "acs"
    mail_endpoint: str | None = Field(default=None, pattern=r"^https://")
    # Failed sends are retried after base, 2x, 4x, 8x (5 tries in all), then parked in
    # mail-outbox-poison.
    mail_retry_base_seconds: int = Field(default=15, ge=0, le=3600)
    # Registers GET /api/dev/mailbox (local only).
    dev_mailbox_enabled: bool = False

    # Known devices (device tokens) are trusted this long after their last sign-in;
    # unlock codes (6 digits, mailed) sign a new device in while the account is paused.
    device_token_days: int = Field(default=90, ge=1, le=400)
    unlock_code_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    unlock_code_max_attempts: int = Field(default=5, ge=1, le=10)

    # Sessions: a sliding idle timeout inside an absolute lifetime.
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_lifetime_hours: int = Field(default=12, ge=1, le=24 * 30)
    # The web pages' cookies (console session, form nonces) carry `Secure`: true everywhere
    # but on http://localhost, where local.settings.json sets it to false.
    cookie_secure: bool = True
    # Where browsers find the admin console. The app serves it under /console (in Azure no
    # function ever receives a path under /admin: the host keeps it for its admin API); an
    # edge that rewrites /admin/* to /console/* (Front Door, the local host) makes it /admin.
    console_base_path: Literal["/admin", "/console"] = "/admin"

    # Accounts: bcrypt cost (never below 10), password rotation, activation codes.
    bcrypt_cost: int = Field(default=12, ge=10, le=16)
    password_max_age_days: int = Field(default=180, ge=1, le=3650)
    activation_code_digits: int = Field(default=4, ge=4, le=10)
    activation_code_ttl_seconds: int = Field(default=60, ge=10, le=3600)
    activation_max_attempts: int = Field(default=5, ge=1, le=10)
    activation_resend_cooldown_seconds: int = Field(default=30, ge=0, le=3600)
    activation_sends_per_hour: int = Field(default=5, ge=1, le=50)
    # The first admin, created if absent (in Azure the password comes from Key Vault).
    # Both or neither; there is no default admin.
    initial_admin_email: str | None = Field(default=None, max_length=254)
    initial_admin_password: SecretStr | None = None

    # Accounts hardening: how long a pending registration lives (then cleanup removes it
    # and the address is free), how many activation guesses one registration gets in all
    # (then it ends), the mail budgets of registration and resend (per recipient address
    # and for the whole app: past them the answer is the same and no mail goes), and
    # old-password attempts of a password change per account (then 429 and the session ends).
    pending_registration_hours: int = Field(default=24, ge=1, le=24 * 7)
    activation_attempts_per_registration: int = Field(default=10, ge=1, le=100)
    limit_registration_mails_per_recipient: RateSpec = "3/1h"
    limit_registration_mails_per_recipient_daily: RateSpec = "10/1d"
    limit_registration_mails_global: RateSpec = "1000/1h"
    limit_password_change_attempts_per_account: RateSpec = "5/1h"  # noqa: S105 - a rate, not a password

    # Resources and access codes.
    resource_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=100 * 1024 * 1024)
    code_ttl_seconds: int = Field(default=600, ge=SHORTEST_TTL_SECONDS, le=LONGEST_TTL_SECONDS)  # when none is asked
    download_url_seconds: int = Field(default=300, ge=30, le=3600)  # lifetime of a download link
    # How long an instance trusts "the issuer is active" on the redeem path (0: ask every time).
    issuer_status_cache_seconds: int = Field(default=15, ge=0, le=300)

    # Cleanup timer: a 6-field NCRONTAB. The Functions host reads the app setting itself
    # (%CLEANUP_SCHEDULE%), so the setting must exist wherever the app runs.
    cleanup_schedule: str = Field(default="0 */5 * * * *", pattern=r"^\S+( \S+){5}$")
    # How far back the very first cleanup run looks; later runs continue from a cursor.
    cleanup_lookback_hours: int = Field(default=24, ge=1, le=24 * 30)

    # Rate limits, each "<count>/<window>" (window in s, m, h or d): see README, "Abuse".
    # Each is counted before the act it guards; "per IP" means per source: an IPv4
    # address or an IPv6 /64.
    limit_register_per_ip: RateSpec = "10/1h"
    # Wrong passwords from unknown devices: per source, per source and account, then per
    # account (past those, unknown devices are paused for the account; known devices and
    # unlock codes still sign in). The daily figure is the most checked per account a day.
    limit_login_failures_per_ip: RateSpec = "30/15m"
    limit_login_failures_per_ip_and_account: RateSpec = "5/15m"
    limit_login_failures_per_account: RateSpec = "10/15m"
    limit_login_failures_per_account_daily: RateSpec = "100/1d"
    # A known device's own budget (it never meets the account's or a source's).
    limit_login_failures_per_device: RateSpec = "5/15m"
    limit_activation_per_ip: RateSpec = "20/10m"
    limit_resend_per_ip: RateSpec = "10/1h"
    limit_unlock_per_ip: RateSpec = "5/1h"
    limit_unlock_mails_per_account: RateSpec = "3/1h"
    limit_issue_per_user: RateSpec = "120/1h"
    limit_issue_per_ip: RateSpec = "600/1h"
    limit_redeem_failures_per_ip: RateSpec = "20/10m"
    # the per-IP allowance, in the same window, while the global budget below is spent,
    # for sources that failed in the window before
    limit_redeem_failures_per_ip_tightened: int = Field(default=3, ge=1, le=10_000)
    # Every attempt on a resource counts before the code is looked at (a redeemed code
    # gives its slot back): first per source on the resource, then for the resource.
    # The brute-force figures (shared/abuse/odds.py) hold at the longest code lifetime.
    limit_redeem_attempts_per_resource_and_ip: RateSpec = "5/30m"
    limit_redeem_attempts_per_resource: RateSpec = "10/30m"
    limit_redeem_failures_global: RateSpec = "2000/5m"
    max_active_codes_per_resource: int = Field(default=3, ge=1, le=1_000_000)

    @model_validator(mode="before")
    @classmethod
    def _key_vault_references_resolved(cls, data: object) -> object:
        # The platform leaves a reference it cannot resolve in place, verbatim.
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, str) and value.lstrip().startswith("@Microsoft.KeyVault("):
                    raise ValueError(
                        f"{name.upper()} is an unresolved Key Vault reference: does the secret exist, "
                        "and may the app's identity read it (Key Vault Secrets User)?"
                    )
        return data

    @model_validator(mode="after")
    def _storage_is_reachable_somehow(self) -> Settings:
        if self.storage_connection_string is None and not self.storage_account_name:
            raise ValueError(
                "set AzureWebJobsStorage (a connection string) or AzureWebJobsStorage__accountName (managed identity)"
            )
        return self

    @model_validator(mode="after")
    def _accounts_settings_hold(self) -> Settings:
        if (self.initial_admin_email is None) != (self.initial_admin_password is None):
            raise ValueError("set both INITIAL_ADMIN_EMAIL and INITIAL_ADMIN_PASSWORD, or neither")
        if self.initial_admin_email is not None:
            from shared.accounts import emails, passwords

            try:
                emails.parse_email(self.initial_admin_email)
            except emails.InvalidEmail as error:
                raise ValueError(f"INITIAL_ADMIN_EMAIL is not usable: {error}") from None
            verdict = passwords.check(self.initial_admin_password.get_secret_value(), self.initial_admin_email)
            if not verdict.acceptable:
                raise ValueError("INITIAL_ADMIN_PASSWORD fails the password policy: " + ", ".join(verdict.problems))
        if not self.is_local and (self.dev_mailbox_enabled or self.mail_provider == "devmailbox"):
            raise ValueError(
                "the dev mailbox (DEV_MAILBOX_ENABLED, MAIL_PROVIDER=devmailbox) is for APP_ENVIRONMENT=local"
            )
        # The platform sets WEBSITE_SITE_NAME on every app in Azure: there, "local" and the
        # dev mailbox are refused whatever the other settings say.
        import os

        in_azure = bool(os.environ.get("WEBSITE_SITE_NAME"))
        if in_azure and (self.is_local or self.dev_mailbox_enabled or self.mail_provider == "devmailbox"):
            raise ValueError("APP_ENVIRONMENT=local and the dev mailbox never run in Azure (WEBSITE_SITE_NAME is set)")
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
