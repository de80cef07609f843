"""Every setting the app reads, in one place, validated once per process.

Locally the values come from `local.settings.json` (the host copies its `Values`
into the environment); in Azure from app settings, secrets among them resolved
from Key Vault references by the platform. A missing or bad value stops start-up
with a message naming the setting, never its value.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
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

    # An empty app setting means "not set": Bicep writes "" for what a flag turns off. Each
    # field's docstring is its row in the README's settings table (devhost/settings_table.py).
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    # Fails closed: without the setting the app behaves as in production; only
    # local.settings.json and the tests say "local".
    app_environment: Environment = "prod"
    """Which deployment this is; unset means `prod` (HSTS on, no dev mailbox), and `local`
    is refused in Azure."""
    instance_id: str = Field(
        default="local",
        validation_alias=AliasChoices("WEBSITE_INSTANCE_ID", "INSTANCE_ID"),
        pattern=r"^[A-Za-z0-9-]{1,64}$",
    )
    """The writer's id in audit blob names, so concurrent writers never share a blob; in
    Azure the platform sets `WEBSITE_INSTANCE_ID`."""

    # Storage: a connection string locally (Azurite), the account name plus managed
    # identity in Azure, where shared keys are disabled.
    storage_connection_string: SecretStr | None = Field(default=None, validation_alias="AzureWebJobsStorage")
    """Storage connection string: Azurite locally (`UseDevelopmentStorage=true` understood);
    unset in Azure."""
    storage_account_name: str | None = Field(default=None, validation_alias="AzureWebJobsStorage__accountName")
    """In Azure: the storage account, reached with the managed identity."""
    storage_client_id: str | None = Field(default=None, validation_alias="AzureWebJobsStorage__clientId")
    """In Azure: the client id of the identity that reaches storage."""
    storage_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    """Connect timeout of storage calls (reads get twice this); short, so an outage answers
    503 fast."""

    trusted_proxy_count: int = Field(default=1, ge=1, le=5)
    """Proxies that append to `X-Forwarded-For` in front of the app: 1 for the Functions
    front end (the local host imitates it), 2 behind Azure Front Door."""
    # A subscriber's /64: rotating through it buys no fresh budget.
    ipv6_prefix_length: int = Field(default=64, ge=32, le=128)
    """An IPv6 client counts as its network of this prefix length; IPv4 counts per address."""

    # Input limits at the HTTP edge.
    max_json_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    """Largest JSON or form body; beyond it `413`."""
    max_query_string_bytes: int = Field(default=2048, ge=256, le=16 * 1024)
    """Longest query string; beyond it `414`."""
    max_header_bytes: int = Field(default=16 * 1024, ge=4096, le=64 * 1024)
    """Largest sum of request header names and values; beyond it `431`."""

    hmac_keys: SecretStr
    """The key ring of the keyed hashes (codes, tokens, client sources):
    `kid:base64key,kid:base64key`; in Azure the Key Vault secret `hmac-keys`."""
    hmac_active_key_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,16}$")
    """The key of `HMAC_KEYS` that hashes new values; in Azure the Key Vault secret
    `hmac-active-key-id`."""

    # Key Vault (Azure only). Secrets arrive as Key Vault references resolved by the
    # platform at start-up; the key ring must also change while the app runs
    # (shared/auth/key_vault.py).
    key_vault_url: str | None = Field(default=None, pattern=r"^https://")
    """Azure only: the vault the key ring is re-read from every `SECRET_REFRESH_SECONDS`,
    so a key rotation needs no restart."""
    secret_refresh_seconds: int = Field(default=300, ge=30, le=24 * 3600)
    """How often the key ring is re-read from Key Vault (with `KEY_VAULT_URL`)."""
    managed_identity_client_id: str | None = Field(default=None, validation_alias="AZURE_CLIENT_ID")
    """The user-assigned identity the app signs in with (Key Vault, mail): its client id."""

    mail_connection_string: SecretStr | None = None
    """A Communication Services connection string, for running outside Azure only (it wins
    over `MAIL_ENDPOINT`); unset in Azure."""
    mail_sender: str | None = None
    """The sender address of outgoing mail (`MAIL_PROVIDER=acs`)."""
    # Checked when the first mail goes out, so a missing ACS setting parks mail in the
    # poison queue instead of stopping the whole app.
    mail_provider: Literal["acs", "devmailbox"] = "acs"
    """Who sends mail: `acs` (Azure Communication Services Email, with `MAIL_ENDPOINT` and
    the managed identity, or `MAIL_CONNECTION_STRING`) or `devmailbox` (local only: a table
    that `GET /api/dev/mailbox` reads)."""
    mail_endpoint: str | None = Field(default=None, pattern=r"^https://")
    """The Communication Services endpoint; in Azure the app sends there as its managed
    identity."""
    mail_retry_base_seconds: int = Field(default=15, ge=0, le=3600)
    """First retry delay of a failed mail, doubling (5 tries in all); then the mail is
    parked in `mail-outbox-poison`."""
    dev_mailbox_enabled: bool = False
    """Registers `GET /api/dev/mailbox`; refused outside `APP_ENVIRONMENT=local`, and always
    in Azure."""

    # Unlock codes (6 digits, mailed) sign a new device in while the account is paused.
    device_token_days: int = Field(default=90, ge=1, le=400)
    """A known device is trusted this long after its last sign-in."""
    unlock_code_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    """How long a mailed unlock code is valid."""
    unlock_code_max_attempts: int = Field(default=5, ge=1, le=10)
    """Wrong tries before an unlock code is burned."""

    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    """Sliding idle timeout of a session."""
    session_lifetime_hours: int = Field(default=12, ge=1, le=24 * 30)
    """Absolute lifetime of a session, however active."""
    cookie_secure: bool = True
    """The pages' cookies (console session, form nonces) carry `Secure` and the `__Host-`
    prefix; `false` only on plain http://localhost."""
    # The app serves the console under /console: in Azure no function ever receives a path
    # under /admin, which the host keeps for its admin API.
    console_base_path: Literal["/admin", "/console"] = "/admin"
    """Where browsers find the console: `/admin` behind an edge that rewrites `/admin` to
    the app's `/console` (Front Door, the local host), else `/console`."""

    bcrypt_cost: int = Field(default=12, ge=10, le=16)
    """bcrypt work factor for passwords (never below 10)."""
    password_max_age_days: int = Field(default=180, ge=1, le=3650)
    """After this a sign-in still works, but the session may only change the password."""
    pwned_passwords_enabled: bool = True
    """Refuse passwords found in known breaches at registration and password change
    (Have I Been Pwned's range API: only 5 hex characters of the SHA-1 leave the service)."""
    pwned_passwords_url: str = Field(default="https://api.pwnedpasswords.com", pattern=r"^https?://[^\s/?#]+$")
    """Where the range API answers (`<url>/range/<prefix>`)."""
    pwned_passwords_timeout_seconds: float = Field(default=2.0, gt=0, le=10)
    """How long a check may take; past it (or on an error) the password is judged by the
    other rules alone, and a warning is logged."""
    activation_code_digits: int = Field(default=4, ge=4, le=10)
    """Digits of the mailed activation code."""
    activation_code_ttl_seconds: int = Field(default=60, ge=10, le=3600)
    """How long an activation code is valid."""
    activation_max_attempts: int = Field(default=5, ge=1, le=10)
    """Wrong tries before an activation code is burned."""
    activation_resend_cooldown_seconds: int = Field(default=30, ge=0, le=3600)
    """Wait between two activation codes for one account."""
    activation_sends_per_hour: int = Field(default=5, ge=1, le=50)
    """Activation codes per account per hour."""
    # There is no default admin.
    initial_admin_email: str | None = Field(default=None, max_length=254)
    """The first admin, created if absent (with `INITIAL_ADMIN_PASSWORD`: both or neither)."""
    initial_admin_password: SecretStr | None = None
    """The first admin's password, held to the password policy; in Azure the Key Vault
    secret `initial-admin-password`."""

    pending_registration_hours: int = Field(default=24, ge=1, le=24 * 7)
    """How long a registration may wait for activation; then cleanup removes it and the
    address is free."""
    activation_attempts_per_registration: int = Field(default=10, ge=1, le=100)
    """Wrong activation codes over a registration's whole life, resends included; then it
    ends."""
    limit_registration_mails_per_recipient: RateSpec = "3/1h"
    """Registrations and resends that may mail one address; past it the answer is the same
    and nothing is stored or sent."""
    limit_registration_mails_per_recipient_daily: RateSpec = "10/1d"
    """The same, per day."""
    limit_registration_mails_global: RateSpec = "1000/1h"
    """Registrations and resends that may mail anyone, app-wide."""
    limit_password_change_attempts_per_account: RateSpec = "5/1h"  # noqa: S105 - a rate, not a password
    """Old-password attempts of a password change per account; then `429` and the session
    ends."""

    resource_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=100 * 1024 * 1024)
    """Largest upload."""
    code_ttl_seconds: int = Field(default=600, ge=SHORTEST_TTL_SECONDS, le=LONGEST_TTL_SECONDS)
    """A code's lifetime when `ttlSeconds` is not given."""
    download_url_seconds: int = Field(default=300, ge=30, le=3600)
    """How long a redeemed download link works."""
    issuer_status_cache_seconds: int = Field(default=15, ge=0, le=300)
    """How long an instance trusts "this issuer is active" on the redeem path, so a lock
    takes effect within it (0: ask every time)."""

    # The Functions host reads the app setting itself (%CLEANUP_SCHEDULE%).
    cleanup_schedule: str = Field(default="0 */5 * * * *", pattern=r"^\S+( \S+){5}$")
    """The cleanup timer, a 6-field NCRONTAB (seconds first, UTC); it must be set wherever
    the app runs."""
    cleanup_lookback_hours: int = Field(default=24, ge=1, le=24 * 30)
    """How far back the very first cleanup run looks; later runs continue from a cursor."""

    # Rate limits, each "<count>/<window>" (window in s, m, h or d): see README, "Abuse".
    # Each is counted before the act it guards; "per source" means an IPv4 address or an
    # IPv6 /64. Wrong passwords from unknown devices count per source, per source and
    # account, then per account; past those, unknown devices are paused for the account
    # (known devices and unlock codes still sign in).
    limit_register_per_ip: RateSpec = "10/1h"
    """Registrations per source."""
    limit_login_failures_per_ip: RateSpec = "30/15m"
    """Wrong passwords from unknown devices per source, on any account."""
    limit_login_failures_per_ip_and_account: RateSpec = "5/15m"
    """Wrong passwords from unknown devices per source on one account."""
    limit_login_failures_per_account: RateSpec = "10/15m"
    """Wrong passwords from unknown devices per account, from any source; past it unknown
    devices are paused."""
    limit_login_failures_per_account_daily: RateSpec = "100/1d"
    """The same, per day: the most wrong passwords checked per account a day."""
    limit_login_failures_per_device: RateSpec = "5/15m"
    """Wrong passwords from one known device: its own budget, which never meets the
    account's or a source's."""
    limit_activation_per_ip: RateSpec = "20/10m"
    """Activation attempts per source."""
    limit_resend_per_ip: RateSpec = "10/1h"
    """Activation resends per source."""
    limit_unlock_per_ip: RateSpec = "5/1h"
    """Unlock requests per source."""
    limit_unlock_mails_per_account: RateSpec = "3/1h"
    """Unlock mails per account."""
    limit_issue_per_user: RateSpec = "120/1h"
    """Codes issued per user."""
    limit_issue_per_ip: RateSpec = "600/1h"
    """Codes issued per source."""
    limit_redeem_failures_per_ip: RateSpec = "20/10m"
    """Failed redemptions per source."""
    limit_redeem_failures_per_ip_tightened: int = Field(default=3, ge=1, le=10_000)
    """Failed redemptions per source in the same window while the global budget is spent,
    for sources that failed in the window before."""
    # A redeemed code counts nowhere. The brute-force figures (shared/limits/odds.py) hold
    # at the longest code lifetime.
    limit_redeem_attempts_per_resource_and_ip: RateSpec = "5/30m"
    """Failed redemptions on one resource from one source; once spent, no code is looked
    at."""
    limit_redeem_attempts_per_resource: RateSpec = "10/30m"
    """Failed redemptions on one resource from all sources; once spent, no code is looked
    at."""
    limit_redeem_failures_global: RateSpec = "2000/5m"
    """Failed redemptions everywhere; while it is spent, the tightened per-source allowance
    applies."""
    max_active_codes_per_resource: int = Field(default=3, ge=1, le=1_000_000)
    """Active codes a resource may have at once (issuing one more is refused)."""

    # Bans at the edge (shared/limits/bans.py), as fail2ban's maxretry, findtime, bantime.
    ban_after_strikes: int = Field(default=3, ge=2, le=100)
    """Strikes that ban a source: a strike is a failure limit (sign-in, activation,
    redemption) refusing it, once per window of that limit. At least 2: one limit hit
    never bans."""
    ban_findtime_seconds: int = Field(default=3600, ge=10, le=7 * 86400)
    """The strikes must fall within this many seconds."""
    ban_first_seconds: int = Field(default=900, ge=1, le=86400)
    """A first ban lasts this long; each earlier ban within BAN_MEMORY_DAYS doubles it."""
    ban_longest_seconds: int = Field(default=86400, ge=1, le=30 * 86400)
    """The longest a ban lasts."""
    ban_memory_days: int = Field(default=7, ge=1, le=90)
    """Earlier bans count for the doubling this long after they end."""
    ban_exempt_networks: str = Field(default="", max_length=4000)
    """Comma-separated networks never banned: the trusted proxies' own addresses."""
    ban_waf_policy_id: str = Field(
        default="", pattern=r"^$|^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/"
        r"FrontDoorWebApplicationFirewallPolicies/[^/]+$",
    )  # fmt: skip
    """The Front Door WAF policy the cleanup timer publishes the active bans to (its
    resource id); empty: they are not published (locally, nginx reads them)."""
    ban_waf_rules: int = Field(default=5, ge=1, le=9)
    """Custom rules the bans may take in that policy (600 addresses each, priorities 1 to
    this, before the policy's own rules)."""

    @field_validator("ban_exempt_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        import ipaddress

        for part in filter(None, (part.strip() for part in value.split(","))):
            ipaddress.ip_network(part, strict=False)  # its ValueError names the malformed network
        return value

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
            from shared.accounts import addresses, passwords

            try:
                addresses.parse_email(self.initial_admin_email)
            except addresses.InvalidEmail as error:
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
