"""Secrets at run time: Key Vault through one `SecretClient` per process, and the HMAC key
ring that follows a rotation without a restart.

In Azure the platform resolves the Key Vault references in the app settings when an
instance starts, so the app starts with every secret in hand (`shared.config`). Only
what must change while the app runs is read here: with `KEY_VAULT_URL` set, the key ring
is read again from Key Vault every `SECRET_REFRESH_SECONDS`. Locally there is no Key
Vault and the key ring is the one from `local.settings.json`.

No secret value is ever logged or put in an exception message; names are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from shared.auth.keys import KeyConfigError, KeyRing
from shared.clock import Clock
from shared.config import Settings, SettingsError

log = logging.getLogger(__name__)

# Key Vault secret names. The app settings HMAC_KEYS and HMAC_ACTIVE_KEY_ID reference the
# same secrets (infra/main.bicep), so start-up and refresh read one source of truth.
HMAC_KEYS_SECRET = "hmac-keys"  # noqa: S105 - a name, not a value
HMAC_ACTIVE_KEY_ID_SECRET = "hmac-active-key-id"  # noqa: S105 - a name, not a value


class MissingSecretError(SettingsError):
    """A secret the app needs does not exist (the message names it, never a value)."""


class SecretUnavailableError(RuntimeError):
    """Key Vault did not answer or refused (the message names the secret, never a value)."""


class SecretReader(Protocol):
    def get(self, name: str) -> str:
        """The current value of secret `name`."""
        ...


class KeyVaultSecrets:
    """Reads secrets from one vault. The `SecretClient` (and its credential and
    connection pool) is created on first use and then reused for the process's life."""

    def __init__(self, vault_url: str, *, client_id: str | None = None, credential: Any = None, **client_kwargs: Any):
        self.vault_url = vault_url
        self._client_id = client_id
        self._credential = credential
        self._client_kwargs = client_kwargs

    @cached_property
    def client(self):
        from azure.keyvault.secrets import SecretClient  # only needed where a vault is configured

        credential = self._credential
        if credential is None:
            from azure.identity import DefaultAzureCredential  # the managed identity in Azure

            credential = DefaultAzureCredential(managed_identity_client_id=self._client_id)
        return SecretClient(self.vault_url, credential, **self._client_kwargs)

    def get(self, name: str) -> str:
        try:
            value = self.client.get_secret(name).value
        except ResourceNotFoundError:
            raise MissingSecretError(f"Key Vault secret {name!r} does not exist in {self.vault_url}") from None
        except (HttpResponseError, ServiceRequestError) as error:
            status = getattr(error, "status_code", None) or type(error).__name__
            raise SecretUnavailableError(f"Key Vault secret {name!r} could not be read ({status})") from None
        if value is None:
            raise MissingSecretError(f"Key Vault secret {name!r} has no value")
        return value


def key_ring_from(keys_spec: str, active_key_id: str) -> KeyRing:
    try:
        return KeyRing.parse(keys_spec, active_key_id.strip())
    except KeyConfigError as error:
        raise SettingsError(f"invalid HMAC key ring: {error}") from None


class KeyRingSource:
    """The current key ring. Starts from the settings; with a secret reader, re-reads the
    ring every `refresh` and switches to it when it changed. A failed or malformed read
    keeps the ring in use (and logs the secret's name): a rotation mistake must not stop a
    running app, and the next refresh tries again."""

    def __init__(
        self,
        keys_spec: str,
        active_key_id: str,
        *,
        clock: Clock,
        reader: SecretReader | None = None,
        refresh: timedelta = timedelta(minutes=5),
    ):
        self._ring = key_ring_from(keys_spec, active_key_id)
        self._fingerprint = (keys_spec, active_key_id.strip())
        self._clock = clock
        self._reader = reader
        self._refresh = refresh
        self._next_read: datetime = clock.now() + refresh
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Clock, reader_factory: Callable[[Settings], SecretReader | None] | None = None
    ) -> KeyRingSource:
        reader = (reader_factory or secret_reader_for)(settings)
        return cls(
            settings.hmac_keys.get_secret_value(),
            settings.hmac_active_key_id,
            clock=clock,
            reader=reader,
            refresh=timedelta(seconds=settings.secret_refresh_seconds),
        )

    def current(self) -> KeyRing:
        if self._reader is None or self._clock.now() < self._next_read:
            return self._ring
        with self._lock:
            if self._clock.now() >= self._next_read:  # another thread may have refreshed meanwhile
                self._reload()
        return self._ring

    def _reload(self) -> None:
        assert self._reader is not None
        self._next_read = self._clock.now() + self._refresh
        try:
            spec = self._reader.get(HMAC_KEYS_SECRET)
            active = self._reader.get(HMAC_ACTIVE_KEY_ID_SECRET).strip()
            if (spec, active) == self._fingerprint:
                return
            ring = key_ring_from(spec, active)
        except (SettingsError, SecretUnavailableError) as error:
            log.warning("key ring not refreshed, keeping key ids %s: %s", self._ring.key_ids, error)
            return
        log.info("key ring refreshed: key ids %s, active %s", ring.key_ids, ring.active_key_id)
        self._ring, self._fingerprint = ring, (spec, active)


def secret_reader_for(settings: Settings) -> SecretReader | None:
    """The vault named by the settings, or None where there is none (locally)."""
    if not settings.key_vault_url:
        return None
    return KeyVaultSecrets(settings.key_vault_url, client_id=settings.managed_identity_client_id)


class RefreshingKeyRing(KeyRing):
    """A `KeyRing` whose keys follow its source: whoever holds it (the session store, the
    code service) sees a rotation without being rebuilt. Each call works on one snapshot."""

    def __init__(self, source: KeyRingSource):  # no super().__init__: every call delegates
        self._source = source

    @property
    def active_key_id(self) -> str:  # type: ignore[override]
        return self._source.current().active_key_id

    @property
    def key_ids(self) -> list[str]:
        return self._source.current().key_ids

    def hash(self, purpose: str, value: str, key_id: str | None = None):
        return self._source.current().hash(purpose, value, key_id)

    def candidates(self, purpose: str, value: str):
        return self._source.current().candidates(purpose, value)

    def matches(self, purpose: str, value: str, stored):
        return self._source.current().matches(purpose, value, stored)

    def __getattr__(self, name: str) -> Any:  # anything KeyRing gains later
        if name.startswith("__") or name == "_source":
            raise AttributeError(name)
        return getattr(self._source.current(), name)
