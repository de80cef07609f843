"""Wires the process's objects together once: settings, clock, keys, storage and the
area services built on them. Handlers call `services()`; tests build their own
`Services` with a controllable clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from shared.clock import Clock, SystemClock
from shared.config import Settings, get_settings
from shared.keys import KeyRing
from shared.storage import Storage


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


@lru_cache(maxsize=1)
def services() -> Services:
    return Services(get_settings())
