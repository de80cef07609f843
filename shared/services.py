"""Wires the process's objects together once: settings, clock, keys, storage and the
area services built on them. Handlers call `services()`; tests build their own
`Services` with a controllable clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property, lru_cache

from shared.audit import AuditLog
from shared.clock import Clock, SystemClock
from shared.config import Settings, get_settings
from shared.expiry import ExpiryIndex
from shared.keys import KeyRing
from shared.sessions import SessionStore
from shared.storage import AUDIT_CONTAINER, Storage


@dataclass
class Services:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)

    @cached_property
    def storage(self) -> Storage:
        return Storage(self.settings)

    @cached_property
    def keys(self) -> KeyRing:
        return KeyRing.parse(self.settings.hmac_keys.get_secret_value(), self.settings.hmac_active_key_id)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.storage.container(AUDIT_CONTAINER), self.clock, self.settings.instance_id)

    @cached_property
    def expiry(self) -> ExpiryIndex:
        return ExpiryIndex(self.storage.table("expiry"))

    @cached_property
    def sessions(self) -> SessionStore:
        return SessionStore(
            self.storage.table("sessions"),
            self.expiry,
            self.keys,
            self.clock,
            idle_timeout=timedelta(minutes=self.settings.session_idle_minutes),
            lifetime=timedelta(hours=self.settings.session_lifetime_hours),
        )

    def actor_for_ip(self, client_ip: str) -> str:
        """How a guest appears in the audit: a keyed hash of the address, never the address."""
        return "ip:" + self.keys.hash("client-ip", client_ip).digest[:24]


@lru_cache(maxsize=1)
def services() -> Services:
    return Services(get_settings())
