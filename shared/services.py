"""Wires the process's objects together once: settings, clock, keys, storage and the
area services built on them. Handlers call `services()`; tests build their own
`Services` with a controllable clock."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property, lru_cache, partial
from typing import TYPE_CHECKING

from shared.clock import Clock, SystemClock
from shared.storage import AUDIT_CONTAINER, DEV_MAILBOX_TABLE, MAIL_QUEUE, RESOURCES_CONTAINER, Storage

# The Python worker sets the root logger to INFO, where the Azure SDKs log every request
# and response they make: in Azure that floods Application Insights (and its bill) with a
# line per storage call. Their warnings and errors still come through.
logging.getLogger("azure").setLevel(logging.WARNING)

# Each area's module (and the settings) is imported where its service is built, not
# here: importing the app, at every cold start, then loads only what indexing the
# functions needs, and the first request that uses a service loads what that one needs.
if TYPE_CHECKING:
    from collections.abc import Callable

    from azure.core.pipeline import PipelineRequest

    from shared.accounts.activation import ActivationStore
    from shared.accounts.registrations import PendingRegistrations
    from shared.accounts.service import AccountService
    from shared.accounts.unlock import UnlockCodes
    from shared.accounts.users import UserStore
    from shared.admin import AdminReadouts
    from shared.audit import AuditLog
    from shared.auth.authorization import Authorizer
    from shared.auth.csrf import CsrfTokens
    from shared.auth.devices import DeviceStore
    from shared.auth.keys import KeyRing
    from shared.auth.sessions import SessionStore
    from shared.codes.service import CodeService, IssuerDirectory
    from shared.config import Settings
    from shared.housekeeping.cleanup import Cleanup
    from shared.housekeeping.expiry import ExpiryIndex
    from shared.housekeeping.jobs import JobStore
    from shared.limits.bans import BanList
    from shared.limits.guard import AbuseGuard
    from shared.limits.password_attempts import PasswordChangeAttempts
    from shared.limits.waf import WafBanPublisher
    from shared.mail.budget import MailBudget
    from shared.mail.delivery import MailDelivery
    from shared.mail.devmailbox import DevMailbox
    from shared.mail.outbox import Outbox
    from shared.mail.providers import AcsEmail, MailProvider
    from shared.resources.downloads import DownloadSigner
    from shared.resources.guest import GuestView
    from shared.resources.store import ResourceStore
    from shared.verifiers.service import VerifierService


@dataclass
class Services:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    # Sees every storage request (shared/storage.py): tests and benchmarks count what a use case asks of storage.
    storage_request_hook: Callable[[PipelineRequest], None] | None = None

    @cached_property
    def storage(self) -> Storage:
        return Storage(self.settings, request_hook=self.storage_request_hook)

    @cached_property
    def keys(self) -> KeyRing:
        from shared.auth.key_vault import KeyRingSource, RefreshingKeyRing

        # follows a rotation in Key Vault where KEY_VAULT_URL is set (shared/auth/key_vault.py)
        return RefreshingKeyRing(KeyRingSource.from_settings(self.settings, self.clock))

    @cached_property
    def audit(self) -> AuditLog:
        from shared.audit import AuditLog

        return AuditLog(self.storage.container(AUDIT_CONTAINER), self.clock, self.settings.instance_id)

    @cached_property
    def expiry(self) -> ExpiryIndex:
        from shared.housekeeping.expiry import ExpiryIndex

        return ExpiryIndex(self.storage.table("expiry"))

    @cached_property
    def sessions(self) -> SessionStore:
        from shared.auth.sessions import SessionStore

        return SessionStore(
            self.storage.table("sessions"),
            self.expiry,
            self.keys,
            self.clock,
            idle_timeout=timedelta(minutes=self.settings.session_idle_minutes),
            lifetime=timedelta(hours=self.settings.session_lifetime_hours),
            pool=self.pool,
        )

    @cached_property
    def authorizer(self) -> Authorizer:
        from shared.auth.authorization import Authorizer

        return Authorizer(self.sessions, self.users)

    @cached_property
    def abuse(self) -> AbuseGuard:
        from shared.limits.guard import AbuseGuard, Limits
        from shared.limits.ratelimit import RateLimiter

        limiter = RateLimiter(self.storage.table("ratelimits"), self.keys, self.clock)
        return AbuseGuard(limiter, Limits.from_settings(self.settings), self.pool, strike=self.bans.strike)

    @cached_property
    def bans(self) -> BanList:
        from shared.audit import guest_actor
        from shared.limits.bans import BanList, BanRules, parse_networks

        s = self.settings
        rules = BanRules(
            after_strikes=s.ban_after_strikes,
            findtime=timedelta(seconds=s.ban_findtime_seconds),
            first=timedelta(seconds=s.ban_first_seconds),
            longest=timedelta(seconds=s.ban_longest_seconds),
            memory=timedelta(days=s.ban_memory_days),
            exempt=parse_networks(s.ban_exempt_networks),
        )
        return BanList(
            self.storage.table("bans"), self.expiry, self.audit, self.clock, rules, partial(guest_actor, self.keys)
        )

    @cached_property
    def ban_publisher(self) -> WafBanPublisher:
        """Only in Azure, where BAN_WAF_POLICY_ID names the Front Door WAF policy."""
        from azure.identity import DefaultAzureCredential
        from azure.mgmt.frontdoor import FrontDoorManagementClient

        from shared.limits.waf import WafBanPublisher

        credential = DefaultAzureCredential(managed_identity_client_id=self.settings.managed_identity_client_id)
        return WafBanPublisher(
            lambda subscription: FrontDoorManagementClient(credential, subscription),
            self.settings.ban_waf_policy_id,
            self.settings.ban_waf_rules,
            self.audit,
        )

    @cached_property
    def pool(self) -> ThreadPoolExecutor:
        """The process's pool for storage calls a use case makes side by side. Only leaf
        calls run on it (none waits on the pool itself), so it cannot starve."""
        return ThreadPoolExecutor(max_workers=128, thread_name_prefix="storage-io")

    @cached_property
    def resources(self) -> ResourceStore:
        from shared.resources.store import ResourceStore

        return ResourceStore(
            self.storage.table("resources"),
            self.storage.container(RESOURCES_CONTAINER),
            self.clock,
            max_bytes=self.settings.resource_max_bytes,
        )

    @cached_property
    def downloads(self) -> DownloadSigner:
        from shared.resources.downloads import DownloadSigner

        return DownloadSigner(
            self.storage.blobs, self.clock, lifetime=timedelta(seconds=self.settings.download_url_seconds)
        )

    @cached_property
    def issuers(self) -> IssuerDirectory:
        from shared.codes.issuers import CachedIssuerDirectory, UsersDirectory

        return CachedIssuerDirectory(
            UsersDirectory(self.users),
            self.clock,
            timedelta(seconds=self.settings.issuer_status_cache_seconds),
        )

    @cached_property
    def codes(self) -> CodeService:
        from shared.audit import guest_actor
        from shared.codes.service import CodeService
        from shared.codes.slots import ActiveCodeSlots
        from shared.codes.store import CodeStore

        codes_table = self.storage.table("codes")
        return CodeService(
            CodeStore(codes_table, self.expiry, self.pool),
            self.resources,
            self.issuers,
            self.downloads,
            self.audit,
            self.keys,
            self.clock,
            self.pool,
            default_ttl=timedelta(seconds=self.settings.code_ttl_seconds),
            slots=ActiveCodeSlots(codes_table, self.settings.max_active_codes_per_resource),
            abuse=self.abuse,
            actor_for_source=partial(guest_actor, self.keys),
        )

    @cached_property
    def verifiers(self) -> VerifierService:
        from shared.verifiers.service import VerifierService
        from shared.verifiers.store import VerifierStore

        return VerifierService(
            VerifierStore(self.storage.table("verifiers")),
            self.resources,
            self.keys,
            self.audit,
            self.expiry,
            self.clock,
            self.pool,
            reserve_issuance=self.abuse.reserve_issuance,
            default_lifetime=timedelta(seconds=self.settings.code_ttl_seconds),
        )

    @cached_property
    def guest(self) -> GuestView:
        from shared.resources.guest import GuestView

        return GuestView(self.resources, self.users)

    @cached_property
    def csrf(self) -> CsrfTokens:
        from shared.auth.csrf import CsrfTokens

        return CsrfTokens(self.keys)

    @cached_property
    def jobs(self) -> JobStore:
        from shared.housekeeping.jobs import JobStore

        return JobStore(self.storage.table("jobs"), self.clock, self.settings.instance_id)

    @cached_property
    def admin(self) -> AdminReadouts:
        from shared.admin import AdminReadouts

        return AdminReadouts(self.audit, self.jobs, self.clock)

    @cached_property
    def cleanup(self) -> Cleanup:
        from shared.housekeeping.cleanup import Cleanup
        from shared.housekeeping.expiry import ExpiryKind

        # What cleanup deletes, by the `kind` of the expiry index's rows: one entry per area.
        purges = {
            ExpiryKind.CODE: self.codes.purge,
            ExpiryKind.SESSION: self.sessions.purge,
            ExpiryKind.ACTIVATION: self.activations.purge,
            ExpiryKind.REGISTRATION: self.registrations.purge,
            ExpiryKind.DEVICE: self.devices.purge,
            ExpiryKind.UNLOCK: self.unlock_codes.purge,
            ExpiryKind.VERIFIER: self.verifiers.purge,
            ExpiryKind.BAN: self.bans.purge,
        }
        # What lives in partitions of its own expiry bucket and goes whole.
        sweeps = {ExpiryKind.RATELIMIT: self.abuse.sweep_counters}
        return Cleanup(
            self.expiry,
            self.jobs,
            purges,
            self.clock,
            lookback=timedelta(hours=self.settings.cleanup_lookback_hours),
            sweeps=sweeps,
        )

    @cached_property
    def users(self) -> UserStore:
        from shared.accounts.users import UserStore

        return UserStore(self.storage.table("users"))

    @cached_property
    def activations(self) -> ActivationStore:
        from shared.accounts.activation import ActivationStore

        s = self.settings
        return ActivationStore(
            self.storage.table("activations"),
            self.expiry,
            self.keys,
            self.clock,
            digits=s.activation_code_digits,
            ttl=timedelta(seconds=s.activation_code_ttl_seconds),
            max_attempts=s.activation_max_attempts,
            resend_cooldown=timedelta(seconds=s.activation_resend_cooldown_seconds),
            sends_per_hour=s.activation_sends_per_hour,
            attempts_per_registration=s.activation_attempts_per_registration,
        )

    @cached_property
    def registrations(self) -> PendingRegistrations:
        from shared.accounts.registrations import PendingRegistrations

        return PendingRegistrations(
            self.users,
            self.activations,
            self.expiry,
            self.clock,
            lifetime=timedelta(hours=self.settings.pending_registration_hours),
        )

    @cached_property
    def mail_budget(self) -> MailBudget:
        from shared.limits.ratelimit import RateLimiter
        from shared.mail.budget import MailBudget, MailLimits

        s = self.settings
        limits = MailLimits.from_specs(
            [s.limit_registration_mails_per_recipient, s.limit_registration_mails_per_recipient_daily],
            s.limit_registration_mails_global,
        )
        return MailBudget(RateLimiter(self.storage.table("ratelimits"), self.keys, self.clock), limits)

    @cached_property
    def password_attempts(self) -> PasswordChangeAttempts:
        from shared.limits.password_attempts import PasswordChangeAttempts
        from shared.limits.ratelimit import RateLimiter

        return PasswordChangeAttempts.from_spec(
            RateLimiter(self.storage.table("ratelimits"), self.keys, self.clock),
            self.settings.limit_password_change_attempts_per_account,
        )

    @cached_property
    def accounts(self) -> AccountService:
        from shared.accounts.breaches import BreachedPasswords
        from shared.accounts.passwords import PasswordHasher
        from shared.accounts.service import AccountService, InitialAdmin
        from shared.audit import guest_actor

        s = self.settings
        initial_admin = None
        if s.initial_admin_email and s.initial_admin_password:
            initial_admin = InitialAdmin(s.initial_admin_email, s.initial_admin_password.get_secret_value())
        hasher = PasswordHasher(s.bcrypt_cost)
        hasher.warm_up()
        return AccountService(
            self.users,
            self.activations,
            self.sessions,
            self.authorizer,
            hasher,
            self.outbox,
            self.audit,
            self.clock,
            password_max_age=timedelta(days=s.password_max_age_days),
            activation_ttl=timedelta(seconds=s.activation_code_ttl_seconds),
            pool=self.pool,
            breaches=BreachedPasswords(s.pwned_passwords_url, s.pwned_passwords_timeout_seconds)
            if s.pwned_passwords_enabled
            else None,
            initial_admin=initial_admin,
            abuse=self.abuse,
            devices=self.devices,
            unlock_codes=self.unlock_codes,
            actor_for_ip=partial(guest_actor, self.keys),
            registrations=self.registrations,
            mail_budget=self.mail_budget,
            password_attempts=self.password_attempts,
        )

    @cached_property
    def devices(self) -> DeviceStore:
        from shared.auth.devices import DeviceStore

        return DeviceStore(
            self.storage.table("sessions"),
            self.expiry,
            self.keys,
            self.clock,
            lifetime=timedelta(days=self.settings.device_token_days),
        )

    @cached_property
    def unlock_codes(self) -> UnlockCodes:
        from shared.accounts.unlock import UnlockCodes

        return UnlockCodes(
            self.storage.table("activations"),
            self.expiry,
            self.keys,
            self.clock,
            ttl=timedelta(seconds=self.settings.unlock_code_ttl_seconds),
            max_attempts=self.settings.unlock_code_max_attempts,
        )

    @cached_property
    def outbox(self) -> Outbox:
        from shared.mail.outbox import Outbox

        return Outbox(self.storage.queue(MAIL_QUEUE), self.storage.queue(f"{MAIL_QUEUE}-poison"), self.clock)

    @cached_property
    def dev_mailbox(self) -> DevMailbox:
        from shared.mail.devmailbox import DevMailbox

        return DevMailbox(self.storage.table(DEV_MAILBOX_TABLE), self.clock)

    @cached_property
    def mail_provider(self) -> MailProvider:
        """The provider MAIL_PROVIDER names; built on the first mail, so a missing ACS
        setting fails deliveries (to the poison queue), not the app."""
        return self._mail_providers[self.settings.mail_provider]()

    @property
    def _mail_providers(self) -> dict:
        s = self.settings

        def acs() -> AcsEmail:
            from shared.mail.providers import AcsEmail

            credential = None
            if s.mail_endpoint and not s.mail_connection_string:
                from azure.identity import DefaultAzureCredential  # only needed in Azure

                credential = DefaultAzureCredential(managed_identity_client_id=s.managed_identity_client_id)
            return AcsEmail.connect(
                sender=s.mail_sender,
                connection_string=s.mail_connection_string.get_secret_value() if s.mail_connection_string else None,
                endpoint=s.mail_endpoint,
                credential=credential,
            )

        return {"acs": acs, "devmailbox": lambda: self.dev_mailbox}

    @cached_property
    def mail(self) -> MailDelivery:
        from shared.mail.delivery import MailDelivery

        return MailDelivery(
            lambda: self.mail_provider,
            self.outbox,
            self.audit,
            retry_base=timedelta(seconds=self.settings.mail_retry_base_seconds),
        )


@lru_cache(maxsize=1)
def services() -> Services:
    from shared.config import get_settings

    return Services(get_settings())
